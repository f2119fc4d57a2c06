"""The point layout a :class:`~colbert_plugins.index.qdrant.QdrantIndex` writes, on Qdrant
Edge and on a Qdrant server alike, and the engine-neutral form of its queries and filters.

One document is one point:

- id: ``uuid5(POINT_ID_NAMESPACE, doc_id)`` (:func:`point_id`);
- named vectors: ``"colbert"`` (the token vectors, a multivector compared by MaxSim, dot
  product, no HNSW graph), ``"fixed"`` (one vector per document: the L2-normalized mean of the
  token vectors, or a MUVERA encoding; HNSW, dot product) that finds candidates, and,
  optionally, ``"bm25"`` (a sparse BM25 term-frequency vector, IDF applied by the engine);
- payload: ``id``, ``text``, ``metadata`` (the caller's JSON object), ``bools`` (the boolean
  metadata values again, as the keywords ``"true"``/``"false"``: Qdrant Edge 0.9 never matches
  a boolean, so filters on booleans use these), ``model_key``, ``fixed`` and ``bm25_avg_len``
  (what wrote it: the model, the first-stage encoding, BM25's mean document length).

Nothing here imports an engine: :mod:`.edge` and :mod:`.client` turn :class:`Stage` trees and
:func:`conditions` into their own request objects.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ...errors import InvalidArgumentError
from ...model import FloatArray
from ...pooling import Muvera, mean_pool

__all__ = [
    "BM25_VECTOR",
    "COLBERT_VECTOR",
    "FIXED_VECTOR",
    "POINT_ID_NAMESPACE",
    "Condition",
    "Layout",
    "Nearest",
    "Rrf",
    "Sparse",
    "Stage",
    "conditions",
    "payload_path",
    "point_id",
]

#: Name of the multivector (token vectors, MAX_SIM, no HNSW).
COLBERT_VECTOR = "colbert"
#: Name of the fixed-length vector (mean or MUVERA, HNSW) that finds candidates.
FIXED_VECTOR = "fixed"
#: Name of the sparse BM25 vector (term frequencies; the engine applies IDF).
BM25_VECTOR = "bm25"
#: UUID namespace of the point ids: ``uuid5(POINT_ID_NAMESPACE, doc_id)``.
POINT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/colbert-plugins/")


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of a document id.

    >>> point_id("doc-1") == point_id("doc-1") != point_id("doc-2")
    True
    """
    return str(uuid.uuid5(POINT_ID_NAMESPACE, doc_id))


@dataclass(frozen=True)
class Sparse:
    """A sparse vector: term ids and their weights."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Layout:
    """What one collection stores: vector sizes, the fixed vector's kind, whether BM25 is
    there, and the model that wrote it."""

    dim: int
    model_key: str
    fixed: Literal["mean", "muvera"] = "mean"
    muvera: Muvera | None = None
    bm25: bool = True

    def __post_init__(self) -> None:
        if self.fixed == "muvera" and self.muvera is None:
            object.__setattr__(self, "muvera", Muvera(self.dim))
        if self.muvera is not None and self.muvera.dim != self.dim:
            raise InvalidArgumentError(
                f"muvera was built for {self.muvera.dim}-dim vectors, the model has {self.dim}"
            )

    @property
    def fixed_dim(self) -> int:
        """Floats in the fixed vector."""
        return self.muvera.dimension if self.muvera is not None else self.dim

    @property
    def fixed_spec(self) -> str:
        """The fixed vector's encoding, as written into every payload (``"mean"`` or
        ``"muvera(...)"`` with its parameters)."""
        m = self.muvera
        if m is None:
            return "mean"
        return (
            f"muvera(k_sim={m.k_sim},d_proj={m.d_proj},r_reps={m.r_reps},seed={m.seed},"
            f"fill_empty={m.fill_empty})"
        )

    def fixed_document(self, tokens: FloatArray) -> FloatArray:
        if self.muvera is not None:
            return self.muvera.encode_document(tokens)
        return mean_pool(tokens)

    def fixed_query(self, tokens: FloatArray) -> FloatArray:
        if self.muvera is not None:
            return self.muvera.encode_query(tokens)
        return mean_pool(tokens)

    def payload(
        self, doc_id: str, text: str, metadata: dict[str, Any], bm25_avg_len: float | None
    ) -> dict[str, Any]:
        """The payload of one document's point (``bm25_avg_len``: the BM25 mean length its
        ``bm25`` vector was made with)."""
        payload: dict[str, Any] = {
            "id": doc_id,
            "text": text,
            "metadata": metadata,
            "bools": bool_keywords(metadata),
            "model_key": self.model_key,
            "fixed": self.fixed_spec,
        }
        if bm25_avg_len is not None:
            payload["bm25_avg_len"] = bm25_avg_len
        return payload

    def vectors(self, tokens: FloatArray, bm25: Sparse | None) -> dict[str, Any]:
        """The named vectors of one document's point (an empty document gets one zero token
        vector: engines refuse empty multivectors, and a zero vector never wins a max)."""
        if len(tokens) == 0:
            tokens = np.zeros((1, self.dim), dtype=np.float32)
        out: dict[str, Any] = {
            COLBERT_VECTOR: tokens,
            FIXED_VECTOR: self.fixed_document(tokens),
        }
        if self.bm25:
            out[BM25_VECTOR] = bm25 if bm25 is not None else Sparse([], [])
        return out

    def describe(self) -> dict[str, Any]:
        """The collection's configuration as Qdrant's REST API writes it (``PUT
        /collections/{name}``): what a server collection needs to hold the same points."""
        vectors: dict[str, Any] = {
            COLBERT_VECTOR: {
                "size": self.dim,
                "distance": "Dot",
                "multivector_config": {"comparator": "max_sim"},
                "hnsw_config": {"m": 0},
                "on_disk": True,
            },
            FIXED_VECTOR: {"size": self.fixed_dim, "distance": "Dot"},
        }
        config: dict[str, Any] = {"vectors": vectors}
        if self.bm25:
            config["sparse_vectors"] = {BM25_VECTOR: {"modifier": "idf"}}
        return config


def bool_keywords(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The boolean values of ``metadata`` (top level, and inside lists) as ``"true"`` /
    ``"false"`` keywords, by field.

    >>> bool_keywords({"a": True, "b": 1, "c": [False, "x", True]})
    {'a': 'true', 'c': ['false', 'true']}
    """
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list):
            found = ["true" if v else "false" for v in value if isinstance(v, bool)]
            if found:
                out[key] = found
    return out


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nearest:
    """Score points by one named vector: dense (``[dim]``), multivector (``[n, dim]``, MaxSim)
    or sparse."""

    using: str
    vector: FloatArray | Sparse


@dataclass(frozen=True)
class Rrf:
    """Reciprocal rank fusion of the stage's prefetches: ``sum(w / (k + rank))``."""

    k: int = 60
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Stage:
    """One step of a query: score the points that its ``prefetch`` stages found (all points
    when it has none) by ``query``, keep the best ``limit``. ``hnsw_ef``: the HNSW beam for a
    nearest-neighbour search of the fixed vector."""

    query: Nearest | Rrf
    limit: int
    prefetch: tuple[Stage, ...] = field(default=())
    hnsw_ef: int | None = None


# -- filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One engine-neutral condition on a payload path: ``kind`` is ``"null"`` (present and
    null), ``"range"`` (a number, matched as ``value <= x <= value``), ``"match"`` (one
    keyword, or an integer too large for a float) or ``"any"`` (one of several keywords)."""

    kind: Literal["null", "range", "match", "any"]
    path: str
    values: tuple[Any, ...] = ()


#: Integers beyond this are matched exactly, not through a float range.
_FLOAT_EXACT = 2**53
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def payload_path(root: str, key: str) -> str:
    """The JSON path of metadata field ``key`` under payload object ``root``; a name that is
    not plain ``[A-Za-z0-9_-]`` is quoted.

    >>> payload_path("metadata", "a.b")
    'metadata."a.b"'
    """
    if _PLAIN_KEY.fullmatch(key):
        return f"{root}.{key}"
    if '"' in key:
        raise InvalidArgumentError(
            f"filter key {key!r} contains a double quote, which a Qdrant payload path cannot "
            "express; rename the metadata field"
        )
    return f'{root}."{key}"'


def conditions(checked: Mapping[str, Any]) -> list[list[Condition]]:
    """A checked filter (:func:`~colbert_plugins.index.check_filter`) as a conjunction of
    disjunctions: every inner list must have one condition that holds.

    Numbers become ranges with equal bounds, so ``1`` matches a stored ``1.0`` as JSON says;
    strings become keyword matches; ``None`` is "present and null"; booleans match the
    ``bools`` keywords (both engines: Qdrant Edge 0.9 never matches a boolean value).

    >>> [[c.kind for c in group] for group in conditions({"a": ("x", 1, None)})]
    [['range', 'null', 'match']]
    """
    out: list[list[Condition]] = []
    for key, wanted in checked.items():
        path = payload_path("metadata", key)
        options = wanted if isinstance(wanted, tuple) else (wanted,)
        group: list[Condition] = []
        keywords: list[str] = []
        for value in options:
            if value is None:
                group.append(Condition("null", path))
            elif isinstance(value, bool):
                keyword = "true" if value else "false"
                group.append(Condition("match", payload_path("bools", key), (keyword,)))
            elif isinstance(value, int) and abs(value) > _FLOAT_EXACT:
                group.append(Condition("match", path, (value,)))
            elif isinstance(value, int | float):
                group.append(Condition("range", path, (value,)))
            else:
                keywords.append(value)
        if len(keywords) == 1:
            group.append(Condition("match", path, (keywords[0],)))
        elif keywords:
            group.append(Condition("any", path, tuple(keywords)))
        out.append(group)
    return out


def index_kinds(groups: Iterable[list[Condition]]) -> dict[str, str]:
    """The payload index each filtered path wants: ``"keyword"`` for keyword matches,
    ``"float"`` for ranges (a path used both ways gets none)."""
    wanted: dict[str, set[str]] = {}
    for group in groups:
        for c in group:
            if c.kind == "null":
                continue
            kind = (
                "float"
                if c.kind == "range"
                else ("keyword" if all(isinstance(v, str) for v in c.values) else "other")
            )
            wanted.setdefault(c.path, set()).add(kind)
    return {
        path: kinds.pop()
        for path, kinds in wanted.items()
        if len(kinds) == 1 and "other" not in kinds
    }
