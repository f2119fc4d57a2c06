"""A ColBERT index on Qdrant: HNSW candidates from a fixed-length vector, exact MaxSim rerank.

Each document is one Qdrant point with two named vectors:

- ``"colbert"``: its token vectors as a multivector compared by ``MAX_SIM`` (HNSW off:
  ``m=0``), for the exact late-interaction score;
- ``"fixed"``: one fixed-length vector (MUVERA encoding by default, or the mean of the token
  vectors, see :mod:`colbert_plugins.pooling`) with an ordinary HNSW index, to find candidates.

A search is one ``query_points`` call: a prefetch of ``prefetch_limit`` candidates by the
fixed vector, then MaxSim of the query's token vectors over those candidates. The payload holds
the document's text, its (string) id and its metadata; Qdrant point ids are UUIDs derived from
the string ids (:func:`point_id`).

qdrant-client's local mode is the embedded default (``location=":memory:"``, or ``path=`` to
persist to a directory); the same code talks to a Qdrant server or cluster with ``url=`` (and
``api_key=``). Local mode scans every point in Python on each query: fine for tens of
thousands of documents; use a server beyond that.

>>> index = QdrantIndex(model, path="./colbert-qdrant")  # doctest: +SKIP
>>> index.add(texts, ids=ids, metadatas=metadatas)  # doctest: +SKIP
>>> index.search("how do wings behave in a slipstream?", k=10)  # doctest: +SKIP

Needs the ``qdrant`` extra (``qdrant-client``); importing this module without it raises
:class:`~colbert_plugins.errors.MissingDependencyError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import numpy as np

from ..checks import require
from ..errors import InvalidArgumentError, InvalidArgumentTypeError
from ..model import ColBERT, FloatArray
from ..pooling import Muvera, mean_pool
from .base import (
    ColBERTIndex,
    IndexedDocument,
    IndexMismatchError,
    MetadataFilter,
    SearchHit,
    check_filter,
    check_ids,
    check_json_metadata,
    check_k,
    check_known,
)

require("qdrant_client", extra="qdrant", feature=__name__)

from qdrant_client import QdrantClient, models  # noqa: E402

__all__ = [
    "COLBERT_VECTOR",
    "DEFAULT_PREFETCH_LIMIT",
    "FIXED_VECTOR",
    "POINT_ID_NAMESPACE",
    "QdrantIndex",
    "point_id",
    "qdrant_filter",
]

#: Name of the multivector (token vectors, MAX_SIM, no HNSW).
COLBERT_VECTOR = "colbert"
#: Name of the fixed-length vector (MUVERA or mean, HNSW).
FIXED_VECTOR = "fixed"
#: Candidates fetched by the fixed vector before the exact MaxSim rerank. Measured on Cranfield
#: (1,400 documents, 225 queries) with the untrained proxy model, recall@10 against the exact
#: index: MUVERA 0.71 / 0.84 / 0.93 / 0.98 and mean 0.82 / 0.91 / 0.97 / 0.99 with 50 / 100 /
#: 200 / 400 candidates (benchmarks/retrieval_eval.py). Tune it on your own data and model.
DEFAULT_PREFETCH_LIMIT = 400
#: UUID namespace of the point ids: ``uuid5(POINT_ID_NAMESPACE, doc_id)``.
POINT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/colbert-plugins/")

_PAGE = 256  # points per scroll / retrieve page
_FIXED_KINDS = ("muvera", "mean")


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of a document id.

    >>> point_id("doc-1") == point_id("doc-1") != point_id("doc-2")
    True
    """
    return str(uuid.uuid5(POINT_ID_NAMESPACE, doc_id))


class QdrantIndex(ColBERTIndex):
    """ColBERT documents in one Qdrant collection; search = fixed-vector prefetch + MaxSim.

    Args:
        model: the :class:`~colbert_plugins.ColBERT` model that encodes documents and queries.
        collection: the collection name; created if missing. An existing collection must have
            the two named vectors with this model's sizes, and points written by this model
            (checked on one point), or :class:`~colbert_plugins.index.IndexMismatchError`.
        location: ``":memory:"`` (the default when neither ``path``, ``url`` nor ``client`` is
            given) for an in-process collection that lives as long as this object.
        path: a directory for qdrant-client's persistent local mode (one process at a time).
        url: a Qdrant server (e.g. ``"http://localhost:6333"``); with ``api_key``.
        api_key: the server's API key.
        client: an existing ``QdrantClient`` to use instead (not closed by :meth:`close`).
        fixed: the fixed-length vector: ``"muvera"`` (default; its dot product approximates
            MaxSim) or ``"mean"`` (L2-normalized mean of the token vectors, ``dim`` floats).
        muvera: the :class:`~colbert_plugins.pooling.Muvera` encoder (default: its defaults
            for the model's ``dim``); must be the same for every writer and reader.
        prefetch_limit: candidates taken from the fixed vector's HNSW index before the exact
            MaxSim (at least ``k``). ``None`` skips the prefetch: exact MaxSim over every point.
        upsert_batch: points per upsert request.
        client_kwargs: more keyword arguments for ``QdrantClient`` (``timeout``,
            ``prefer_grpc``, ...).

    Ids are strings; the point id is ``uuid5`` of the id (:func:`point_id`), so re-adding an id
    replaces its point. Scores are MaxSim sums (divided by the number of query vectors when
    the model's ``normalize_scores`` is set), as :meth:`ColBERT.score` gives. ``ids()`` are in
    point-id order, not insertion order.
    """

    def __init__(
        self,
        model: ColBERT,
        collection: str = "colbert",
        *,
        location: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: QdrantClient | None = None,
        fixed: Literal["muvera", "mean"] = "muvera",
        muvera: Muvera | None = None,
        prefetch_limit: int | None = DEFAULT_PREFETCH_LIMIT,
        upsert_batch: int = 64,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, ColBERT):
            raise InvalidArgumentTypeError(
                f"model must be a ColBERT instance, got {type(model).__name__}"
            )
        if not isinstance(collection, str) or not collection:
            raise InvalidArgumentError("collection must be a non-empty string")
        if fixed not in _FIXED_KINDS:
            raise InvalidArgumentError(f'fixed must be "muvera" or "mean", got {fixed!r}')
        if muvera is not None and not isinstance(muvera, Muvera):
            raise InvalidArgumentTypeError(
                f"muvera must be a Muvera instance, got {type(muvera).__name__}"
            )
        if muvera is not None and fixed != "muvera":
            raise InvalidArgumentError('muvera= only applies with fixed="muvera"')
        self.prefetch_limit = None if prefetch_limit is None else check_k(prefetch_limit)
        self.upsert_batch = check_k(upsert_batch, "upsert_batch")
        self.model = model
        self.collection = collection
        self.fixed = fixed
        dim = model.dim
        if fixed == "muvera":
            self.muvera: Muvera | None = muvera or Muvera(dim)
            if self.muvera.dim != dim:
                raise InvalidArgumentError(
                    f"muvera was built for {self.muvera.dim}-dim vectors, the model has {dim}"
                )
            self.fixed_dim = self.muvera.dimension
            self._fixed_spec = (
                f"muvera(k_sim={self.muvera.k_sim},d_proj={self.muvera.d_proj},"
                f"r_reps={self.muvera.r_reps},seed={self.muvera.seed},"
                f"fill_empty={self.muvera.fill_empty})"
            )
        else:
            self.muvera = None
            self.fixed_dim = dim
            self._fixed_spec = "mean"

        targets = {"location": location, "path": path, "url": url, "client": client}
        given = [name for name, value in targets.items() if value is not None]
        if len(given) > 1:
            raise InvalidArgumentError(
                f"give at most one of location, path, url and client (got {', '.join(given)})"
            )
        self._owns_client = client is None
        if client is not None:
            if api_key is not None or client_kwargs:
                raise InvalidArgumentError("api_key and client_kwargs do not apply to client=")
            self.client = client
        else:
            kwargs = dict(client_kwargs or {})
            if url is not None:
                self.client = QdrantClient(url=url, api_key=api_key, **kwargs)
            elif path is not None:
                self.client = QdrantClient(path=os.fspath(path), **kwargs)
            else:
                self.client = QdrantClient(location=location or ":memory:", **kwargs)
        # qdrant-client's local mode is not thread-safe: serialize calls to it.
        self._local = url is None and (client is None or _is_local(client))
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self._local else contextlib.nullcontext()
        )
        self._open_collection()

    def __repr__(self) -> str:
        return (
            f"QdrantIndex(model={self.model.name!r}, collection={self.collection!r}, "
            f"fixed={self._fixed_spec!r}, prefetch_limit={self.prefetch_limit})"
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the client (unless it was given); a local ``path`` is then free to reopen."""
        if self._owns_client:
            with self._lock:
                self.client.close()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_collection(self) -> None:
        with self._lock:
            if not self.client.collection_exists(self.collection):
                self.client.create_collection(
                    self.collection,
                    vectors_config={
                        COLBERT_VECTOR: models.VectorParams(
                            size=self.model.dim,
                            distance=models.Distance.DOT,  # unit vectors: DOT == COSINE
                            multivector_config=models.MultiVectorConfig(
                                comparator=models.MultiVectorComparator.MAX_SIM
                            ),
                            hnsw_config=models.HnswConfigDiff(m=0),  # rerank only
                        ),
                        FIXED_VECTOR: models.VectorParams(
                            size=self.fixed_dim, distance=models.Distance.DOT
                        ),
                    },
                )
                return
            info = self.client.get_collection(self.collection)
            sample, _ = self.client.scroll(
                self.collection, limit=1, with_payload=["model_key", "fixed"], with_vectors=False
            )
        vectors = info.config.params.vectors
        problems = []
        if not isinstance(vectors, dict) or not {COLBERT_VECTOR, FIXED_VECTOR} <= set(vectors):
            problems.append(f"it lacks the named vectors {COLBERT_VECTOR!r} and {FIXED_VECTOR!r}")
        else:
            colbert, fixed = vectors[COLBERT_VECTOR], vectors[FIXED_VECTOR]
            if colbert.size != self.model.dim or colbert.multivector_config is None:
                problems.append(
                    f"its {COLBERT_VECTOR!r} vector is size {colbert.size} "
                    f"{'multivector' if colbert.multivector_config else 'single vector'}, "
                    f"expected a {self.model.dim}-dim MAX_SIM multivector"
                )
            if fixed.size != self.fixed_dim:
                problems.append(
                    f"its {FIXED_VECTOR!r} vector has size {fixed.size}, expected "
                    f"{self.fixed_dim} for {self._fixed_spec}"
                )
        if sample and sample[0].payload:
            payload = sample[0].payload
            if payload.get("model_key") not in (None, self.model.model_key):
                problems.append(
                    f"its points were encoded by another model than {self.model.name!r}"
                )
            if payload.get("fixed") not in (None, self._fixed_spec):
                problems.append(
                    f"its fixed vectors are {payload.get('fixed')}, not {self._fixed_spec}"
                )
        if problems:
            raise IndexMismatchError(
                f"the Qdrant collection {self.collection!r} does not match this model and "
                "settings: " + "; ".join(problems)
            )

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self.client.count(self.collection, exact=True).count)

    def ids(self) -> list[str]:
        """The ids of all documents (in Qdrant's point-id order)."""
        return [str(p.payload["id"]) for p in self._scroll(["id"]) if p.payload]

    def get(self, ids: Iterable[str], *, missing_ok: bool = False) -> list[IndexedDocument]:
        wanted = check_ids(ids)
        found = self._retrieve(wanted, with_payload=True)
        check_known(wanted, found, missing_ok=missing_ok)
        documents = []
        for doc_id in wanted:
            payload = found.get(doc_id)
            if payload is not None:
                documents.append(
                    IndexedDocument(
                        doc_id, str(payload["text"]), dict(payload.get("metadata") or {})
                    )
                )
        return documents

    def _search_vectors(
        self, query: FloatArray, k: int, checked: dict[str, Any] | None
    ) -> list[SearchHit]:
        payload_filter = None
        if checked is not None:
            if any(isinstance(v, tuple) and not v for v in checked.values()):
                return []  # membership in an empty collection: nothing matches
            payload_filter = qdrant_filter(checked)
        prefetch = None
        if self.prefetch_limit is not None:
            prefetch = models.Prefetch(
                query=self._fixed_query(query).tolist(),
                using=FIXED_VECTOR,
                limit=max(self.prefetch_limit, k),
            )
        with self._lock:
            response = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=query.tolist(),
                using=COLBERT_VECTOR,
                # Qdrant propagates the query's filter to its prefetches: the candidates are
                # taken among matching documents only, so k of them come back when k match.
                query_filter=payload_filter,
                limit=k,
                with_payload=True,
                with_vectors=False,
            )
        scale = 1.0 / max(1, query.shape[0]) if self.model.config.normalize_scores else 1.0
        hits = []
        for point in response.points:
            payload = point.payload or {}
            hits.append(
                SearchHit(
                    id=str(payload["id"]),
                    score=float(np.float32(point.score * scale)),
                    text=str(payload["text"]),
                    metadata=dict(payload.get("metadata") or {}),
                )
            )
        return hits

    def fixed_vectors(self, vectors: Iterable[FloatArray], *, query: bool = False) -> FloatArray:
        """The fixed-length vectors (``[n, fixed_dim]``) this index stores or queries with."""
        encode = self._fixed_query if query else self._fixed_document
        rows = [encode(np.asarray(v, dtype=np.float32)) for v in vectors]
        if not rows:
            return np.zeros((0, self.fixed_dim), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    # -- writing ---------------------------------------------------------------------------------

    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        for doc_id, metadata in zip(ids, metadatas, strict=True):
            check_json_metadata(doc_id, metadata)
        points = []
        for doc_id, text, metadata, tokens in zip(ids, texts, metadatas, vectors, strict=True):
            if len(tokens) == 0:
                # Qdrant refuses empty multivectors; a zero vector never wins a max.
                tokens = np.zeros((1, self.model.dim), dtype=np.float32)
            points.append(
                models.PointStruct(
                    id=point_id(doc_id),
                    vector={
                        COLBERT_VECTOR: tokens.tolist(),
                        FIXED_VECTOR: self._fixed_document(tokens).tolist(),
                    },
                    payload={
                        "id": doc_id,
                        "text": text,
                        "metadata": metadata,
                        "model_key": self.model.model_key,
                        "fixed": self._fixed_spec,
                    },
                )
            )
        for start in range(0, len(points), self.upsert_batch):
            with self._lock:
                self.client.upsert(
                    self.collection, points=points[start : start + self.upsert_batch], wait=True
                )

    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        wanted = list(dict.fromkeys(check_ids(ids)))
        if not wanted:
            return
        if not missing_ok:
            found = self._retrieve(wanted, with_payload=False)
            check_known(wanted, found)
        with self._lock:
            self.client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=[point_id(i) for i in wanted]),
                wait=True,
            )

    def clear(self) -> None:
        """Remove every document (the collection and its settings stay)."""
        with self._lock:
            self.client.delete(
                self.collection,
                points_selector=models.FilterSelector(filter=models.Filter()),
                wait=True,
            )

    # -- internals -------------------------------------------------------------------------------

    def _fixed_document(self, tokens: FloatArray) -> FloatArray:
        if self.muvera is not None:
            return self.muvera.encode_document(tokens)
        return mean_pool(tokens)

    def _fixed_query(self, tokens: FloatArray) -> FloatArray:
        if self.muvera is not None:
            return self.muvera.encode_query(tokens)
        return mean_pool(tokens)

    def _retrieve(self, ids: list[str], *, with_payload: bool) -> dict[str, dict[str, Any]]:
        """Payloads of the points of these ids that exist, by id (empty dicts without
        payload)."""
        by_point = {point_id(i): i for i in ids}
        found: dict[str, dict[str, Any]] = {}
        points = list(by_point)
        for start in range(0, len(points), _PAGE):
            with self._lock:
                records = self.client.retrieve(
                    self.collection,
                    ids=points[start : start + _PAGE],
                    with_payload=with_payload,
                    with_vectors=False,
                )
            for record in records:
                doc_id = by_point.get(str(record.id))
                if doc_id is not None:
                    found[doc_id] = dict(record.payload or {})
        return found

    def _scroll(self, payload: list[str]) -> Iterator[Any]:
        offset = None
        while True:
            with self._lock:
                records, offset = self.client.scroll(
                    self.collection,
                    limit=_PAGE,
                    offset=offset,
                    with_payload=payload,
                    with_vectors=False,
                )
            yield from records
            if offset is None:
                return


def qdrant_filter(filter: MetadataFilter) -> models.Filter:
    """A metadata filter (:func:`~colbert_plugins.index.check_filter`) as a Qdrant filter on
    the payload's ``metadata`` object, with the semantics of
    :func:`~colbert_plugins.index.matches_filter`.

    Strings and booleans become ``MatchValue`` (several of them ``MatchAny``); numbers become
    a ``Range`` with equal bounds, so ``1`` matches a stored ``1.0`` as JSON says (Qdrant's
    exact match keeps integers and floats apart, and never matches floats); ``None`` becomes
    ``IsNull``. A membership mixing these kinds is a nested ``should``. Fields whose name is
    not plain ``[A-Za-z0-9_-]`` are quoted in the JSON path (``metadata."a.b"``); a name
    containing a double quote cannot be expressed and is refused.

    >>> qdrant_filter({"source": "a.pdf"}).must[0].key
    'metadata.source'
    """
    checked = check_filter(filter)
    if not checked:
        return models.Filter()
    must: list[Any] = []
    for key, wanted in checked.items():
        path = _payload_path(key)
        options = wanted if isinstance(wanted, tuple) else (wanted,)
        conditions = _value_conditions(path, options)
        must.append(conditions[0] if len(conditions) == 1 else models.Filter(should=conditions))
    return models.Filter(must=must)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
#: Integers beyond this are matched exactly (``MatchValue``), not through a float ``Range``.
_FLOAT_EXACT = 2**53


def _payload_path(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"metadata.{key}"
    if '"' in key:
        raise InvalidArgumentError(
            f"filter key {key!r} contains a double quote, which a Qdrant payload path cannot "
            "express; rename the metadata field"
        )
    return f'metadata."{key}"'


def _value_conditions(path: str, options: tuple[Any, ...]) -> list[Any]:
    """Conditions of which at least one holds exactly when the field equals one of
    ``options`` (JSON equality)."""
    keywords: list[Any] = []  # str, bool and huge ints: exact match
    conditions: list[Any] = []
    for value in options:
        if value is None:
            conditions.append(models.IsNullCondition(is_null=models.PayloadField(key=path)))
        elif isinstance(value, int | float) and not (
            isinstance(value, bool) or (isinstance(value, int) and abs(value) > _FLOAT_EXACT)
        ):
            conditions.append(
                models.FieldCondition(key=path, range=models.Range(gte=value, lte=value))
            )
        else:
            keywords.append(value)
    strings = [v for v in keywords if isinstance(v, str)]
    others = [v for v in keywords if not isinstance(v, str)]  # bools and huge ints
    if len(strings) == 1:
        conditions.append(
            models.FieldCondition(key=path, match=models.MatchValue(value=strings[0]))
        )
    elif strings:
        conditions.append(models.FieldCondition(key=path, match=models.MatchAny(any=strings)))
    conditions.extend(
        models.FieldCondition(key=path, match=models.MatchValue(value=v)) for v in others
    )
    return conditions


def _is_local(client: QdrantClient) -> bool:
    """Whether a client runs qdrant-client's in-process local mode."""
    inner = getattr(client, "_client", None)
    return type(inner).__name__ == "QdrantLocal"
