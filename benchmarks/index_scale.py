"""CompressedIndex at scale: bytes per token, build time, RSS, latency and recall@10 against
exact MaxSim, on real and synthetic token vectors.

Usage:
    # (a) real passages (Cranfield + CISI + SciFact, ~8,000) encoded once into a cache by
    #     benchmarks/index_corpora.py; --sweep adds the nprobe x candidates curve
    python benchmarks/index_scale.py real --corpus beir --cache beir.sqlite --sweep
    # (b) Debian python3-doc passages, as many as the cache holds (never encodes them)
    python benchmarks/index_scale.py real --corpus pydoc --cache pydoc.sqlite --document-length 128
    # the codec's ceiling: brute force over the decoded vectors of 3,000 passages, nbits 1/2/4
    python benchmarks/index_scale.py fidelity --cache beir.sqlite --docs 3000 --queries 60
    # (c) synthetic clustered unit vectors with the real corpus' length distribution;
    #     (d) --compare adds the exact index and Qdrant local mode on the same queries
    python benchmarks/index_scale.py synthetic --docs 10000 --compare --lengths beir.sqlite

What is measured, per run, on this machine:

- bytes/token: ``CompressedIndex.vector_bytes()`` (codes, centroid ids, inverted lists,
  offsets, centroids) and ``disk_bytes()`` (every file, texts and metadata included) divided by
  the live token vectors;
- build: seconds to add every document's vectors (k-means, compression, inverted lists,
  fsync'd commit), against the time the model takes to encode the same documents (measured
  on a sample of them in the same run: the "index overhead" ratio; the synthetic run uses the
  real corpus' encoding rate when ``--encode-rate`` is given);
- search, in a fresh subprocess that only opens the index and runs the queries (so its RSS is
  what serving costs): p50/p95 latency of ``search_vectors(q, k=10)`` (query encoding
  excluded), peak RSS (VmHWM), recall@10 against exact MaxSim over the float32 vectors.

Prints one table row per configuration and a JSON line with every number.
"""

from __future__ import annotations

import argparse
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

from index_corpora import DATA, MODEL, open_model, passages  # noqa: E402

# -- helpers -----------------------------------------------------------------------------------


def rss_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


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
    out = []
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


def encode_rate(model_dir: Path, texts: list[str], document_length: int | None) -> float:
    """Documents/s of the model on ``texts`` (no cache), in this process."""
    model = open_model(None, 0, document_length)
    model.cache = None
    model.encode_documents(texts[:4])
    start = time.perf_counter()
    model.encode_documents(texts)
    return len(texts) / (time.perf_counter() - start)


BUILD: dict[str, Any] = {}


def build(path: Path, model: Any, ids: list[str], vectors_chunks: Any, texts: Any) -> float:
    """Add every chunk's vectors in one commit; return seconds."""
    from colbert_plugins.index import CompressedIndex
    from colbert_plugins.index.compressed import _document_line

    index = CompressedIndex(model, path, **BUILD)
    lines = [_document_line(i, t, {}) for i, t in zip(ids, texts, strict=True)]
    start = time.perf_counter()
    index._write(ids, lines, [{} for _ in ids], vectors_chunks)
    return time.perf_counter() - start


def serve(
    path: Path, queries: list[np.ndarray], configs: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """Run the queries in a fresh subprocess against the index at ``path``."""
    with tempfile.TemporaryDirectory() as tmp:
        qfile = Path(tmp) / "queries.npz"
        np.savez(qfile, *queries)
        out = subprocess.run(
            [sys.executable, __file__, "_serve", str(path), str(qfile), json.dumps(configs)],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode:
        raise SystemExit(f"the search subprocess failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _serve(path: str, qfile: str, configs_json: str) -> None:
    from colbert_plugins.index import CompressedIndex

    model = open_model(None, 0, None)
    with np.load(qfile) as data:
        queries = [data[f"arr_{i}"] for i in range(len(data.files))]
    base = rss_mb("VmRSS")
    for nprobe, candidates, rerank in json.loads(configs_json):
        # Queries come encoded: the model only supplies the vector size (check_model_key off).
        index = CompressedIndex(
            model, path, nprobe=nprobe, candidates=candidates, rerank=rerank, check_model_key=False
        )
        index.search_vectors(queries[0], k=10)  # warm up
        times, results = [], []
        for q in queries:
            start = time.perf_counter()
            hits = index.search_vectors(q, k=10)
            times.append(time.perf_counter() - start)
            results.append([h.id for h in hits])
        print(
            json.dumps(
                {
                    "nprobe": nprobe,
                    "candidates": candidates,
                    "rerank": rerank,
                    "p50_ms": 1000 * statistics.median(times),
                    "p95_ms": 1000 * percentile(times, 0.95),
                    "rss_mb": rss_mb("VmRSS"),
                    "rss_before_mb": base,
                    "hwm_mb": rss_mb("VmHWM"),
                    "results": results,
                }
            ),
            flush=True,
        )


def report(label: str, row: dict[str, Any]) -> None:
    print(
        f"{label:<28} nprobe {row['nprobe']:>2} cand {row['candidates']:>5} "
        f"rerank {row['rerank']:>5}  "
        f"recall@10 {row['recall']:.3f}  p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms"
        f"  RSS {row['rss_mb']:6.0f} MB (peak {row['hwm_mb']:.0f})",
        flush=True,
    )


SWEEP = [
    (2, 256, 64),
    (4, 512, 128),
    (4, 1024, 256),
    (8, 2048, 512),
    (8, 4096, 1024),
    (16, 8192, 2048),
]

# -- (a), (b) real passages --------------------------------------------------------------------


def beir_queries(n: int, seed: int) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    qids, texts, qrels = [], [], {}
    for name in ("cranfield", "cisi", "scifact"):
        with (DATA / name / "queries.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                q = json.loads(line)
                qids.append(f"{name}:{q['_id']}")
                texts.append(q["text"])
        with (DATA / name / "qrels.tsv").open(encoding="utf-8") as fh:
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
    rate = encode_rate(MODEL, sample, args.document_length)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "idx"
        seconds = build(path, model, ids, iter([(slice(0, len(ids)), vectors)]), texts)
        index = CompressedIndex(model, path)
        result: dict[str, Any] = {
            "corpus": args.corpus,
            "passages": len(ids),
            "tokens": tokens,
            "ncentroids": len(index._snapshot.codec.centroids),  # type: ignore[union-attr]
            "vector_bytes_per_token": index.vector_bytes() / tokens,
            "disk_bytes_per_token": index.disk_bytes() / tokens,
            "float32_bytes_per_token": model.dim * 4,
            "nbits": BUILD.get("nbits", 2),
            "build_s": seconds,
            "encode_docs_per_s": rate,
            "encode_s_projected": len(ids) / rate,
            "overhead": seconds / (len(ids) / rate),
            "queries": len(queries),
        }
        configs = SWEEP if args.sweep else [(args.nprobe, args.candidates, args.rerank)]
        rows = serve(path, queries, configs)
    print(
        f"bytes/token {result['vector_bytes_per_token']:.1f} (all files "
        f"{result['disk_bytes_per_token']:.1f}; float32 {model.dim * 4})  build "
        f"{seconds:.1f} s  encode {result['encode_s_projected']:.0f} s at "
        f"{rate:.1f} docs/s -> overhead {100 * result['overhead']:.1f}%",
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
        del row["results"]
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
    from a real length distribution. Chunk ``c`` is a pure function of (seed, c)."""

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

    def chunk(self, c: int, n: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, c])
        lengths = rng.choice(self.lengths, n)
        total = int(lengths.sum())
        kinds = np.minimum(np.searchsorted(self.cdf, rng.random(total)), len(self.types) - 1)
        topic = np.repeat(rng.integers(0, len(self.topics), n), lengths)
        v = self.types[kinds] + 0.4 * self.topics[topic]
        v += 0.3 * self.noise[rng.integers(0, len(self.noise), total)]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return np.split(v.astype(np.float32), np.cumsum(lengths)[:-1])

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


def run_synthetic(args: argparse.Namespace) -> dict[str, Any]:
    from colbert_plugins.index import CompressedIndex

    model = open_model(None, 0, None)
    lengths = real_lengths(args.lengths)
    synth = Synthetic(model.dim, lengths, args.seed)
    chunk = 5000
    nchunks = math.ceil(args.docs / chunk)
    sizes = [min(chunk, args.docs - c * chunk) for c in range(nchunks)]
    queries = synth.queries(synth.chunk(0, sizes[0]), args.queries)
    ids = [f"s{i}" for i in range(args.docs)]

    # Exact top-10 by streaming the chunks (vectors regenerated, never all in memory).
    from colbert_plugins.scoring import segmented_maxsim_batch

    best: list[list[tuple[float, str]]] = [[] for _ in queries]
    tokens = 0
    start_exact = time.perf_counter()
    for c, size in enumerate(sizes):
        docs = synth.chunk(c, size)
        tokens += sum(len(d) for d in docs)
        flat = np.concatenate(docs)
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
        all_scores = np.concatenate(
            [
                segmented_maxsim_batch(queries[s : s + 16], flat, offsets)
                for s in range(0, len(queries), 16)
            ]
        )
        for qi, scores in enumerate(all_scores):
            top = np.argsort(-scores)[:10]
            best[qi] = sorted(
                best[qi] + [(float(scores[i]), ids[c * chunk + int(i)]) for i in top],
                key=lambda x: -x[0],
            )[:10]
    exact = [[d for _, d in b] for b in best]
    exact_s = time.perf_counter() - start_exact
    print(
        f"synthetic {args.docs} docs, {tokens} tokens; exact top-10 in {exact_s:.0f} s", flush=True
    )

    def chunks() -> Any:
        for c, size in enumerate(sizes):
            yield slice(c * chunk, c * chunk + size), synth.chunk(c, size)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "idx"
        before = rss_mb("VmHWM")
        seconds = build(path, model, ids, chunks(), ids)
        index = CompressedIndex(model, path)
        result: dict[str, Any] = {
            "synthetic_docs": args.docs,
            "tokens": tokens,
            "ncentroids": len(index._snapshot.codec.centroids),  # type: ignore[union-attr]
            "vector_bytes_per_token": index.vector_bytes() / tokens,
            "disk_bytes_per_token": index.disk_bytes() / tokens,
            "index_bytes": index.disk_bytes(),
            "build_s": seconds,
            "build_peak_rss_mb": rss_mb("VmHWM"),
            "rss_before_build_mb": before,
        }
        if args.encode_rate:
            result["overhead"] = seconds / (args.docs / args.encode_rate)
        configs = SWEEP if args.sweep else [(args.nprobe, args.candidates, args.rerank)]
        rows = serve(path, queries, configs)
    print(
        f"bytes/token {result['vector_bytes_per_token']:.1f} (all files "
        f"{result['disk_bytes_per_token']:.1f})  index {result['index_bytes'] / 2**20:.0f} MiB  "
        f"build {seconds:.0f} s (peak RSS of the build process {result['build_peak_rss_mb']:.0f} "
        f"MB)" + (f"  overhead {100 * result['overhead']:.1f}%" if args.encode_rate else ""),
        flush=True,
    )
    for row in rows:
        row["recall"] = recall(row["results"], exact)
        report(f"synthetic {args.docs}", row)
        del row["results"]
    result["rows"] = rows
    if args.compare:
        result["compare"] = compare(model, synth, sizes, chunk, ids, queries, exact, args)
    print(json.dumps(result), flush=True)
    return result


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
    times = []
    got = []
    for q in queries:
        start = time.perf_counter()
        got.append([h.id for h in exact_index.search_vectors(q, k=10)])
        times.append(time.perf_counter() - start)
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
        times, got = [], []
        for q in queries[: args.qdrant_queries]:
            start = time.perf_counter()
            got.append([h.id for h in qdrant.search_vectors(q, k=10)])
            times.append(time.perf_counter() - start)
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
        _serve(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["real", "synthetic", "fidelity"])
    parser.add_argument("--corpus", default="beir", choices=["beir", "pydoc"])
    parser.add_argument("--cache", type=Path, help="EmbeddingCache file (index_corpora.py)")
    parser.add_argument("--document-length", type=int, default=None)
    parser.add_argument("--words", type=int, default=64)
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--lengths", type=Path, help="BEIR cache to draw lengths from")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--qdrant-queries", type=int, default=10)
    parser.add_argument("--encode-sample", type=int, default=48)
    parser.add_argument("--encode-rate", type=float, default=None, help="docs/s (synthetic)")
    parser.add_argument("--nprobe", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--rerank", type=int, default=None)
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    from colbert_plugins.index.compressed import (
        DEFAULT_CANDIDATES,
        DEFAULT_NPROBE,
        DEFAULT_RERANK,
    )

    args.nprobe = args.nprobe or DEFAULT_NPROBE
    args.candidates = args.candidates or DEFAULT_CANDIDATES
    args.rerank = args.rerank or DEFAULT_RERANK
    BUILD["nbits"] = args.nbits
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}", flush=True)
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
