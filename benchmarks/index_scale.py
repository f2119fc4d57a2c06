"""CompressedIndex at scale: bytes per token, build time, RSS, latency and recall@10 against
exact MaxSim, on real and synthetic token vectors.

Usage:
    # (a) real passages (Cranfield + CISI + SciFact, ~8,000) encoded once into a cache by
    #     benchmarks/index_corpora.py; --sweep adds the nprobe x candidates x rerank x exact
    #     curve; --model the trained model (the cache's); --exact N / --no-originals set the
    #     exact rerank's size / build the index with codes only
    python benchmarks/index_scale.py real --corpus beir --cache beir.sqlite --sweep \
        --model ../shared/models/colbert-minilm-trained --queries 60
    # (b) Debian python3-doc passages, as many as the cache holds (never encodes them)
    python benchmarks/index_scale.py real --corpus pydoc --cache pydoc.sqlite --document-length 128
    # the codec's ceiling: brute force over the decoded vectors of 3,000 passages, nbits 1/2/4
    python benchmarks/index_scale.py fidelity --cache beir.sqlite --docs 3000 --queries 60
    # (c) synthetic clustered unit vectors with the real corpus' length distribution;
    #     (d) --compare adds the exact index and Qdrant local mode on the same queries
    python benchmarks/index_scale.py synthetic --docs 10000 --compare --lengths beir.sqlite
    # several sizes in sequence (each with its own exact top-10), a summary table and a
    # projection to 300k and 1M passages fitted on them; --profile adds a cProfile of the
    # search subprocess, --ncentroids overrides the index's default
    python benchmarks/index_scale.py synthetic --sizes 10000,30000,100000 --queries 30 \
        --lengths beir.sqlite --workdir /big/disk
    # 1M passages (about 55 min of build and 17 of exact top-10 on one core, 9.5 GB): --keep
    # stores the exact top-10 and the index, and a second call only searches them again
    python benchmarks/index_scale.py synthetic --sizes 1000000 --queries 30 \
        --lengths beir.sqlite --keep /big/disk/keep

What is measured, per run, on this machine:

- bytes/token, divided by the live token vectors: resident, ``CompressedIndex.vector_bytes()``
  (codes, centroid ids, scales, inverted lists, offsets, centroids: what every query reads
  from); originals, ``original_bytes()`` (the float16 token vectors on disk, read only for each
  query's ``exact`` final candidates); and ``disk_bytes()`` (every file, texts and metadata
  included);
- build: seconds to add every document's vectors (k-means, compression, inverted lists,
  fsync'd commit), against the time the model takes to encode the same documents (measured
  on a sample of them in the same run: the "index overhead" ratio; the synthetic run uses the
  real corpus' encoding rate when ``--encode-rate`` is given);
- search, in a fresh subprocess that only opens the index and runs the queries (so its RSS is
  what serving costs): p50/p95 latency of ``search_vectors(q, k=10)`` (query encoding
  excluded), peak RSS (VmHWM), recall@10 against exact MaxSim over the float32 vectors, and
  the median time of each search stage (centroid scores, candidates, prune, rerank from the
  codes, exact rerank from the originals), and how much of the exact top 10 survives each
  stage, with the survival among the best N by the codes for several N (the recall that an
  exact rerank of N documents reaches); the queries run twice, and the second pass (index
  pages already mapped) is the warm p50/p95;
- synthetic runs: the time of each stage (exact top-10, build, search), the build's own peak
  RSS (VmHWM reset just before it, next to the RSS it started from) and the build's time
  without the generation of the synthetic vectors.

Prints one table row per configuration and a JSON line with every number.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import index_corpora  # noqa: E402
from index_corpora import DATA, passages  # noqa: E402


def open_model(cache: Path | None, threads: int, document_length: int | None):  # type: ignore[no-untyped-def]
    """The model of ``--model`` (index_corpora.MODEL, set in main)."""
    return index_corpora.open_model(cache, threads, document_length)


# -- helpers -----------------------------------------------------------------------------------


def rss_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mapped_rss_mb(suffix: str) -> float:
    """RSS of this process's maps of files whose name ends with ``suffix`` (from
    /proc/self/smaps; nan where it cannot be read)."""
    total, inside = 0, False
    try:
        with open("/proc/self/smaps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head = line.split()
                if not head:
                    continue
                if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    inside = len(head) >= 6 and head[-1].endswith(suffix)
                elif inside and head[0] == "Rss:":
                    total += int(head[1])
    except OSError:
        return float("nan")
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def exact_top10(
    queries: list[np.ndarray], vectors: list[np.ndarray], ids: list[str]
) -> list[list[str]]:
    """Exact MaxSim top-10 ids of each query: one pass over the stored vectors per 16 queries."""
    from colbert_plugins.scoring import segmented_maxsim_batch

    flat = np.concatenate(vectors)
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in vectors])]).astype(np.int64)
    out: list[list[str]] = []
    for start in range(0, len(queries), 16):
        scores = segmented_maxsim_batch(queries[start : start + 16], flat, offsets)
        out.extend([ids[i] for i in np.argsort(-row, kind="stable")[:10]] for row in scores)
    return out


def recall(got: list[list[str]], exact: list[list[str]]) -> float:
    return statistics.mean(len(set(g) & set(e)) / len(e) for g, e in zip(got, exact, strict=True))


def ndcg10(run: list[str], judged: dict[str, int]) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(run[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def cached_vectors(
    model: Any, items: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """The passages whose vectors are in the model's persisted cache, and those vectors."""
    from colbert_plugins.cache import text_key

    keys = [text_key(model.model_key, t) for _, t in items]
    kept, vectors = [], []
    for start in range(0, len(keys), 2048):
        found = model.cache.get_many(keys[start : start + 2048])
        for item, v in zip(items[start : start + 2048], found, strict=True):
            if v is not None and len(v):
                kept.append(item)
                vectors.append(np.asarray(v, dtype=np.float32))
    return kept, vectors


def encoder(document_length: int | None, warm_up: list[str]) -> Any:
    """The model without its embedding cache, warmed up on ``warm_up``, for
    :func:`encode_rate`."""
    model = open_model(None, 0, document_length)
    model.cache = None
    model.encode_documents(warm_up)
    return model


def encode_rate(model: Any, texts: list[str]) -> tuple[float, float]:
    """Documents per wall second and per CPU second of this process, of ``model`` (made by
    :func:`encoder`) on ``texts``."""
    start, cpu = time.perf_counter(), time.process_time()
    model.encode_documents(texts)
    return len(texts) / (time.perf_counter() - start), len(texts) / (time.process_time() - cpu)


BUILD: dict[str, Any] = {}


def build(
    path: Path, model: Any, ids: list[str], vectors_chunks: Any, texts: Any
) -> tuple[float, float]:
    """Add every chunk's vectors in one commit; return wall and CPU seconds (this process,
    every thread; producing the chunks included)."""
    from colbert_plugins.index import CompressedIndex

    index = CompressedIndex(model, path, **BUILD)
    start, cpu = time.perf_counter(), time.process_time()
    index._add_encoded(ids, list(texts), [{} for _ in ids], vectors_chunks)
    return time.perf_counter() - start, time.process_time() - cpu


def serve(
    path: Path,
    queries: list[np.ndarray],
    configs: list[tuple[int, ...]],
    profile: bool = False,
) -> list[dict[str, Any]]:
    """Run the queries in a fresh subprocess against the index at ``path`` (with ``profile``,
    it also prints a cProfile of the first configuration's queries, shown here)."""
    with tempfile.TemporaryDirectory() as tmp:
        qfile = Path(tmp) / "queries.npz"
        np.savez(qfile, *queries)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "_serve",
                str(index_corpora.MODEL),
                str(path),
                str(qfile),
                json.dumps(configs),
                "profile" if profile else "",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode:
        raise SystemExit(f"the search subprocess failed:\n{out.stderr[-3000:]}")
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            print(line, flush=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def search_stages(index: Any, queries: list[np.ndarray], k: int = 10) -> dict[str, Any]:
    """Median milliseconds of each stage of ``CompressedIndex.search_vectors`` (the same calls,
    timed one by one; private API, so ``{}`` if it changed), postings read from the probed
    inverted lists and documents found there, per query."""
    from colbert_plugins.index.compressed_search import _candidates, _exact_rerank, _prune, _rerank
    from colbert_plugins.scoring import blas_thread_limit

    snap = index._snapshot
    names = ("centroid_scores", "candidates", "prune", "rerank", "exact")
    times: dict[str, list[float]] = {name: [] for name in names}
    postings, found = [], []
    kept: dict[str, list[list[str]]] = {"candidates": [], "prune": [], "codes": []}
    exact_count = max(k, index.exact) if index.exact and index.keeps_originals else 0
    try:
        for q in queries:
            with blas_thread_limit(1):  # as search_vectors runs
                marks = [time.perf_counter()]
                scores = snap.codec.centroid_scores(q)
                marks.append(time.perf_counter())
                picked = _candidates(snap, scores, k, None, index.nprobe, index.candidates)
                marks.append(time.perf_counter())
                candidates = picked
                picked = _prune(snap, scores, picked, max(k, index.rerank))
                marks.append(time.perf_counter())
                kept["candidates"].append([snap.segments[s].ids[i] for s, i in candidates])
                kept["prune"].append([snap.segments[s].ids[i] for s, i in picked])
                if exact_count >= len(picked):  # as search_vectors: no rerank from codes
                    scored = [(0.0, where) for where in picked]
                else:
                    scored = _rerank(snap, q, scores, picked)
                    scored.sort(key=lambda item: (-item[0], item[1]))
                marks.append(time.perf_counter())
                if exact_count:
                    _exact_rerank(snap, q, scored, exact_count)
                marks.append(time.perf_counter())
                kept["codes"].append([snap.segments[s].ids[i] for _, (s, i) in scored])
            for name, a, b in zip(names, marks, marks[1:], strict=False):
                times[name].append(1000 * (b - a))
            probes = np.argpartition(-scores, index.nprobe - 1, axis=1)[:, : index.nprobe]
            total, docs = 0, 0
            for seg in snap.segments:
                off = seg.ivf_offsets
                total += int((off[probes + 1] - off[probes]).sum())  # every probed list read
                lists = [seg.ivf_pids[off[c] : off[c + 1]] for c in np.unique(probes)]
                docs += len(np.unique(np.concatenate(lists))) if lists else 0
            postings.append(total)
            found.append(docs)
    except (AttributeError, TypeError) as exc:
        print(f"stage timing unavailable: {exc!r}", flush=True)
        return {}
    return {
        "stages_ms": {name: statistics.median(v) for name, v in times.items()},
        "postings_median": statistics.median(postings),
        "found_median": statistics.median(found),
        "stage_ids": kept,
    }


def _serve(path: str, qfile: str, configs_json: str, profile: str = "") -> None:
    from colbert_plugins.index import CompressedIndex
    from colbert_plugins.index.compressed import DEFAULT_EXACT

    model = open_model(None, 0, None)
    with np.load(qfile) as data:
        queries = [data[f"arr_{i}"] for i in range(len(data.files))]
    base = rss_mb("VmRSS")
    base_anon = rss_mb("RssAnon")
    for n, config in enumerate(json.loads(configs_json)):
        nprobe, candidates, rerank = config[:3]
        exact = config[3] if len(config) > 3 else DEFAULT_EXACT
        # Queries come encoded: the model only supplies the vector size (check_model_key off).
        index = CompressedIndex(
            model,
            path,
            nprobe=nprobe,
            candidates=candidates,
            rerank=rerank,
            exact=exact,
            check_model_key=False,
        )
        index.search_vectors(queries[0], k=10)  # warm up
        times, results = timed_top10(index, queries)
        # Again: the index pages those queries touched are now mapped into this process (the
        # first pass also paid for the page faults, and for disk reads where the pages were
        # not in the page cache): a long-running server's steady state.
        warm, _ = timed_top10(index, queries)
        row = {
            "rss_mb": rss_mb("VmRSS"),
            "rss_before_mb": base,
            "hwm_mb": rss_mb("VmHWM"),
            # RssFile: pages of the memory-mapped index (and libraries) the searches touched,
            # clean page cache the kernel can drop; RssAnon: the process's own memory.
            "rss_anon_mb": rss_mb("RssAnon"),
            "rss_file_mb": rss_mb("RssFile"),
            # of which the float16 originals (touched by the exact reranks only)
            "rss_originals_mb": mapped_rss_mb("originals.f16"),
            "rss_anon_before_mb": base_anon,
        }
        row.update(search_stages(index, queries))
        if n == 0 and profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            for q in queries:
                index.search_vectors(q, k=10)
            profiler.disable()
            print(f"cProfile of {len(queries)} searches (nprobe {nprobe}):", flush=True)
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)
            sys.stdout.flush()
        print(
            json.dumps(
                {
                    **row,
                    "nprobe": nprobe,
                    "candidates": candidates,
                    "rerank": rerank,
                    "exact": exact if index.keeps_originals else 0,
                    "p50_ms": 1000 * statistics.median(times),
                    "p95_ms": 1000 * percentile(times, 0.95),
                    "p50_warm_ms": 1000 * statistics.median(warm),
                    "p95_warm_ms": 1000 * percentile(warm, 0.95),
                    "results": results,
                }
            ),
            flush=True,
        )


def report(label: str, row: dict[str, Any]) -> None:
    print(
        f"{label:<28} nprobe {row['nprobe']:>2} cand {row['candidates']:>5} "
        f"rerank {row['rerank']:>5} exact {row.get('exact', 0):>4}  "
        f"recall@10 {row['recall']:.3f}  p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms"
        + (
            f" (again, warm: p50 {row['p50_warm_ms']:.1f} p95 {row['p95_warm_ms']:.1f})"
            if "p50_warm_ms" in row
            else ""
        )
        + f"  RSS {row['rss_mb']:6.0f} MB (peak {row['hwm_mb']:.0f}"
        + (
            f"; mapped files {row['rss_file_mb']:.0f} (originals "
            f"{row.get('rss_originals_mb', 0):.0f}), anonymous {row['rss_anon_mb']:.0f})"
            if "rss_file_mb" in row
            else ")"
        ),
        flush=True,
    )


#: (nprobe, candidates, rerank, exact) of --sweep: the codes' curve without the exact
#: rerank (exact 0, the codec-only search), then with it.
SWEEP = [
    (4, 1024, 256, 0),
    (2, 256, 64, 32),
    (4, 512, 128, 32),
    (4, 1024, 128, 32),
    (4, 1024, 256, 32),
    (4, 1024, 256, 64),
    (4, 2048, 512, 32),
    (8, 2048, 256, 32),
    (8, 2048, 512, 32),
    (8, 4096, 1024, 32),
]
#: Sizes of the head of the code-ranked list whose survival is reported.
SURVIVAL_AT = (10, 16, 24, 32, 48, 64, 96, 128, 256)

# -- (a), (b) real passages --------------------------------------------------------------------


def report_stages(row: dict[str, Any], exact: list[list[str]]) -> None:
    """Print how much of the exact top 10 each search stage still holds (the rest is lost
    there) and each stage's median time, when the search subprocess measured them."""
    if row.get("stage_ids"):
        ids = row.pop("stage_ids")
        codes = ids.pop("codes")
        row["stage_recall"] = {name: recall(got, exact) for name, got in ids.items()}
        row["code_survival"] = {
            n: recall([c[:n] for c in codes], exact) for n in SURVIVAL_AT if n <= row["rerank"]
        }
        row["prune_survival"] = {
            n: recall([c[:n] for c in ids["prune"]], exact)
            for n in SURVIVAL_AT
            if n <= row["rerank"]
        }
        print(
            f"{'':<28} exact top-10 kept after candidates "
            f"{row['stage_recall']['candidates']:.3f}, after prune "
            f"{row['stage_recall']['prune']:.3f}, final {row['recall']:.3f}; among the best N "
            "by the codes: "
            + ", ".join(f"{n} {v:.3f}" for n, v in row["code_survival"].items())
            + "; among the best N by centroid interaction: "
            + ", ".join(f"{n} {v:.3f}" for n, v in row["prune_survival"].items()),
            flush=True,
        )
    if row.get("stages_ms"):
        stages = "  ".join(f"{k} {v:.1f}" for k, v in row["stages_ms"].items())
        print(
            f"{'':<28} median stages (ms): {stages}; postings scanned "
            f"{row['postings_median']:.0f}, candidates found {row['found_median']:.0f}",
            flush=True,
        )


def beir_queries(
    n: int, seed: int, data: Path | None = None
) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """``n`` sampled queries of Cranfield, CISI and SciFact in ``data`` (default
    :data:`index_corpora.DATA`): ids, texts, and every collection's qrels."""
    data = DATA if data is None else data
    qids: list[str] = []
    texts: list[str] = []
    qrels: dict[str, dict[str, int]] = {}
    for name in ("cranfield", "cisi", "scifact"):
        with (data / name / "queries.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                q = json.loads(line)
                qids.append(f"{name}:{q['_id']}")
                texts.append(q["text"])
        with (data / name / "qrels.tsv").open(encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3 or not parts[-1].lstrip("-").isdigit():
                    continue
                qrels.setdefault(f"{name}:{parts[0]}", {})[f"{name}:{parts[1]}"] = int(parts[-1])
    pick = random.Random(seed).sample(range(len(qids)), min(n, len(qids)))
    return [qids[i] for i in pick], [texts[i] for i in pick], qrels


def run_real(args: argparse.Namespace) -> dict[str, Any]:
    from colbert_plugins.index import CompressedIndex

    model = open_model(args.cache, 0, args.document_length)
    items, vectors = cached_vectors(model, passages(args.corpus, args.words))
    tokens = sum(len(v) for v in vectors)
    print(f"{args.corpus}: {len(items)} passages in the cache, {tokens} token vectors", flush=True)
    ids = [i for i, _ in items]
    texts = [t for _, t in items]
    if args.corpus == "beir":
        qids, qtexts, qrels = beir_queries(args.queries, args.seed)
    else:  # the first 12 words of sampled passages
        rng = random.Random(args.seed)
        sampled = rng.sample(texts, min(args.queries, len(texts)))
        qids, qtexts, qrels = [], [" ".join(t.split()[:12]) for t in sampled], {}
    queries = model.encode_queries(qtexts)
    exact = exact_top10(queries, vectors, ids)
    rng = random.Random(args.seed)
    sample = rng.sample(texts, min(args.encode_sample, len(texts)))
    # The encoding rate is sampled before and after the build (the mean of the two), so that
    # a change in the machine's load during the run hits both sides of the ratio alike.
    sampler = encoder(args.document_length, sample[:4])
    before = encode_rate(sampler, sample)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "idx"
        seconds, cpu_seconds = build(path, model, ids, iter([(slice(0, len(ids)), vectors)]), texts)
        after = encode_rate(sampler, sample)
        rate = (before[0] + after[0]) / 2
        cpu_rate = (before[1] + after[1]) / 2
        index = CompressedIndex(model, path)
        result: dict[str, Any] = {
            "corpus": args.corpus,
            "passages": len(ids),
            "tokens": tokens,
            "ncentroids": len(index._snapshot.codec.centroids),  # type: ignore[union-attr]
            "vector_bytes_per_token": index.vector_bytes() / tokens,
            "original_bytes_per_token": index.original_bytes() / tokens,
            "disk_bytes_per_token": index.disk_bytes() / tokens,
            "float32_bytes_per_token": model.dim * 4,
            "nbits": BUILD.get("nbits", 2),
            "build_s": seconds,
            "build_cpu_s": cpu_seconds,
            "encode_docs_per_s": rate,
            "encode_docs_per_s_samples": [before[0], after[0]],
            "encode_s_projected": len(ids) / rate,
            "overhead": seconds / (len(ids) / rate),
            "overhead_cpu": cpu_seconds / (len(ids) / cpu_rate),
            "queries": len(queries),
        }
        configs = SWEEP if args.sweep else [config(args)]
        rows = serve(path, queries, configs)
        # The codec's ceiling on this index: brute-force MaxSim over every decoded passage.
        ceiling = recall(exact_top10(queries, index.get_vectors(ids), ids), exact)
        result["codec_ceiling_recall"] = ceiling
        del index
    print(
        f"bytes/token resident {result['vector_bytes_per_token']:.1f}, originals on disk "
        f"{result['original_bytes_per_token']:.1f} (all files "
        f"{result['disk_bytes_per_token']:.1f}; float32 {model.dim * 4})  build "
        f"{seconds:.1f} s  encode {result['encode_s_projected']:.0f} s at "
        f"{rate:.1f} docs/s (before/after the build: {before[0]:.1f}/{after[0]:.1f}) -> "
        f"overhead {100 * result['overhead']:.1f}% (CPU seconds: build {cpu_seconds:.0f}, "
        f"{100 * result['overhead_cpu']:.1f}% of encoding's)",
        flush=True,
    )
    if qrels:
        exact_ndcg = statistics.mean(
            ndcg10(e, qrels.get(q, {})) for q, e in zip(qids, exact, strict=True)
        )
        result["exact_ndcg10"] = exact_ndcg
        print(f"exact MaxSim nDCG@10 {exact_ndcg:.4f}", flush=True)
    for row in rows:
        row["recall"] = recall(row["results"], exact)
        if qrels:
            row["ndcg10"] = statistics.mean(
                ndcg10(r, qrels.get(q, {})) for q, r in zip(qids, row["results"], strict=True)
            )
        report(f"{args.corpus} {len(ids)} passages", row)
        if qrels:
            print(f"{'':<34} nDCG@10 {row['ndcg10']:.4f}", flush=True)
        report_stages(row, exact)
        del row["results"]
    print(
        f"codec ceiling: recall@10 {ceiling:.3f} for brute-force MaxSim over the decoded "
        "vectors of every passage (no candidate stage)",
        flush=True,
    )
    result["rows"] = rows
    print(json.dumps(result), flush=True)
    return result


def run_fidelity(args: argparse.Namespace) -> None:
    """The codec's ceiling: recall@10 of MaxSim over the decoded vectors of every passage
    (no candidate stage) against exact MaxSim, per nbits."""
    from colbert_plugins.index.codec import ResidualCodec, default_centroids

    model = open_model(args.cache, 0, args.document_length)
    items, vectors = cached_vectors(model, passages(args.corpus, args.words))
    items, vectors = items[: args.docs], vectors[: args.docs]
    ids = [i for i, _ in items]
    _, qtexts, _ = beir_queries(args.queries, args.seed)
    queries = model.encode_queries(qtexts)
    exact = exact_top10(queries, vectors, ids)
    flat = np.concatenate(vectors)
    k = default_centroids(len(flat))
    rng = np.random.default_rng(args.seed)
    sample = flat[rng.choice(len(flat), min(len(flat), 64 * k), replace=False)]
    for nbits in (1, 2, 4):
        codec = ResidualCodec.train(sample, k, nbits)
        decoded = codec.decode(*codec.encode(flat))
        docs = np.split(decoded, np.cumsum([len(v) for v in vectors])[:-1])
        cosine = float((decoded * flat).sum(axis=1).mean())
        print(
            f"{args.corpus} {len(ids)} passages, {k} centroids, nbits {nbits} "
            f"({codec.code_bytes + codec.id_dtype.itemsize} bytes/token): decoded cosine "
            f"{cosine:.4f}, recall@10 of brute force over decoded vectors "
            f"{recall(exact_top10(queries, docs, ids), exact):.3f}",
            flush=True,
        )


# -- (c), (d) synthetic ------------------------------------------------------------------------


class Synthetic:
    """Clustered unit vectors: each token is one of ``types`` directions (Zipf frequencies)
    plus its document's topic direction plus noise, normalized; documents get lengths drawn
    from a real length distribution. Chunk ``c`` is a pure function of (seed, c, its size)."""

    def __init__(self, dim: int, lengths: np.ndarray, seed: int, types: int = 32768) -> None:
        rng = np.random.default_rng(seed)
        spectrum = (np.arange(1, dim + 1) ** -0.5).astype(np.float32)  # anisotropic, as real ones
        self.types = rng.standard_normal((types, dim)).astype(np.float32) * spectrum
        self.types /= np.linalg.norm(self.types, axis=1, keepdims=True)
        self.topics = rng.standard_normal((4096, dim)).astype(np.float32) * spectrum
        self.topics /= np.linalg.norm(self.topics, axis=1, keepdims=True)
        self.noise = rng.standard_normal((65536, dim)).astype(np.float32) / np.sqrt(dim)
        freq = 1.0 / np.arange(1, types + 1) ** 0.8
        self.cdf = np.cumsum(freq / freq.sum())
        self.lengths = lengths
        self.seed = seed
        self.dim = dim

    def chunk_flat(self, c: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The token vectors of chunk ``c`` (``n`` documents) as one ``[tokens, dim]`` float32
        matrix, and the documents' lengths. Built in blocks of 65,536 rows, so the only large
        allocation is the result (about 600 MB for 5,000 documents)."""
        rng = np.random.default_rng([self.seed, c])
        lengths = rng.choice(self.lengths, n)
        total = int(lengths.sum())
        kinds = np.minimum(np.searchsorted(self.cdf, rng.random(total)), len(self.types) - 1)
        topic = np.repeat(rng.integers(0, len(self.topics), n), lengths)
        noise = rng.integers(0, len(self.noise), total)
        v = np.empty((total, self.dim), dtype=np.float32)
        for s in range(0, total, 1 << 16):
            e = min(total, s + (1 << 16))
            block = self.types[kinds[s:e]]
            block += 0.4 * self.topics[topic[s:e]]
            block += 0.3 * self.noise[noise[s:e]]
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            v[s:e] = block
        return v, lengths

    def chunk(self, c: int, n: int) -> list[np.ndarray]:
        v, lengths = self.chunk_flat(c, n)
        return np.split(v, np.cumsum(lengths)[:-1])

    def queries(self, docs: list[np.ndarray], n: int, length: int = 32) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, 10**6])
        out = []
        for d in rng.integers(0, len(docs), n):
            toks = docs[int(d)][rng.integers(0, len(docs[int(d)]), length)]
            q = toks + 0.3 * self.noise[rng.integers(0, len(self.noise), length)]
            out.append((q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
        return out


def real_lengths(cache: Path | None) -> np.ndarray:
    if cache is not None and cache.is_file():
        model = open_model(cache, 0, None)
        _, vectors = cached_vectors(model, passages("beir"))
        if vectors:
            return np.array([len(v) for v in vectors])
    print("no length cache: lognormal lengths (median 150)", flush=True)
    return np.clip(np.random.default_rng(0).lognormal(np.log(150), 0.5, 10000), 8, 510).astype(int)


#: Documents per synthetic chunk (generated, scored and added one chunk at a time).
CHUNK = 5000


def chunk_sizes(docs: int) -> list[int]:
    return [min(CHUNK, docs - c * CHUNK) for c in range(math.ceil(docs / CHUNK))]


def reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux ``clear_refs`` "5")."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def load() -> float:
    return round(os.getloadavg()[0], 2)


def exact_synthetic(
    synth: Synthetic,
    queries: list[np.ndarray],
    docs: int,
    per_call: int,
    carry: dict[str, Any] | None,
) -> dict[str, Any]:
    """Exact MaxSim top-10 over the first ``docs`` synthetic documents, streaming one chunk at a
    time (only one chunk's vectors in memory; the [query vectors, rows] similarity block of
    ``segmented_maxsim_batch`` is bounded by its own row budget, ``per_call`` queries share one
    pass over a chunk). ``carry``, the state of a smaller run whose chunks are a prefix of
    these (its size a multiple of :data:`CHUNK`), is continued instead of recomputed: the
    top-10 merge is the same either way."""
    from colbert_plugins.scoring import segmented_maxsim_batch

    sizes = chunk_sizes(docs)
    best: list[list[tuple[float, int]]] = [[] for _ in queries]
    first, tokens, continued_from = 0, 0, 0
    if carry is not None and carry["docs"] % CHUNK == 0 and carry["docs"] <= docs:
        first = carry["docs"] // CHUNK
        best = [list(b) for b in carry["best"]]
        tokens = carry["tokens"]
        continued_from = carry["docs"]
    gen_s = score_s = 0.0
    for c in range(first, len(sizes)):
        start = time.perf_counter()
        flat, lengths = synth.chunk_flat(c, sizes[c])
        gen_s += time.perf_counter() - start
        start = time.perf_counter()
        tokens += len(flat)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        for s in range(0, len(queries), per_call):
            scores = segmented_maxsim_batch(queries[s : s + per_call], flat, offsets)
            for qi, row in enumerate(scores, start=s):
                top = np.argpartition(-row, min(10, len(row) - 1))[:10]
                merged = best[qi] + [(float(row[i]), c * CHUNK + int(i)) for i in top]
                best[qi] = sorted(merged, key=lambda x: (-x[0], x[1]))[:10]
        del flat
        score_s += time.perf_counter() - start
    return {
        "docs": docs,
        "best": best,
        "tokens": tokens,
        "gen_s": gen_s,
        "score_s": score_s,
        "chunks": len(sizes) - first,
        "continued_from": continued_from,
    }


def run_synthetic_size(
    args: argparse.Namespace,
    model: Any,
    synth: Synthetic,
    queries: list[np.ndarray],
    docs: int,
    carry: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One full run at ``docs`` passages: exact top-10, build, search. Returns the result and
    the exact stage's state (for the next, larger size)."""
    from colbert_plugins.index import CompressedIndex

    sizes = chunk_sizes(docs)
    ids = [f"s{i}" for i in range(docs)]
    result: dict[str, Any] = {"synthetic_docs": docs, "load_start": load()}
    print(f"\n== synthetic {docs} passages (load {result['load_start']}) ==", flush=True)

    kept = None
    if args.keep:  # the exact top-10 and the index persist there, and are reused when present
        kept = args.keep / f"synthetic-{docs}-seed{args.seed}-queries{len(queries)}"
        kept.mkdir(parents=True, exist_ok=True)
    hwm_ok = reset_hwm()
    rss_before_exact = rss_mb("VmRSS")
    start = time.perf_counter()
    if kept is not None and (kept / "exact.json").exists():
        state = json.loads((kept / "exact.json").read_text())
        print(f"exact top-10 read from {kept / 'exact.json'}", flush=True)
    else:
        state = exact_synthetic(synth, queries, docs, args.exact_queries, carry)
        if kept is not None:
            (kept / "exact.json").write_text(json.dumps(state))
    exact_s = time.perf_counter() - start
    exact = [[f"s{d}" for _, d in b] for b in state["best"]]
    tokens = state["tokens"]
    result.update(
        tokens=tokens,
        exact_s=exact_s,
        exact_gen_s=state["gen_s"],
        exact_score_s=state["score_s"],
        exact_chunks=state["chunks"],
        exact_continued_from=state["continued_from"],
        exact_rss_before_mb=rss_before_exact,
        exact_peak_rss_mb=rss_mb("VmHWM") if hwm_ok else None,
        load_after_exact=load(),
    )
    print(
        f"synthetic {docs} docs, {tokens} tokens; exact top-10 in {exact_s:.0f} s "
        f"({state['chunks']} chunks: generate {state['gen_s']:.0f} s, score "
        f"{state['score_s']:.0f} s"
        + (f"; continued from {state['continued_from']} docs" if state["continued_from"] else "")
        + f"), RSS {rss_before_exact:.0f} MB -> peak {result['exact_peak_rss_mb'] or 0:.0f} MB",
        flush=True,
    )

    gen = [0.0, 0.0]  # wall, CPU seconds spent generating the synthetic vectors

    def chunks() -> Any:
        for c, size in enumerate(sizes):
            wall, cpu = time.perf_counter(), time.process_time()
            part = synth.chunk(c, size)
            gen[0] += time.perf_counter() - wall
            gen[1] += time.process_time() - cpu
            yield slice(c * CHUNK, c * CHUNK + size), part

    place = (
        contextlib.nullcontext(str(kept))
        if kept is not None
        else tempfile.TemporaryDirectory(dir=args.workdir)
    )
    with place as tmp:
        path = Path(tmp) / "idx"
        built = Path(tmp) / "build.json"
        if kept is not None and built.exists() and (path / "manifest.json").exists():
            print(f"index reused from {path} (build figures from {built})", flush=True)
            saved = json.loads(built.read_text())
            wall, cpu, gen[:] = saved["wall"], saved["cpu"], saved["gen"]
            before, peak = saved["before"], saved["peak"]
        else:
            hwm_ok = reset_hwm()
            before = rss_mb("VmRSS")
            wall, cpu = build(path, model, ids, chunks(), ids)
            peak = rss_mb("VmHWM") if hwm_ok else None
            if kept is not None:
                record = {"wall": wall, "cpu": cpu, "gen": gen, "before": before, "peak": peak}
                built.write_text(json.dumps(record))
        index = CompressedIndex(model, path)
        seconds = wall - gen[0]
        result.update(
            ncentroids=len(index._snapshot.codec.centroids),  # type: ignore[union-attr]
            vector_bytes_per_token=index.vector_bytes() / tokens,
            original_bytes_per_token=index.original_bytes() / tokens,
            disk_bytes_per_token=index.disk_bytes() / tokens,
            index_bytes=index.disk_bytes(),
            build_s=seconds,
            build_cpu_s=cpu - gen[1],
            build_gen_s=gen[0],
            build_s_per_mtok=seconds / (tokens / 1e6),
            rss_before_build_mb=before,
            build_peak_rss_mb=peak,
            load_after_build=load(),
        )
        del index
        if args.encode_rate:
            result["overhead"] = seconds / (docs / args.encode_rate)
        configs = SWEEP if args.sweep else [config(args)]
        start = time.perf_counter()
        rows = serve(path, queries, configs, args.profile)
        result["search_stage_s"] = time.perf_counter() - start
        result["load_after_search"] = load()
    print(
        f"bytes/token resident {result['vector_bytes_per_token']:.1f}, originals on disk "
        f"{result['original_bytes_per_token']:.1f} (all files "
        f"{result['disk_bytes_per_token']:.1f})  index {result['index_bytes'] / 2**20:.0f} MiB  "
        f"{result['ncentroids']} centroids  build {seconds:.0f} s ({result['build_cpu_s']:.0f} "
        f"CPU s; {result['build_s_per_mtok']:.0f} s per 1M tokens; synthetic generation "
        f"{gen[0]:.0f} s excluded)  build RSS {before:.0f} MB -> peak "
        + (f"{peak:.0f} MB" if peak is not None else "unknown (VmHWM could not be reset)")
        + (f"  overhead {100 * result['overhead']:.1f}%" if args.encode_rate else ""),
        flush=True,
    )
    for row in rows:
        row["recall"] = recall(row["results"], exact)
        report(f"synthetic {docs}", row)
        report_stages(row, exact)
        del row["results"]
    result["rows"] = rows
    print(
        f"stage times: exact {exact_s:.0f} s, build {wall:.0f} s (generation included), "
        f"search {result['search_stage_s']:.0f} s; load {result['load_start']} -> "
        f"{result['load_after_exact']} -> {result['load_after_build']} -> "
        f"{result['load_after_search']}",
        flush=True,
    )
    if args.compare:
        result["compare"] = compare(model, synth, sizes, CHUNK, ids, queries, exact, args)
    print(json.dumps(result), flush=True)
    return result, state


def config(args: argparse.Namespace) -> tuple[int, int, int, int]:
    """The one search configuration of a run without --sweep."""
    return (args.nprobe, args.candidates, args.rerank, args.exact)


def run_synthetic(args: argparse.Namespace) -> list[dict[str, Any]]:
    model = open_model(None, 0, None)
    lengths = real_lengths(args.lengths)
    synth = Synthetic(model.dim, lengths, args.seed)
    docs_list = args.sizes or [args.docs]
    queries = synth.queries(synth.chunk(0, chunk_sizes(min(docs_list))[0]), args.queries)
    results = []
    carry: dict[str, Any] | None = None
    for docs in docs_list:
        result, carry = run_synthetic_size(args, model, synth, queries, docs, carry)
        results.append(result)
    summary(results)
    if len(results) >= 2:
        project(results, float(np.mean(lengths)))
    return results


def summary(results: list[dict[str, Any]]) -> None:
    def mb(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    print("\nsummary (first configuration of each size)", flush=True)
    head = (
        f"{'passages':>9} {'tokens':>11} {'centr':>6} {'B/tok':>6} {'B/tok f16':>9} "
        f"{'B/tok all':>9} "
        f"{'build s':>8} {'s/1Mtok':>8} {'bld RSS0':>8} {'bld peak':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'warm p50':>8} {'srch RSS':>8} {'srch pk':>8} {'recall':>6} "
        f"{'exact s':>7} "
        f"{'search s':>8} {'load':>5}"
    )
    print(head)
    for r in results:
        row = r["rows"][0]
        print(
            f"{r['synthetic_docs']:>9} {r['tokens']:>11} {r['ncentroids']:>6} "
            f"{r['vector_bytes_per_token']:>6.1f} {r.get('original_bytes_per_token', 0):>9.1f} "
            f"{r['disk_bytes_per_token']:>9.1f} "
            f"{r['build_s']:>8.0f} {r['build_s_per_mtok']:>8.1f} "
            f"{mb(r['rss_before_build_mb']):>8} {mb(r['build_peak_rss_mb']):>8} "
            f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
            f"{mb(row.get('p50_warm_ms')):>8} {row['rss_mb']:>8.0f} "
            f"{row['hwm_mb']:>8.0f} {row['recall']:>6.3f} "
            f"{('+' if r.get('exact_continued_from') else '') + format(r['exact_s'], '.0f'):>7} "
            f"{r['search_stage_s']:>8.0f} {r['load_start']:>5.1f}",
            flush=True,
        )
    if any(r.get("exact_continued_from") for r in results):
        print("(+: exact top-10 continued from the previous size, only the new chunks scored)")


def summarize_files(files: list[Path]) -> None:
    """The summary table and projection of synthetic runs printed by separate commands (their
    JSON lines; the last one of each size wins)."""
    by_size: dict[int, dict[str, Any]] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.startswith("{") and '"synthetic_docs"' in line:
                result = json.loads(line)
                by_size[result["synthetic_docs"]] = result
    results = [by_size[n] for n in sorted(by_size)]
    if not results:
        raise SystemExit(f"no synthetic result lines in {', '.join(map(str, files))}")
    summary(results)
    if len(results) >= 2:
        last = results[-1]
        project(results, last["tokens"] / last["synthetic_docs"])


def project(results: list[dict[str, Any]], mean_length: float) -> None:
    """Print a projection to larger corpora: NOT a measurement. Build time, exact-stage time,
    the whole run's time and build peak RSS are fitted linear in tokens (least squares,
    ``a + b * tokens``); p50/p95 latency is fitted as ``c * tokens ** e`` (least squares on
    log-log) over the measured sizes."""
    tok = np.array([r["tokens"] for r in results], dtype=np.float64)
    targets = [(300_000, 300_000 * mean_length), (1_000_000, 1_000_000 * mean_length)]

    def linear(values: list[float]) -> tuple[float, float]:
        b, a = np.polyfit(tok, np.asarray(values, dtype=np.float64), 1)
        return float(a), float(b)

    def power(values: list[float]) -> tuple[float, float]:
        e, log_c = np.polyfit(np.log(tok), np.log(np.asarray(values, dtype=np.float64)), 1)
        return float(math.exp(log_c)), float(e)

    print(
        f"\nPROJECTION (fitted on {len(results)} measured sizes, {int(tok[0])}-{int(tok[-1])} "
        f"tokens; extrapolated, not measured; mean passage length {mean_length:.1f} tokens):",
        flush=True,
    )
    fits: list[tuple[str, str, Any]] = []
    tokens_of = {r["synthetic_docs"]: r["tokens"] for r in results}
    for r in results:
        # A continued exact stage scored only the new chunks: scale it to a fresh run's.
        scored = r["tokens"] - tokens_of.get(r.get("exact_continued_from", 0), 0)
        r["exact_fresh_s"] = r["exact_s"] * r["tokens"] / max(1, scored)
        r["run_s"] = r["exact_fresh_s"] + r["build_s"] + r["build_gen_s"] + r["search_stage_s"]
    for key, name in (
        ("build_s", "build s"),
        ("exact_fresh_s", "exact stage s"),
        ("run_s", "whole run s"),
    ):
        a, b = linear([r[key] for r in results])
        fits.append(
            (name, f"linear: {a:.1f} + {b * 1e6:.2f} per 1M tokens", lambda t, a=a, b=b: a + b * t)
        )
    peaks = [r["build_peak_rss_mb"] for r in results]
    if all(p is not None for p in peaks):
        a, b = linear(peaks)
        fits.append(
            (
                "build peak RSS MB",
                f"linear: {a:.0f} + {b * 1e6:.1f} per 1M tokens",
                lambda t, a=a, b=b: a + b * t,
            )
        )
    for key, name in (("p50_ms", "search p50 ms"), ("p95_ms", "search p95 ms")):
        c, e = power([r["rows"][0][key] for r in results])
        fits.append((name, f"log-log: {c:.3g} * tokens^{e:.2f}", lambda t, c=c, e=e: c * t**e))
    stages = [r["rows"][0].get("stages_ms") for r in results]
    if all(stages):
        # Only the candidate stage reads work that grows with the corpus (the probed inverted
        # lists); the others handle a fixed number of centroids / candidates / reranked
        # documents, so they are projected at their median over the sizes.
        parts: list[tuple[str, str, Any]] = []
        for name in stages[0]:
            values = [st[name] for st in stages]
            if name == "candidates":
                a, b = linear(values)
                parts.append(
                    (
                        f"  {name} ms",
                        f"linear: {a:.1f} + {b * 1e6:.2f} per 1M tokens",
                        lambda t, a=a, b=b: a + b * t,
                    )
                )
            else:
                m = statistics.median(values)
                parts.append((f"  {name} ms", "median over sizes (fixed work)", lambda t, m=m: m))
        fits.append(
            (
                "p50 ms by stages",
                "sum of the stage projections below",
                lambda t, parts=parts: sum(fn(t) for _, _, fn in parts),
            )
        )
        fits.extend(parts)
    print(
        f"{'quantity':<20} {'fit':<38} "
        + " ".join(f"{f'{n} ({t / 1e6:.0f}M tok)':>22}" for n, t in targets)
    )
    for name, how, fn in fits:
        print(f"{name:<20} {how:<38} " + " ".join(f"{fn(t):>22.0f}" for _, t in targets))
    last = results[-1]
    print(
        f"build at the largest size's rate ({last['build_s_per_mtok']:.1f} s per 1M tokens): "
        + ", ".join(f"{n}: {last['build_s_per_mtok'] * t / 1e6:.0f} s" for n, t in targets)
    )
    print(
        "whole run = exact (as if not continued from a smaller size) + build + synthetic "
        "generation + search subprocess. A projection "
        "from the sizes above, not a measurement; the machine was shared (load column)."
    )


def timed_top10(index: Any, queries: list[np.ndarray]) -> tuple[list[float], list[list[str]]]:
    """Seconds per ``search_vectors(q, k=10)`` and the ids it returned, per query."""
    times, got = [], []
    for q in queries:
        start = time.perf_counter()
        hits = index.search_vectors(q, k=10)
        times.append(time.perf_counter() - start)
        got.append([h.id for h in hits])
    return times, got


def compare(
    model: Any,
    synth: Synthetic,
    sizes: list[int],
    chunk: int,
    ids: list[str],
    queries: list[np.ndarray],
    exact: list[list[str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """(d) the exact in-memory index and Qdrant local mode on the same documents and queries."""
    from colbert_plugins.index import InMemoryIndex

    out: dict[str, Any] = {}
    exact_index = InMemoryIndex(model)
    for c, size in enumerate(sizes):
        docs = synth.chunk(c, size)
        part = ids[c * chunk : c * chunk + size]
        exact_index._upsert(part, part, [{} for _ in part], docs)
    times, got = timed_top10(exact_index, queries)
    out["exact"] = {
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
        "recall": recall(got, exact),
    }
    print(
        f"exact InMemoryIndex (float32)      p50 {out['exact']['p50_ms']:.1f} ms  "
        f"p95 {out['exact']['p95_ms']:.1f} ms  recall@10 {out['exact']['recall']:.3f}",
        flush=True,
    )
    del exact_index
    try:
        from colbert_plugins.index.qdrant import QdrantIndex
    except ImportError:
        return out
    with QdrantIndex(model) as qdrant:
        start = time.perf_counter()
        for c, size in enumerate(sizes):
            docs = synth.chunk(c, size)
            part = ids[c * chunk : c * chunk + size]
            qdrant._upsert(part, part, [{} for _ in part], docs)
        load_s = time.perf_counter() - start
        times, got = timed_top10(qdrant, queries[: args.qdrant_queries])
    out["qdrant_local"] = {
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
        "recall": recall(got, exact[: len(got)]),
        "queries": len(got),
        "load_s": load_s,
    }
    row = out["qdrant_local"]
    print(
        f"Qdrant local mode (MUVERA prefetch) p50 {row['p50_ms']:.1f} ms  p95 {row['p95_ms']:.1f}"
        f" ms  recall@10 {row['recall']:.3f} ({row['queries']} queries; load {load_s:.0f} s)",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        index_corpora.MODEL = Path(argv[1])
        _serve(*argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["real", "synthetic", "fidelity", "summary"])
    parser.add_argument("--corpus", default="beir", choices=["beir", "pydoc"])
    parser.add_argument(
        "--model", type=Path, default=index_corpora.MODEL, help="model directory (default: proxy)"
    )
    parser.add_argument("--cache", type=Path, help="EmbeddingCache file (index_corpora.py)")
    parser.add_argument("--document-length", type=int, default=None)
    parser.add_argument("--words", type=int, default=64)
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument(
        "--sizes",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="synthetic: comma-separated passage counts, run in sequence (overrides --docs)",
    )
    parser.add_argument(
        "--ncentroids", type=int, default=None, help="k-means centroids (default: the index's)"
    )
    parser.add_argument(
        "--exact-queries", type=int, default=16, help="queries per pass of the exact top-10"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the search subprocess's queries"
    )
    parser.add_argument("--lengths", type=Path, help="BEIR cache to draw lengths from")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--qdrant-queries", type=int, default=10)
    parser.add_argument("--encode-sample", type=int, default=48)
    parser.add_argument("--encode-rate", type=float, default=None, help="docs/s (synthetic)")
    parser.add_argument("--nprobe", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--rerank", type=int, default=None)
    parser.add_argument(
        "--exact", type=int, default=None, help="documents rescored from the originals (0: none)"
    )
    parser.add_argument(
        "--no-originals",
        action="store_true",
        help="build the index without float16 originals (codes only)",
    )
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--results",
        type=Path,
        nargs="+",
        help="summary: files holding the JSON lines of synthetic runs (other lines ignored)",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="synthetic: keep each size's exact top-10 and index under this folder, and reuse "
        "them when they are there (to rerun searches without rebuilding)",
    )
    args = parser.parse_args(argv)
    index_corpora.MODEL = args.model
    from colbert_plugins.index.compressed import (
        DEFAULT_CANDIDATES,
        DEFAULT_EXACT,
        DEFAULT_NPROBE,
        DEFAULT_RERANK,
    )

    args.nprobe = args.nprobe or DEFAULT_NPROBE
    args.candidates = args.candidates or DEFAULT_CANDIDATES
    args.rerank = args.rerank or DEFAULT_RERANK
    args.exact = DEFAULT_EXACT if args.exact is None else args.exact
    BUILD["nbits"] = args.nbits
    if args.no_originals:
        BUILD["originals"] = False
    if args.ncentroids:
        BUILD["ncentroids"] = args.ncentroids
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        flush=True,
    )
    if args.part == "summary":
        if not args.results:
            parser.error("summary needs --results FILE [FILE ...]")
        summarize_files(args.results)
        return 0
    if args.part == "fidelity":
        run_fidelity(args)
    elif args.part == "real":
        if args.cache is None:
            parser.error("real needs --cache (made by benchmarks/index_corpora.py encode)")
        run_real(args)
    else:
        run_synthetic(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
