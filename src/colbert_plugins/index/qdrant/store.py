"""What :class:`~colbert_plugins.index.qdrant.QdrantIndex` needs from an engine: the calls
that :class:`~.edge.EdgeStore` (Qdrant Edge in process) and :class:`~.client.ClientStore`
(a Qdrant server through qdrant-client) both implement on the points of :mod:`.layout`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from ...errors import ColBERTError
from .layout import Condition, Stage

__all__ = ["PAYLOAD_FIELDS", "SAMPLE_FIELDS", "QdrantEngineError", "QdrantStore", "ScoredPayload"]

#: The payload fields a search returns.
PAYLOAD_FIELDS = ("id", "text", "metadata")
#: The payload fields that say what wrote a point.
SAMPLE_FIELDS = ("model_key", "fixed", "bm25_avg_len")
#: One hit: its payload and its score.
ScoredPayload = tuple[dict[str, Any], float]


class QdrantEngineError(ColBERTError):
    """The Qdrant engine (Qdrant Edge or a server) failed a request; the message says which
    step and what the engine said."""


class QdrantStore(ABC):
    """One collection of :mod:`.layout` points in one engine."""

    @abstractmethod
    def upsert(self, points: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        """Write ``(point id, named vectors, payload)`` points, acknowledged when it returns."""

    @abstractmethod
    def delete(self, point_ids: Sequence[str]) -> None:
        """Remove points (unknown ids are skipped)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every point."""

    @abstractmethod
    def optimize(self) -> None:
        """Build what searches need after writes (Qdrant Edge: its HNSW indexes)."""

    @abstractmethod
    def ensure_indexes(self, wanted: dict[str, str]) -> None:
        """Create payload indexes (``path -> "keyword" | "float"``) not there yet."""

    @abstractmethod
    def payload_indexes(self) -> list[str]:
        """The payload paths the engine has an index on."""

    @abstractmethod
    def count(self) -> int:
        """Number of points."""

    @abstractmethod
    def retrieve(self, point_ids: Sequence[str], *, payload: bool) -> dict[str, dict[str, Any]]:
        """Payloads (empty without ``payload``) of those of these points that exist."""

    @abstractmethod
    def scroll(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every point's payload, these fields only, in point-id order."""

    @abstractmethod
    def query(
        self, stages: Sequence[Stage], groups: list[list[Condition]] | None
    ) -> list[list[ScoredPayload]]:
        """Run each stage tree (one per query), the filter applied at every stage."""

    @abstractmethod
    def disk_bytes(self) -> int:
        """Bytes the collection takes on this machine's disk (0 when it is elsewhere)."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine (idempotent)."""
