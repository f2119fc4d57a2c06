"""Qdrant Edge beside our exact and compressed indexes at 8k and 100k real passages (issue 22,
item 2): build seconds, disk bytes per token, serving RSS, p50/p95 and recall@10 against exact
MaxSim, each index built from cached vectors in the same run.

Usage (the caches hold the trained model's vectors; see benchmarks/index_corpora.py):
    # 8,041 BEIR passages (Cranfield + CISI + SciFact), 60 queries of those collections
    python benchmarks/qdrant_scale.py --corpus beir --cache trained-beir.sqlite \
        --model ../shared/models/colbert-minilm-trained --workdir /big/disk
    # 100,000 Debian documentation passages of 48 words (the first 12 words of 60 sampled
    # passages as queries); the exact Edge scan is left out above 10,000 passages
    python benchmarks/qdrant_scale.py --corpus pydoc --words 48 --limit 100000 \
        --cache trained-pydoc48.sqlite --model ../shared/models/colbert-minilm-trained
    # some systems only (names as in the table, or other prefetch limits: edge-mean-800),
    # each search subprocess twice
    python benchmarks/qdrant_scale.py ... --systems exact,edge-mean-800 --repeat 2

Never encodes passages: only those whose vectors are in ``--cache`` are indexed (how many is
printed). Queries are encoded once, in this process. Systems:

- ``exact``: :class:`~colbert_plugins.index.InMemoryIndex` (float32), saved and loaded;
- ``compressed``: :class:`~colbert_plugins.index.CompressedIndex` at its defaults;
- ``edge-<fixed>-<prefetch>``: :class:`~colbert_plugins.index.qdrant.QdrantIndex` on Qdrant
  Edge (``path=``, token vectors on disk): first stage HNSW over the ``mean`` or ``muvera``
  vector, ``prefetch`` candidates, then exact MaxSim (``exact``: no first stage, MaxSim over
  every document); ``edge-int8-200`` and ``edge-binary-200`` add a quantized copy of the token
  vectors (mean first stage). Rows on one shard share its build; each shard is deleted once
  its rows are measured.

Per system: build (wall seconds to add the cached vectors: upserts, HNSW, fsync'd commit;
the exact index: its save), disk bytes per token (every file of the index, divided by the
indexed token vectors), then, per row, a fresh subprocess that loads the model (its RSS
before the index is reported apart), opens the index (RSS after open) and runs
``search_vectors(q, k=10)`` for every query once after one warm-up query (one search thread;
query encoding excluded): p50/p95 and RSS after the queries (VmRSS, and the peak VmHWM).
recall@10 is against exact MaxSim over the float32 vectors. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import index_corpora  # noqa: E402
import index_scale  # noqa: E402
from index_scale import cached_vectors, exact_top10, percentile, recall, rss_mb  # noqa: E402

#: Above this many passages the exact scan of the Edge shard is left out (minutes of queries).
EXACT_SCAN_MAX = 10_000


@dataclass(frozen=True)
class System:
    """One row of the table: an index (``kind``, ``build`` options: rows with equal ones share
    a build) searched with ``search`` options."""

    name: str
    kind: str  # "exact" | "compressed" | "edge"
    build: tuple[tuple[str, Any], ...] = ()
    search: tuple[tuple[str, Any], ...] = ()


def edge(fixed: str, prefetch: int | None, quantization: str | None = None) -> System:
    label = quantization or fixed
    return System(
        f"edge-{label}-{'exact' if prefetch is None else prefetch}",
        "edge",
        build=(("fixed", fixed), ("quantization", quantization)),
        search=(("prefetch_limit", prefetch),),
    )


SYSTEMS = [
    System("exact", "exact"),
    System("compressed", "compressed"),
    edge("mean", 100),
    edge("mean", 200),
    edge("mean", 400),
    edge("mean", None),
    edge("muvera", 400),
    edge("mean", 200, "int8"),
    edge("mean", 200, "binary"),
]


# -- building (this process) -------------------------------------------------------------------


def chunks_like_add(index: Any, vectors: list[np.ndarray]) -> Iterator[Any]:
    """``vectors`` in the chunks that ``index.add`` would encode them in (the compressed index
    trains its centroids on a larger first one)."""
    start = 0
    while start < len(vectors):
        part = slice(start, start + index._chunk_size(start))
        yield part, vectors[part]
        start = part.stop


def build_index(
    system: System,
    path: Path,
    model: Any,
    ids: list[str],
    texts: list[str],
    vectors: list[np.ndarray],
) -> dict[str, Any]:
    """Build ``system``'s index at ``path`` from the cached vectors as ``add`` would (its
    chunks, one commit); its build seconds and disk bytes."""
    tokens = sum(len(v) for v in vectors)
    metas: list[dict[str, Any]] = [{} for _ in ids]
    start = time.perf_counter()
    if system.kind == "exact":
        from colbert_plugins.index import InMemoryIndex

        exact = InMemoryIndex(model)
        exact._add_encoded(ids, texts, metas, chunks_like_add(exact, vectors))
        exact.save(path)
        seconds = time.perf_counter() - start
        del exact
        disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    elif system.kind == "compressed":
        from colbert_plugins.index import CompressedIndex

        compressed = CompressedIndex(model, path)
        compressed._add_encoded(ids, texts, metas, chunks_like_add(compressed, vectors))
        seconds = time.perf_counter() - start
        disk = compressed.disk_bytes()
        del compressed
    else:
        from colbert_plugins.index.qdrant import QdrantIndex

        qdrant = QdrantIndex(model, path=path, on_disk=True, **dict(system.build))
        try:
            # upserts, then the HNSW build of the fixed vectors
            qdrant._add_encoded(ids, texts, metas, chunks_like_add(qdrant, vectors))
            seconds = time.perf_counter() - start
            disk = qdrant.disk_bytes()
        finally:
            qdrant.close()
    return {"build_s": seconds, "disk_bytes": disk, "disk_bytes_per_token": disk / tokens}


# -- searching (a fresh subprocess per row) ----------------------------------------------------


def serve(system: System, path: Path, qfile: Path, model: Path) -> dict[str, Any]:
    """One row's search in a fresh subprocess (which only loads the model, opens the index and
    runs the queries): its JSON result."""
    spec = {"kind": system.kind, "search": dict(system.search), "path": str(path)}
    out = subprocess.run(
        [sys.executable, __file__, "_serve", str(model), json.dumps(spec), str(qfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"the search subprocess of {system.name} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1]))


def _open(kind: str, path: str, options: dict[str, Any], model: Any) -> Any:
    if kind == "exact":
        from colbert_plugins.index import InMemoryIndex

        return InMemoryIndex.load(path, model)
    if kind == "compressed":
        from colbert_plugins.index import CompressedIndex

        return CompressedIndex(model, path)
    from colbert_plugins.index.qdrant import QdrantIndex

    return QdrantIndex(model, path=path, **options)


def _serve(model_dir: str, spec_json: str, qfile: str) -> None:
    spec = json.loads(spec_json)
    model = index_corpora.open_model(None, 1, None, model_dir)
    with np.load(qfile) as data:
        queries = [data[f"arr_{i}"] for i in range(len(data.files))]
    rss_model = rss_mb("VmRSS")
    start = time.perf_counter()
    index = _open(spec["kind"], spec["path"], spec["search"], model)
    open_s = time.perf_counter() - start
    rss_open = rss_mb("VmRSS")
    index.search_vectors(queries[0], k=10)  # warm-up
    times, results = index_scale.timed_top10(index, queries)
    row = {
        "rss_model_mb": rss_model,
        "rss_open_mb": rss_open,
        "rss_after_mb": rss_mb("VmRSS"),
        # of which pages of mapped files (the index's, clean: the kernel can drop them) and
        # the process's own memory
        "rss_file_after_mb": rss_mb("RssFile"),
        "rss_anon_after_mb": rss_mb("RssAnon"),
        "hwm_mb": rss_mb("VmHWM"),
        "open_s": open_s,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
        "results": results,
    }
    close = getattr(index, "close", None)
    if close is not None:
        close()
    print(json.dumps(row), flush=True)


# -- the run -----------------------------------------------------------------------------------


def system_named(name: str) -> System:
    """A system of :data:`SYSTEMS`, or another Edge row: ``edge-mean-<prefetch>``,
    ``edge-muvera-<prefetch>`` (``exact`` for no first stage), ``edge-int8-<prefetch>``,
    ``edge-binary-<prefetch>``."""
    for system in SYSTEMS:
        if system.name == name:
            return system
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "edge" and parts[1] in ("mean", "muvera", "int8", "binary"):
        limit = None if parts[2] == "exact" else int(parts[2]) if parts[2].isdigit() else 0
        if limit is None or limit > 0:
            if parts[1] in ("mean", "muvera"):
                return edge(parts[1], limit)
            return edge("mean", limit, parts[1])
    known = ", ".join(s.name for s in SYSTEMS)
    raise SystemExit(f"unknown system {name!r}; known: {known}, or edge-<fixed or quantization>-N")


def pick_systems(names: str | None, passages: int) -> list[System]:
    if names:
        return [system_named(n) for n in names.split(",")]
    return [s for s in SYSTEMS if not (s.name == "edge-mean-exact" and passages > EXACT_SCAN_MAX)]


def distinct(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The passages with distinct texts (the first of each; equal texts would tie in every
    ranking), under distinct ids (the pydoc corpus names passages by file name and position,
    and some file names repeat in other directories: ``#2``, ``#3``... are appended)."""
    texts: set[str] = set()
    ids: set[str] = set()
    out = []
    for doc_id, text in items:
        if text in texts:
            continue
        texts.add(text)
        unique, n = doc_id, 1
        while unique in ids:
            n += 1
            unique = f"{doc_id}#{n}"
        ids.add(unique)
        out.append((unique, text))
    return out


def queries_of(args: argparse.Namespace, texts: list[str]) -> list[str]:
    """BEIR: ``--queries`` sampled queries of the three collections; pydoc: the first 12 words
    of sampled passages (as benchmarks/index_scale.py)."""
    if args.corpus == "beir":
        return index_scale.beir_queries(args.queries, args.seed, args.data)[1]
    rng = random.Random(args.seed)
    sampled = rng.sample(texts, min(args.queries, len(texts)))
    return [" ".join(t.split()[:12]) for t in sampled]


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = index_corpora.open_model(args.cache, 1, None, args.model)
    if args.corpus == "beir":
        items = index_corpora.beir_passages(args.data)[: args.limit]
    else:
        items = index_corpora.pydoc_passages(args.words, args.limit)
    listed = len(items)
    items = distinct(items)
    if len(items) < listed:
        print(f"{listed - len(items)} passages repeat an earlier one's text: left out", flush=True)
    items, vectors = cached_vectors(model, items)
    ids = [i for i, _ in items]
    texts = [t for _, t in items]
    tokens = sum(len(v) for v in vectors)
    print(
        f"{args.corpus}: {listed} passages listed, {len(ids)} in the cache, {tokens} token "
        f"vectors ({tokens / max(1, len(ids)):.1f} per passage)",
        flush=True,
    )
    if not ids:
        raise SystemExit(f"no passage of {args.corpus} is in {args.cache} for this model")
    model.cache = None
    queries = model.encode_queries(queries_of(args, texts))
    start = time.perf_counter()
    exact = exact_top10(queries, vectors, ids)
    print(
        f"{len(queries)} queries; exact top-10 in {time.perf_counter() - start:.1f} s", flush=True
    )
    systems = pick_systems(args.systems, len(ids))
    result: dict[str, Any] = {
        "corpus": args.corpus,
        "passages": len(ids),
        "tokens": tokens,
        "queries": len(queries),
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "load_start": os.getloadavg()[0],
        "rows": [],
    }
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="qdrant-scale-") as tmp:
        qfile = Path(tmp) / "queries.npz"
        np.savez(qfile, *queries)
        builds: dict[tuple[Any, ...], tuple[Path, dict[str, Any]]] = {}
        for n, system in enumerate(systems):
            key = (system.kind, system.build)
            if key not in builds:
                for path, _ in builds.values():  # one build on disk at a time
                    shutil.rmtree(path, ignore_errors=True)
                builds.clear()
                path = Path(tmp) / f"index-{n}"
                load = os.getloadavg()[0]
                built = build_index(system, path, model, ids, texts, vectors)
                built["load_build"] = load
                builds[key] = (path, built)
                print(
                    f"built {system.kind} {dict(system.build) or ''} in {built['build_s']:.1f} s "
                    f"({built['disk_bytes_per_token']:.1f} bytes/token on disk; load {load:.2f})",
                    flush=True,
                )
            path, built = builds[key]
            runs = []
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                row = serve(system, path, qfile, args.model)
                row["recall"] = recall(row.pop("results"), exact)
                row["load"] = load
                runs.append(row)
            row = {
                "system": system.name,
                **built,
                **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
                "p50_ms_runs": [r["p50_ms"] for r in runs],
            }
            result["rows"].append(row)
            report(row)
    result["load_end"] = os.getloadavg()[0]
    print_table(result)
    print(json.dumps(result), flush=True)
    return result


HEAD = (
    f"{'system':<20} {'build s':>8} {'B/tok disk':>10} {'RSS model':>9} {'RSS open':>8} "
    f"{'RSS after':>9} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9} {'load':>5}"
)


def line(row: dict[str, Any]) -> str:
    return (
        f"{row['system']:<20} {row['build_s']:>8.1f} {row['disk_bytes_per_token']:>10.1f} "
        f"{row['rss_model_mb']:>9.0f} {row['rss_open_mb']:>8.0f} {row['rss_after_mb']:>9.0f} "
        f"{row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} {row['recall']:>9.3f} {row['load']:>5.2f}"
    )


def report(row: dict[str, Any]) -> None:
    print(f"{HEAD}\n{line(row)}", flush=True)


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['corpus']}: {result['passages']} passages, {result['tokens']} tokens, "
        f"{result['queries']} queries, k=10, one search thread; medians of {result['repeat']} "
        f"search subprocess(es) per row; load {result['load_start']:.2f} -> "
        f"{result['load_end']:.2f}",
        flush=True,
    )
    print(HEAD)
    for row in result["rows"]:
        print(line(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        _serve(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="beir", choices=["beir", "pydoc"])
    parser.add_argument("--cache", type=Path, required=True, help="EmbeddingCache file")
    parser.add_argument("--model", type=Path, default=index_corpora.MODEL, help="model directory")
    parser.add_argument("--data", type=Path, default=index_corpora.DATA, help="BEIR collections")
    parser.add_argument("--words", type=int, default=64, help="pydoc: words per passage")
    parser.add_argument("--limit", type=int, default=None, help="passages listed at most")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="search subprocesses per row")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        flush=True,
    )
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
