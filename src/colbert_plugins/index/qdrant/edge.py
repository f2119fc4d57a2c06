"""The Qdrant Edge engine in process (``qdrant-edge-py``): one shard per collection directory.

A collection directory holds ``colbert-plugins.json`` (what wrote it: the model, the layout),
``.lock`` (held while a :class:`EdgeStore` has it open: Qdrant Edge allows one opener per
shard, and a second one damages the first one's journals, so ours refuses by name before
Edge is touched) and ``shard/`` (Qdrant Edge's write-ahead log and segments). Every write is
in the write-ahead log when :meth:`EdgeStore.upsert` returns: a process killed afterwards
loses none of it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...checks import require
from ...files import fsync_dir, fsync_file
from ..base import IndexFormatError, IndexLockedError, IndexMismatchError
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
)
from .store import PAYLOAD_FIELDS, SAMPLE_FIELDS, QdrantEngineError, QdrantStore, ScoredPayload

require("qdrant_edge", extra="qdrant", feature=__name__)

import qdrant_edge as qe  # noqa: E402

__all__ = ["MANIFEST", "EdgeStore"]

logger = logging.getLogger(__name__)

#: Our file in a collection directory: format, model identity, layout.
MANIFEST = "colbert-plugins.json"
FORMAT_NAME = "colbert-plugins-qdrant-edge"
FORMAT_VERSION = 1
_SHARD = "shard"
_LOCK = ".lock"


class EdgeStore(QdrantStore):
    """One collection on a Qdrant Edge shard in ``root`` (``None``: a temporary directory,
    removed by :meth:`close`)."""

    def __init__(
        self,
        root: Path | None,
        *,
        on_disk: bool = True,
        quantization: str | None = None,
        search_threads: int | None = 1,
    ) -> None:
        import filelock

        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="colbert-qdrant-")
            root = Path(self._tmp.name)
        self.root = root
        self.on_disk = on_disk
        self.quantization = quantization
        self.search_threads = search_threads
        self._shard: Any = None
        self._call_lock = threading.RLock()
        self._indexed: set[str] = set()
        _refuse_local_mode(root)
        root.mkdir(parents=True, exist_ok=True)
        self._file_lock = filelock.FileLock(str(root / _LOCK), timeout=0)
        try:
            self._file_lock.acquire()
        except filelock.Timeout:
            raise IndexLockedError(
                f"the Qdrant Edge collection at {root} is open in another QdrantIndex (this "
                "process or another one): Qdrant Edge allows one opener per directory. Close "
                "the other one, or serve the collection from one process (see the README, "
                "Qdrant)"
            ) from None
        self._finalizer = weakref.finalize(self, _release, self._file_lock, self._tmp)

    # -- lifecycle -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        if not path.exists():
            if (self.root / _SHARD).exists():
                raise IndexFormatError(
                    f"{self.root} holds a Qdrant Edge shard without {MANIFEST}: it was not "
                    "written by colbert-plugins, or its creation was interrupted"
                )
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"cannot read {path}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"{path} is not a colbert-plugins Qdrant Edge manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{path} has format version {manifest.get('format_version')!r}; this version "
                f"of colbert-plugins reads version {FORMAT_VERSION}"
            )
        return manifest

    def create(self, layout: Layout, identity: dict[str, Any]) -> None:
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            **identity,
            "dim": layout.dim,
            "fixed": layout.fixed_spec,
            "fixed_dim": layout.fixed_dim,
            "bm25": layout.bm25,
            "quantization": self.quantization,
            "on_disk": self.on_disk,
            "collection_config": layout.describe(),
        }
        tmp = self.root / f".{MANIFEST}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
            fsync_file(fh)
        os.replace(tmp, self.root / MANIFEST)
        fsync_dir(self.root)
        self.open(layout, manifest)

    def open(self, layout: Layout, manifest: dict[str, Any]) -> None:
        if manifest.get("quantization") is not None:
            self.quantization = manifest["quantization"]
        self.on_disk = bool(manifest.get("on_disk", self.on_disk))
        config = self._config(layout)
        shard_dir = self.root / _SHARD
        exists = shard_dir.is_dir() and any(shard_dir.iterdir())
        try:
            if exists:
                self._shard = qe.EdgeShard.load(str(shard_dir), config)
            else:
                self._shard = qe.EdgeShard.create(str(shard_dir), config)
        except Exception as exc:  # Edge raises bare Exceptions
            raise IndexMismatchError(
                f"Qdrant Edge refused to open the shard in {shard_dir} with this layout: {exc}"
            ) from exc
        self._indexed = set(self._call(lambda s: s.info().payload_schema, "read the shard"))
        self._ensure_index("id", "keyword")

    def _config(self, layout: Layout) -> Any:
        colbert = qe.EdgeVectorParams(
            size=layout.dim,
            distance=qe.Distance.Dot,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
            # no HNSW graph for token vectors: they are only reranked
            hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
            quantization_config=_quantization(self.quantization),
            memory=qe.Memory.Cold if self.on_disk else qe.Memory.Cached,
        )
        vectors = {
            COLBERT_VECTOR: colbert,
            FIXED_VECTOR: qe.EdgeVectorParams(size=layout.fixed_dim, distance=qe.Distance.Dot),
        }
        sparse = {BM25_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}
        return qe.EdgeConfig(
            vectors=vectors,
            sparse_vectors=sparse if layout.bm25 else None,
            max_search_threads=self.search_threads,
        )

    def close(self) -> None:
        with self._call_lock:
            if self._shard is not None:
                try:
                    self._shard.flush()
                    self._shard.close()
                finally:
                    self._shard = None
            self._finalizer()

    # -- writing ---------------------------------------------------------------------------------

    def upsert(self, points: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        edge_points = [
            qe.Point(id=pid, vector=_vectors(vectors), payload=payload)
            for pid, vectors, payload in points
        ]
        self._call(lambda s: s.update(qe.UpdateOperation.upsert_points(edge_points)), "write")

    def delete(self, point_ids: Sequence[str]) -> None:
        ids: list[Any] = list(point_ids)
        self._call(lambda s: s.update(qe.UpdateOperation.delete_points(ids)), "delete")

    def clear(self) -> None:
        doomed = [str(r.id) for r in self._scroll_all([])]
        for start in range(0, len(doomed), 1024):
            self.delete(doomed[start : start + 1024])

    def optimize(self) -> None:
        self._call(lambda s: (s.optimize(), s.flush()), "optimize")

    def ensure_indexes(self, wanted: dict[str, str]) -> None:
        for path, kind in wanted.items():
            self._ensure_index(path, kind)

    def _ensure_index(self, path: str, kind: str) -> None:
        if path in self._indexed:
            return
        schema = qe.PayloadSchemaType.Keyword if kind == "keyword" else qe.PayloadSchemaType.Float
        self._call(lambda s: s.update(qe.UpdateOperation.create_field_index(path, schema)), "index")
        self._indexed.add(path)

    # -- reading ---------------------------------------------------------------------------------

    def payload_indexes(self) -> list[str]:
        return sorted(self._call(lambda s: s.info().payload_schema, "read the shard"))

    def count(self) -> int:
        return int(self._call(lambda s: s.count(qe.CountRequest(exact=True)), "count"))

    def retrieve(self, point_ids: Sequence[str], *, payload: bool) -> dict[str, dict[str, Any]]:
        ids = list(point_ids)
        records = self._call(
            lambda s: s.retrieve(ids, with_payload=payload, with_vector=False), "read"
        )
        return {str(r.id): dict(r.payload or {}) for r in records}

    def scroll(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        for record in self._scroll_all(fields):
            yield dict(record.payload or {})

    def _scroll_all(self, fields: list[str]) -> Iterator[Any]:
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=256, with_payload=fields or False, with_vector=False
            )
            records, offset = self._call(lambda s, r=request: s.scroll(r), "read")
            yield from records
            if offset is None:
                return

    def sample_payload(self) -> dict[str, Any] | None:
        """One point's ``model_key``, ``fixed`` and ``bm25_avg_len`` (``None``: no points)."""
        for payload in self.scroll(list(SAMPLE_FIELDS)):
            return payload
        return None

    def query(
        self, stages: Sequence[Stage], groups: list[list[Condition]] | None
    ) -> list[list[ScoredPayload]]:
        flt = _filter(groups)
        params = (
            qe.SearchParams(quantization=qe.QuantizationSearchParams(ignore=True))
            if self.quantization
            else None
        )
        requests = [
            qe.QueryRequest(
                limit=stage.limit,
                query=_query(stage.query),
                prefetches=[_prefetch(p) for p in stage.prefetch] or None,
                filter=flt,
                params=params,
                with_payload=list(PAYLOAD_FIELDS),
                with_vector=False,
            )
            for stage in stages
        ]
        if len(requests) == 1:
            results = [self._call(lambda s: s.query(requests[0]), "search")]
        else:
            results = self._call(lambda s: s.query_batch(qe.QueryBatchRequest(requests)), "search")
        return [[(dict(p.payload or {}), float(p.score)) for p in points] for points in results]

    def disk_bytes(self) -> int:
        """Bytes allocated on disk: Qdrant Edge creates its storage files at a fixed size
        (32 MiB) and fills them as it goes, so their apparent sizes overstate it."""
        total = 0
        for p in self.root.rglob("*"):
            if p.is_file():
                st = p.stat()
                blocks = getattr(st, "st_blocks", None)  # not on Windows
                total += st.st_size if blocks is None else min(st.st_size, blocks * 512)
        return total

    # -- internals -------------------------------------------------------------------------------

    def _call(self, fn: Any, what: str) -> Any:
        with self._call_lock:
            if self._shard is None:
                raise QdrantEngineError(f"the Qdrant Edge collection at {self.root} is closed")
            try:
                return fn(self._shard)
            except (QdrantEngineError, IndexFormatError):
                raise
            except Exception as exc:  # Edge raises bare Exceptions: say which step failed
                raise QdrantEngineError(
                    f"Qdrant Edge failed to {what} ({self.root}): {exc}"
                ) from exc


def _release(lock: Any, tmp: tempfile.TemporaryDirectory[str] | None) -> None:
    lock.release()
    if tmp is not None:
        tmp.cleanup()


def _refuse_local_mode(root: Path) -> None:
    """qdrant-client's local mode (what ``path=`` meant before Qdrant Edge) keeps
    ``meta.json`` and ``collection/``: say how to open or rebuild it."""
    if (root / "meta.json").is_file() and (root / "collection").is_dir():
        raise IndexFormatError(
            f"{root} was written by qdrant-client's local mode (colbert-plugins before Qdrant "
            "Edge): open it with client=QdrantClient(path=...) to read it, and add its "
            "documents to a new directory to move them to Qdrant Edge"
        )
    if root.is_file():
        raise IndexFormatError(f"{root} is a file; path= must be a directory")


def _quantization(kind: str | None) -> Any:
    if kind is None:
        return None
    if kind == "int8":
        return qe.ScalarQuantizationConfig(
            qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned
        )
    return qe.BinaryQuantizationConfig(
        encoding=qe.BinaryQuantizationEncoding.OneBit,
        query_encoding=qe.BinaryQuantizationQueryEncoding.Scalar8Bits,
        memory=qe.Memory.Pinned,
    )


def _vectors(vectors: dict[str, Any]) -> dict[str, Any]:
    return {
        name: qe.SparseVector(indices=v.indices, values=v.values) if isinstance(v, Sparse) else v
        for name, v in vectors.items()
    }


def _query(query: Nearest | Rrf) -> Any:
    if isinstance(query, Rrf):
        return qe.Fusion.Rrf(k=query.k, weights=list(query.weights) if query.weights else None)
    vector: Any = query.vector  # numpy arrays are taken as they are
    if isinstance(vector, Sparse):
        vector = qe.SparseVector(indices=vector.indices, values=vector.values)
    return qe.Query.Nearest(vector, using=query.using)


def _prefetch(stage: Stage) -> Any:
    return qe.Prefetch(
        limit=stage.limit,
        query=_query(stage.query),
        prefetches=[_prefetch(p) for p in stage.prefetch] or None,
        params=qe.SearchParams(hnsw_ef=stage.hnsw_ef) if stage.hnsw_ef else None,
    )


def _filter(groups: list[list[Condition]] | None) -> Any:
    if not groups:
        return None
    must = []
    for group in groups:
        conds = [_condition(c) for c in group]
        must.append(conds[0] if len(conds) == 1 else qe.Filter(should=conds))
    return qe.Filter(must=must)


def _condition(c: Condition) -> Any:
    if c.kind == "null":
        return qe.IsNullCondition(c.path)
    if c.kind == "range":
        return qe.FieldCondition(key=c.path, range=qe.RangeFloat(gte=c.values[0], lte=c.values[0]))
    if c.kind == "any":
        return qe.FieldCondition(key=c.path, match=qe.MatchAny(list(c.values)))
    return qe.FieldCondition(key=c.path, match=qe.MatchValue(c.values[0]))
