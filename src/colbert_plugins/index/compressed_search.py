"""The search side of a :class:`~colbert_plugins.index.CompressedIndex`: from a query's token
vectors to its best documents, in the stages the index's docstring describes.

:func:`search` runs them on one snapshot: the query-centroid scores, **candidates** from the
probed inverted lists (:func:`_candidates`), the **prune** by MaxSim over the candidates'
centroids (:func:`_prune`), the **rerank** by MaxSim over their vectors decoded from the codes
(:func:`_rerank`), and the **exact rerank** over the float16 originals (:func:`_exact_rerank`).
Nothing here writes: the write side is :mod:`.compressed_write`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..model import FloatArray
from ..scoring import blas_thread_limit
from .base import top_k
from .filters import filter_predicate
from .store import Segment, Snapshot, will_need

__all__ = ["Scored", "search", "token_rows"]

#: A document's score and where it is: ``(score, (segment number, document in segment))``.
Scored = tuple[float, tuple[int, int]]


def search(
    snap: Snapshot,
    query: FloatArray,
    k: int,
    checked: dict[str, Any] | None,
    *,
    nprobe: int,
    candidates: int,
    rerank: int,
    exact: int,
) -> list[Scored]:
    """The best documents of ``snap`` for ``query`` (``[n, dim]``), best first (at least the
    best ``k``; raw MaxSim sums), among those matching the validated filter ``checked``.
    ``exact`` documents (0: none) are scored over their originals."""
    if snap.count == 0 or snap.codec is None:
        return []
    # One BLAS thread, as the exact index: the products here are small, and with another
    # process on the 2 cores the query-centroid product took 24 ms on OpenBLAS's default
    # threads against 0.7 ms on one (32 x 60,918 scores).
    with blas_thread_limit(1):
        centroid_scores = snap.codec.centroid_scores(query)  # [q, centroids]
        picked = _candidates(snap, centroid_scores, k, checked, nprobe, candidates)
        if not picked:
            return []
        picked = _prune(snap, centroid_scores, picked, max(k, rerank))
        exact = max(k, exact) if exact else 0
        if exact >= len(picked):  # all of them exact: the codes would only order them
            return _exact_rerank(snap, query, [(0.0, where) for where in picked], exact)
        scored = _rerank(snap, query, centroid_scores, picked)
        scored.sort(key=lambda item: (-item[0], item[1]))
        return _exact_rerank(snap, query, scored, exact) if exact else scored


def _candidates(
    snap: Snapshot,
    centroid_scores: FloatArray,
    k: int,
    checked: dict[str, Any] | None,
    nprobe: int,
    candidates: int,
) -> list[tuple[int, int]]:
    """The documents to rerank, best approximate score first: ``(segment, local)``."""
    ncentroids = centroid_scores.shape[1]
    nprobe = min(nprobe, ncentroids)
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
    want = max(candidates, k)
    predicate = filter_predicate(checked) if checked is not None else None
    if predicate is None:
        return [(int(seg_ids[i]), int(locals_[i])) for i in top_k(approx, want)]

    # Filtered: walk the candidates best first, keeping matches until there are enough.
    ranked = top_k(approx, len(approx))
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
    snap: Snapshot,
    query: FloatArray,
    centroid_scores: FloatArray,
    picked: list[tuple[int, int]],
) -> list[Scored]:
    """MaxSim of the query against the decompressed vectors of the picked documents
    (scored from their codes, :meth:`ResidualCodec.similarities`, where the segment
    stores scales; decoded and renormalized in segments of format version 1)."""
    codec = snap.codec
    assert codec is not None
    scores = np.empty(len(picked), dtype=np.float32)
    for s, (positions, locals_) in _by_segment(picked).items():
        seg = snap.segments[s]
        rows, lengths = token_rows(seg, locals_)
        ids, codes = seg.centroid_ids[rows], seg.codes[rows]
        if seg.scales is None:
            sims = query @ codec.decode(ids, codes).T
        else:
            sims = codec.similarities(query, centroid_scores, ids, codes, seg.scales[rows])
        scores[positions] = _segment_sums(sims, lengths)
    return [(float(score), where) for score, where in zip(scores, picked, strict=True)]


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
    snap: Snapshot, centroid_scores: FloatArray, picked: list[tuple[int, int]], keep: int
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
        rows, lengths = token_rows(seg, locals_)
        # [q, tokens] (49 -> 11 ms for 1,024 documents against [tokens, q]; _segment_sums)
        sims = np.take(by_query, np.asarray(seg.centroid_ids[rows]), axis=1)
        scores[positions] = _segment_sums(sims, lengths)
    return [picked[int(n)] for n in top_k(scores, keep)]


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


def token_rows(
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


def _exact_rerank(
    snap: Snapshot,
    query: FloatArray,
    ranked: list[Scored],
    count: int,
) -> list[Scored]:
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
