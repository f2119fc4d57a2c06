"""Residual compression of ColBERT token vectors: a centroid id plus ``nbits`` per dimension.

A token vector ``v`` is stored as the id of its nearest centroid ``c`` (k-means over a sample
of the index's token vectors) and its residual ``v - c`` product-quantized: the dimensions are
cut into groups of ``8 // nbits`` (4 at the default 2 bits), and each group is stored as one
byte, the index of its nearest entry in that group's 256-entry codebook (k-means over the
sample's residuals). That is ``nbits * dim / 8`` bytes (32 for 128 dims at 2 bits) plus 2
bytes of centroid id (4 beyond 65,536 centroids), plus one byte of scale: the inverse norm
of ``c + codebook entries`` (:func:`quantize_scales`), so that the decoded vector
``scale * (c + codebook entries)`` has unit length without computing its norm at search time.
The centroids are rounded to float16 when trained (exactly representable, so they are
stored as float16 without loss: half the bytes of the centroid table).

Scoring a query without decoding (:meth:`ResidualCodec.similarities`):
``q . v = scale * (q . c + q . r)``, where ``q . c`` is a lookup in the query-centroid scores
that the search computed to probe the inverted lists, and ``q . r`` one product with the
residuals, gathered from the small codebooks. Against decoding each vector (a gather of its
centroid's row from a table of up to 32 MB, an add and a renormalization) it is 1.2-1.4x
faster: the rerank of 62,208 token vectors (256 documents) took 26.1 ms against 31.8, and
27.8 against 38.2 in another run, medians of 21 interleaved runs, one BLAS thread, load 2
(``python benchmarks/index_rerank.py``); in a search of the 100k synthetic index, 37.6 ms
against 47.9. The stored scale keeps the recall of renormalized vectors (0.858 on 3,000 BEIR
passages, 60 queries; without any normalization 0.848).

Why product quantization rather than PLAID's per-dimension 2-bit buckets: at the same 32
bytes, on 3,000 real passages encoded by the test model (515k token vectors, 1,024 centroids,
60 queries), the decoded vectors' mean cosine to the originals was 0.969 against 0.949, and
recall@10 of MaxSim over the decoded vectors against exact MaxSim 0.85 against 0.80 (the
bucket codec is the one of commit 1aa1a42; ``benchmarks/index_scale.py fidelity`` measures
this codec).

Training uses faiss (k-means, extra ``index``). Encoding uses faiss too when it is installed
(its product-quantizer encoder is about 10x faster than the numpy one, which stays as the
fallback, so that an index can take new documents without faiss); decoding is numpy.

k-means runs 4 iterations, as colbert-ai's PLAID indexer does: on the 3,000 passages above,
10 iterations took 6x longer and moved the decoded vectors' mean cosine from 0.9723 to 0.9729.

Small indexes train in time proportional to their size: the codebooks' sample and
iterations scale with the k-means sample (:func:`codebook_sample`,
:func:`codebook_iterations`), faiss computes distances by BLAS while training
(:func:`_blas_distances`), and faiss is told the sample's points per centroid rather than
warning on stderr. From BEIR's 8,041 passages on (524,288 sample vectors) the trained codec
is what it was, bit for bit (centroids, codebooks, cells). Building from cached vectors
(``benchmarks/index_small.py``, load 5-7; CPU seconds, as the wall time was mostly waiting):
50 BEIR passages 0.35 s instead of 8.0, 200 in 1.1 instead of 32.7, 1,000 in 2.6 instead of
12.3 (wall medians 0.7-0.9, 1.7-2.9 and 4.2-6.8 s, against 20-25, 78-181 and 22-52).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
CodeArray = npt.NDArray[np.uint8]
IdArray = npt.NDArray[Any]

#: Rows assigned to centroids per matrix product (bounds the [rows, centroids] score block).
_ASSIGN_ELEMENTS = 1 << 24
#: Rows encoded at once.
_ENCODE_ROWS = 1 << 16
#: Residuals sampled to train the codebooks (at most).
_CODEBOOK_SAMPLE = 1 << 16
#: Residuals per codebook entry that faiss asks for (its ``min_points_per_centroid``): 256
#: entries take 9,984.
_CODEBOOK_MIN = 39 * 256


def codebook_sample(points: int) -> int:
    """Residuals that train the codebooks when k-means had ``points`` sample vectors: an
    eighth of them, at least :data:`_CODEBOOK_MIN` (or all there are) and at most
    :data:`_CODEBOOK_SAMPLE`.

    Training the codebooks costs the same per residual at any index size (32 k-means of 256
    entries at 128 dimensions), so a fixed sample made small indexes slow: 65,536 residuals
    took 4.8 s for 1,000 passages as for 100,000. An eighth keeps the cost proportional to
    the index up to the cap, which is reached from 524,288 sample vectors on (8,192
    centroids: BEIR's 8,041 passages), so larger indexes train exactly as before.

    >>> codebook_sample(524_288), codebook_sample(110_000), codebook_sample(20_000)
    (65536, 13750, 9984)
    >>> codebook_sample(5_000)
    5000
    """
    return min(points, max(_CODEBOOK_MIN, min(_CODEBOOK_SAMPLE, points // 8)))


def codebook_iterations(residuals: int) -> int:
    """k-means iterations of the codebooks for ``residuals`` training residuals: faiss's 25
    for a full sample (:data:`_CODEBOOK_SAMPLE`), in proportion below it, at least 10.

    On 1,000 BEIR passages (110,461 vectors, 13,750 residuals), 10 iterations instead of 25
    trained in 1.8 s instead of 4.0 (the whole codec) and moved the decoded vectors' mean
    cosine from 0.9828 to 0.9826 (0.9766 to 0.9763 on 300 passages not trained on).

    >>> codebook_iterations(65_536), codebook_iterations(40_000), codebook_iterations(13_750)
    (25, 15, 10)
    """
    return max(10, min(25, 25 * residuals // _CODEBOOK_SAMPLE))


#: Decoded scale of each stored scale byte ``b``: ``2 ** ((b - 128) / 128)``, from 0.5 to
#: 1.99 in steps of 0.54% (a relative error of at most 0.27%: on 3,000 BEIR passages the
#: decoded vectors' norms were 0.83-1.08, and recall against exact MaxSim was that of exact
#: renormalization, 0.858).
SCALES: FloatArray = (2.0 ** ((np.arange(256) - 128) / 128)).astype(np.float32)


def quantize_scales(scales: npt.ArrayLike) -> CodeArray:
    """The byte whose :data:`SCALES` entry is nearest (in log scale) to each scale,
    clipped to the table's range.

    >>> quantize_scales([1.0, 0.5, 2.0, 1.01]).tolist()
    [128, 0, 255, 130]
    """
    logs = np.log2(np.maximum(np.asarray(scales, dtype=np.float64), 1e-30))
    out: CodeArray = np.clip(np.round(logs * 128) + 128, 0, 255).astype(np.uint8)
    return out


def default_centroids(tokens: int, dim: int = 128) -> int:
    """Number of centroids for an index of ``tokens`` vectors of ``dim`` dimensions.

    PLAID's ``16 * sqrt(tokens)`` as long as the float16 centroid table costs at most 1.5
    bytes per token vector, and never fewer than a power of two near ``8 * sqrt(tokens)``;
    at most ``tokens // 40`` (k-means wants 39+ points per centroid) and 65,536 (2-byte ids),
    at least 1. From 1,024 on, a multiple of 256.

    At 128 dimensions: 11,264 for the 2M token vectors of 8,000 BEIR passages, 65,536 from
    about 17M vectors (70,000 passages). On those BEIR passages (50 queries, default search
    settings, same script), recall@10 against exact MaxSim was 0.824 with 8,192 centroids,
    0.850 with 12,288 and 0.846 with 16,384, at 38.4, 39.0 and 39.6 bytes per token vector.

    >>> default_centroids(1_955_905), default_centroids(24_000_000), default_centroids(240_000)
    (11264, 65536, 4096)
    """
    if tokens <= 0:
        return 1
    floor = 2 ** round(math.log2(max(1.0, 8 * math.sqrt(tokens))))
    plaid = min(16 * math.sqrt(tokens), 1.5 * tokens / (2 * dim))
    k = int(min(max(floor, plaid), tokens // 40, 1 << 16))
    if k >= 1024:
        k -= k % 256
    return max(1, k)


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids plus residual codebooks (immutable once trained)."""

    centroids: FloatArray  # [k, dim] float32, unit norm
    codebooks: FloatArray  # [code_bytes, 256, 8 // nbits] float32
    nbits: int
    #: Two-level codecs: k-means centroids of the centroids' cells ``[cells, dim]``; the
    #: centroids of cell ``g`` are rows ``cell_offsets[g]:cell_offsets[g + 1]``. None: one level.
    coarse: FloatArray | None = None
    cell_offsets: npt.NDArray[np.int64] | None = None

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
        iterations: int = 4,
        seed: int = 0,
    ) -> ResidualCodec:
        """k-means over ``sample`` (unit-norm rows), then codebooks for its residuals.

        From :data:`TWO_LEVEL_MIN` centroids on, k-means is two-level (see
        :func:`_two_level_kmeans`), and so is the assignment of vectors to centroids."""
        import faiss  # optional dependency (extra "index"), imported when training

        sample = np.ascontiguousarray(sample, dtype=np.float32)
        n, dim = sample.shape
        ncentroids = max(1, min(ncentroids, n))
        coarse: FloatArray | None = None
        cell_offsets: npt.NDArray[np.int64] | None = None
        with _kmeans_threads(len(sample)), _blas_distances():
            if ncentroids >= TWO_LEVEL_MIN:
                centroids, coarse, cell_offsets = _two_level_kmeans(
                    sample, ncentroids, iterations, seed
                )
            else:
                centroids = _kmeans(sample, ncentroids, iterations, seed)
        # float16-representable, so that they are stored in half the bytes without loss
        centroids = centroids.astype(np.float16).astype(np.float32)
        rng = np.random.default_rng(seed)
        picked = sample[rng.permutation(n)[: codebook_sample(n)]]
        nearest = _nearest(centroids, coarse, cell_offsets, picked)
        residuals = np.ascontiguousarray(picked - centroids[nearest])
        groups = dim * nbits // 8
        pq = faiss.ProductQuantizer(dim, groups, 8)
        if len(residuals) < 256:  # too few to train 256 entries: repeat with tiny jitter
            reps = -(-256 // max(1, len(residuals)))
            residuals = np.tile(residuals, (reps, 1))
            residuals += rng.normal(0, 1e-4, residuals.shape).astype(np.float32)
        # Fewer residuals than faiss's 39 per entry only where the sample holds no more (a
        # small index): say so to faiss, which would otherwise warn on stderr, once per group.
        pq.cp.min_points_per_centroid = min(
            pq.cp.min_points_per_centroid, max(1, len(residuals) // 256)
        )
        pq.cp.niter = codebook_iterations(len(residuals))
        with _one_thread(), _blas_distances():
            pq.train(residuals)
        codebooks = faiss.vector_to_array(pq.centroids).astype(np.float32)
        return cls(
            centroids, codebooks.reshape(groups, 256, 8 // nbits), nbits, coarse, cell_offsets
        )

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self, vectors: FloatArray) -> tuple[IdArray, CodeArray]:
        """Centroid ids ``[n]`` and residual codes ``[n, code_bytes]`` (in blocks of
        65,536 rows, so temporaries stay small)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) > _ENCODE_ROWS:
            parts = [
                self.encode(vectors[i : i + _ENCODE_ROWS])
                for i in range(0, len(vectors), _ENCODE_ROWS)
            ]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        ids = self.assign(vectors)
        residuals = vectors - self.centroids[ids]
        encoder = self._faiss_encoder()
        if encoder is not None:
            with _one_thread():
                codes = encoder.compute_codes(np.ascontiguousarray(residuals))
        else:
            codes = self._numpy_codes(residuals)
        return ids.astype(self.id_dtype), codes

    def assign(self, vectors: FloatArray) -> npt.NDArray[np.intp]:
        """The centroid of each row: the nearest one (one level), or the nearest among the
        centroids of the row's :data:`CELLS_PROBED` nearest cells (two levels)."""
        return _nearest(self.centroids, self.coarse, self.cell_offsets, vectors)

    def _numpy_codes(self, residuals: FloatArray) -> CodeArray:
        """Nearest codebook entry per group, in numpy (the encoder without faiss)."""
        n, per = len(residuals), 8 // self.nbits
        grouped = residuals.reshape(n, self.code_bytes, per)
        codes = np.empty((n, self.code_bytes), dtype=np.uint8)
        half_norms = 0.5 * (self.codebooks**2).sum(axis=2)  # [groups, 256]
        for g in range(self.code_bytes):
            # nearest entry = largest  r . e - |e|^2 / 2
            scores = grouped[:, g, :] @ self.codebooks[g].T - half_norms[g]
            codes[:, g] = scores.argmax(axis=1)
        return codes

    def _faiss_encoder(self) -> Any:
        """A faiss ``ProductQuantizer`` holding these codebooks, or None without faiss."""
        cached = self.__dict__.get("_pq")
        if cached is not None:
            return cached
        try:
            import faiss
        except ImportError:
            return None
        pq = faiss.ProductQuantizer(self.dim, self.code_bytes, 8)
        faiss.copy_array_to_vector(np.ascontiguousarray(self.codebooks).ravel(), pq.centroids)
        object.__setattr__(self, "_pq", pq)  # a cache on a frozen dataclass
        return pq

    def residuals(self, codes: CodeArray) -> FloatArray:
        """The decoded residuals ``[n, dim]`` float32 (codebook entries, no centroid)."""
        table = self.codebooks.reshape(-1, self.codebooks.shape[2])
        # One flat gather: row (group * 256 + code) of the codebooks.
        small = codes.shape[1] * 256 <= 1 << 16  # 16-bit indices gather faster
        index_type = np.uint16 if small else np.intp
        base = np.arange(codes.shape[1], dtype=index_type) * index_type(256)
        gathered = np.take(table, codes.astype(index_type) + base, axis=0)
        out: FloatArray = gathered.reshape(len(codes), self.dim)
        return out

    def scales(self, ids: IdArray, codes: CodeArray) -> CodeArray:
        """The scale byte of each encoded vector: its decoded inverse norm, quantized
        (:func:`quantize_scales`)."""
        out = np.empty(len(ids), dtype=np.uint8)
        for start in range(0, len(ids), _ENCODE_ROWS):
            part = slice(start, start + _ENCODE_ROWS)
            out[part] = quantize_scales(1.0 / _norms(self._unscaled(ids[part], codes[part])))
        return out

    def _unscaled(self, ids: IdArray, codes: CodeArray) -> FloatArray:
        """Centroid plus decoded residual, ``[n, dim]`` float32, before any scaling."""
        out: FloatArray = self.centroids[np.asarray(ids, dtype=np.intp)] + self.residuals(codes)
        return out

    def decode(self, ids: IdArray, codes: CodeArray, scales: CodeArray | None = None) -> FloatArray:
        """Unit-norm approximations of the encoded vectors, ``[n, dim]`` float32: scaled by
        their stored ``scales`` bytes, or renormalized when there are none (indexes written
        before scales were stored)."""
        out = self._unscaled(ids, codes)
        if scales is not None:
            out *= SCALES[np.asarray(scales)][:, None]
        else:
            out /= _norms(out)[:, None]
        return out

    def centroid_scores(self, query: FloatArray) -> FloatArray:
        """``query @ centroids.T`` (``[q, centroids]``), from a transposed copy of the
        centroids (``[dim, centroids]``, made on the first call and kept: the size of the
        centroids again). The product is 1.6x faster against that layout on one BLAS thread:
        8.4 against 13.6 ms for 32 query vectors and 60,918 centroids of 128 dimensions."""
        by_dim = self.__dict__.get("_by_dim")
        if by_dim is None:
            by_dim = np.ascontiguousarray(self.centroids.T)
            object.__setattr__(self, "_by_dim", by_dim)  # a cache on a frozen dataclass
        scores: FloatArray = np.asarray(query, dtype=np.float32) @ by_dim
        return scores

    def similarities(
        self,
        query: FloatArray,
        centroid_scores: FloatArray,
        ids: IdArray,
        codes: CodeArray,
        scales: CodeArray,
    ) -> FloatArray:
        """``query @ decode(ids, codes, scales).T`` (``[q, n]``) without decoding:
        ``scale * (q . c + q . r)``, with ``q . c`` looked up in ``centroid_scores``
        (``query @ centroids.T``, which a search has already computed)."""
        sims: FloatArray = query @ self.residuals(codes).T
        sims += np.take(centroid_scores, np.asarray(ids, dtype=np.intp), axis=1)
        sims *= SCALES[np.asarray(scales)]
        return sims


def _norms(rows: FloatArray) -> FloatArray:
    """Euclidean norm of each row, at least 1e-12 (einsum: half the time of linalg.norm)."""
    norms: FloatArray = np.maximum(np.sqrt(np.einsum("ij,ij->i", rows, rows)), 1e-12)
    return norms


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """faiss on one OpenMP thread for the duration: product-quantizer kernels are too small
    to share. With another process on the 2 cores, training the codebooks took 21.8 s on
    2 threads against 4.8 s on 1 (65,536 residuals, 32 groups of 256 entries)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextlib.contextmanager
def _kmeans_threads(points: int) -> Iterator[None]:
    """k-means of a sample under :data:`_ONE_THREAD_BELOW` points on one faiss thread (as
    :func:`_one_thread`): its per-cell k-means are too small to share (1,000 BEIR passages:
    two-level k-means in 1.0 s against 4.2 s on 2 threads, load 2-3); larger samples on
    faiss's threads, as before."""
    if points >= _ONE_THREAD_BELOW:
        yield
        return
    with _one_thread():
        yield


#: k-means samples smaller than this train on one faiss thread (:func:`_kmeans_threads`);
#: from here on, :func:`codebook_sample` is at its cap too.
_ONE_THREAD_BELOW = 8 * _CODEBOOK_SAMPLE


@contextlib.contextmanager
def _blas_distances() -> Iterator[None]:
    """faiss computes nearest-entry distances with BLAS for the duration, whatever the number
    of points.

    faiss (1.15) takes a per-point loop instead when ``points * dim`` is under its
    ``distance_compute_blas_threshold`` (128,000): for the 4-dimension groups of the
    codebooks, under 32,000 residuals. That loop is 12x slower per residual at 256 entries
    (1.1 us against 0.09 per point and iteration, one thread): 22,402 residuals trained in
    30 s, 32,010 in 2.5. From 32,000 residuals on, BLAS was used already (so the results of
    large indexes do not change)."""
    import faiss

    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 0
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


def _nearest(
    centroids: FloatArray,
    coarse: FloatArray | None,
    cell_offsets: npt.NDArray[np.int64] | None,
    vectors: FloatArray,
) -> npt.NDArray[np.intp]:
    """:meth:`ResidualCodec.assign` for centroids that may not have codebooks yet."""
    if coarse is None or cell_offsets is None:
        return assign(centroids, vectors)
    return _two_level_assign(centroids, coarse, cell_offsets, vectors)


def assign(centroids: FloatArray, vectors: FloatArray) -> npt.NDArray[np.intp]:
    """Index of the nearest (largest dot product) centroid of each row, in blocks."""
    n = len(vectors)
    out = np.empty(n, dtype=np.intp)
    step = max(1, _ASSIGN_ELEMENTS // max(1, len(centroids)))
    for start in range(0, n, step):
        block = vectors[start : start + step] @ centroids.T
        out[start : start + step] = block.argmax(axis=1)
    return out


def _kmeans(
    sample: FloatArray, k: int, iterations: int, seed: int, per_centroid: int = 64
) -> FloatArray:
    """Spherical k-means with faiss: ``k`` unit-norm centroids."""
    import faiss

    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=iterations,
        seed=seed,
        spherical=True,
        max_points_per_centroid=per_centroid,
        # faiss asks for 39 points per centroid and warns on stderr below that; the callers
        # size k for 20+ (default_centroids, CompressedIndex), so the floor is the sample's.
        min_points_per_centroid=max(1, min(39, len(sample) // max(1, k))),
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(sample))
    centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return centroids


def _two_level_kmeans(
    sample: FloatArray, k: int, iterations: int, seed: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """About ``k`` centroids in cells: k-means into ``cells`` (a power of two near
    ``sqrt(k)``) coarse centroids, then k-means within each cell, its share of ``k`` in
    proportion to the sample points it holds. Returns the centroids (grouped by cell), the
    coarse centroids of the non-empty cells, and the cells' offsets into the centroids.

    Training costs ``sample x k / cells`` products instead of ``sample x k``, and so does
    assigning a vector later (plus ``cells`` for the coarse step): on 515k token vectors of
    BEIR passages, 4,096 centroids, a tenth of the products; 16,384 centroids trained in
    two levels fit the vectors better (mean cosine to the nearest centroid 0.833) than
    4,096 in one (0.782), and assign in 3.4 s against 8.9 s."""
    n = len(sample)
    cells = int(min(n, 2 ** round(math.log2(math.sqrt(k)))))
    coarse = _kmeans(sample, cells, iterations, seed, per_centroid=256)
    member = assign(coarse, sample)
    counts = np.bincount(member, minlength=cells)
    quota = _apportion(k, counts)
    order = np.argsort(member, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts, kept, offsets = [], [], [0]
    for g in range(cells):
        if quota[g] == 0:
            continue
        points = sample[order[starts[g] : starts[g + 1]]]
        if quota[g] == len(points):
            found = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
        elif quota[g] == 1:
            mean = points.mean(axis=0, keepdims=True)
            found = mean / max(float(np.linalg.norm(mean)), 1e-12)
        else:
            found = _kmeans(points, int(quota[g]), iterations, seed + g)
        parts.append(found.astype(np.float32))
        kept.append(g)
        offsets.append(offsets[-1] + len(found))
    return (
        np.ascontiguousarray(np.concatenate(parts)),
        np.ascontiguousarray(coarse[kept]),
        np.asarray(offsets, dtype=np.int64),
    )


def _apportion(k: int, counts: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Shares of ``k`` proportional to ``counts`` (largest remainders), each at least 1
    where the count is non-zero and at most the count; they sum to at most ``k``."""
    total = int(counts.sum())
    exact = k * counts / max(total, 1)
    quota: npt.NDArray[np.int64] = np.minimum(np.floor(exact).astype(np.int64), counts)
    quota[(counts > 0) & (quota == 0)] = 1
    while quota.sum() > k:  # the minimum of 1 overshot: take from the largest
        quota[int(np.argmax(quota))] -= 1
    spare = k - int(quota.sum())
    if spare > 0:
        room = counts - quota
        for g in np.argsort(-(exact - quota), kind="stable"):
            if spare == 0:
                break
            if room[g] > 0:
                quota[g] += 1
                spare -= 1
    return quota


#: Two-level k-means and assignment from this many centroids on.
TWO_LEVEL_MIN = 1024
#: Nearest cells whose centroids a vector is compared with (two-level assignment): on the
#: BEIR sample above, 1 cell found the nearest centroid for 79% of vectors, 2 for 90%, 4 for
#: 96% (a missed nearest centroid only makes that vector's residual larger).
CELLS_PROBED = 4


def _two_level_assign(
    centroids: FloatArray,
    coarse: FloatArray,
    cell_offsets: npt.NDArray[np.int64],
    vectors: FloatArray,
) -> npt.NDArray[np.intp]:
    """Nearest centroid among those of each row's :data:`CELLS_PROBED` nearest cells.

    BLAS runs on one thread here: the products are small (a cell's rows times its ~128
    centroids), and with another process on the 2 cores, 131,072 vectors took 1.9 s on one
    thread against 3.8 s on two."""
    from ..scoring import blas_thread_limit

    with blas_thread_limit(1):
        n = len(vectors)
        out = np.zeros(n, dtype=np.intp)
        if n == 0:
            return out
        probed = min(CELLS_PROBED, len(coarse))
        step = max(1, _ASSIGN_ELEMENTS // max(1, len(coarse)))
        for start in range(0, n, step):
            block = vectors[start : start + step]
            scores = block @ coarse.T
            if probed < len(coarse):
                near = np.argpartition(-scores, probed - 1, axis=1)[:, :probed]
            else:
                near = np.broadcast_to(np.arange(len(coarse)), scores.shape)
            cells = near.ravel()
            rows_of = np.repeat(np.arange(len(block)), probed)
            order = np.argsort(cells, kind="stable")
            bounds = np.searchsorted(cells[order], np.arange(len(coarse) + 1))
            best = np.full(len(block), -np.inf, dtype=np.float32)
            chosen = np.zeros(len(block), dtype=np.intp)
            for g in range(len(coarse)):
                rows = rows_of[order[bounds[g] : bounds[g + 1]]]
                if len(rows) == 0:
                    continue
                lo, hi = int(cell_offsets[g]), int(cell_offsets[g + 1])
                sims = block[rows] @ centroids[lo:hi].T
                arg = sims.argmax(axis=1)
                value = sims[np.arange(len(rows)), arg]
                better = value > best[rows]
                best[rows[better]] = value[better]
                chosen[rows[better]] = arg[better] + lo
            out[start : start + step] = chosen
        return out
