"""Soak test: many reranks with the embedding cache on, watching the process's memory.

Usage:
    python benchmarks/soak.py [MODEL] [--reranks 10000] [--pool 200] [--candidates 10]
        [--warmup 1000] [--cache-mb 256] [--threads 1] [--max-growth-mb N]

Each rerank scores ``--candidates`` documents drawn at random from a pool of ``--pool`` short
documents (Cranfield abstracts cut to their first 40 words, or generated text when the data
set is absent) for a query drawn from the Cranfield queries, so after the first few hundred
reranks nearly every document is a cache hit and the query encoding dominates. RSS (VmRSS
from /proc/self/status) is printed at the start (model loaded), after the warm-up, every 10%
and at the end, with the cache's counters. Memory should stay flat after the warm-up; with
``--max-growth-mb`` the script exits with status 1 when RSS grew more than that between the
end of the warm-up and the end.

MODEL defaults to ``$COLBERT_PLUGINS_TEST_MODEL`` or ``../shared/models/colbert-minilm-proxy``;
``tiny`` builds the unit tests' tiny model in a temporary directory.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = os.environ.get("COLBERT_PLUGINS_TEST_MODEL") or str(
    SHARED / "models/colbert-minilm-proxy"
)
WORDS = [
    "wing",
    "flow",
    "boundary",
    "layer",
    "pressure",
    "shock",
    "wave",
    "heat",
    "transfer",
    "supersonic",
    "laminar",
    "turbulent",
    "mach",
    "number",
    "airfoil",
    "drag",
    "lift",
    "velocity",
    "temperature",
    "surface",
    "body",
    "nozzle",
    "jet",
    "theory",
]


def rss_mb(field: str = "VmRSS") -> float:
    """Resident set size (or VmHWM, its peak) of this process in MiB (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def texts(data: Path, pool: int, seed: int) -> tuple[list[str], list[str]]:
    """(documents, queries): Cranfield when available, else generated."""
    rng = random.Random(seed)
    corpus, queries = data / "corpus.jsonl", data / "queries.jsonl"
    if corpus.is_file() and queries.is_file():
        with corpus.open(encoding="utf-8") as lines:
            docs = [" ".join(json.loads(line)["text"].split()[:40]) for line in lines]
        with queries.open(encoding="utf-8") as lines:
            qs = [json.loads(line)["text"] for line in lines]
        docs = [d for d in docs if d][:pool]
        if len(docs) == pool and qs:
            return docs, qs
    docs = [" ".join(rng.choices(WORDS, k=rng.randint(8, 40))) for _ in range(pool)]
    qs = [" ".join(rng.choices(WORDS, k=rng.randint(3, 10))) for _ in range(200)]
    return docs, qs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--data", default=str(SHARED / "data/cranfield"))
    parser.add_argument("--reranks", type=int, default=10_000)
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--cache-mb", type=float, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-growth-mb", type=float, default=None)
    args = parser.parse_args()

    model_path = args.model
    if model_path == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_model import build_model_dir

        model_path = str(build_model_dir(Path(tempfile.mkdtemp(prefix="soak-tiny-"))))
    docs, queries = texts(Path(args.data), args.pool, args.seed)
    cache = EmbeddingCache(max_bytes=int(args.cache_mb * 1024 * 1024))
    model = ColBERT.from_pretrained(model_path, threads=args.threads, cache=cache)
    rng = random.Random(args.seed)

    def report(label: str, done: int, started: float) -> float:
        rss = rss_mb()
        s = cache.stats()
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(
            f"{label:>10}  reranks={done:>6}  rss={rss:8.1f} MiB  peak={rss_mb('VmHWM'):8.1f} MiB"
            f"  cache: entries={s.entries} {s.bytes / 2**20:.1f} MiB hits={s.hits}"
            f" misses={s.misses}  {rate:6.1f} reranks/s",
            flush=True,
        )
        return rss

    print(
        f"model={model_path} reranks={args.reranks} pool={args.pool} "
        f"candidates={args.candidates} threads={args.threads} cache={args.cache_mb} MiB"
    )
    started = time.perf_counter()
    report("start", 0, started)
    after_warmup = None
    checkpoints = {max(1, args.reranks * k // 10) for k in range(1, 10)}
    for i in range(1, args.reranks + 1):
        query = rng.choice(queries)
        candidates = rng.sample(docs, args.candidates)
        results = model.rerank(query, candidates, top_n=3)
        assert len(results) == 3
        if i == args.warmup:
            after_warmup = report("warm-up", i, started)
        elif i in checkpoints:
            report(f"{100 * i // args.reranks}%", i, started)
    end = report("end", args.reranks, started)
    if after_warmup is None:
        return 0
    growth = end - after_warmup
    print(f"RSS growth after warm-up: {growth:+.1f} MiB")
    return growth_status(growth, args.max_growth_mb)


def growth_status(growth: float, max_growth_mb: float | None) -> int:
    """Exit status: 1 (with a FAIL line) when ``growth`` exceeds the allowed MiB, else 0."""
    if max_growth_mb is not None and growth > max_growth_mb:
        print(f"FAIL: grew more than {max_growth_mb} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
