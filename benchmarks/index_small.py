"""Small CompressedIndex builds from cached vectors: seconds per build of N passages (median
of --repeat builds, each into a fresh directory), and the faiss warnings they print.

Usage:
    python benchmarks/index_small.py --cache trained-beir.sqlite \
        --model ../shared/models/colbert-minilm-trained --sizes 50,200,1000 --repeat 3

The passages are the first N of the BEIR corpora (index_corpora.py's "title text" strings)
whose vectors the cache holds; nothing is encoded. Each build is ``add_vectors`` (training
the centroids and codebooks, compressing, writing the originals, the fsync'd commit), timed
in wall and CPU seconds (this process, every thread). Text
faiss prints on file descriptor 2 during the builds is counted (lines with "WARNING").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import index_corpora  # noqa: E402


def stderr_lines(run):  # type: ignore[no-untyped-def]
    """Run ``run()`` with file descriptor 2 sent to a temporary file; return its result and
    the lines written there (faiss writes with C stdio, below Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            result = run()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode("utf-8", "replace")
    return result, text.splitlines()


def _builder(index, part):  # type: ignore[no-untyped-def]
    """A function that adds ``part``'s vectors to ``index`` and returns the wall and CPU
    seconds taken (CPU: this process, every thread)."""

    def build() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        index.add_vectors([v for *_, v in part], [t for _, t, _ in part], [i for i, *_ in part])
        return time.perf_counter() - start, time.process_time() - cpu

    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="EmbeddingCache file")
    parser.add_argument("--model", default=str(index_corpora.MODEL))
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from colbert_plugins.cache import text_key
    from colbert_plugins.index import CompressedIndex

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}", flush=True)
    model = index_corpora.open_model(args.cache, 1, None, args.model)
    sizes = [int(s) for s in args.sizes.split(",")]
    items = index_corpora.passages("beir", 64)
    found = model.cache.get_many([text_key(model.model_key, t) for _, t in items])
    kept = [
        (i, t, np.asarray(v, dtype=np.float32))
        for (i, t), v in zip(items, found, strict=True)
        if v is not None and len(v)
    ]
    if len(kept) < max(sizes):
        parser.error(f"the cache holds {len(kept)} of these passages, fewer than {max(sizes)}")
    rows = []
    for n in sizes:
        part = kept[:n]
        seconds, cpu_seconds, warnings = [], [], 0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                index = CompressedIndex(model, Path(tmp) / "idx")

                build = _builder(index, part)
                (elapsed, cpu), lines = stderr_lines(build)
                seconds.append(elapsed)
                cpu_seconds.append(cpu)
                warnings += sum("WARNING" in line for line in lines)
                codec = index._snapshot.codec
        row = {
            "passages": n,
            "tokens": int(sum(len(v) for *_, v in part)),
            "centroids": 0 if codec is None else len(codec.centroids),
            "median_s": statistics.median(seconds),
            "seconds": seconds,
            "median_cpu_s": statistics.median(cpu_seconds),
            "faiss_warning_lines": warnings,
        }
        rows.append(row)
        print(
            f"{n:>6} passages {row['tokens']:>8} vectors {row['centroids']:>5} centroids  "
            f"build median {row['median_s']:.2f} s  ({', '.join(f'{s:.2f}' for s in seconds)}; "
            f"CPU {row['median_cpu_s']:.2f} s)  "
            f"faiss WARNING lines: {warnings}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)
    print(json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
