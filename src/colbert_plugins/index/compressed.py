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

One process writes at a time (an exclusive lock file enforces it where ``fcntl`` exists);
threads of that process may search while one writes, each search on a consistent snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError
from ..model import ColBERT, FloatArray
from ..scoring import blas_thread_limit
from .base import (
    ADD_CHUNK,
    ColBERTIndex,
    IndexedDocument,
    IndexFormatError,
    MetadataFilter,
    SearchHit,
    check_documents,
    check_filter,
    check_ids,
    check_index_model,
    check_json_metadata,
    check_k,
    check_known,
    check_query_vectors,
    filter_predicate,
)
from .codec import ResidualCodec, default_centroids
from .store import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Segment,
    SegmentWriter,
    centroid_file,
    load_codec,
    read_manifest,
    remove_unreferenced,
    save_codec,
    will_need,
    write_deleted,
    write_manifest,
)

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_EXACT",
    "DEFAULT_NPROBE",
    "DEFAULT_RERANK",
    "CompressedIndex",
]

logger = logging.getLogger(__name__)

#: Centroids probed per query vector (see the README's recall/latency curve).
DEFAULT_NPROBE = 4
#: Documents scored by their tokens' centroids per query (from the inverted lists).
DEFAULT_CANDIDATES = 1024
#: Of those, documents decompressed and scored by MaxSim.
DEFAULT_RERANK = 256
#: Of those, documents scored by exact MaxSim over their float16 originals (read from disk).
DEFAULT_EXACT = 32
#: Documents encoded before the centroids are trained (when the index has none yet).
TRAIN_DOCUMENTS = 8192
#: Token vectors sampled for k-means, per centroid.
_SAMPLE_PER_CENTROID = 64


@dataclass(frozen=True)
class _Snapshot:
    codec: ResidualCodec | None
    codec_info: dict[str, Any] | None
    segments: tuple[Segment, ...]
    positions: dict[str, tuple[int, int]]  # id -> (segment number, document in segment)

    @property
    def count(self) -> int:
        return len(self.positions)


class CompressedIndex(ColBERTIndex):
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
        if ncentroids is not None:
            ncentroids = check_k(ncentroids, "ncentroids")
        if originals is not None and not isinstance(originals, bool):
            raise InvalidArgumentTypeError(
                f"originals must be True, False or None, got {originals!r}"
            )
        if isinstance(exact, bool) or not isinstance(exact, int | np.integer) or exact < 0:
            raise InvalidArgumentError(f"exact must be an integer >= 0, got {exact!r}")
        self.model = model
        self.path = Path(path)
        self.nprobe = check_k(nprobe, "nprobe")
        self.candidates = check_k(candidates, "candidates")
        self.rerank = check_k(rerank, "rerank")
        self.exact = int(exact)
        self.max_segments = check_k(max_segments, "max_segments")
        self._nbits = nbits
        self._originals = True if originals is None else originals
        self._ncentroids = ncentroids
        self._lock = threading.Lock()
        if self.path.exists() and not self.path.is_dir():
            raise InvalidArgumentError(f"{self.path} exists and is not a directory")
        if (self.path / "manifest.json").exists():
            manifest = read_manifest(self.path)
            self._check_model(manifest, check_model_key)
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
            self._snapshot = _Snapshot(None, None, (), {})

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
        wanted = check_ids(ids)
        snap = self._snapshot
        check_known(wanted, snap.positions, missing_ok=missing_ok)
        found = []
        for doc_id in wanted:
            where = snap.positions.get(doc_id)
            if where is not None:
                record = snap.segments[where[0]].document_line(where[1])
                found.append(IndexedDocument(doc_id, record["text"], record["metadata"]))
        return found

    def get_vectors(self, ids: Iterable[str]) -> list[FloatArray]:
        """The decompressed token vectors of these documents, in the order given (decoded
        from the codes, also in an index that keeps originals)."""
        wanted = check_ids(ids)
        snap = self._snapshot
        check_known(wanted, snap.positions)
        out = []
        for doc_id in wanted:
            s, local = snap.positions[doc_id]
            seg = snap.segments[s]
            rows = slice(int(seg.doc_offsets[local]), int(seg.doc_offsets[local + 1]))
            assert snap.codec is not None  # a stored document implies a codec
            scales = None if seg.scales is None else seg.scales[rows]
            out.append(snap.codec.decode(seg.centroid_ids[rows], seg.codes[rows], scales))
        return out

    def search_vectors(
        self, query_vectors: FloatArray, k: int = 10, *, filter: MetadataFilter | None = None
    ) -> list[SearchHit]:
        k = check_k(k)
        query = check_query_vectors(query_vectors, self.model.dim)
        checked = check_filter(filter)
        snap = self._snapshot
        if snap.count == 0 or snap.codec is None:
            return []
        # One BLAS thread, as the exact index: the products here are small, and with another
        # process on the 2 cores the query-centroid product took 24 ms on OpenBLAS's default
        # threads against 0.7 ms on one (32 x 60,918 scores).
        with blas_thread_limit(1):
            centroid_scores = snap.codec.centroid_scores(query)  # [q, centroids]
            picked = self._candidates(snap, centroid_scores, k, checked)
            if not picked:
                return []
            picked = _prune(snap, centroid_scores, picked, max(k, self.rerank))
            exact = max(k, self.exact) if self.exact and self._originals else 0
            if exact >= len(picked):  # all of them exact: the codes would only order them
                scored = _exact_rerank(snap, query, [(0.0, where) for where in picked], exact)
            else:
                scored = self._rerank(snap, query, centroid_scores, picked)
                scored.sort(key=lambda item: (-item[0], item[1]))
                if exact:
                    scored = _exact_rerank(snap, query, scored, exact)
        if self.model.config.normalize_scores:
            scored = [(s / max(1, len(query)), where) for s, where in scored]
        hits = []
        for score, (s, local) in scored[:k]:
            record = snap.segments[s].document_line(local)
            hits.append(
                SearchHit(
                    id=record["id"],
                    score=float(score),
                    text=record["text"],
                    metadata=record["metadata"],
                )
            )
        return hits

    def _candidates(
        self,
        snap: _Snapshot,
        centroid_scores: FloatArray,
        k: int,
        checked: dict[str, Any] | None,
    ) -> list[tuple[int, int]]:
        """The documents to rerank, best approximate score first: ``(segment, local)``."""
        ncentroids = centroid_scores.shape[1]
        nprobe = min(self.nprobe, ncentroids)
        # The best nprobe centroids are probed; the next one's score estimates what a query
        # vector gets from a document with no token in a probed centroid (an upper bound).
        wanted = min(nprobe + 1, ncentroids)
        if wanted < ncentroids:
            probes = _top_columns(centroid_scores, wanted)
        else:
            probes = np.broadcast_to(np.arange(ncentroids), centroid_scores.shape)
        probe_scores = np.take_along_axis(centroid_scores, probes, axis=1)
        order = np.argsort(probe_scores, axis=1)  # ascending: the best score is written last
        probes = np.take_along_axis(probes, order, axis=1)
        probe_scores = np.take_along_axis(probe_scores, order, axis=1)
        if wanted > nprobe:  # drop the estimate's centroid from the probes
            probes, missing = probes[:, 1:], probe_scores[:, :1]
            probe_scores = probe_scores[:, 1:]
        else:
            missing = probe_scores[:, :1]
        gains = probe_scores - missing  # over the "missing" estimate

        found_seg: list[npt.NDArray[np.int64]] = []
        found_local: list[npt.NDArray[np.int64]] = []
        found_score: list[FloatArray] = []
        for s, seg in enumerate(snap.segments):
            local, approx = _probe_segment(seg, probes, gains)
            keep = seg.live[local]
            local, approx = local[keep], approx[keep]
            found_seg.append(np.full(len(local), s, dtype=np.int64))
            found_local.append(local)
            found_score.append(approx)
        seg_ids = np.concatenate(found_seg)
        locals_ = np.concatenate(found_local)
        approx = np.concatenate(found_score)
        want = max(self.candidates, k)
        predicate = filter_predicate(checked) if checked is not None else None
        if predicate is None:
            if len(approx) > want:
                top = np.argpartition(-approx, want - 1)[:want]
                seg_ids, locals_, approx = seg_ids[top], locals_[top], approx[top]
            ranked = np.argsort(-approx, kind="stable")
            return [(int(seg_ids[i]), int(locals_[i])) for i in ranked]

        # Filtered: walk the candidates best first, keeping matches until there are enough.
        ranked = np.argsort(-approx, kind="stable")
        picked: list[tuple[int, int]] = []
        for i in ranked:
            s_i, local_i = int(seg_ids[i]), int(locals_[i])
            if predicate(snap.segments[s_i].metadatas()[local_i]):
                picked.append((s_i, local_i))
                if len(picked) >= want:
                    return picked
        if len(picked) >= k:
            return picked
        # Fewer matches among the probed documents than asked for: every other matching
        # document scores the "missing" estimate, so take them in index order.
        seen = set(picked)
        for s, seg in enumerate(snap.segments):
            metadatas = seg.metadatas()
            for live_local in np.flatnonzero(seg.live):
                where = (s, int(live_local))
                if where not in seen and predicate(metadatas[where[1]]):
                    picked.append(where)
                    if len(picked) >= want:
                        return picked
        return picked

    def _rerank(
        self,
        snap: _Snapshot,
        query: FloatArray,
        centroid_scores: FloatArray,
        picked: list[tuple[int, int]],
    ) -> list[tuple[float, tuple[int, int]]]:
        """MaxSim of the query against the decompressed vectors of the picked documents
        (scored from their codes, :meth:`ResidualCodec.similarities`, where the segment
        stores scales; decoded and renormalized in segments of format version 1)."""
        codec = snap.codec
        assert codec is not None
        scores = np.empty(len(picked), dtype=np.float32)
        for s, (positions, locals_) in _by_segment(picked).items():
            seg = snap.segments[s]
            rows, lengths = _token_rows(seg, locals_)
            ids, codes = seg.centroid_ids[rows], seg.codes[rows]
            if seg.scales is None:
                sims = query @ codec.decode(ids, codes).T
            else:
                sims = codec.similarities(query, centroid_scores, ids, codes, seg.scales[rows])
            scores[positions] = _segment_sums(sims, lengths)
        return [(float(score), where) for score, where in zip(scores, picked, strict=True)]

    # -- writing ---------------------------------------------------------------------------------

    def add(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> list[str]:
        """Encode and store documents in one atomic commit; return their ids.

        Like :meth:`ColBERTIndex.add`. The documents are written to one new segment as they
        are encoded (a large add does not hold every vector in memory) and become visible,
        all at once, when the commit's manifest is renamed into place; a process killed
        before that leaves the index as it was. An index without centroids trains them on
        the first :data:`TRAIN_DOCUMENTS` documents of the call: build a new index with a
        representative first batch.
        """
        text_list, id_list, metas = check_documents(texts, ids, metadatas)
        lines = [_document_line(i, t, m) for i, t, m in zip(id_list, text_list, metas, strict=True)]
        if not text_list:
            return id_list

        def chunks() -> Iterator[tuple[slice, list[FloatArray]]]:
            start = 0
            while start < len(text_list):
                size = ADD_CHUNK if self._snapshot.codec is not None or start else TRAIN_DOCUMENTS
                part = slice(start, start + size)
                vectors = self.model.encode_documents(
                    text_list[part], batch_size=batch_size, show_progress=show_progress
                )
                yield part, vectors
                start += size

        self._write(id_list, lines, metas, chunks(), show_progress=show_progress)
        return id_list

    def _upsert(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        vectors: list[FloatArray],
    ) -> None:
        lines = [_document_line(i, t, m) for i, t, m in zip(ids, texts, metadatas, strict=True)]
        self._write(ids, lines, metadatas, iter([(slice(0, len(ids)), vectors)]))

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

    def _write(
        self,
        ids: list[str],
        lines: list[bytes],
        metadatas: list[dict[str, Any]],
        chunks: Iterator[tuple[slice, list[FloatArray]]],
        *,
        show_progress: bool = False,
    ) -> None:
        dim = self.model.dim
        with self._writing() as snap, _BuildProgress(show_progress, len(ids)) as progress:
            writer: SegmentWriter | None = None
            codec, codec_info = snap.codec, snap.codec_info
            try:
                for part, vectors in chunks:
                    for doc_id, v in zip(ids[part], vectors, strict=True):
                        if v.ndim != 2 or v.shape[1] != dim:
                            raise ColBERTError(
                                f"document {doc_id!r} was encoded to shape {v.shape}, "
                                f"expected [n, {dim}]"
                            )
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
                    meta_lines = [
                        json.dumps(m, ensure_ascii=False).encode("utf-8") for m in metadatas[part]
                    ]
                    writer.append(
                        ids[part],
                        lines[part],
                        meta_lines,
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
            replaced: dict[int, list[int]] = {}
            for doc_id in ids:
                where = snap.positions.get(doc_id)
                if where is not None:
                    replaced.setdefault(where[0], []).append(where[1])
            segments = list(self._with_deleted(snap, replaced))
            segments.append(Segment.open(self.path, new_info, codec))
            segments = self._merge_if_needed(segments, codec)
            self._commit(codec, codec_info, segments)

    def delete(self, ids: Iterable[str], *, missing_ok: bool = False) -> None:
        wanted = list(dict.fromkeys(check_ids(ids)))
        with self._writing() as snap:
            check_known(wanted, snap.positions, missing_ok=missing_ok)
            doomed: dict[int, list[int]] = {}
            for doc_id in wanted:
                where = snap.positions.get(doc_id)
                if where is not None:
                    doomed.setdefault(where[0], []).append(where[1])
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

    # -- internals -------------------------------------------------------------------------------

    def _train(self, flat: FloatArray, expected_tokens: int) -> ResidualCodec:
        try:
            import faiss  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "CompressedIndex trains its centroids with faiss: "
                "pip install 'colbert-plugins[index]'"
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

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Snapshot]:
        """Hold the thread lock and the directory's lock file; yield the current snapshot."""
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            with _file_lock(self.path / ".lock"):
                yield self._snapshot

    def _with_deleted(self, snap: _Snapshot, doomed: Mapping[int, list[int]]) -> Iterator[Segment]:
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
        self._snapshot = _snapshot(codec, codec_info, segments)
        remove_unreferenced(self.path, manifest)

    def _open_snapshot(self, manifest: dict[str, Any]) -> _Snapshot:
        info = manifest.get("codec")
        if not info:
            return _Snapshot(None, None, (), {})
        codec = load_codec(self.path, info)
        segments = [Segment.open(self.path, seg, codec) for seg in manifest["segments"]]
        for seg in segments:
            if (seg.originals is not None) != self._originals:
                raise IndexFormatError(
                    f"{self.path}: segment {seg.name} "
                    + ("lacks" if self._originals else "has")
                    + " original vectors, unlike the index's manifest"
                )
        return _snapshot(codec, info, segments)

    def _check_model(self, manifest: dict[str, Any], check_model_key: bool) -> None:
        check_index_model(self.path, manifest, self.model, check_model_key)


# -- helpers -----------------------------------------------------------------------------------


def _snapshot(
    codec: ResidualCodec, codec_info: dict[str, Any], segments: Sequence[Segment]
) -> _Snapshot:
    positions: dict[str, tuple[int, int]] = {}
    for s, seg in enumerate(segments):
        for local in np.flatnonzero(seg.live):
            positions[seg.ids[int(local)]] = (s, int(local))
    return _Snapshot(codec, codec_info, tuple(segments), positions)


def _probe_segment(
    seg: Segment, probes: npt.NDArray[Any], gains: FloatArray
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Documents of ``seg`` found in the probed inverted lists, and their approximate score
    (over the missing-similarity baseline): per query vector, the gain of the best probed
    centroid the document has a token in."""
    acc = np.zeros(seg.count, dtype=np.float32)
    seen = np.zeros(seg.count, dtype=bool)
    offsets = seg.ivf_offsets
    pids = np.asarray(seg.ivf_pids)  # a plain view of the map: slicing it skips memmap's code
    for row in range(len(probes)):
        centroids = probes[row]
        starts, stops = offsets[centroids], offsets[centroids + 1]
        lengths = stops - starts
        if not lengths.any():
            continue
        # The lists are contiguous: joining slices beats a gather through an index array.
        bounds = zip(starts.tolist(), stops.tolist(), strict=True)
        docs = np.concatenate([pids[a:b] for a, b in bounds])
        # A fancy += with repeated indices reads every old value, then writes in order, so a
        # document in several probed lists gets one gain, the last written; the lists come
        # in ascending score order, so that is its best probed centroid's.
        acc[docs] += np.repeat(gains[row], lengths)
        seen[docs] = True
    found = np.flatnonzero(seen)
    return found, acc[found]


def _top_columns(scores: FloatArray, count: int) -> npt.NDArray[np.intp]:
    """Column indices of the ``count`` largest values of each row (in no order), exactly.

    ``np.argpartition`` over a [32, 60,000] block of query-centroid scores took 20-25 ms; this
    takes the maxima of blocks of about ``sqrt(columns)`` columns (one cheap pass), keeps the
    ``count`` blocks with the largest maxima, which hold the ``count`` largest values (each of
    those values is at least the ``count``-th largest block maximum), and selects among their
    columns only."""
    rows, n = scores.shape
    block = max(1, math.isqrt(n))
    starts = np.arange(0, n, block)
    if len(starts) <= 2 * count:
        return np.argpartition(scores, n - count, axis=1)[:, n - count :]
    maxima = np.maximum.reduceat(scores, starts, axis=1)  # [rows, blocks]
    blocks = np.argpartition(maxima, len(starts) - count, axis=1)[:, len(starts) - count :]
    columns = (blocks[:, :, None] * block + np.arange(block)).reshape(rows, -1)
    inside = columns < n  # the last block may be short
    values = np.take_along_axis(scores, np.minimum(columns, n - 1), axis=1)
    values[~inside] = -np.inf
    width = columns.shape[1]
    chosen = np.argpartition(values, width - count, axis=1)[:, width - count :]
    return np.take_along_axis(columns, chosen, axis=1)


def _prune(
    snap: _Snapshot, centroid_scores: FloatArray, picked: list[tuple[int, int]], keep: int
) -> list[tuple[int, int]]:
    """The ``keep`` best of ``picked`` by MaxSim over their tokens' centroids (PLAID's
    centroid interaction): a gather of precomputed query-centroid scores per token, much
    cheaper than decompressing the residuals."""
    if len(picked) <= keep:
        return picked
    by_query = np.ascontiguousarray(centroid_scores)  # [q, centroids]
    scores = np.empty(len(picked), dtype=np.float32)
    for s, (positions, locals_) in _by_segment(picked).items():
        seg = snap.segments[s]
        rows, lengths = _token_rows(seg, locals_)
        # [q, tokens] (49 -> 11 ms for 1,024 documents against [tokens, q]; _segment_sums)
        sims = np.take(by_query, np.asarray(seg.centroid_ids[rows]), axis=1)
        scores[positions] = _segment_sums(sims, lengths)
    best = np.argsort(-scores, kind="stable")[:keep]
    return [picked[int(n)] for n in best]


def _by_segment(
    picked: Sequence[tuple[int, int]],
) -> dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]]:
    """For each segment among ``picked`` ``(segment, local)`` pairs: the positions of its
    documents in ``picked`` and their local numbers."""
    positions: dict[int, list[int]] = {}
    for n, (s, _) in enumerate(picked):
        positions.setdefault(s, []).append(n)
    return {
        s: (np.asarray(ns, dtype=np.intp), np.asarray([picked[n][1] for n in ns], np.int64))
        for s, ns in positions.items()
    }


def _token_rows(
    seg: Segment, locals_: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """The token rows of documents ``locals_`` of ``seg``, one document after the other,
    and each document's token count."""
    starts = seg.doc_offsets[locals_]
    lengths = seg.doc_offsets[locals_ + 1] - starts
    return _ranges(starts, lengths), lengths


def _segment_sums(sims: FloatArray, lengths: npt.NDArray[np.int64]) -> FloatArray:
    """MaxSim per document from ``[q, tokens]`` similarities whose columns are the
    documents' tokens in runs of ``lengths``: the sum over rows of each run's maximum
    (``-inf`` for a document without tokens). Reducing contiguous runs along the last axis
    is about 4x faster than reducing a ``[tokens, q]`` block along axis 0.

    >>> sims = np.array([[1.0, 3.0, 2.0], [0.0, 1.0, 5.0]], dtype=np.float32)
    >>> _segment_sums(sims, np.array([1, 0, 2])).tolist()
    [1.0, -inf, 8.0]
    """
    bounds = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nonempty = lengths > 0
    out = np.full(len(lengths), -np.inf, dtype=np.float32)
    if nonempty.any():
        maxima = np.maximum.reduceat(sims, bounds[nonempty], axis=1)  # [q, documents]
        out[nonempty] = maxima.sum(axis=0)
    return out


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """The concatenation of ``range(start, start + length)`` for each pair."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shifts = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return shifts + np.arange(total, dtype=np.int64)


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
                rows, lengths = _token_rows(seg, chosen)
                metadatas = seg.metadatas()
                writer.append(
                    [seg.ids[int(i)] for i in chosen],
                    seg.raw_lines(chosen),
                    [
                        json.dumps(metadatas[int(i)], ensure_ascii=False).encode("utf-8")
                        for i in chosen
                    ],
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


def _exact_rerank(
    snap: _Snapshot,
    query: FloatArray,
    ranked: list[tuple[float, tuple[int, int]]],
    count: int,
) -> list[tuple[float, tuple[int, int]]]:
    """``ranked`` (best compressed score first) with its first ``count`` documents scored
    again by exact MaxSim over their float16 originals and put in that order; the others
    follow in their order, with their compressed scores. Documents of segments without
    originals keep their compressed scores."""
    head, tail = ranked[:count], ranked[count:]
    picked = [where for _, where in head]
    scores = np.array([score for score, _ in head], dtype=np.float32)
    for s, (positions, locals_) in _by_segment(picked).items():
        seg = snap.segments[s]
        if seg.originals is None:
            continue
        starts, stops = seg.doc_offsets[locals_], seg.doc_offsets[locals_ + 1]
        will_need(seg.originals, starts, stops)  # one read per document on a cold cache
        rows = _ranges(starts, stops - starts)
        vectors = np.asarray(seg.originals)[rows].astype(np.float32)
        scores[positions] = _segment_sums(query @ vectors.T, stops - starts)
    order = sorted(range(len(head)), key=lambda n: (-float(scores[n]), picked[n]))
    return [(float(scores[n]), picked[n]) for n in order] + tail


def _document_line(doc_id: str, text: str, metadata: dict[str, Any]) -> bytes:
    check_json_metadata(doc_id, metadata)
    return json.dumps(
        {"id": doc_id, "text": text, "metadata": metadata}, ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (a no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
