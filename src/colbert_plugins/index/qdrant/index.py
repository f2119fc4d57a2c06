"""QdrantIndex: ColBERT documents in Qdrant (Qdrant Edge in process, or a Qdrant server)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...checks import check_query
from ...errors import InvalidArgumentError, InvalidArgumentTypeError
from ...model import ColBERT, FloatArray
from ...pooling import Muvera
from ..base import (
    ColBERTIndex,
    IndexedDocument,
    IndexMismatchError,
    SearchHit,
    check_filter,
    check_ids,
    check_index_model,
    check_json_metadata,
    check_k,
    check_known,
    check_queries,
)
from .bm25 import Bm25Encoder
from .layout import (
    BM25_VECTOR,
    COLBERT_VECTOR,
    FIXED_VECTOR,
    Layout,
    Nearest,
    Rrf,
    Sparse,
    Stage,
    conditions,
    index_kinds,
    point_id,
)
from .store import QdrantStore, ScoredPayload

__all__ = [
    "DEFAULT_HYBRID_LIMIT",
    "DEFAULT_PREFETCH_LIMIT",
    "RETRIEVAL_MODES",
    "QdrantIndex",
    "RetrievalMode",
]

logger = logging.getLogger(__name__)

RetrievalMode = Literal["colbert", "bm25", "hybrid"]
#: The retrieval modes of :meth:`QdrantIndex.search`.
RETRIEVAL_MODES: tuple[str, ...] = ("colbert", "bm25", "hybrid")
#: Candidates taken by the fixed vector's HNSW index before the exact MaxSim rerank. With the
#: trained test model, mean vectors, recall@10 against exact MaxSim: 0.980 / 0.988 / 0.992 with
#: 100 / 200 / 400 at 8,041 passages, 0.863 / 0.900 / 0.955 at 100,000
#: (``benchmarks/qdrant_scale.py``): 400 is the smallest that keeps 0.95 at both sizes.
DEFAULT_PREFETCH_LIMIT = 400
#: Documents each list (BM25, ColBERT) contributes to a hybrid search's fusion.
DEFAULT_HYBRID_LIMIT = 100
_RRF_K = 60
_FIXED_KINDS = ("muvera", "mean")
_QUANTIZATIONS = (None, "int8", "binary")


class QdrantIndex(ColBERTIndex):
    """ColBERT documents in one Qdrant collection: candidates by HNSW over one fixed-length
    vector per document, exact MaxSim over their token vectors; BM25 and hybrid (BM25 and
    ColBERT fused by reciprocal rank) in the same collection.

    Where the collection lives (give at most one):

    - ``location=":memory:"`` (the default): Qdrant Edge, the Qdrant engine in process
      (``qdrant-edge-py``), on a temporary directory removed by :meth:`close`;
    - ``path=DIR``: Qdrant Edge on ``DIR/<collection>``, kept: reopening it gives every
      acknowledged write back, even after the process was killed. One
      :class:`QdrantIndex` at a time per directory (another one gets
      :class:`~colbert_plugins.index.IndexLockedError`);
    - ``url=`` (with ``api_key=``) or ``client=`` (a ``QdrantClient``, not closed by
      :meth:`close`): a collection on a Qdrant server, through ``qdrant-client``.

    Every engine holds the same points (:mod:`colbert_plugins.index.qdrant.layout`): what is
    built in process is what a server collection holds.

    Args:
        model: the :class:`~colbert_plugins.ColBERT` model that encodes documents and queries.
        collection: the collection's name (Qdrant Edge: the subdirectory of ``path``).
        fixed: the first-stage vector: ``"mean"`` (the L2-normalized mean of the token
            vectors) or ``"muvera"``; default: the collection's, ``"mean"`` for a new one.
        muvera: the :class:`~colbert_plugins.pooling.Muvera` encoder, with ``fixed="muvera"``.
        prefetch_limit: candidates taken by the fixed vector before the exact MaxSim (at
            least ``k``). ``None``: exact MaxSim over every document.
        bm25: store a BM25 vector per document (needed by the ``"bm25"`` and ``"hybrid"``
            modes); default: the collection's, on for a new one.
        retrieval_mode: what :meth:`search` runs when a call names no mode: ``"colbert"``,
            ``"bm25"`` or ``"hybrid"`` (see :meth:`search`). Default: ``"hybrid"`` when the
            collection has BM25 vectors (it measured best on average over Cranfield, SciFact
            and CISI with the trained test model, see the README), else ``"colbert"``.
        hybrid_limit: documents each list contributes to a hybrid fusion.
        quantization: ``None``, ``"int8"`` or ``"binary"``: a quantized copy of the token
            vectors in memory (Qdrant Edge; the final MaxSim still reads the originals).
        on_disk: Qdrant Edge keeps the token vectors on disk and reads only the candidates'
            (``False``: in the page cache as they are read).
        search_threads: Qdrant Edge's search threads (``None``: one per CPU).
        check_model_key: refuse a collection written by another model (same vector size).
        upsert_batch: points per write.
        client_kwargs: more keyword arguments for ``QdrantClient`` with ``url=``.

    Ids are strings; the point id is ``uuid5`` of the id (:func:`point_id`), so adding an id
    again replaces its point. ``ids()`` are in point-id order, not insertion order.
    """

    retrieval_modes = RETRIEVAL_MODES

    def __init__(
        self,
        model: ColBERT,
        collection: str = "colbert",
        *,
        location: str | None = None,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        fixed: Literal["muvera", "mean"] | None = None,
        muvera: Muvera | None = None,
        prefetch_limit: int | None = DEFAULT_PREFETCH_LIMIT,
        bm25: bool | None = None,
        retrieval_mode: RetrievalMode | None = None,
        hybrid_limit: int = DEFAULT_HYBRID_LIMIT,
        quantization: Literal["int8", "binary"] | None = None,
        on_disk: bool = True,
        search_threads: int | None = 1,
        check_model_key: bool = True,
        upsert_batch: int = 64,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, ColBERT):
            raise InvalidArgumentTypeError(
                f"model must be a ColBERT instance, got {type(model).__name__}"
            )
        if not isinstance(collection, str) or not collection or "/" in collection:
            raise InvalidArgumentError("collection must be a non-empty name without '/'")
        if fixed is not None and fixed not in _FIXED_KINDS:
            raise InvalidArgumentError(f'fixed must be "mean" or "muvera", got {fixed!r}')
        if muvera is not None and not isinstance(muvera, Muvera):
            raise InvalidArgumentTypeError(
                f"muvera must be a Muvera instance, got {type(muvera).__name__}"
            )
        if muvera is not None and fixed not in (None, "muvera"):
            raise InvalidArgumentError('muvera= only applies with fixed="muvera"')
        if bm25 is not None and not isinstance(bm25, bool):
            raise InvalidArgumentTypeError(f"bm25 must be True or False, got {bm25!r}")
        ColBERTIndex.check_retrieval_mode(self, retrieval_mode)  # before anything opens
        if quantization not in _QUANTIZATIONS:
            raise InvalidArgumentError(
                f'quantization must be None, "int8" or "binary", got {quantization!r}'
            )
        self.prefetch_limit = (
            None if prefetch_limit is None else check_k(prefetch_limit, "prefetch_limit")
        )
        self.hybrid_limit = check_k(hybrid_limit, "hybrid_limit")
        self.upsert_batch = check_k(upsert_batch, "upsert_batch")
        self.model = model
        self.collection = collection
        targets = {"location": location, "path": path, "url": url, "client": client}
        given = [name for name, value in targets.items() if value is not None]
        if len(given) > 1:
            raise InvalidArgumentError(
                f"give at most one of location, path, url and client (got {', '.join(given)})"
            )
        if location not in (None, ":memory:"):
            raise InvalidArgumentError(
                f'location must be ":memory:" (Qdrant Edge in a temporary directory), got '
                f"{location!r}: give a server as url=, a directory as path="
            )
        if (api_key is not None or client_kwargs) and url is None:
            raise InvalidArgumentError("api_key and client_kwargs only apply with url=")
        requested_fixed = "muvera" if muvera is not None else fixed
        self._bm25: Bm25Encoder | None = None
        self.edge = url is None and client is None
        if self.edge:
            self._store, self.layout, sample = self._open_edge(
                None if path is None else Path(path) / collection,
                requested_fixed,
                muvera,
                bm25,
                quantization=quantization,
                on_disk=on_disk,
                search_threads=search_threads,
                check_model_key=check_model_key,
            )
        else:
            if quantization is not None:
                raise InvalidArgumentError(
                    "quantization= applies to Qdrant Edge; configure a server collection's "
                    "quantization on the server"
                )
            self._store, self.layout, sample = self._open_server(
                url, api_key, client, client_kwargs, requested_fixed, muvera, bm25, check_model_key
            )
        self.retrieval_mode: str = "colbert"
        try:
            if self.layout.bm25:
                avg_len = (sample or {}).get("bm25_avg_len")
                if isinstance(avg_len, int | float) and avg_len > 0:
                    self._bm25 = Bm25Encoder(avg_len)
            if retrieval_mode is None:
                retrieval_mode = "hybrid" if self.layout.bm25 else "colbert"
            self.retrieval_mode = self.check_retrieval_mode(retrieval_mode)
        except BaseException:
            self._store.close()  # a refused index releases its directory at once
            raise

    def __repr__(self) -> str:
        where = "Qdrant Edge" if self.edge else "Qdrant server"
        return (
            f"QdrantIndex(model={self.model.name!r}, collection={self.collection!r}, {where}, "
            f"fixed={self.layout.fixed_spec!r}, bm25={self.layout.bm25}, "
            f"prefetch_limit={self.prefetch_limit}, retrieval_mode={self.retrieval_mode!r})"
        )

    # -- opening ---------------------------------------------------------------------------------

    def _open_edge(
        self,
        root: Path | None,
        fixed: str | None,
        muvera: Muvera | None,
        bm25: bool | None,
        *,
        quantization: str | None,
        on_disk: bool,
        search_threads: int | None,
        check_model_key: bool,
    ) -> tuple[QdrantStore, Layout, dict[str, Any] | None]:
        """The store, its layout, and one point's payload (``None``: a new collection)."""
        from .edge import EdgeStore

        store = EdgeStore(
            root, on_disk=on_disk, quantization=quantization, search_threads=search_threads
        )
        try:
            manifest = store.manifest()
            if manifest is None:
                layout = self._new_layout(fixed, muvera, bm25)
                store.create(layout, self._identity())
                return store, layout, None
            check_index_model(store.root, manifest, self.model, check_model_key)
            layout = _manifest_layout(manifest, self.model)
            self._check_requested(layout, fixed, muvera, bm25, str(store.root))
            store.open(layout, manifest)
            return store, layout, store.sample_payload()
        except BaseException:
            store.close()
            raise

    def _open_server(
        self,
        url: str | None,
        api_key: str | None,
        client: Any,
        client_kwargs: Mapping[str, Any] | None,
        fixed: str | None,
        muvera: Muvera | None,
        bm25: bool | None,
        check_model_key: bool,
    ) -> tuple[QdrantStore, Layout, dict[str, Any] | None]:
        """As :meth:`_open_edge`, on a server."""
        from .client import ClientStore, QdrantClient  # names the extra when it is missing

        if client is not None and not isinstance(client, QdrantClient):
            raise InvalidArgumentTypeError(
                f"client must be a qdrant_client.QdrantClient, got {type(client).__name__}"
            )
        owns = client is None
        if client is None:
            client = QdrantClient(url=url, api_key=api_key, **dict(client_kwargs or {}))
        store = ClientStore(client, self.collection, owns_client=owns)
        found = store.describe()
        if found is None:
            layout = self._new_layout(fixed, muvera, bm25)
            store.create(layout)
            return store, layout, None
        layout = self._server_layout(found, fixed, muvera, bm25, check_model_key)
        return store, layout, found["payload"]

    def _new_layout(self, fixed: str | None, muvera: Muvera | None, bm25: bool | None) -> Layout:
        return Layout(
            dim=self.model.dim,
            model_key=self.model.model_key,
            fixed="muvera" if fixed == "muvera" else "mean",
            muvera=muvera,
            bm25=True if bm25 is None else bm25,
        )

    def _identity(self) -> dict[str, Any]:
        return {
            "model_name": self.model.name,
            "model_key": self.model.model_key,
            "model_details": self.model.key_details(),
        }

    def _check_requested(
        self,
        layout: Layout,
        fixed: str | None,
        muvera: Muvera | None,
        bm25: bool | None,
        where: str,
    ) -> None:
        problems = []
        if fixed is not None and fixed != layout.fixed:
            problems.append(f"its fixed vectors are {layout.fixed_spec}, not {fixed}")
        elif muvera is not None and Layout(layout.dim, "", "muvera", muvera).fixed_spec != (
            layout.fixed_spec
        ):
            problems.append(f"its fixed vectors are {layout.fixed_spec}, not this muvera")
        if bm25 is not None and bm25 != layout.bm25:
            problems.append("it has no BM25 vectors" if bm25 else "it has BM25 vectors")
        if problems:
            raise IndexMismatchError(
                f"the Qdrant collection at {where} does not match the settings given: "
                + "; ".join(problems)
                + " (open it without those settings to use its own)"
            )

    def _server_layout(
        self,
        found: dict[str, Any],
        fixed: str | None,
        muvera: Muvera | None,
        bm25: bool | None,
        check_model_key: bool,
    ) -> Layout:
        vectors = found["vectors"]
        payload = found["payload"] or {}
        where = f"collection {self.collection!r}"
        if not {COLBERT_VECTOR, FIXED_VECTOR} <= set(vectors):
            raise IndexMismatchError(
                f"the Qdrant {where} lacks the named vectors {COLBERT_VECTOR!r} and "
                f"{FIXED_VECTOR!r}: it was not written by colbert-plugins"
            )
        colbert = vectors[COLBERT_VECTOR]
        if colbert.size != self.model.dim or colbert.multivector_config is None:
            raise IndexMismatchError(
                f"the Qdrant {where}'s {COLBERT_VECTOR!r} vector is size {colbert.size} "
                f"{'multivector' if colbert.multivector_config else 'single vector'}, "
                f"expected a {self.model.dim}-dim MAX_SIM multivector for {self.model.name!r}"
            )
        if check_model_key and payload.get("model_key") not in (None, self.model.model_key):
            raise IndexMismatchError(
                f"the Qdrant {where}'s points were encoded by another model than "
                f"{self.model.name!r} (pass check_model_key=False if they produce identical "
                "vectors)"
            )
        spec = payload.get("fixed")
        if spec is None:  # an empty collection: its fixed vector's size says which kind
            spec = "mean" if vectors[FIXED_VECTOR].size == self.model.dim else None
            muvera = muvera or (Muvera(self.model.dim) if spec is None else None)
        stored = _muvera_from_spec(spec, self.model.dim) if spec is not None else muvera
        layout = Layout(
            dim=self.model.dim,
            model_key=self.model.model_key,
            fixed="mean" if stored is None else "muvera",
            muvera=stored,
            bm25=bool(found["bm25"]),
        )
        if vectors[FIXED_VECTOR].size != layout.fixed_dim:
            raise IndexMismatchError(
                f"the Qdrant {where}'s fixed vectors have size {vectors[FIXED_VECTOR].size}, "
                f"not {layout.fixed_dim} ({layout.fixed_spec})"
            )
        self._check_requested(layout, fixed, muvera, bm25, where)
        return layout

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the collection: Qdrant Edge flushes and releases its directory (a temporary
        one is removed); a client given as ``client=`` stays open."""
        self._store.close()

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def disk_bytes(self) -> int:
        """Bytes the collection takes on this machine's disk (Qdrant Edge; 0 on a server)."""
        return self._store.disk_bytes()

    def payload_indexes(self) -> list[str]:
        """The payload paths the engine indexes: ``id``, and each metadata field a search
        has filtered on (created by that search: keyword for strings and booleans, float
        for numbers)."""
        return self._store.payload_indexes()

    def collection_config(self) -> dict[str, Any]:
        """The server-side configuration of a collection that holds these points (Qdrant's
        REST ``PUT /collections/{name}`` body)."""
        return self.layout.describe()

    @property
    def bm25_avg_len(self) -> float | None:
        """BM25's mean document length in this collection (set by its first documents;
        ``None`` before them, or without BM25 vectors)."""
        return None if self._bm25 is None else self._bm25.avg_len

    @property
    def fixed(self) -> str:
        """The first-stage vector's kind: ``"mean"`` or ``"muvera"``."""
        return self.layout.fixed

    @property
    def fixed_dim(self) -> int:
        """Floats in the first-stage vector."""
        return self.layout.fixed_dim

    @property
    def muvera(self) -> Muvera | None:
        """The MUVERA encoder of the first-stage vector (``None`` for ``"mean"``)."""
        return self.layout.muvera

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._store.count()

    def ids(self) -> list[str]:
        """The ids of all documents (in Qdrant's point-id order)."""
        return [str(p["id"]) for p in self._store.scroll(["id"]) if "id" in p]

    def get(self, ids: Iterable[str], *, missing_ok: bool = False) -> list[IndexedDocument]:
        wanted = check_ids(ids)
        found = self._retrieve(wanted, payload=True)
        check_known(wanted, found, missing_ok=missing_ok)
        return [
            IndexedDocument(doc_id, str(p["text"]), dict(p.get("metadata") or {}))
            for doc_id in wanted
            if (p := found.get(doc_id)) is not None
        ]

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        filter: Mapping[str, Any] | None = None,
        retrieval_mode: str | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, best first.

        ``retrieval_mode`` (default: the index's ``retrieval_mode``):

        - ``"colbert"``: ``prefetch_limit`` candidates by the fixed vector, ranked by exact
          MaxSim; scores are MaxSim sums (divided by the query's vector count when the model
          normalizes scores), as :meth:`ColBERT.score` gives;
        - ``"bm25"``: BM25 alone (scores are BM25 scores);
        - ``"hybrid"``: the best ``hybrid_limit`` by BM25 and the best ``hybrid_limit`` by
          ColBERT (as above), fused by reciprocal rank (``1 / (60 + rank)`` summed over both
          lists, ranks from 0: the scores; equal scores in id order).

        ``filter`` (see :meth:`ColBERTIndex.search`) applies to every stage, before each cut.
        """
        return self.search_batch(
            [check_query(query)], k, filter=filter, retrieval_mode=retrieval_mode
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        filter: Mapping[str, Any] | None = None,
        retrieval_mode: str | None = None,
    ) -> list[list[SearchHit]]:
        """:meth:`search` for several queries, sent to the engine as one batch."""
        mode = self.check_retrieval_mode(retrieval_mode)
        if mode == "colbert":
            return super().search_batch(queries, k, filter=filter, retrieval_mode="colbert")
        texts = check_queries(queries)
        k = check_k(k)
        checked = check_filter(filter)
        if not texts:
            return []
        if mode == "bm25":
            stages = [self._bm25_stage(text, k) for text in texts]
        else:
            vectors = self.model.encode_queries(texts)
            stages = [self._hybrid_stage(t, v, k) for t, v in zip(texts, vectors, strict=True)]
            # Reciprocal ranks tie often (rank r in one list only, in either list): the engine
            # returns the whole fused list and ties are broken by id, so that the same query
            # gives the same hits every time.
            fused = self._run(stages, checked, scale=[1.0] * len(stages))
            return [sorted(hits, key=lambda h: (-h.score, h.id))[:k] for hits in fused]
        return self._run(stages, checked, scale=[1.0] * len(stages))

    def check_retrieval_mode(self, mode: object) -> str:
        """``mode`` (``None``: the index's ``retrieval_mode``) if this collection can run
        it, else an :class:`~colbert_plugins.errors.InvalidArgumentError` saying why."""
        mode = super().check_retrieval_mode(self.retrieval_mode if mode is None else mode)
        if mode != "colbert" and not self.layout.bm25:
            raise InvalidArgumentError(
                f"retrieval_mode {mode!r} needs BM25 vectors, and this collection was created "
                'without them (bm25=False): use retrieval_mode="colbert", or build a new '
                "collection with bm25=True"
            )
        return mode

    def _search_vectors(
        self, query: FloatArray, k: int, filter: dict[str, Any] | None
    ) -> list[SearchHit]:
        return self._search_vectors_batch([query], k, filter)[0]

    def _search_vectors_batch(
        self, queries: list[FloatArray], k: int, filter: dict[str, Any] | None
    ) -> list[list[SearchHit]]:
        stages = [self._colbert_stage(q, k) for q in queries]
        normalize = self.model.config.normalize_scores
        scale = [1.0 / max(1, q.shape[0]) if normalize else 1.0 for q in queries]
        return self._run(stages, filter, scale=scale)

    def fixed_vectors(self, vectors: Iterable[FloatArray], *, query: bool = False) -> FloatArray:
        """The fixed-length vectors (``[n, fixed_dim]``) this index stores or queries with."""
        encode = self.layout.fixed_query if query else self.layout.fixed_document
        rows = [encode(np.asarray(v, dtype=np.float32)) for v in vectors]
        if not rows:
            return np.zeros((0, self.layout.fixed_dim), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def _colbert_stage(self, query: FloatArray, k: int) -> Stage:
        if self.prefetch_limit is None:
            return Stage(Nearest(COLBERT_VECTOR, query), k)
        limit = max(self.prefetch_limit, k)
        candidates = Stage(
            Nearest(FIXED_VECTOR, self.layout.fixed_query(query)), limit, hnsw_ef=max(limit, 128)
        )
        return Stage(Nearest(COLBERT_VECTOR, query), k, prefetch=(candidates,))

    def _bm25_stage(self, text: str, k: int) -> Stage:
        return Stage(Nearest(BM25_VECTOR, self._bm25_query(text)), k)

    def _hybrid_stage(self, text: str, vectors: FloatArray, k: int) -> Stage:
        limit = max(self.hybrid_limit, k)
        return Stage(
            Rrf(_RRF_K),
            2 * limit,  # every fused document: the caller breaks ties, then cuts to k
            prefetch=(self._bm25_stage(text, limit), self._colbert_stage(vectors, limit)),
        )

    def _run(
        self, stages: list[Stage], filter: dict[str, Any] | None, *, scale: list[float]
    ) -> list[list[SearchHit]]:
        if filter is not None and any(isinstance(v, tuple) and not v for v in filter.values()):
            return [[] for _ in stages]  # membership in an empty collection: nothing matches
        groups = conditions(filter) if filter else None
        if groups:
            self._store.ensure_indexes(index_kinds(groups))
        results = self._store.query(stages, groups)
        return [_hits(points, s) for points, s in zip(results, scale, strict=True)]

    # -- writing ---------------------------------------------------------------------------------

    def _add_encoded(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        chunks: Iterator[tuple[slice, list[FloatArray]]],
        *,
        show_progress: bool = False,
    ) -> None:
        if self.layout.bm25 and self._bm25 is None:
            # The first documents set BM25's mean length for the collection (kept in every
            # payload): later ones are weighted alike.
            from .bm25 import mean_length

            self._bm25 = Bm25Encoder(mean_length(texts))
        super()._add_encoded(ids, texts, metadatas, chunks, show_progress=show_progress)
        self._store.optimize()

    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        for doc_id, metadata in zip(ids, metadatas, strict=True):
            check_json_metadata(doc_id, metadata)
        bm25 = self._bm25 if self.layout.bm25 else None
        avg_len = None if bm25 is None else bm25.avg_len
        points = []
        for doc_id, text, metadata, tokens in zip(ids, texts, metadatas, vectors, strict=True):
            points.append(
                (
                    point_id(doc_id),
                    self.layout.vectors(
                        np.asarray(tokens, dtype=np.float32),
                        None if bm25 is None else bm25.document(text),
                    ),
                    self.layout.payload(doc_id, text, metadata, avg_len),
                )
            )
        for start in range(0, len(points), self.upsert_batch):
            self._store.upsert(points[start : start + self.upsert_batch])

    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        wanted = list(dict.fromkeys(check_ids(ids)))
        if not wanted:
            return
        if not missing_ok:
            check_known(wanted, self._retrieve(wanted, payload=False))
        self._store.delete([point_id(i) for i in wanted])

    def clear(self) -> None:
        """Remove every document (the collection and its settings stay)."""
        self._store.clear()

    def optimize(self) -> None:
        """Build the HNSW index of documents added since the last build (Qdrant Edge; each
        :meth:`add` does it when it ends). A server optimizes in the background."""
        self._store.optimize()

    # -- internals -------------------------------------------------------------------------------

    def _retrieve(self, ids: list[str], *, payload: bool) -> dict[str, dict[str, Any]]:
        by_point = {point_id(i): i for i in ids}
        found = self._store.retrieve(list(by_point), payload=payload)
        return {by_point[pid]: p for pid, p in found.items() if pid in by_point}

    def _bm25_query(self, text: str) -> Sparse:
        # A query's BM25 vector does not depend on the mean length.
        return (self._bm25 or Bm25Encoder(1.0)).query(text)


def _hits(points: list[ScoredPayload], scale: float) -> list[SearchHit]:
    return [
        SearchHit(
            id=str(payload["id"]),
            score=float(np.float32(score * scale)),
            text=str(payload["text"]),
            metadata=dict(payload.get("metadata") or {}),
        )
        for payload, score in points
    ]


def _manifest_layout(manifest: dict[str, Any], model: ColBERT) -> Layout:
    spec = manifest.get("fixed")
    return Layout(
        dim=model.dim,
        model_key=model.model_key,
        fixed="mean" if spec == "mean" else "muvera",
        muvera=_muvera_from_spec(spec, model.dim),
        bm25=bool(manifest.get("bm25")),
    )


def _muvera_from_spec(spec: Any, dim: int) -> Muvera | None:
    """The :class:`Muvera` a ``fixed`` spec string describes (``None`` for ``"mean"``)."""
    if not isinstance(spec, str) or not spec.startswith("muvera("):
        return None
    fields = dict(part.split("=", 1) for part in spec[len("muvera(") : -1].split(","))
    return Muvera(
        dim,
        k_sim=int(fields["k_sim"]),
        d_proj=None if fields["d_proj"] == "None" else int(fields["d_proj"]),
        r_reps=int(fields["r_reps"]),
        seed=int(fields["seed"]),
        fill_empty=fields["fill_empty"] == "True",
    )
