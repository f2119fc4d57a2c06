"""A compressed, memory-mapped ColBERT index on disk: :class:`CompressedIndex`.

PLAID-style (the design of colbert-ai's PLAID and of FastPlaid / NextPlaid), written for numpy:

- **Compression** (:mod:`.codec`): every token vector becomes the id of its nearest k-means
  centroid plus its residual product-quantized to 2 bits per dimension, plus one scale byte
  (128 dims: 32 bytes + 2 bytes of id + 1), instead of 512 bytes of float32. Centroids (up to
  ``16 * sqrt`` of the first add's token vectors, :func:`.codec.default_centroids`, in cells
  of a two-level k-means so that assigning a vector costs a few hundred products, not one per
  centroid) and codebooks are trained with faiss on the
  first documents added and fixed afterwards.
- **Candidates**: each query vector probes its ``nprobe`` nearest centroids; the inverted
  list of a centroid names the documents with a token there. A document's approximate score
  sums, over query vectors, the best probed centroid score it has, and the score of the worst
  probed centroid where it has none (the "missing similarity" estimate of XTR / WARP).
- **Prune**: the ``candidates`` best documents by that estimate are scored by MaxSim over
  their tokens' centroids (PLAID's centroid interaction, lookups in the query-centroid scores).
- **Rerank**: the ``rerank`` best of those are scored by MaxSim over their decompressed
  vectors, computed from the codes (:meth:`.codec.ResidualCodec.similarities`).
- **Exact rerank**: the ``exact`` best of those by the codes (at least ``k``) are scored again
  by exact MaxSim over their **originals**: every token vector is also kept in float16 in a
  memory-mapped file per segment (``originals.f16``, 256 bytes per vector at 128 dims), which
  only this stage reads, a few dozen documents per query (advised random, each document's
  rows asked for at once with ``MADV_WILLNEED``). The best ``k`` are returned with their exact
  scores (MaxSim over the float16-rounded vectors). ``originals=False`` builds an index
  without them (codes only, the ranking of ``exact=0``).

Why this design (``benchmarks/index_scale.py``; the README's "Compressed index" section has
the tables and commands). What every query touches stays 39.7 bytes per token vector (codes,
centroid id, scale byte, inverted lists, centroids), against 512 in float32; the originals
sit on disk beside it and are read only for the final candidates. On the trained test model
(``colbert-minilm-trained``, 8,041 BEIR passages, 893,610 token vectors, 60 queries),
recall@10 against exact MaxSim: the codes alone 0.910, which is their ceiling (0.912 by
brute-force MaxSim over every decoded passage: 2-bit residuals mis-order near ties); the
candidate stages keep 0.993 (candidates) and 0.988 (prune) of the exact top 10, and the code
ranking holds all of those in its best 24 (0.980 in its best 16), so the exact rerank of the
best 32 reaches **0.988** at the defaults (0.965 on 19,457 Debian-doc passages, whose codes
reach 0.872 at most), for 3-7 ms of exact stage per query against 28-40 ms for the rerank
from the codes (medians, loaded 2-core machine); 64 gave the same recall. With more
passages the candidate stages decide: on 100,001 Debian-doc passages (6.6M token vectors)
the defaults keep 0.890 (candidates) and 0.872 (prune) of the exact top 10, so recall is
0.872 (codes alone 0.820, their ceiling 0.822); ``nprobe=8, candidates=4096, rerank=1024``
reaches 0.965 at 2.4x the p50 (73 against 30 ms, idle machine). The
prune width decides the rest: ``rerank=128`` gives 0.963 in two thirds of the time, 512 with
``nprobe=8`` 0.997. 4 bits per dimension instead (72 bytes resident) reached only 0.937-0.960.
A better 2-bit codec was not found (PCA, OPQ, residual quantizers and least-squares scales all
stayed near the same ceiling). The build stays about 3% of encoding the same passages (it
writes 256 more bytes per token vector). MUVERA fixed-dimensional encodings
(:class:`~colbert_plugins.pooling.Muvera`), measured through the Qdrant backend's prefetch on
synthetic queries, recalled 0.53 of the exact top 10 against 0.75 for the codes here.

**Persistence** (:mod:`.store`): each :meth:`add` or :meth:`delete` call is one atomic commit:
new segment and deletion files are written and flushed, then a new manifest is renamed into
place. A process killed at any point leaves the last committed index readable. Segments are
merged when there are more than ``max_segments`` (and by :meth:`compact`, which also drops
deleted documents). The manifest records the format version and the model's identity; an index
of another format version raises :class:`IndexFormatError`, one built with another model
:class:`IndexMismatchError`.

One writer at a time (the directory's lock file, :mod:`filelock`; a writer that waits longer
than ``lock_timeout`` gets :class:`IndexLockedError`); threads may search while one writes,
each search on a consistent snapshot. Another process's commits become visible to an open
index when it next writes (or when the index is opened again).

The code: this module holds the constructor and the reading side, :mod:`.compressed_search`
the search stages, :mod:`.compressed_write` the write side (:class:`CompressedWriter`, which
this class derives from), :mod:`.store` the files, :mod:`.codec` the compression.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int, check_number
from ..errors import InvalidArgumentError, InvalidArgumentTypeError
from ..model import ColBERT, FloatArray
from .base import (
    IndexedDocument,
    IndexFormatError,
    SearchHit,
    check_index_model,
    locate,
)
from .compressed_search import search
from .compressed_write import TRAIN_DOCUMENTS, CompressedWriter, _manifest_stamp
from .store import Segment, Snapshot, centroid_file, load_codec, read_manifest

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_EXACT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_NPROBE",
    "DEFAULT_RERANK",
    "TRAIN_DOCUMENTS",
    "CompressedIndex",
]

#: Centroids probed per query vector (see the README's recall/latency curve).
DEFAULT_NPROBE = 4
#: Documents scored by their tokens' centroids per query (from the inverted lists).
DEFAULT_CANDIDATES = 1024
#: Of those, documents decompressed and scored by MaxSim.
DEFAULT_RERANK = 256
#: Of those, documents scored by exact MaxSim over their float16 originals (read from disk).
DEFAULT_EXACT = 32
#: Seconds a write waits for another writer of the same directory before it gives up.
DEFAULT_LOCK_TIMEOUT = 10.0


class CompressedIndex(CompressedWriter):
    """ColBERT retrieval from compressed token vectors in a directory, memory-mapped.

    Args:
        model: the model that encodes documents and queries.
        path: the index directory: opened if it holds an index (which must have been built
            with this model), created on the first :meth:`add` otherwise.
        nbits: bits per dimension of the residual codes (1, 2 or 4; 2 by default). Only used
            when the index is created.
        ncentroids: number of k-means centroids (default: up to ``16 * sqrt(tokens)``, at
            most 65,536, for the token count of the whole first :meth:`add`, estimated from
            its first documents). Centroids are fixed once
            trained: when an index will grow far beyond its first add, give the final size's
            count (see :func:`~colbert_plugins.index.codec.default_centroids`).
        nprobe: centroids probed per query vector (default :data:`DEFAULT_NPROBE`).
        candidates: documents taken from the inverted lists and scored by MaxSim over their
            tokens' centroids (default :data:`DEFAULT_CANDIDATES`).
        rerank: of those, documents decompressed and scored by MaxSim (default
            :data:`DEFAULT_RERANK`). More of any of the three: higher recall against exact
            MaxSim, slower searches; see the README's trade-off curve.
        exact: of those, the best by their compressed score (at least ``k``) are scored
            again by exact MaxSim over their float16 originals, read from disk (default
            :data:`DEFAULT_EXACT`; 0: never read the originals, rank by the codes). Only
            used in an index that keeps originals.
        originals: keep every token vector in float16 in a memory-mapped file beside the
            codes (256 more bytes per token vector on disk at 128 dimensions, read only
            for the ``exact`` documents of each search, so not resident in memory): recall
            against exact MaxSim near 1 instead of the codec's ceiling. ``False``: only the
            codes (a disk-constrained index). Default: ``True`` for a new index; an existing
            index keeps what it was created with (indexes written before format version 3
            have no originals, nor do their new segments), and a different explicit value
            is refused.
        max_segments: merge segments when an add leaves more than this many.
        check_model_key: set ``False`` to open an index whose recorded model key differs
            (only when the models are known to produce identical vectors); the vector size
            is always checked.
        lock_timeout: seconds a write waits for another writer of the directory (another
            process, or another index object) to finish (default
            :data:`DEFAULT_LOCK_TIMEOUT`; ``None``: as long as it takes), then raises
            :class:`~colbert_plugins.index.IndexLockedError`.

    Raises:
        IndexFormatError: ``path`` holds something other than a compressed index of this
            format version.
        IndexMismatchError: the index was built with another model.
        ImportError: faiss is missing (``pip install colbert-plugins[index]``) when
            centroids must be trained.

    >>> index = CompressedIndex(model, "my-index")  # doctest: +SKIP
    >>> index.add(texts, metadatas=[{"source": s} for s in sources])  # doctest: +SKIP
    >>> index.search("query", k=5, filter={"source": "a.pdf"})  # doctest: +SKIP
    """

    def __init__(
        self,
        model: ColBERT,
        path: str | os.PathLike[str],
        *,
        nbits: int = 2,
        ncentroids: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        candidates: int = DEFAULT_CANDIDATES,
        rerank: int = DEFAULT_RERANK,
        exact: int = DEFAULT_EXACT,
        originals: bool | None = None,
        max_segments: int = 8,
        check_model_key: bool = True,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        if not isinstance(model, ColBERT):
            raise InvalidArgumentTypeError(
                f"model must be a ColBERT instance, got {type(model).__name__}"
            )
        if isinstance(nbits, bool) or nbits not in (1, 2, 4):
            raise InvalidArgumentError(f"nbits must be 1, 2 or 4, got {nbits!r}")
        if model.dim % (8 // nbits):
            raise InvalidArgumentError(
                f"nbits={nbits} needs a vector size divisible by {8 // nbits}, got {model.dim}"
            )
        if originals is not None and not isinstance(originals, bool):
            raise InvalidArgumentTypeError(
                f"originals must be True, False or None, got {originals!r}"
            )
        timeout = check_number(lock_timeout, "lock_timeout", optional=True)
        if timeout is not None and timeout < 0:
            raise InvalidArgumentError(f"lock_timeout must be >= 0 or None, got {timeout}")
        self.model = model
        self.path = Path(path)
        self.nprobe = check_int(nprobe, "nprobe")
        self.candidates = check_int(candidates, "candidates")
        self.rerank = check_int(rerank, "rerank")
        self.exact = check_int(exact, "exact", minimum=0)
        self.max_segments = check_int(max_segments, "max_segments")
        self.lock_timeout = timeout
        self._nbits = nbits
        self._originals = True if originals is None else originals
        self._ncentroids = None if ncentroids is None else check_int(ncentroids, "ncentroids")
        self._check_model_key = check_model_key
        self._lock = threading.Lock()
        self._manifest_stamp = _manifest_stamp(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise InvalidArgumentError(f"{self.path} exists and is not a directory")
        if (self.path / "manifest.json").exists():
            manifest = read_manifest(self.path)
            self._check_model(manifest)
            self._nbits = int(manifest["nbits"])
            # Versions 1 and 2 kept no originals: nor do their new segments.
            self._originals = bool(manifest.get("originals", False))
            if originals is not None and originals != self._originals:
                raise InvalidArgumentError(
                    f"the index at {self.path} was created "
                    + ("with" if self._originals else "without")
                    + f" original vectors; originals={originals} cannot change that (build a "
                    "new index; to search without reading them, pass exact=0)"
                )
            self._snapshot = self._open_snapshot(manifest)
        else:
            # A writer killed during the first add leaves only its own files: not an error.
            ours = (".lock", ".tmp-", "seg-", "codec-")
            if self.path.is_dir() and any(not p.name.startswith(ours) for p in self.path.iterdir()):
                raise InvalidArgumentError(
                    f"{self.path} is a non-empty directory without an index; give an empty "
                    "or new directory"
                )
            self._snapshot = Snapshot.empty()

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: ColBERT, **kwargs: Any) -> CompressedIndex:
        """Open an existing index (like the constructor, but a missing index is an error)."""
        read_manifest(Path(path))  # raises IndexFormatError when there is none
        return cls(model, path, **kwargs)

    def __repr__(self) -> str:
        snap = self._snapshot
        return (
            f"CompressedIndex(path={str(self.path)!r}, model={self.model.name!r}, "
            f"documents={snap.count}, segments={len(snap.segments)}, nbits={self._nbits}, "
            f"originals={self._originals})"
        )

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._snapshot.count

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and doc_id in self._snapshot.positions

    def ids(self) -> list[str]:
        """The ids of all documents (segment order, insertion order within a segment)."""
        out: list[str] = []
        for seg in self._snapshot.segments:
            out.extend(seg.ids[i] for i in np.flatnonzero(seg.live))
        return out

    @property
    def tokens(self) -> int:
        """Token vectors of the live documents."""
        return sum(seg.live_tokens for seg in self._snapshot.segments)

    def disk_bytes(self) -> int:
        """Bytes of every file of the committed index (codes, ids, lists, texts, metadata)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    @property
    def keeps_originals(self) -> bool:
        """Whether the index keeps the float16 originals of its token vectors."""
        return self._originals

    def vector_bytes(self) -> int:
        """Bytes that encode token vectors and that every search reads from: codes,
        centroid ids, scales, inverted lists, offsets, and the centroids (texts, ids,
        metadata and the float16 originals excluded: see :meth:`original_bytes`)."""
        snap = self._snapshot
        total = 0
        if snap.codec is not None:
            stored = 2 if centroid_file(snap.codec).endswith("f16") else 4
            total = snap.codec.centroids.size * stored
        for seg in snap.segments:
            total += seg.codes.nbytes + seg.centroid_ids.nbytes + seg.ivf_pids.nbytes
            total += seg.ivf_offsets.nbytes + seg.doc_offsets.nbytes
            total += 0 if seg.scales is None else seg.scales.nbytes
        return total

    def original_bytes(self) -> int:
        """Bytes of the float16 originals on disk (0 in an index without them): a search
        reads only those of its ``exact`` documents."""
        segments = self._snapshot.segments
        return sum(0 if seg.originals is None else seg.originals.nbytes for seg in segments)

    def get(self, ids: Iterable[str], *, missing_ok: bool = False) -> list[IndexedDocument]:
        snap = self._snapshot
        found = []
        for doc_id, (s, local) in locate(ids, snap.positions, missing_ok=missing_ok):
            record = snap.segments[s].document_line(local)
            found.append(IndexedDocument(doc_id, record["text"], record["metadata"]))
        return found

    def get_vectors(self, ids: Iterable[str]) -> list[FloatArray]:
        """The decompressed token vectors of these documents, in the order given (decoded
        from the codes, also in an index that keeps originals)."""
        snap = self._snapshot
        out = []
        for _, (s, local) in locate(ids, snap.positions):
            seg = snap.segments[s]
            rows = slice(int(seg.doc_offsets[local]), int(seg.doc_offsets[local + 1]))
            assert snap.codec is not None  # a stored document implies a codec
            scales = None if seg.scales is None else seg.scales[rows]
            out.append(snap.codec.decode(seg.centroid_ids[rows], seg.codes[rows], scales))
        return out

    def _search_vectors(
        self, query: FloatArray, k: int, filter: dict[str, Any] | None
    ) -> list[SearchHit]:
        snap = self._snapshot  # one consistent snapshot for the whole search
        scored = search(
            snap,
            query,
            k,
            filter,
            nprobe=self.nprobe,
            candidates=self.candidates,
            rerank=self.rerank,
            exact=self.exact if self._originals else 0,
        )
        if self.model.config.normalize_scores:
            scored = [(s / max(1, len(query)), where) for s, where in scored]
        hits = []
        for score, (s, local) in scored[:k]:
            record = snap.segments[s].document_line(local)
            hits.append(SearchHit(record["id"], float(score), record["text"], record["metadata"]))
        return hits

    # -- opening ---------------------------------------------------------------------------------

    def _open_snapshot(self, manifest: dict[str, Any]) -> Snapshot:
        info = manifest.get("codec")
        if not info:
            return Snapshot.empty()
        codec = load_codec(self.path, info)
        segments = [Segment.open(self.path, seg, codec) for seg in manifest["segments"]]
        for seg in segments:
            if (seg.originals is not None) != self._originals:
                raise IndexFormatError(
                    f"{self.path}: segment {seg.name} "
                    + ("lacks" if self._originals else "has")
                    + " original vectors, unlike the index's manifest"
                )
        return Snapshot.of(codec, info, segments)

    def _reopen(self) -> None:
        """Take up the commits another writer made since this object read the manifest."""
        manifest = read_manifest(self.path)
        self._check_model(manifest)
        self._nbits = int(manifest["nbits"])
        self._originals = bool(manifest.get("originals", False))
        self._snapshot = self._open_snapshot(manifest)
        self._manifest_stamp = _manifest_stamp(self.path)

    def _check_model(self, manifest: dict[str, Any]) -> None:
        check_index_model(self.path, manifest, self.model, self._check_model_key)
