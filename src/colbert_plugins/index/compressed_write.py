"""The write side of a :class:`~colbert_plugins.index.CompressedIndex`: adds, deletes, merges
and commits, under the index directory's write lock.

:class:`CompressedWriter` holds the index's writing methods (``CompressedIndex`` derives from
it; the reading side and the constructor are in :mod:`.compressed`, the search stages in
:mod:`.compressed_search`). Every write is one commit (:mod:`.store`): new segment and
deletion files are written and flushed, then a new manifest is renamed into place.

One writer at a time per directory: a write takes the thread lock of its index object and the
directory's lock file ``.lock`` (:mod:`filelock`: ``fcntl`` locks on POSIX, ``msvcrt`` on
Windows). A writer that cannot get the lock file within the index's ``lock_timeout`` gets
:class:`~colbert_plugins.index.IndexLockedError`. Having the lock, a writer first takes up any
commit another process made since this object last read the manifest, so that its commit
builds on the latest one instead of dropping it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import missing_dependency
from ..errors import InvalidArgumentError
from ..model import FloatArray
from .base import (
    ADD_CHUNK,
    ColBERTIndex,
    IndexLockedError,
    check_documents,
    check_encoded,
    check_ids,
    check_known,
    document_line,
)
from .codec import ResidualCodec, default_centroids
from .compressed_search import token_rows
from .store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    Segment,
    SegmentWriter,
    Snapshot,
    centroid_file,
    remove_unreferenced,
    save_codec,
    write_deleted,
    write_manifest,
)

__all__ = ["LOCK_FILE", "TRAIN_DOCUMENTS", "CompressedWriter", "writer_lock"]

logger = logging.getLogger(__name__)

#: Documents encoded before the centroids are trained (when the index has none yet).
TRAIN_DOCUMENTS = 8192
#: Token vectors sampled for k-means, per centroid.
_SAMPLE_PER_CENTROID = 64
#: The lock file of an index directory (kept: removing it would race with a waiting writer).
LOCK_FILE = ".lock"

Chunks = Iterator[tuple[slice, list[FloatArray]]]


class CompressedWriter(ColBERTIndex):
    """The writing methods of :class:`~colbert_plugins.index.CompressedIndex`.

    :meth:`add` (:meth:`ColBERTIndex.add`) is one atomic commit: the documents are written to
    one new segment as they are encoded (a large add does not hold every vector in memory)
    and become visible, all at once, when the commit's manifest is renamed into place; a
    process killed before that leaves the index as it was. An index without centroids trains
    them on the first :data:`TRAIN_DOCUMENTS` documents of the add: build a new index with a
    representative first batch.
    """

    path: Path
    max_segments: int
    lock_timeout: float | None
    _snapshot: Snapshot
    _manifest_stamp: tuple[int, int] | None
    _originals: bool
    _nbits: int
    _ncentroids: int | None
    _lock: threading.Lock

    def add_vectors(
        self,
        vectors: Sequence[FloatArray],
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Store documents already encoded with ``model.encode_documents`` (one atomic commit).

        ``vectors[i]`` are the token vectors of ``texts[i]``; see :meth:`add`.
        """
        text_list, id_list, metas = check_documents(texts, ids, metadatas)
        vector_list = list(vectors)
        if len(vector_list) != len(text_list):
            raise InvalidArgumentError(
                f"got {len(text_list)} texts but {len(vector_list)} vector arrays"
            )
        self._upsert(id_list, text_list, metas, vector_list)
        return id_list

    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        wanted = list(dict.fromkeys(check_ids(ids)))
        with self._writing() as snap:
            check_known(wanted, snap.positions, missing_ok=missing_ok)
            doomed = _by_segment(snap, wanted)
            if not doomed or snap.codec is None or snap.codec_info is None:
                return
            self._commit(snap.codec, snap.codec_info, list(self._with_deleted(snap, doomed)))

    def clear(self) -> None:
        """Remove every document (the centroids stay)."""
        self.delete(self.ids())

    def compact(self) -> None:
        """Rewrite every segment into one, dropping deleted documents (one atomic commit)."""
        with self._writing() as snap:
            if snap.codec is None or snap.codec_info is None or not snap.segments:
                return
            merged = _merge(self.path, snap.codec, list(snap.segments), self._originals)
            self._commit(snap.codec, snap.codec_info, [merged] if merged else [])

    # -- adding ----------------------------------------------------------------------------

    def _chunk_size(self, start: int) -> int:
        """An index without centroids trains them on the first chunk: a larger one."""
        if self._snapshot.codec is None and start == 0:
            return TRAIN_DOCUMENTS
        return super()._chunk_size(start)

    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        self._add_encoded(ids, texts, metadatas, iter([(slice(0, len(ids)), vectors)]))

    def _add_encoded(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        chunks: Chunks,
        *,
        show_progress: bool = False,
    ) -> None:
        """Write the chunks to one new segment as they are encoded, then commit."""
        # Every document line is checked before the first document is encoded.
        lines = [
            document_line(i, t, m).encode() for i, t, m in zip(ids, texts, metadatas, strict=True)
        ]
        if not ids:
            return
        dim = self.model.dim
        with self._writing() as snap, _BuildProgress(show_progress, len(ids)) as progress:
            writer: SegmentWriter | None = None
            codec, codec_info = snap.codec, snap.codec_info
            try:
                for part, vectors in chunks:
                    check_encoded(ids[part], vectors, dim)
                    lengths = np.fromiter((len(v) for v in vectors), np.int64, len(vectors))
                    flat = (
                        np.concatenate(vectors).astype(np.float32, copy=False)
                        if len(vectors)
                        else np.zeros((0, dim), np.float32)
                    )
                    if codec is None:
                        # Centroids for the whole call's documents, estimated from this chunk.
                        expected = len(flat) * len(ids) / max(1, len(vectors))
                        progress.stage("Training centroids")
                        codec = self._train(flat, expected_tokens=int(expected))
                        progress.stage("Compressing documents")
                        codec_info = {
                            "name": save_codec(self.path, codec),
                            "ncentroids": len(codec.centroids),
                            "dim": dim,
                            "nbits": codec.nbits,
                            "cells": 0 if codec.coarse is None else len(codec.coarse),
                            "centroids": centroid_file(codec),
                        }
                    if writer is None:
                        writer = SegmentWriter(self.path, codec, originals=self._originals)
                    cids, codes = codec.encode(flat)
                    writer.append(
                        ids[part],
                        lines[part],
                        [json.dumps(m, ensure_ascii=False).encode() for m in metadatas[part]],
                        cids,
                        codes,
                        lengths,
                        flat if self._originals else None,
                    )
                    progress.update(len(vectors))
                if writer is None or codec is None or codec_info is None:
                    return
                new_info = writer.finish()
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
            # Documents replaced by this add are deleted in the same commit.
            segments = list(self._with_deleted(snap, _by_segment(snap, ids)))
            segments.append(Segment.open(self.path, new_info, codec))
            segments = self._merge_if_needed(segments, codec)
            self._commit(codec, codec_info, segments)

    def _train(self, flat: FloatArray, expected_tokens: int) -> ResidualCodec:
        try:
            import faiss  # noqa: F401
        except ImportError as exc:
            raise missing_dependency(
                "faiss", extra="index", feature="training a CompressedIndex's centroids"
            ) from exc
        if len(flat) == 0:
            raise InvalidArgumentError("cannot train the index's centroids on no token vectors")
        if self._ncentroids:
            k = min(self._ncentroids, len(flat))
        else:  # sized for the whole add, with 20+ training points per centroid
            wanted = default_centroids(max(len(flat), expected_tokens), flat.shape[1])
            k = max(1, min(wanted, len(flat) // 20))
        rng = np.random.default_rng(0)
        size = min(len(flat), max(k, _SAMPLE_PER_CENTROID * k))
        sample = flat[np.sort(rng.choice(len(flat), size, replace=False))]
        logger.info("training %d centroids on %d token vectors", k, len(sample))
        return ResidualCodec.train(sample, k, self._nbits)

    # -- committing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Snapshot]:
        """Hold the thread lock and the directory's lock file; yield the latest snapshot
        (reopened first when another writer has committed since this object read it)."""
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            with writer_lock(self.path, self.lock_timeout):
                if _manifest_stamp(self.path) != self._manifest_stamp:
                    self._reopen()
                yield self._snapshot

    def _reopen(self) -> None:
        """Read the committed manifest again (the reading side implements it)."""
        raise NotImplementedError

    def _with_deleted(self, snap: Snapshot, doomed: Mapping[int, list[int]]) -> Iterator[Segment]:
        for s, seg in enumerate(snap.segments):
            if s in doomed:
                live = seg.live.copy()
                live[doomed[s]] = False
                yield seg.with_live(live, write_deleted(self.path, seg, live))
            else:
                yield seg

    def _merge_if_needed(self, segments: list[Segment], codec: ResidualCodec) -> list[Segment]:
        """Merge the smallest neighbouring pair while there are more than ``max_segments``."""
        while len(segments) > self.max_segments:
            sizes = [seg.tokens for seg in segments]
            i = min(range(len(segments) - 1), key=lambda j: sizes[j] + sizes[j + 1])
            merged = _merge(self.path, codec, segments[i : i + 2], self._originals)
            segments[i : i + 2] = [merged] if merged is not None else []
        return segments

    def _commit(
        self, codec: ResidualCodec, codec_info: dict[str, Any], segments: list[Segment]
    ) -> None:
        segments = [seg for seg in segments if bool(seg.live.any())]
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model_name": self.model.name,
            "model_key": self.model.model_key,
            "model_details": self.model.key_details(),
            "dim": self.model.dim,
            "normalize_scores": self.model.config.normalize_scores,
            "nbits": codec.nbits,
            "originals": self._originals,
            "codec": codec_info,
            "segments": [seg.info() for seg in segments],
        }
        write_manifest(self.path, manifest)
        self._snapshot = Snapshot.of(codec, codec_info, segments)
        self._manifest_stamp = _manifest_stamp(self.path)
        remove_unreferenced(self.path, manifest)


@contextlib.contextmanager
def writer_lock(root: Path, timeout: float | None) -> Iterator[None]:
    """Hold the lock file of the index directory ``root``, waiting at most ``timeout`` seconds
    (``None``: as long as it takes) for another writer to release it; then
    :class:`~colbert_plugins.index.IndexLockedError`."""
    import filelock

    path = root / LOCK_FILE
    lock = filelock.FileLock(str(path), timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise IndexLockedError(
            f"another writer is changing the index at {root} (it holds {path}); one writer at "
            f"a time: retry when it has finished, or give the index a longer lock_timeout "
            f"(waited {timeout} s)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _manifest_stamp(root: Path) -> tuple[int, int] | None:
    """What changes when a commit renames a new manifest into place (its inode and time)."""
    try:
        stat = (root / MANIFEST).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _by_segment(snap: Snapshot, ids: Iterable[str]) -> dict[int, list[int]]:
    """The documents of ``ids`` that ``snap`` holds, as ``{segment: [local, ...]}``."""
    found: dict[int, list[int]] = {}
    for doc_id in ids:
        where = snap.positions.get(doc_id)
        if where is not None:
            found.setdefault(where[0], []).append(where[1])
    return found


def _merge(
    root: Path, codec: ResidualCodec, segments: Sequence[Segment], originals: bool
) -> Segment | None:
    """One new segment holding the live documents of ``segments`` (None if there are none),
    with their originals when ``originals`` (every segment has them then)."""
    writer = SegmentWriter(root, codec, originals=originals)
    try:
        for seg in segments:
            live = np.flatnonzero(seg.live)
            for start in range(0, len(live), ADD_CHUNK):
                chosen = live[start : start + ADD_CHUNK]
                rows, lengths = token_rows(seg, chosen)
                metadatas = seg.metadatas()
                writer.append(
                    [seg.ids[int(i)] for i in chosen],
                    seg.raw_lines(chosen),
                    [json.dumps(metadatas[int(i)], ensure_ascii=False).encode() for i in chosen],
                    np.asarray(seg.centroid_ids[rows]),
                    np.asarray(seg.codes[rows]),
                    lengths,
                    None if seg.originals is None else np.asarray(seg.originals[rows]),
                )
        if not writer.ids:
            writer.abort()
            return None
        return Segment.open(root, writer.finish(), codec)
    except BaseException:
        writer.abort()
        raise


class _BuildProgress:
    """A progress bar over the documents compressed and written by one commit (shown only
    when asked; tqdm comes with huggingface_hub), whose label names the stage: training the
    centroids, then compressing."""

    def __init__(self, show: bool, total: int) -> None:
        self._show, self._total = show, total
        self._bar: Any = None

    def __enter__(self) -> _BuildProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def stage(self, label: str) -> None:
        if not self._show:
            return
        if self._bar is None:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with huggingface_hub
                logger.info("%s", label)
                return
            self._bar = tqdm(total=self._total, unit="doc", desc=label)
        else:
            self._bar.set_description(label)

    def update(self, documents: int) -> None:
        if not self._show:
            return
        if self._bar is None:
            self.stage("Compressing documents")
        if self._bar is not None:
            self._bar.update(documents)
