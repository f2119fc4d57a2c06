"""What a cold page cache costs a CompressedIndex search: the float16 originals (read only for
each query's exact rerank) and the whole index, dropped from the page cache before every query.

Usage:
    python benchmarks/index_cold.py --cache beir.sqlite \
        --model ../shared/models/colbert-minilm-trained

Builds the index of the cached BEIR passages (``index_corpora.py encode``) in a temporary
directory (or opens ``--index DIR`` when it holds one), then times ``search_vectors(q, k=10)``
for each query, in this order, each pass over every query:

- ``warm``: the second of two passes (every page the queries touch is in the page cache);
- ``codes only, warm``: ``exact=0`` (no originals read), the second of two passes;
- ``originals cold``: before each query, the originals' pages are dropped (``MADV_DONTNEED`` on
  this process's maps, then ``POSIX_FADV_DONTNEED`` on the files), the rest of the index stays
  cached: the disk reads of the exact rerank alone;
- ``originals cold, no WILLNEED``: the same without the ``MADV_WILLNEED`` hint that asks for
  each candidate's rows at once (a page per fault instead, on maps advised random);
- ``index cold``: every file of the index dropped before each query.

Per pass: p50/p95 in ms, and the median of the bytes this process read from storage
(``/proc/self/io`` read_bytes) and of its major page faults per query. Dropping pages is
private to this index's files: it does not touch the rest of the machine's page cache.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import mmap
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import index_corpora  # noqa: E402
import index_scale  # noqa: E402


def read_bytes() -> int:
    with open("/proc/self/io", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    return 0


def majflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def drop(index: Any, originals_only: bool) -> None:
    """Evict the index's pages (or only its originals') from this process and the page cache."""
    arrays: list[Any] = []
    for seg in index._snapshot.segments:
        arrays.append(seg.originals)
        if not originals_only:
            arrays += [seg.codes, seg.centroid_ids, seg.scales, seg.ivf_pids]
            arrays += list(seg._cache.values())
    for array in arrays:
        handle = getattr(array, "_mmap", None)
        if handle is not None:
            with contextlib.suppress(OSError, ValueError):
                handle.madvise(mmap.MADV_DONTNEED)
    for file in index.path.rglob("*"):
        if file.is_file() and (not originals_only or file.name == "originals.f16"):
            fd = os.open(file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(
    index: Any, queries: list[np.ndarray], before: Callable[[], None] | None = None
) -> dict[str, float]:
    times, io, faults = [], [], []
    for q in queries:
        if before is not None:
            before()
        b0, f0 = read_bytes(), majflt()
        start = time.perf_counter()
        index.search_vectors(q, k=10)
        times.append(1000 * (time.perf_counter() - start))
        io.append(read_bytes() - b0)
        faults.append(majflt() - f0)
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": index_scale.percentile(times, 0.95),
        "read_kb_median": statistics.median(io) / 1024,
        "major_faults_median": statistics.median(faults),
    }


@contextlib.contextmanager
def without_will_need() -> Iterator[None]:
    from colbert_plugins.index import compressed_search

    real = compressed_search.will_need
    compressed_search.will_need = lambda *a, **k: None
    try:
        yield
    finally:
        compressed_search.will_need = real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=index_corpora.MODEL)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=Path, default=None, help="keep the index here")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    index_corpora.MODEL = args.model
    from colbert_plugins.index import CompressedIndex

    print(f"load average {os.getloadavg()}; {time.strftime('%H:%M:%S UTC', time.gmtime())}")
    model = index_scale.open_model(args.cache, 0, None)
    _, qtexts, _ = index_scale.beir_queries(args.queries, args.seed)
    queries = model.encode_queries(qtexts)
    with contextlib.ExitStack() as stack:
        path = args.index or Path(
            stack.enter_context(tempfile.TemporaryDirectory(dir=args.workdir))
        )
        path = path / "idx"
        if not (path / "manifest.json").exists():
            items, vectors = index_scale.cached_vectors(model, index_corpora.passages("beir"))
            ids = [i for i, _ in items]
            texts = [t for _, t in items]
            index = CompressedIndex(model, path)
            index._upsert(ids, texts, [{} for _ in ids], vectors)
        index = CompressedIndex(model, path, check_model_key=False)
        codes = CompressedIndex(model, path, exact=0, check_model_key=False)
        print(
            f"{len(index)} passages, {index.tokens} token vectors; originals "
            f"{index.original_bytes() / 2**20:.0f} MiB, every file {index.disk_bytes() / 2**20:.0f}"
            f" MiB; {len(queries)} queries, exact {index.exact}"
        )
        rows: list[tuple[str, dict[str, float]]] = []
        timed(index, queries)
        rows.append(("warm", timed(index, queries)))
        timed(codes, queries)
        rows.append(("codes only (exact=0), warm", timed(codes, queries)))
        # Pages mapped by any process stay in the page cache: only `index` maps them now.
        del codes
        gc.collect()
        rows.append(("originals cold", timed(index, queries, lambda: drop(index, True))))
        with without_will_need():
            rows.append(
                ("originals cold, no WILLNEED", timed(index, queries, lambda: drop(index, True)))
            )
        rows.append(("index cold", timed(index, queries, lambda: drop(index, False))))
        for name, row in rows:
            print(
                f"{name:<30} p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
                f"read {row['read_kb_median']:7.0f} KB  major faults "
                f"{row['major_faults_median']:5.0f}  (medians per query)",
                flush=True,
            )
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
