"""A Qdrant server (or cluster, or qdrant-client's local mode) through ``qdrant-client``: the
same points as on Qdrant Edge, in a collection of the server."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from ...checks import require
from ..filters import MetadataFilter, check_filter
from .layout import (
    BM25_VECTOR,
    COLBERT_VECTOR,
    FIXED_VECTOR,
    Condition,
    Layout,
    Nearest,
    Rrf,
    Sparse,
    Stage,
    conditions,
)
from .store import PAYLOAD_FIELDS, SAMPLE_FIELDS, QdrantEngineError, QdrantStore, ScoredPayload

require("qdrant_client", extra="qdrant", feature=__name__)

from qdrant_client import QdrantClient, models  # noqa: E402

__all__ = ["ClientStore", "QdrantClient", "qdrant_filter"]

_PAGE = 256


class ClientStore(QdrantStore):
    """One collection of a Qdrant server (``client``: not closed unless ``owns_client``)."""

    def __init__(self, client: QdrantClient, collection: str, *, owns_client: bool) -> None:
        self.client = client
        self.collection = collection
        self._owns_client = owns_client
        self._indexed: set[str] = set()
        # qdrant-client's local mode is not thread-safe: serialize calls to it.
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self._local = local
        self._lock: AbstractContextManager[Any] = threading.RLock() if local else nullcontext()

    # -- lifecycle -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any] | None:
        """The collection's vectors and one point's payload (``None``: no such collection)."""
        with self._lock:
            if not self.client.collection_exists(self.collection):
                return None
            info = self.client.get_collection(self.collection)
            sample, _ = self.client.scroll(
                self.collection, limit=1, with_payload=list(SAMPLE_FIELDS), with_vectors=False
            )
        self._indexed = set(info.payload_schema or {})
        vectors = info.config.params.vectors
        sparse = info.config.params.sparse_vectors or {}
        return {
            "vectors": vectors if isinstance(vectors, dict) else {},
            "bm25": BM25_VECTOR in sparse,
            "payload": dict(sample[0].payload or {}) if sample else None,
        }

    def create(self, layout: Layout) -> None:
        with self._lock:
            self.client.create_collection(
                self.collection,
                vectors_config={
                    COLBERT_VECTOR: models.VectorParams(
                        size=layout.dim,
                        distance=models.Distance.DOT,  # unit vectors: DOT == COSINE
                        multivector_config=models.MultiVectorConfig(
                            comparator=models.MultiVectorComparator.MAX_SIM
                        ),
                        hnsw_config=models.HnswConfigDiff(m=0),  # rerank only
                        on_disk=True,
                    ),
                    FIXED_VECTOR: models.VectorParams(
                        size=layout.fixed_dim, distance=models.Distance.DOT
                    ),
                },
                sparse_vectors_config=(
                    {BM25_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
                    if layout.bm25
                    else None
                ),
            )
        self.ensure_indexes({"id": "keyword"})

    def close(self) -> None:
        if self._owns_client:
            with self._lock:
                self.client.close()

    # -- writing ---------------------------------------------------------------------------------

    def upsert(self, points: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        structs = [
            models.PointStruct(
                id=pid,
                vector={name: _vector(v) for name, v in vectors.items()},
                payload=payload,
            )
            for pid, vectors, payload in points
        ]
        with self._lock:
            self.client.upsert(self.collection, points=structs, wait=True)

    def delete(self, point_ids: Sequence[str]) -> None:
        with self._lock:
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=list(point_ids)),
                wait=True,
            )

    def clear(self) -> None:
        with self._lock:
            self.client.delete(
                self.collection,
                points_selector=models.FilterSelector(filter=models.Filter()),
                wait=True,
            )

    def optimize(self) -> None:
        """Nothing to do: the server's optimizers run in the background."""

    def ensure_indexes(self, wanted: dict[str, str]) -> None:
        for path, kind in wanted.items():
            if path in self._indexed or self._local:  # local mode has no payload indexes
                continue
            schema = (
                models.PayloadSchemaType.KEYWORD
                if kind == "keyword"
                else models.PayloadSchemaType.FLOAT
            )
            with self._lock:
                self.client.create_payload_index(
                    self.collection, field_name=path, field_schema=schema, wait=True
                )
            self._indexed.add(path)

    # -- reading ---------------------------------------------------------------------------------

    def payload_indexes(self) -> list[str]:
        with self._lock:
            info = self.client.get_collection(self.collection)
        return sorted(info.payload_schema or {})

    def count(self) -> int:
        with self._lock:
            return int(self.client.count(self.collection, exact=True).count)

    def retrieve(self, point_ids: Sequence[str], *, payload: bool) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ids = list(point_ids)
        for start in range(0, len(ids), _PAGE):
            with self._lock:
                records = self.client.retrieve(
                    self.collection,
                    ids=ids[start : start + _PAGE],
                    with_payload=payload,
                    with_vectors=False,
                )
            for record in records:
                found[str(record.id)] = dict(record.payload or {})
        return found

    def scroll(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        offset = None
        while True:
            with self._lock:
                records, offset = self.client.scroll(
                    self.collection,
                    limit=_PAGE,
                    offset=offset,
                    with_payload=fields,
                    with_vectors=False,
                )
            for record in records:
                yield dict(record.payload or {})
            if offset is None:
                return

    def query(
        self, stages: Sequence[Stage], groups: list[list[Condition]] | None
    ) -> list[list[ScoredPayload]]:
        flt = _filter(groups)
        requests = [
            models.QueryRequest(
                query=_query(stage.query),
                using=_using(stage.query),
                prefetch=[_prefetch(p) for p in stage.prefetch] or None,
                # Qdrant applies the query's filter to its prefetches too: the candidates are
                # taken among matching documents only, so k come back when k match.
                filter=flt,
                limit=stage.limit,
                with_payload=list(PAYLOAD_FIELDS),
                with_vector=False,
            )
            for stage in stages
        ]
        try:
            with self._lock:
                responses = self.client.query_batch_points(self.collection, requests=requests)
        except (ValueError, RuntimeError) as exc:
            raise QdrantEngineError(f"the Qdrant search failed: {exc}") from exc
        return [[(dict(p.payload or {}), float(p.score)) for p in r.points] for r in responses]

    def disk_bytes(self) -> int:
        return 0


def qdrant_filter(filter: MetadataFilter) -> models.Filter:
    """A metadata filter (:func:`~colbert_plugins.index.check_filter`) as a Qdrant filter on
    the payload, with the semantics of :func:`~colbert_plugins.index.matches_filter`.

    Strings become ``MatchValue`` (several of them ``MatchAny``); numbers become a ``Range``
    with equal bounds, so ``1`` matches a stored ``1.0`` as JSON says (Qdrant's exact match
    keeps integers and floats apart, and never matches floats); booleans match the payload's
    ``bools`` keywords; ``None`` becomes ``IsNull``. A membership mixing these kinds is a
    nested ``should``. Fields whose name is not plain ``[A-Za-z0-9_-]`` are quoted in the JSON
    path (``metadata."a.b"``); a name containing a double quote cannot be expressed and is
    refused.

    >>> qdrant_filter({"source": "a.pdf"}).must[0].key
    'metadata.source'
    """
    checked = check_filter(filter)
    if not checked:
        return models.Filter()
    return _filter(conditions(checked)) or models.Filter()


def _filter(groups: list[list[Condition]] | None) -> models.Filter | None:
    if not groups:
        return None
    must: list[Any] = []
    for group in groups:
        conds = [_condition(c) for c in group]
        must.append(conds[0] if len(conds) == 1 else models.Filter(should=conds))
    return models.Filter(must=must)


def _condition(c: Condition) -> Any:
    if c.kind == "null":
        return models.IsNullCondition(is_null=models.PayloadField(key=c.path))
    if c.kind == "range":
        value = c.values[0]
        return models.FieldCondition(key=c.path, range=models.Range(gte=value, lte=value))
    if c.kind == "any":
        return models.FieldCondition(key=c.path, match=models.MatchAny(any=list(c.values)))
    return models.FieldCondition(key=c.path, match=models.MatchValue(value=c.values[0]))


def _vector(v: Any) -> Any:
    if isinstance(v, Sparse):
        return models.SparseVector(indices=v.indices, values=v.values)
    return np.asarray(v).tolist()


def _query(query: Nearest | Rrf) -> Any:
    if isinstance(query, Rrf):
        weights = list(query.weights) if query.weights else None
        return models.RrfQuery(rrf=models.Rrf(k=query.k, weights=weights))
    return _vector(query.vector)


def _using(query: Nearest | Rrf) -> str | None:
    return query.using if isinstance(query, Nearest) else None


def _prefetch(stage: Stage) -> models.Prefetch:
    return models.Prefetch(
        query=_query(stage.query),
        using=_using(stage.query),
        prefetch=[_prefetch(p) for p in stage.prefetch] or None,
        limit=stage.limit,
        params=models.SearchParams(hnsw_ef=stage.hnsw_ef) if stage.hnsw_ef else None,
    )
