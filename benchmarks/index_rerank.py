"""The compressed index's rerank stage: MaxSim of one query against the token vectors of the
documents kept for reranking, scored from their codes (``ResidualCodec.similarities``: query-
centroid lookups, one product with the residuals, the stored scale bytes) against decoding
every vector and renormalizing it (``decode`` without scales, as format version 1 does).

    python benchmarks/index_rerank.py [--centroids 32768] [--documents 256] [--length 243]

The codes are random (timings do not depend on their values); the documents' length is the
mean of the synthetic 100k run (243 tokens). Runs on one BLAS thread, as searches do; prints
the median of ``--repeats`` interleaved runs of each path and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def main() -> None:
    from colbert_plugins.index.codec import ResidualCodec
    from colbert_plugins.index.compressed_search import _segment_sums
    from colbert_plugins.scoring import blas_thread_limit, segmented_maxsim

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centroids", type=int, default=32768)
    parser.add_argument("--documents", type=int, default=256)
    parser.add_argument("--length", type=int, default=243)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dim, n = args.dim, args.documents * args.length

    def unit(rows: int) -> np.ndarray:
        x = rng.standard_normal((rows, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    centroids = unit(args.centroids).astype(np.float16).astype(np.float32)
    codebooks = (rng.standard_normal((dim // 4, 256, 4)) * 0.06).astype(np.float32)
    codec = ResidualCodec(centroids, codebooks, 2)
    ids = rng.integers(0, args.centroids, n).astype(np.uint16)
    codes = rng.integers(0, 256, (n, dim // 4)).astype(np.uint8)
    scales = codec.scales(ids, codes)
    query = unit(32)
    lengths = np.full(args.documents, args.length, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def decoded() -> np.ndarray:
        return segmented_maxsim(query, codec.decode(ids, codes), offsets)

    centroid_scores = query @ codec.centroids.T  # the search's first stage computes these

    def from_codes() -> np.ndarray:
        return _segment_sums(
            codec.similarities(query, centroid_scores, ids, codes, scales), lengths
        )

    times: dict[str, list[float]] = {"decode + renormalize": [], "from codes + scales": []}
    with blas_thread_limit(1):
        for _ in range(args.repeats):
            for name, fn in zip(times, (decoded, from_codes), strict=True):
                start = time.perf_counter()
                fn()
                times[name].append(1000 * (time.perf_counter() - start))
        diff = float(np.abs(decoded() - from_codes()).max())
    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; {args.documents} documents x "
        f"{args.length} tokens ({n} vectors), {args.centroids} centroids, {args.repeats} repeats"
    )
    medians = {name: statistics.median(v) for name, v in times.items()}
    for name, ms in medians.items():
        print(f"{name:<24} median {ms:6.1f} ms")
    ratio = medians["decode + renormalize"] / medians["from codes + scales"]
    print(f"speed-up {ratio:.2f}x; max |score difference| {diff:.4f} (scale bytes vs exact norms)")


if __name__ == "__main__":
    main()
