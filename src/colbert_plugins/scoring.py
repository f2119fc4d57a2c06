"""MaxSim late-interaction scoring, as pure numpy functions.

The score of a document for a query is the sum, over the query's vectors, of the largest dot
product with any of the document's vectors. Padding never wins a max: padded rows are set to
``-inf`` before the max, never to zero (a zero row would beat every negative similarity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["l2_normalize", "maxsim", "maxsim_padded", "maxsim_scores", "pad_vectors"]

FloatArray = npt.NDArray[np.float32]

#: Upper bound on the query-by-document-token similarity block computed at once (elements).
_BLOCK_ELEMENTS = 8_000_000


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

    All document vectors are concatenated so no padding exists; the per-document maximum is
    a segmented reduction. Work is split into blocks so memory stays bounded. A document with
    no vectors scores ``-inf``.

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
        _score_block(query, documents, start, stop, scores)
        start = stop
    return scores


def _score_block(
    query: FloatArray, documents: Sequence[FloatArray], start: int, stop: int, out: FloatArray
) -> None:
    block = [(i, documents[i]) for i in range(start, stop) if len(documents[i])]
    if not block:
        return
    indices = np.fromiter((i for i, _ in block), dtype=np.int64)
    lengths = np.fromiter((len(d) for _, d in block), dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    stacked = np.concatenate([d for _, d in block], axis=0)
    sims = query @ stacked.T  # [q, total tokens]
    out[indices] = np.maximum.reduceat(sims, offsets, axis=1).sum(axis=0)
