"""MaxSim late-interaction scoring, as pure numpy functions.

The score of a document for a query is the sum, over the query's vectors, of the largest dot
product with any of the document's vectors. Padding never wins a max: padded rows are set to
``-inf`` before the max, never to zero (a zero row would beat every negative similarity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "l2_normalize",
    "maxsim",
    "maxsim_padded",
    "maxsim_scores",
    "pad_vectors",
    "segmented_maxsim",
    "segmented_maxsim_batch",
]

FloatArray = npt.NDArray[np.float32]

#: Upper bound on the query-by-document-token similarity block computed at once (elements).
_BLOCK_ELEMENTS = 8_000_000
#: Document rows per block: small enough that a block's float32 copy (when stored as
#: float16) stays in cache while it is multiplied, large enough that multi-threaded BLAS
#: does not spend the product synchronizing its threads (measured: 4,096 and 8,192 rows are
#: equally fast on one thread, 8,192 is 1.45x faster than 4,096 on two threads of a busy
#: 2-core machine, 16,384 makes float16 1.08x slower than float32 on one thread).
_BLOCK_TOKENS = 8192
#: With many query vectors, fewer rows so that the similarity block ``[query vectors, rows]``
#: stays under _SIMS_ELEMENTS, but never below _MIN_BLOCK_ROWS.
_SIMS_ELEMENTS = 8192 * 512
_MIN_BLOCK_ROWS = 1024
#: More query vectors than this in one pass: products laid out [query vectors, rows].
_WIDE_QUERY = 64
#: float16 -> float32 exponent bias correction, 2**(127 - 15).
_HALF_BIAS = np.float32(2.0**112)
#: Queries whose largest magnitude is below this take the bias correction (no overflow).
_FOLD_LIMIT = 2.0**14
#: All bits but 28, 29 and 30 (0x8FFFFFFF as int32).
_CLEAR_28_30 = np.int32(-0x70000001)


def l2_normalize(vectors: FloatArray, eps: float = 1e-12) -> FloatArray:
    """Scale each row (last axis) to unit L2 norm, clamping the norm at ``eps``.

    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: FloatArray = (vectors / np.maximum(norms, eps)).astype(np.float32, copy=False)
    return normalized


def maxsim(query: FloatArray, document: FloatArray) -> float:
    """MaxSim of one query ``[q, dim]`` against one document ``[d, dim]``.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> d = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> round(maxsim(q, d), 4)  # 1.0 (first row) + 0.8 (second row)
    1.8
    """
    if document.shape[0] == 0:
        return float("-inf")
    return float((query @ document.T).max(axis=1).sum())


def pad_vectors(documents: Sequence[FloatArray]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Stack ragged ``[n_i, dim]`` arrays into ``[batch, max_n, dim]`` plus a validity mask.

    >>> t, m = pad_vectors([np.ones((1, 2), np.float32), np.ones((3, 2), np.float32)])
    >>> t.shape, m.tolist()
    ((2, 3, 2), [[True, False, False], [True, True, True]])
    """
    if not documents:
        return np.zeros((0, 0, 0), dtype=np.float32), np.zeros((0, 0), dtype=bool)
    width = max(d.shape[0] for d in documents)
    dim = documents[0].shape[1]
    tensor = np.zeros((len(documents), width, dim), dtype=np.float32)
    mask = np.zeros((len(documents), width), dtype=bool)
    for i, doc in enumerate(documents):
        tensor[i, : doc.shape[0]] = doc
        mask[i, : doc.shape[0]] = True
    return tensor, mask


def maxsim_padded(
    query: FloatArray, documents: FloatArray, mask: npt.NDArray[np.bool_]
) -> FloatArray:
    """MaxSim of one query ``[q, dim]`` against padded documents ``[batch, n, dim]``.

    ``mask[b, j]`` is True for real document vectors. Padded rows are set to ``-inf``:

    >>> q = np.array([[0.0, 1.0]], dtype=np.float32)
    >>> docs = np.array([[[0.0, -1.0], [0.0, 0.0]]], dtype=np.float32)  # 2nd row is padding
    >>> maxsim_padded(q, docs, np.array([[True, False]])).tolist()
    [-1.0]
    """
    sims = np.einsum("qd,bnd->bqn", query, documents, optimize=True)
    sims = np.where(mask[:, None, :], sims, np.float32(-np.inf))
    scores: FloatArray = sims.max(axis=2).sum(axis=1).astype(np.float32)
    return scores


def maxsim_scores(query: FloatArray, documents: Sequence[FloatArray]) -> FloatArray:
    """MaxSim of one query against many ragged documents, as batched matrix products.

    Documents are concatenated a block at a time (so memory stays bounded) and scored by
    :func:`segmented_maxsim`; no padding exists. A document with no vectors scores ``-inf``.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> docs = [np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0], [0.6, 0.8]], np.float32)]
    >>> [round(float(s), 4) for s in maxsim_scores(q, docs)]
    [1.0, 1.6]
    """
    scores = np.full(len(documents), -np.inf, dtype=np.float32)
    per_block = max(1, _BLOCK_ELEMENTS // max(1, query.shape[0]))
    start = 0
    while start < len(documents):
        stop, tokens = start, 0
        while stop < len(documents) and (
            stop == start or tokens + len(documents[stop]) <= per_block
        ):
            tokens += len(documents[stop])
            stop += 1
        block = documents[start:stop]
        offsets = np.concatenate(([0], np.cumsum([len(d) for d in block]))).astype(np.int64)
        scores[start:stop] = segmented_maxsim(query, np.concatenate(block), offsets)
        start = stop
    return scores


def segmented_maxsim(
    query: FloatArray,
    vectors: npt.NDArray[Any],
    offsets: npt.NDArray[np.int64],
    block_tokens: int | None = None,
) -> FloatArray:
    """MaxSim of one query against documents stored as one matrix plus offsets.

    Document ``i`` is ``vectors[offsets[i]:offsets[i+1]]``; an empty one scores ``-inf``.
    ``vectors`` may be float32 or float16 (scored in float32, converted exactly a block at a
    time). Returns float32 raw sums. See :func:`segmented_maxsim_batch`, which this calls.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    >>> segmented_maxsim(q, v, np.array([0, 1, 1, 3])).tolist()
    [1.0, -inf, 1.600000023841858]
    """
    scores: FloatArray = segmented_maxsim_batch([query], vectors, offsets, block_tokens)[0]
    return scores


def segmented_maxsim_batch(
    queries: Sequence[FloatArray],
    vectors: npt.NDArray[Any],
    offsets: npt.NDArray[np.int64],
    block_tokens: int | None = None,
) -> FloatArray:
    """MaxSim of several queries against documents stored as one matrix plus offsets, in one
    pass over the stored vectors: ``[len(queries), n_documents]`` float32 raw sums.

    Document ``i`` is ``vectors[offsets[i]:offsets[i+1]]``; an empty one scores ``-inf``, and
    a query without vectors scores 0 on the others. Queries may have different lengths. The rows
    are read in blocks of whole documents of about ``block_tokens`` rows (default: 8,192,
    fewer when so many query vectors share the pass that the similarity block would pass 4M
    elements): each block is one matrix product against every
    query vector at once and one segmented maximum (:func:`numpy.maximum.reduceat`, along
    the contiguous axis of the product), so reading the stored vectors once serves every
    query. float16 ``vectors`` are converted to float32 exactly, a block at a time, into a
    reused buffer with integer bit operations (numpy's own float16 cast is about 6x slower,
    as slow as the product itself); their scores are those of the float32 copy.

    >>> q1 = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> q2 = np.array([[0.5, 0.75]], dtype=np.float32)
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.75]], dtype=np.float16)
    >>> segmented_maxsim_batch([q1, q2], v, np.array([0, 1, 3])).tolist()
    [[1.0, 1.5], [0.5, 0.8125]]
    """
    n = len(offsets) - 1
    lengths = np.fromiter((len(q) for q in queries), dtype=np.int64, count=len(queries))
    scores = np.full((len(queries), n), -np.inf, dtype=np.float32)
    doc_lengths = np.diff(offsets)
    scores[np.ix_(lengths == 0, doc_lengths > 0)] = 0.0
    live = np.flatnonzero(lengths > 0)
    if n == 0 or live.size == 0:
        return scores
    stacked = np.concatenate([np.asarray(queries[int(i)], dtype=np.float32) for i in live])
    widths = lengths[live]
    query_starts = np.concatenate(([0], np.cumsum(widths)[:-1]))
    same_width = bool(np.all(widths == widths[0]))
    total, dim = stacked.shape
    converter = _BlockConverter(vectors.dtype, dim)
    if converter.half and float(np.abs(stacked).max(initial=0.0)) < _FOLD_LIMIT:
        # Fold float16's exponent correction into the (small) query instead of every block.
        stacked = stacked * _HALF_BIAS
        converter.rescale = False
    # Few query vectors: [rows, q] products (BLAS is fastest this way round) reduced along
    # rows; many: [q, rows] products reduced along their contiguous rows (reduceat across
    # rows of a wide [rows, q] array is an order of magnitude slower).
    wide = total > _WIDE_QUERY
    if block_tokens is not None:
        budget = max(1, int(block_tokens))
    else:
        budget = min(_BLOCK_TOKENS, max(_MIN_BLOCK_ROWS, _SIMS_ELEMENTS // total))
    sims_buffer = np.empty(budget * total, dtype=np.float32)
    query_t = stacked.T
    start = 0
    while start < n:
        # The last document whose rows end within the budget (at least one document).
        stop = int(np.searchsorted(offsets, offsets[start] + budget, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        first, last = int(offsets[start]), int(offsets[stop])
        nonempty = np.flatnonzero(doc_lengths[start:stop] > 0)
        if nonempty.size:
            rows = last - first
            block = converter(vectors[first:last])
            starts = offsets[start:stop][nonempty] - first
            if rows * total > sims_buffer.size:  # one document longer than the budget
                sims_buffer = np.empty(rows * total, dtype=np.float32)
            if wide:
                sims = np.matmul(
                    stacked, block.T, out=sims_buffer[: total * rows].reshape(total, rows)
                )
                best = np.maximum.reduceat(sims, starts, axis=1)  # [query vectors, docs]
            else:
                sims = np.matmul(
                    block, query_t, out=sims_buffer[: rows * total].reshape(rows, total)
                )
                best = np.maximum.reduceat(sims, starts, axis=0).T  # [query vectors, docs]
            if live.size == 1:
                summed = best.sum(axis=0)[None, :]
            elif same_width:
                summed = best.reshape(live.size, int(widths[0]), -1).sum(axis=1)
            else:
                summed = np.add.reduceat(best, query_starts, axis=0)
            scores[np.ix_(live, start + nonempty)] = summed
        start = stop
    return scores


class _BlockConverter:
    """Turns blocks of stored rows into float32 without allocating per block.

    float32 blocks pass through untouched. float16 blocks are converted exactly with three
    integer operations into a reused buffer: the bits, sign-extended to 32, are shifted by 13
    (exponent and mantissa land where float32 keeps them) and bits 28-30 are cleared (the
    sign extension put ones there for negative values), which leaves float32 bits equal to
    the value times ``2**-112``; a multiplication by ``2**112`` (done here when ``rescale``,
    else folded into the query by the caller) corrects the exponent bias and makes float16
    subnormals exact too. Finite values only (a stored float16 infinity would come back as
    65536 and more).
    """

    def __init__(self, dtype: np.dtype[Any], dim: int) -> None:
        self.half = dtype == np.float16
        self.dim = dim
        self.rescale = True
        self._bits: npt.NDArray[np.int32] | None = None

    def __call__(self, block: npt.NDArray[Any]) -> FloatArray:
        if block.dtype == np.float32:
            return block
        if not self.half:
            converted: FloatArray = block.astype(np.float32)
            return converted
        rows = len(block)
        if self._bits is None or len(self._bits) < rows:
            self._bits = np.empty((rows, self.dim), dtype=np.int32)
        bits = self._bits[:rows]
        np.copyto(bits, block.view(np.int16))  # sign-extends
        np.left_shift(bits, 13, out=bits)
        np.bitwise_and(bits, _CLEAR_28_30, out=bits)
        values: FloatArray = bits.view(np.float32)
        if self.rescale:
            np.multiply(values, _HALF_BIAS, out=values)
        return values
