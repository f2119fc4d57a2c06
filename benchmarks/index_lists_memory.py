"""Memory and time of building a segment's inverted lists: the global stable argsort the
SegmentWriter used before commit 713362e against its counting sort, on the same random
(centroid, document) pairs, in one run.

Usage:
    python benchmarks/index_lists_memory.py [--pairs-per-chunk 100000] [--chunks 200]

Prints, for each method, seconds and the extra memory numpy allocated at the peak
(tracemalloc), per pair, and whether both produced identical lists.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Pairs = list[tuple[npt.NDArray[np.integer], npt.NDArray[np.int32]]]
Lists = tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]


def argsort_lists(pairs: Pairs, k: int) -> Lists:
    """The method before: concatenate every chunk's pairs, stable argsort by centroid."""
    cids = np.concatenate([c for c, _ in pairs])
    pids = np.concatenate([p for _, p in pairs])
    order = np.argsort(cids, kind="stable")
    cids, pids = cids[order], pids[order]
    return np.searchsorted(cids, np.arange(k + 1)).astype(np.int64), pids


def counting_lists(pairs: Pairs, k: int) -> Lists:
    """The method now (``SegmentWriter._inverted_lists``), restated for the comparison."""
    counts = np.zeros(k, np.int64)
    for cids, _ in pairs:
        counts += np.bincount(cids, minlength=k)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    pids = np.empty(int(offsets[-1]), np.int32)
    filled = offsets[:-1].copy()
    for cids, chunk_pids in pairs:
        chunk_counts = np.bincount(cids, minlength=k)
        run_starts = np.concatenate([[0], np.cumsum(chunk_counts)[:-1]])
        pids[filled[cids] + (np.arange(len(cids)) - run_starts[cids])] = chunk_pids
        filled += chunk_counts
    return offsets, pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centroids", type=int, default=32768)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--pairs-per-chunk", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    wide: Pairs = []  # int64 centroid ids, as the writer held them before
    narrow: Pairs = []  # int32, as now
    first = 0
    for _ in range(args.chunks):
        cid = rng.integers(0, args.centroids, args.pairs_per_chunk)
        pid = rng.integers(first, first + 1024, args.pairs_per_chunk)
        first += 1024
        key = np.unique(cid.astype(np.int64) * (1 << 31) + pid)
        pids = (key & ((1 << 31) - 1)).astype(np.int32)
        wide.append((key >> 31, pids))
        narrow.append(((key >> 31).astype(np.int32), pids))
    n = sum(len(c) for c, _ in wide)
    results: list[Lists] = []
    runs: list[tuple[str, Callable[[Pairs, int], Lists], Pairs, int]] = [
        ("argsort (before)", argsort_lists, wide, 12),
        ("counting sort (now)", counting_lists, narrow, 8),
    ]
    for name, method, pairs, held in runs:
        tracemalloc.start()
        start = time.perf_counter()
        result = method(pairs, args.centroids)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results.append(result)
        print(
            f"{name:20} {n} pairs: {seconds:.2f} s, {peak / 2**20:.0f} MB extra at the peak "
            f"({peak / n:.1f} bytes per pair, on top of {held} held per pair)"
        )
    (before_offsets, before_pids), (now_offsets, now_pids) = results
    same = np.array_equal(before_offsets, now_offsets) and np.array_equal(before_pids, now_pids)
    print(f"identical lists: {same}")


if __name__ == "__main__":
    main()
