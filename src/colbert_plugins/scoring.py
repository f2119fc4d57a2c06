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
]

FloatArray = npt.NDArray[np.float32]

#: Upper bound on the query-by-document-token similarity block computed at once (elements).
_BLOCK_ELEMENTS = 8_000_000
#: Default upper bound on the document rows scored in one matrix product.
_BLOCK_TOKENS = 65_536


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
        scores[start:stop] = segmented_maxsim(query, np.concatenate(block), offsets, per_block)
        start = stop
    return scores


def segmented_maxsim(
    query: FloatArray,
    vectors: npt.NDArray[Any],
    offsets: npt.NDArray[np.int64],
    block_tokens: int = _BLOCK_TOKENS,
) -> FloatArray:
    """MaxSim of one query against documents stored as one matrix plus offsets.

    Document ``i`` is ``vectors[offsets[i]:offsets[i+1]]``; an empty one scores ``-inf``.
    Rows are scored in blocks of about ``block_tokens`` (converted to float32 first, so
    float16 storage is scored in float32), each block one matrix product and one segmented
    maximum (:func:`numpy.maximum.reduceat`). Returns float32 raw sums.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    >>> segmented_maxsim(q, v, np.array([0, 1, 1, 3])).tolist()
    [1.0, -inf, 1.600000023841858]
    """
    n = len(offsets) - 1
    scores = np.full(n, -np.inf, dtype=np.float32)
    lengths = np.diff(offsets)
    start = 0
    while start < n:
        # The last document whose rows end within the budget (at least one document).
        stop = int(np.searchsorted(offsets, offsets[start] + block_tokens, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        first, last = int(offsets[start]), int(offsets[stop])
        nonempty = np.flatnonzero(lengths[start:stop] > 0)
        if nonempty.size:
            block = vectors[first:last]
            if block.dtype != np.float32:
                block = block.astype(np.float32)
            sims = query @ block.T  # [q, rows]
            starts = offsets[start:stop][nonempty] - first
            scores[start + nonempty] = np.maximum.reduceat(sims, starts, axis=1).sum(axis=0)
        start = stop
    return scores
