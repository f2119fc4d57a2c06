"""Memory and time of building a segment's inverted lists: the global stable argsort the
SegmentWriter used before commit 713362e, the counting sort of pairs held in memory that
followed, and the SegmentWriter itself now (pairs spilled to scratch files as chunks arrive,
counting-sorted a chunk at a time), on the same random (centroid, document) pairs, in one run.

Usage:
    python benchmarks/index_lists_memory.py [--pairs-per-chunk 100000] [--chunks 200]

Prints, for each method, seconds and the memory numpy allocated at the peak (tracemalloc:
held pairs plus the sort's temporaries; the writer's scratch files are page cache, not
counted), per pair, and whether all produced identical lists.
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


def spilled_lists(pairs: Pairs, k: int) -> Lists:
    """The SegmentWriter's lists for these pairs (documents of one token per pair), with the
    peak of numpy allocations over the appends and ``finish`` printed."""
    import tempfile
    from pathlib import Path

    from colbert_plugins.index.codec import ResidualCodec
    from colbert_plugins.index.store import Segment, SegmentWriter

    dim = 4
    codec = ResidualCodec(np.eye(k, dim, dtype=np.float32), np.zeros((1, 256, 4), np.float32), 2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tracemalloc.start()
        start = time.perf_counter()
        writer = SegmentWriter(root, codec)
        first = 0
        for cids, pids in pairs:
            # one token per pair: document d's tokens are its pairs' centroids
            docs = int(pids.max()) + 1 - first
            lengths = np.bincount(pids - first, minlength=docs).astype(np.int64)
            ids = [str(i) for i in range(first, first + docs)]
            lines = [b"{}"] * docs
            order = np.argsort(pids, kind="stable")
            writer.append(
                ids, lines, lines, cids[order], np.zeros((len(cids), 1), np.uint8), lengths
            )
            first += docs
        info = writer.finish()
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n = sum(len(c) for c, _ in pairs)
        print(
            f"{'spilled (now)':20} {n} pairs: {seconds:.2f} s with the appends, "
            f"{peak / 2**20:.0f} MB at the peak ({peak / n:.1f} bytes per pair, nothing held)"
        )
        segment = Segment.open(root, info, codec)
        return np.array(segment.ivf_offsets), np.array(segment.ivf_pids)


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
    writer_lists = spilled_lists(narrow, args.centroids)
    results: list[Lists] = []
    runs: list[tuple[str, Callable[[Pairs, int], Lists], Pairs, int]] = [
        ("argsort (before)", argsort_lists, wide, 12),
        ("counting, in memory", counting_lists, narrow, 8),
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
    results.append(writer_lists)
    same = all(
        np.array_equal(results[0][0], offsets) and np.array_equal(results[0][1], pids)
        for offsets, pids in results[1:]
    )
    print(f"identical lists: {same}")


if __name__ == "__main__":
    main()
