"""On-disk layout of a :class:`~colbert_plugins.index.CompressedIndex`: segments and manifest.

A directory holds:

- ``manifest.json``: the commit point. Format name and version, model identity, the codec's
  directory, and the list of live segments with each one's current deletion file. A commit
  writes a new manifest to a temporary file, flushes it to disk and renames it over the old
  one (:func:`os.replace`, atomic on POSIX): readers and a reopened index see either the
  previous commit or the new one, never a mix.
- ``codec-N/``: ``centroids.f16`` (``centroids.f32`` in version 1) and ``codebooks.f32``
  (see :mod:`~colbert_plugins.index.codec`), written once.
- ``seg-N/``: one immutable segment. ``centroid_ids`` (one per token), ``codes`` (packed
  residuals, ``[tokens, code_bytes]``), ``scales.u8`` (one scale byte per token; absent in
  segments written by version 1), ``doc_offsets.i64`` (document ``i`` owns tokens
  ``doc_offsets[i]:doc_offsets[i+1]``), the inverted lists ``ivf_offsets.i64`` /
  ``ivf_pids.i32`` (centroid ``c`` -> the documents with a token in it, each once),
  ``ids.json``, ``documents.jsonl`` (``{"id", "text", "metadata"}`` per line) with the byte
  offset of each line in ``doc_starts.i64``, ``metadata.jsonl`` (one object per line, read
  for filters), and, in an index that keeps them (version 3, ``"originals": true`` in the
  manifest and in each segment's entry), ``originals.f16``: every token vector in float16
  (``[tokens, dim]``), read only for the few documents of a search's exact rerank. Raw
  little-endian arrays, memory-mapped with the shapes in the manifest.
- ``seg-N/deleted-G.bool``: which documents of the segment are deleted as of commit ``G``.
  A delete writes a new file and commits a manifest naming it; the old file stays until the
  commit is durable.

Files are only ever created (in a temporary directory, flushed, renamed into place) before the
manifest that names them is committed; files no manifest names (left by a killed writer, or
replaced by a later commit) are removed by the next writer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import mmap
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError
from ..files import fsync_dir, fsync_file
from .base import IndexFormatError, check_manifest_fields, read_manifest_json
from .codec import ResidualCodec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ORIGINALS",
    "READABLE_VERSIONS",
    "Segment",
    "SegmentWriter",
    "Snapshot",
    "fsync_dir",
    "fsync_file",
    "load_codec",
    "read_manifest",
    "save_codec",
    "will_need",
    "write_deleted",
    "write_manifest",
]

#: ``format`` field of a compressed index's manifest.
FORMAT_NAME = "colbert-plugins-compressed-index"
#: Version of the on-disk layout that this code writes. Version 2 added float16 centroids
#: and the scale bytes of token vectors; version 3 the float16 originals of token vectors
#: (``originals.f16``, when the manifest says ``"originals": true``).
FORMAT_VERSION = 3
#: Versions this code reads (a version 1 index is searched by renormalizing decoded vectors;
#: its new segments get scales; indexes of versions 1 and 2 keep no originals, and neither
#: do their new segments); others are refused with :class:`IndexFormatError`.
READABLE_VERSIONS = (1, 2, 3)
#: The float16 originals of a segment's token vectors.
ORIGINALS = "originals.f16"

MANIFEST = "manifest.json"
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _write_array(path: Path, array: npt.NDArray[Any]) -> None:
    with path.open("wb") as fh:
        fh.write(np.ascontiguousarray(array).data)  # the array's buffer: no bytes copy
        fsync_file(fh)


def _map(
    path: Path, dtype: npt.DTypeLike, shape: tuple[int, ...], random: bool = True
) -> npt.NDArray[Any]:
    """A read-only memory map of a raw array (an in-memory empty array for no rows), advised
    for random access unless ``random`` is false (:func:`_random_access`)."""
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IndexFormatError(f"cannot read {path}: {exc}") from exc
    if size != expected:
        raise IndexFormatError(f"{path} holds {size} bytes, expected {expected} for {shape}")
    if expected == 0:
        return np.zeros(shape, dtype=dtype)
    mapped = np.memmap(path, dtype=dtype, mode="r", shape=shape)
    if random:
        _random_access(mapped)
    return mapped


def _random_access(mapped: np.memmap[Any, Any]) -> None:
    """Tell the kernel that reads are random (where the platform has ``madvise``), so that a
    page fault reads one page from disk, not a read-ahead window: a search reads the codes of
    a few hundred scattered documents. The inverted lists are left to the default read-ahead,
    since a search reads each probed list whole. Measured at 1M synthetic passages (9.5 GB
    index, page cache dropped before each run, 30 queries, two runs each): p50 305-420 ms
    with every array advised random, 236-253 ms with the lists on read-ahead (69k major faults
    against 93k), and with every array on read-ahead p50 199-229 ms but p95 1.2-2.4 s. On an
    index already in the page cache the advice changes nothing measurable."""
    advice = getattr(mmap, "MADV_RANDOM", None)
    handle = getattr(mapped, "_mmap", None)
    if advice is not None and handle is not None and hasattr(handle, "madvise"):
        with contextlib.suppress(OSError):
            handle.madvise(advice)


def will_need(mapped: npt.NDArray[Any], starts: Int64Array, stops: Int64Array) -> None:
    """Ask the kernel to read rows ``starts[i]:stops[i]`` of a memory-mapped 2-D array now
    (``MADV_WILLNEED``, where the platform has it): on a cold page cache each range is read
    at once, in parallel, instead of a page per fault on a map advised random. Nothing
    happens for an in-memory array."""
    advice = getattr(mmap, "MADV_WILLNEED", None)
    handle = getattr(mapped, "_mmap", None)
    if advice is None or handle is None or not hasattr(handle, "madvise") or not len(starts):
        return
    row = int(np.prod(mapped.shape[1:])) * mapped.dtype.itemsize
    page = mmap.PAGESIZE
    first = (np.asarray(starts, dtype=np.int64) * row) // page * page
    last = np.asarray(stops, dtype=np.int64) * row
    with contextlib.suppress(OSError, ValueError):
        for a, b in zip(first.tolist(), last.tolist(), strict=True):
            if b > a:
                handle.madvise(advice, a, b - a)


def _read_array(path: Path, dtype: npt.DTypeLike, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    return np.array(_map(path, dtype, shape))


# -- codec -------------------------------------------------------------------------------------


def save_codec(root: Path, codec: ResidualCodec) -> str:
    """Write the codec to a new ``codec-*`` directory under ``root``; return its name."""
    name = f"codec-{uuid.uuid4().hex[:12]}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-codec-", dir=root))
    centroids = centroid_file(codec)
    _write_array(tmp / centroids, codec.centroids.astype(_CENTROID_DTYPES[centroids]))
    _write_array(tmp / "codebooks.f32", codec.codebooks.astype("<f4"))
    if codec.coarse is not None and codec.cell_offsets is not None:
        _write_array(tmp / "coarse.f32", codec.coarse.astype("<f4"))
        _write_array(tmp / "cell_offsets.i64", codec.cell_offsets.astype("<i8"))
    fsync_dir(tmp)
    os.replace(tmp, root / name)
    fsync_dir(root)
    return name


_CENTROID_DTYPES = {"centroids.f16": "<f2", "centroids.f32": "<f4"}


def centroid_file(codec: ResidualCodec) -> str:
    """The file that stores the codec's centroids: float16 when that is exact (centroids
    trained since format version 2), float32 otherwise."""
    exact = np.array_equal(codec.centroids.astype(np.float16).astype(np.float32), codec.centroids)
    return "centroids.f16" if exact else "centroids.f32"


def load_codec(root: Path, info: dict[str, Any]) -> ResidualCodec:
    base = root / str(info["name"])
    file = str(info.get("centroids", "centroids.f32"))  # version 1 names no file
    if file not in _CENTROID_DTYPES:
        raise IndexFormatError(f"{base}: unknown centroid file {file!r}")
    k, dim, nbits = int(info["ncentroids"]), int(info["dim"]), int(info["nbits"])
    per = 8 // nbits
    cells = int(info.get("cells") or 0)  # absent in indexes written before two-level codecs
    coarse = cell_offsets = None
    if cells:
        coarse = _read_array(base / "coarse.f32", "<f4", (cells, dim))
        cell_offsets = _read_array(base / "cell_offsets.i64", "<i8", (cells + 1,))
        if cell_offsets[0] != 0 or cell_offsets[-1] != k or (np.diff(cell_offsets) < 0).any():
            raise IndexFormatError(f"{base / 'cell_offsets.i64'} does not partition {k} centroids")
    return ResidualCodec(
        centroids=_read_array(base / file, _CENTROID_DTYPES[file], (k, dim)).astype(np.float32),
        codebooks=_read_array(base / "codebooks.f32", "<f4", (dim // per, 256, per)),
        nbits=nbits,
        coarse=coarse,
        cell_offsets=cell_offsets,
    )


# -- segments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One immutable, memory-mapped segment plus its deletion mask (a snapshot's view)."""

    root: Path
    name: str
    ids: tuple[str, ...]
    doc_offsets: Int64Array
    centroid_ids: npt.NDArray[Any]
    codes: npt.NDArray[np.uint8]
    scales: npt.NDArray[np.uint8] | None  # None: a segment written by format version 1
    originals: npt.NDArray[np.float16] | None  # None: an index without originals
    ivf_offsets: Int64Array
    ivf_pids: npt.NDArray[np.int32]
    doc_starts: Int64Array
    live: BoolArray
    deleted_file: str | None
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def tokens(self) -> int:
        return int(self.doc_offsets[-1])

    @property
    def live_tokens(self) -> int:
        lengths = np.diff(self.doc_offsets)
        return int(lengths[self.live].sum())

    def with_live(self, live: BoolArray, deleted_file: str | None) -> Segment:
        return Segment(
            self.root,
            self.name,
            self.ids,
            self.doc_offsets,
            self.centroid_ids,
            self.codes,
            self.scales,
            self.originals,
            self.ivf_offsets,
            self.ivf_pids,
            self.doc_starts,
            live,
            deleted_file,
            self._cache,  # metadata cache: the documents did not change
        )

    def document_line(self, local: int) -> dict[str, Any]:
        """The stored ``{"id", "text", "metadata"}`` record of document ``local``."""
        start, stop = int(self.doc_starts[local]), int(self.doc_starts[local + 1])
        raw = self._bytes("documents.jsonl")[start:stop].tobytes()
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise IndexFormatError(f"segment {self.name} has a corrupt document line") from exc
        if not isinstance(record, dict):
            raise IndexFormatError(f"segment {self.name} has a corrupt document line")
        return record

    def raw_lines(self, locals_: npt.NDArray[Any]) -> list[bytes]:
        data = self._bytes("documents.jsonl")
        return [
            data[int(self.doc_starts[i]) : int(self.doc_starts[i + 1])].tobytes() for i in locals_
        ]

    def _bytes(self, name: str) -> npt.NDArray[np.uint8]:
        """A text file of the segment, mapped when the segment is opened: a search on an older
        snapshot still reads it after a later commit has removed the file."""
        return cast(npt.NDArray[np.uint8], self._cache[name])

    def metadatas(self) -> list[dict[str, Any]]:
        """Every document's metadata (read once, on the first filtered search)."""
        cached = self._cache.get("metadata")
        if cached is None:
            text = self._bytes("metadata.jsonl").tobytes().decode("utf-8")
            cached = [json.loads(line) for line in text.splitlines()]
            if len(cached) != self.count:
                raise IndexFormatError(f"segment {self.name}: metadata.jsonl has wrong length")
            self._cache["metadata"] = cached
        return cast(list[dict[str, Any]], cached)

    @classmethod
    def open(cls, root: Path, info: dict[str, Any], codec: ResidualCodec) -> Segment:
        name = str(info["name"])
        base = root / name
        count, tokens, postings = int(info["count"]), int(info["tokens"]), int(info["postings"])
        try:
            with (base / "ids.json").open(encoding="utf-8") as fh:
                ids = json.load(fh)
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"cannot read the ids of segment {name}: {exc}") from exc
        if not isinstance(ids, list) or len(ids) != count:
            raise IndexFormatError(f"segment {name} lists {len(ids)} ids, expected {count}")
        doc_offsets = _read_array(base / "doc_offsets.i64", "<i8", (count + 1,))
        if doc_offsets[0] != 0 or doc_offsets[-1] != tokens or np.any(np.diff(doc_offsets) < 0):
            raise IndexFormatError(f"segment {name}: document offsets are corrupt")
        deleted = info.get("deleted")
        live = np.ones(count, dtype=bool)
        if deleted:
            live = ~_read_array(base / str(deleted), np.bool_, (count,))
        mapped = {
            key: _map(base / key, np.uint8, ((base / key).stat().st_size,))
            for key in ("documents.jsonl", "metadata.jsonl")
            if (base / key).is_file()
        }
        if len(mapped) != 2:
            raise IndexFormatError(f"segment {name} lacks documents.jsonl or metadata.jsonl")
        return cls(
            _cache=mapped,
            root=root,
            name=name,
            ids=tuple(ids),
            doc_offsets=doc_offsets,
            centroid_ids=_map(base / "centroid_ids", codec.id_dtype.newbyteorder("<"), (tokens,)),
            codes=_map(base / "codes", np.uint8, (tokens, codec.code_bytes)),
            scales=_map(base / "scales.u8", np.uint8, (tokens,)) if info.get("scales") else None,
            originals=(
                _map(base / ORIGINALS, "<f2", (tokens, codec.dim))
                if info.get("originals")
                else None
            ),
            ivf_offsets=_read_array(base / "ivf_offsets.i64", "<i8", (len(codec.centroids) + 1,)),
            ivf_pids=_map(base / "ivf_pids.i32", "<i4", (postings,), random=False),
            doc_starts=_read_array(base / "doc_starts.i64", "<i8", (count + 1,)),
            live=live,
            deleted_file=str(deleted) if deleted else None,
        )

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "tokens": self.tokens,
            "postings": len(self.ivf_pids),
            "deleted": self.deleted_file,
            "scales": self.scales is not None,
            "originals": self.originals is not None,
        }


def write_deleted(root: Path, segment: Segment, live: BoolArray) -> str:
    """Write a new deletion file for ``segment``; return its name (not yet committed)."""
    name = f"deleted-{uuid.uuid4().hex[:12]}.bool"
    path = root / segment.name / name
    tmp = path.with_name(f".tmp-{name}")
    _write_array(tmp, (~live).astype(np.bool_))
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return name


class SegmentWriter:
    """Streams documents into a new segment directory; :meth:`finish` makes it durable.

    Documents arrive in chunks (already compressed: centroid ids, codes, per-document token
    counts, and their JSON lines; with ``originals``, also the token vectors themselves, kept
    in float16); arrays go straight to files so that a large add never holds more than one
    chunk. Nothing is visible until the manifest names the segment.
    """

    def __init__(self, root: Path, codec: ResidualCodec, *, originals: bool = False) -> None:
        self.root = root
        self.codec = codec
        self.originals = originals
        self.name = f"seg-{uuid.uuid4().hex[:12]}"
        self.tmp = Path(tempfile.mkdtemp(prefix=".tmp-seg-", dir=root))
        keys = ["centroid_ids", "codes", "scales.u8", "documents.jsonl", "metadata.jsonl"]
        if originals:
            keys.append(ORIGINALS)
        self._files: dict[str, BinaryIO] = {key: (self.tmp / key).open("wb") for key in keys}
        self.ids: list[str] = []
        self._lengths: list[npt.NDArray[np.int64]] = []
        self._starts: list[int] = [0]
        # Each chunk's (centroid, document) pairs wait in two scratch files of the new
        # segment (4 bytes each per pair) until finish() sorts them into inverted lists.
        self._pair_files = {key: (self.tmp / f".pairs-{key}").open("w+b") for key in ("c", "d")}
        self._pair_counts: list[int] = []
        self.tokens = 0

    def append(
        self,
        ids: list[str],
        lines: list[bytes],
        metadata_lines: list[bytes],
        centroid_ids: npt.NDArray[Any],
        codes: npt.NDArray[np.uint8],
        lengths: npt.NDArray[np.int64],
        originals: npt.NDArray[Any] | None = None,
    ) -> None:
        """Write one chunk; ``originals`` (``[tokens, dim]``, stored as float16) is required
        when the writer keeps originals and refused otherwise."""
        if (originals is not None) != self.originals:
            raise InvalidArgumentError(
                "this segment keeps the original vectors: pass them"
                if self.originals
                else "this segment keeps no original vectors"
            )
        if originals is not None and originals.shape != (len(codes), self.codec.dim):
            raise InvalidArgumentError(
                f"originals of shape {originals.shape}, expected {(len(codes), self.codec.dim)}"
            )
        first = len(self.ids)
        self._files["centroid_ids"].write(
            np.ascontiguousarray(
                centroid_ids, dtype=self.codec.id_dtype.newbyteorder("<")
            ).tobytes()
        )
        self._files["codes"].write(np.ascontiguousarray(codes, dtype=np.uint8).tobytes())
        self._files["scales.u8"].write(self.codec.scales(centroid_ids, codes).tobytes())
        if originals is not None:
            half = np.ascontiguousarray(originals, dtype="<f2")
            self._files[ORIGINALS].write(half.data)
        documents = self._files["documents.jsonl"]
        for line in lines:
            documents.write(line)
            documents.write(b"\n")
            self._starts.append(self._starts[-1] + len(line) + 1)
        meta = self._files["metadata.jsonl"]
        for line in metadata_lines:
            meta.write(line)
            meta.write(b"\n")
        # Inverted-list postings of this chunk: each (centroid, document) pair once.
        pid = np.repeat(np.arange(first, first + len(ids), dtype=np.int64), lengths)
        key = np.unique(centroid_ids.astype(np.int64) * (1 << 31) + pid)
        self._pair_files["c"].write((key >> 31).astype("<i4").tobytes())
        self._pair_files["d"].write((key & ((1 << 31) - 1)).astype("<i4").tobytes())
        self._pair_counts.append(len(key))
        self.ids.extend(ids)
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.tokens += int(np.sum(lengths))

    def finish(self) -> dict[str, Any]:
        """Write the remaining files, flush everything, rename into place; return its info."""
        for fh in self._files.values():
            fsync_file(fh)
            fh.close()
        count = len(self.ids)
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        doc_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype("<i8")
        ivf_offsets, pids = self._inverted_lists()
        _write_array(self.tmp / "doc_offsets.i64", doc_offsets)
        _write_array(self.tmp / "ivf_offsets.i64", ivf_offsets.astype("<i8"))
        _write_array(self.tmp / "ivf_pids.i32", pids.astype("<i4", copy=False))
        _write_array(self.tmp / "doc_starts.i64", np.asarray(self._starts, dtype="<i8"))
        with (self.tmp / "ids.json").open("w", encoding="utf-8") as ids_file:
            json.dump(self.ids, ids_file, ensure_ascii=False)
            fsync_file(ids_file)
        fsync_dir(self.tmp)
        os.replace(self.tmp, self.root / self.name)
        fsync_dir(self.root)
        return {
            "name": self.name,
            "count": count,
            "tokens": int(doc_offsets[-1]),
            "postings": len(pids),
            "deleted": None,
            "scales": True,
            "originals": self.originals,
        }

    def _inverted_lists(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The lists' offsets and document numbers, by a counting sort of the chunks' pairs:
        each chunk's pairs come sorted by centroid, then document, and chunks come in document
        order, so placing every chunk's run for a centroid after the previous chunks' runs
        gives lists sorted by document. The pairs are read back a chunk at a time from the
        scratch files, so the build holds only the result (4 bytes per pair) and one chunk:
        held in memory, the pairs took 8 bytes more per pair (1.7 GB at 1M synthetic
        passages); a global argsort of them held about 44 (4.7 GB at 300k)."""
        k = len(self.codec.centroids)
        for fh in self._pair_files.values():
            fh.flush()
        edges = np.concatenate([[0], np.cumsum(self._pair_counts, dtype=np.int64)])
        chunks = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        total = int(edges[-1])
        cids_all: npt.NDArray[Any]
        pids_all: npt.NDArray[Any]
        if total:
            cids_all = np.memmap(self._pair_files["c"], dtype="<i4", mode="r", shape=(total,))
            pids_all = np.memmap(self._pair_files["d"], dtype="<i4", mode="r", shape=(total,))
        else:
            cids_all = pids_all = np.zeros(0, dtype="<i4")
        counts = np.zeros(k, dtype=np.int64)
        for part in chunks:
            counts += np.bincount(cids_all[part], minlength=k)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        pids = np.empty(total, dtype=np.int32)
        filled = offsets[:-1].copy()  # next free slot of each list
        for part in chunks:
            cids = np.asarray(cids_all[part])
            chunk_counts = np.bincount(cids, minlength=k)
            run_starts = np.concatenate([[0], np.cumsum(chunk_counts)[:-1]])
            pids[filled[cids] + (np.arange(len(cids)) - run_starts[cids])] = pids_all[part]
            filled += chunk_counts
        del cids_all, pids_all
        self._close_pair_files()
        return offsets, pids

    def _close_pair_files(self) -> None:
        for key, fh in self._pair_files.items():
            fh.close()
            (self.tmp / f".pairs-{key}").unlink(missing_ok=True)

    def abort(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._close_pair_files()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One committed state of an index: its codec and segments, and where each live document
    is. A search or lookup reads one snapshot throughout; a commit makes a new one."""

    codec: ResidualCodec | None
    codec_info: dict[str, Any] | None
    segments: tuple[Segment, ...]
    positions: dict[str, tuple[int, int]]  # id -> (segment number, document in segment)

    @property
    def count(self) -> int:
        return len(self.positions)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(None, None, (), {})

    @classmethod
    def of(
        cls, codec: ResidualCodec, codec_info: dict[str, Any], segments: Sequence[Segment]
    ) -> Snapshot:
        """The snapshot of these segments (their live documents)."""
        positions: dict[str, tuple[int, int]] = {}
        for s, seg in enumerate(segments):
            for local in np.flatnonzero(seg.live):
                positions[seg.ids[int(local)]] = (s, int(local))
        return cls(codec, codec_info, tuple(segments), positions)


# -- manifest ----------------------------------------------------------------------------------


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """The commit: write ``manifest`` to a temporary file, flush it, rename it into place."""
    tmp = root / f".tmp-manifest-{uuid.uuid4().hex[:8]}.json"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
        fsync_file(fh)
    os.replace(tmp, root / MANIFEST)
    fsync_dir(root)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    manifest = read_manifest_json(path, f"{root} is not a compressed index (no {MANIFEST})")
    if manifest.get("format") != FORMAT_NAME:
        hint = (
            " (an InMemoryIndex: open it with InMemoryIndex.load)" if manifest.get("format") else ""
        )
        raise IndexFormatError(f"{path} is not a compressed colbert-plugins index{hint}")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise IndexFormatError(
            f"{root} has compressed index format version {version!r}; this version of "
            f"colbert-plugins reads versions {readable} (use the colbert-plugins version "
            "that wrote it, or rebuild the index)"
        )
    check_manifest_fields(
        path, manifest, (("dim", int), ("nbits", int), ("model_key", str), ("segments", list))
    )
    return manifest


def remove_unreferenced(root: Path, manifest: dict[str, Any]) -> None:
    """Delete files and directories that the committed manifest does not name (left by a
    killed writer, or superseded by a later commit)."""
    keep = {MANIFEST, ".lock"}
    codec = manifest.get("codec")
    if codec:
        keep.add(str(codec["name"]))
    deleted_by_segment = {}
    for seg in manifest["segments"]:
        keep.add(str(seg["name"]))
        deleted_by_segment[str(seg["name"])] = seg.get("deleted")
    for entry in root.iterdir():
        if entry.name in keep:
            if entry.name in deleted_by_segment:
                current = deleted_by_segment[entry.name]
                for sub in [*entry.glob("deleted-*"), *entry.glob(".tmp-*")]:
                    if sub.name != current:
                        sub.unlink(missing_ok=True)
            continue
        if entry.name.startswith((".tmp-", "seg-", "codec-")):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
