"""Residual compression of ColBERT token vectors: a centroid id plus ``nbits`` per dimension.

A token vector ``v`` is stored as the id of its nearest centroid ``c`` (k-means over a sample
of the index's token vectors) and its residual ``v - c`` quantized per dimension to
``2 ** nbits`` levels: ``nbits * dim / 8`` bytes (32 bytes for 128 dims at 2 bits) plus 2 or 4
bytes of centroid id. Decoding is ``c + level[code]`` renormalized to unit length.

The levels are per dimension: the cutoffs between codes are the residual's quantiles
(each code equally likely) and each code decodes to the mean residual of its bucket.

k-means uses faiss (extra ``index``); everything else here is numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
CodeArray = npt.NDArray[np.uint8]
IdArray = npt.NDArray[Any]

#: Rows assigned to centroids per matrix product (bounds the [rows, centroids] score block).
_ASSIGN_ELEMENTS = 1 << 24


def default_centroids(tokens: int) -> int:
    """Number of centroids for an index trained on ``tokens`` vectors: a power of two near
    ``4 * sqrt(tokens)``, at most ``tokens // 40`` (k-means wants 39+ points per centroid)
    and 65,536, at least 1."""
    if tokens <= 0:
        return 1
    k = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(tokens))))
    return int(max(1, min(k, tokens // 40, 1 << 16)))


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids plus per-dimension residual quantization levels (immutable once trained)."""

    centroids: FloatArray  # [k, dim] float32, unit norm
    cutoffs: FloatArray  # [dim, 2**nbits - 1] float32
    levels: FloatArray  # [dim, 2**nbits] float32
    nbits: int

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def code_bytes(self) -> int:
        """Bytes of residual code per token vector."""
        return self.dim * self.nbits // 8

    @property
    def id_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint16) if len(self.centroids) <= 1 << 16 else np.dtype(np.int32)

    # -- training --------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        sample: FloatArray,
        ncentroids: int,
        nbits: int = 2,
        *,
        iterations: int = 10,
        seed: int = 0,
    ) -> ResidualCodec:
        """k-means over ``sample`` (unit-norm rows), then the residual levels of the sample."""
        import faiss

        sample = np.ascontiguousarray(sample, dtype=np.float32)
        n, dim = sample.shape
        ncentroids = max(1, min(ncentroids, n))
        kmeans = faiss.Kmeans(
            dim,
            ncentroids,
            niter=iterations,
            seed=seed,
            spherical=True,
            max_points_per_centroid=64,
            verbose=False,
        )
        kmeans.train(sample)
        centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        residuals = sample - centroids[assign(centroids, sample)]
        levels_n = 1 << nbits
        qs = np.arange(1, levels_n) / levels_n
        cutoffs = np.quantile(residuals, qs, axis=0).T.astype(np.float32)  # [dim, L-1]
        codes = _bucketize(residuals, cutoffs)
        levels = np.zeros((dim, levels_n), dtype=np.float32)
        for b in range(levels_n):
            mask = codes == b
            counts = mask.sum(axis=0)
            sums = np.where(mask, residuals, 0).sum(axis=0)
            mid = np.quantile(residuals, (b + 0.5) / levels_n, axis=0)
            levels[:, b] = np.where(counts > 0, sums / np.maximum(counts, 1), mid)
        return cls(centroids, cutoffs, levels, nbits)

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self, vectors: FloatArray) -> tuple[IdArray, CodeArray]:
        """Centroid ids ``[n]`` and packed residual codes ``[n, code_bytes]``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        ids = assign(self.centroids, vectors)
        residuals = vectors - self.centroids[ids]
        codes = _bucketize(residuals, self.cutoffs)
        return ids.astype(self.id_dtype), _pack(codes, self.nbits)

    def decode(self, ids: IdArray, codes: CodeArray) -> FloatArray:
        """Unit-norm approximations of the encoded vectors, ``[n, dim]`` float32."""
        table = self._table()
        n = len(ids)
        residual = table[np.arange(codes.shape[1]), codes].reshape(n, self.dim)
        out = self.centroids[ids.astype(np.intp)] + residual
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _table(self) -> FloatArray:
        """``[code_bytes, 256, 8 // nbits]``: the residual values a code byte decodes to."""
        cached = getattr(self, "_lut", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        per_byte = 8 // self.nbits
        mask = (1 << self.nbits) - 1
        byte = np.arange(256)
        shifts = [8 - self.nbits * (j + 1) for j in range(per_byte)]
        digits = np.stack([(byte >> s) & mask for s in shifts], axis=1)  # [256, per_byte]
        levels = self.levels.reshape(self.code_bytes, per_byte, 1 << self.nbits)
        table = np.empty((self.code_bytes, 256, per_byte), dtype=np.float32)
        for j in range(per_byte):
            table[:, :, j] = levels[:, j, :][:, digits[:, j]]
        object.__setattr__(self, "_lut", table)
        return table


def assign(centroids: FloatArray, vectors: FloatArray) -> npt.NDArray[np.intp]:
    """Index of the nearest (largest dot product) centroid of each row, in blocks."""
    n = len(vectors)
    out = np.empty(n, dtype=np.intp)
    step = max(1, _ASSIGN_ELEMENTS // max(1, len(centroids)))
    for start in range(0, n, step):
        block = vectors[start : start + step] @ centroids.T
        out[start : start + step] = block.argmax(axis=1)
    return out


def _bucketize(residuals: FloatArray, cutoffs: FloatArray) -> npt.NDArray[np.uint8]:
    codes = np.zeros(residuals.shape, dtype=np.uint8)
    for j in range(cutoffs.shape[1]):
        codes += residuals > cutoffs[:, j]
    return codes


def _pack(codes: npt.NDArray[np.uint8], nbits: int) -> CodeArray:
    n, dim = codes.shape
    per_byte = 8 // nbits
    grouped = codes.reshape(n, dim // per_byte, per_byte)
    packed = np.zeros((n, dim // per_byte), dtype=np.uint8)
    for j in range(per_byte):
        packed |= grouped[:, :, j] << np.uint8(8 - nbits * (j + 1))
    return packed
