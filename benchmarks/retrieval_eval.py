"""Retrieval quality, agreement and speed: BM25, exact ColBERT, Qdrant two-stage, BM25 + rerank.

Usage:
    python benchmarks/retrieval_eval.py [--model DIR] [--data DIR] [--collections cranfield,scifact]
        [--max-docs N] [--max-queries N] [--threads 2] [--prefetch 50,100,200,400]
        [--fixed muvera,mean] [--json results.json] [--cache-file vectors.sqlite]

Systems, on BEIR-layout collections (corpus.jsonl, queries.jsonl, qrels.tsv):

- ``bm25``: bm25s (k1=0.9, b=0.4, English stopwords, no stemming), title + text;
- ``colbert-exact``: the in-process :class:`InMemoryIndex` (exact MaxSim over all documents);
- ``qdrant-local``: :class:`QdrantIndex` in qdrant-client's local mode: ``prefetch`` candidates
  by the fixed-length vector (MUVERA by default), then exact MaxSim over them, in one query;
- ``bm25+rerank``: BM25 top 100 reranked by ColBERT MaxSim (document vectors precomputed).

Metrics: nDCG@10 (gain 2^rel - 1) and recall@100 over the judged queries; median query
latency (query encoding included; for bm25+rerank: BM25 + query encoding + MaxSim of 100
stored documents); index build time (ColBERT: document encoding, reported once, plus each
backend's insertion) and size. Agreement: the exact index's top 10 against a brute-force
reference (``ColBERT.score_vectors`` over every document, ties in input order), and the Qdrant
two-stage top 10 against the exact top 10 (recall@10) for each prefetch size. Qdrant's local
mode scans every point in Python, so the two-stage results of all queries are computed with
numpy exactly as Qdrant's local prefetch does (exact top-P by the fixed vector, then MaxSim),
and ``--qdrant-queries`` of them also run through Qdrant (latency, and a check that both agree).

``--max-docs`` keeps the documents judged relevant for the selected queries, then fills up
with the others in corpus order, so that the metrics stay meaningful on a slice.

The default model (../shared/models/colbert-minilm-proxy) is NOT trained for late
interaction: its absolute quality numbers are meaningless; agreement and speed are not.
"""

# ruff: noqa: E402  (BLAS threads are set before numpy is imported)
from __future__ import annotations

import os

# Single-threaded BLAS unless told otherwise (before numpy loads): MaxSim products here are
# small, and multi-threaded OpenBLAS on small products on a busy machine is many times
# slower. ONNX Runtime's threads are set by --threads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache
from colbert_plugins.index import InMemoryIndex
from colbert_plugins.index.qdrant import QdrantIndex
from colbert_plugins.model import rank_order

SHARED = Path(__file__).resolve().parents[2] / "shared"
DISCLAIMER = (
    "The proxy model (colbert-minilm-proxy) is not trained for late interaction: its "
    "nDCG/recall numbers say nothing about ColBERT's quality. Agreement and speed are "
    "meaningful."
)


@dataclass
class Collection:
    name: str
    doc_ids: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]


@dataclass
class SystemResult:
    name: str
    runs: dict[str, list[str]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    search_latencies: list[float] = field(default_factory=list)
    build_s: float = 0.0
    size_bytes: int = 0
    note: str = ""


def load_collection(root: Path, max_docs: int | None, max_queries: int | None) -> Collection:
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels.tsv").open(encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    query_ids, queries = [], []
    with (root / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in qrels:
                query_ids.append(q["_id"])
                queries.append(q["text"])
    if max_queries is not None:
        query_ids, queries = query_ids[:max_queries], queries[:max_queries]
    docs: dict[str, str] = {}
    with (root / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docs[d["_id"]] = f"{d.get('title', '')} {d['text']}".strip()
    doc_ids = list(docs)
    if max_docs is not None and max_docs < len(doc_ids):
        judged = {d for qid in query_ids for d in qrels.get(qid, {}) if d in docs}
        keep = [d for d in doc_ids if d in judged][:max_docs]
        keep_set = set(keep)
        keep += [d for d in doc_ids if d not in keep_set][: max_docs - len(keep)]
        doc_ids = sorted(keep, key=doc_ids.index)
    kept = set(doc_ids)
    qrels = {q: {d: s for d, s in qrels[q].items() if d in kept} for q in query_ids}
    return Collection(root.name, doc_ids, [docs[d] for d in doc_ids], query_ids, queries, qrels)


# -- metrics -----------------------------------------------------------------------------------


def ndcg_at(run: Sequence[str], judged: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(run[:k]))
    ideal = sorted(judged.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(run: Sequence[str], judged: dict[str, int], k: int = 100) -> float:
    return len(set(run[:k]) & set(judged)) / len(judged) if judged else 0.0


def evaluate(result: SystemResult, coll: Collection) -> tuple[float, float]:
    judged = [q for q in coll.query_ids if coll.qrels.get(q)]
    ndcg = statistics.fmean(ndcg_at(result.runs[q], coll.qrels[q]) for q in judged)
    recall = statistics.fmean(recall_at(result.runs[q], coll.qrels[q]) for q in judged)
    return ndcg, recall


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else float("nan")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- systems -----------------------------------------------------------------------------------


def run_bm25(coll: Collection) -> tuple[SystemResult, Any]:
    import bm25s

    result = SystemResult("bm25 (bm25s)")
    started = time.perf_counter()
    tokens = bm25s.tokenize(coll.texts, stopwords="en", show_progress=False)
    bm25 = bm25s.BM25(k1=0.9, b=0.4)
    bm25.index(tokens, show_progress=False)
    result.build_s = time.perf_counter() - started
    result.size_bytes = sum(
        v.nbytes for v in bm25.scores.values() if isinstance(v, np.ndarray)
    )  # the sparse score matrix
    k = min(100, len(coll.texts))
    for qid, query in zip(coll.query_ids, coll.queries, strict=True):
        started = time.perf_counter()
        q_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)
        indices, _ = bm25.retrieve(q_tokens, k=k, show_progress=False, n_threads=1)
        result.latencies.append(time.perf_counter() - started)
        result.runs[qid] = [coll.doc_ids[i] for i in indices[0]]
    result.search_latencies = result.latencies
    return result, bm25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=os.environ.get(
            "COLBERT_PLUGINS_TEST_MODEL", str(SHARED / "models/colbert-minilm-proxy")
        ),
    )
    parser.add_argument("--data", default=str(SHARED / "data"))
    parser.add_argument("--collections", default="cranfield", help="comma-separated")
    parser.add_argument("--max-docs", type=int, default=None)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--prefetch", default="50,100,200,400", help="Qdrant prefetch sizes (comma-separated)"
    )
    parser.add_argument(
        "--qdrant-queries",
        type=int,
        default=30,
        help="queries run through Qdrant's local mode itself (slow: it scans every point)",
    )
    parser.add_argument(
        "--fixed", default="muvera", help='Qdrant fixed vectors: "muvera", "mean" or both'
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument(
        "--cache-file",
        default=None,
        help="SQLite file persisting document vectors between runs (encoding time is then "
        "that of reading them back)",
    )
    args = parser.parse_args()
    prefetches = sorted(int(p) for p in args.prefetch.split(","))

    print(f"> {DISCLAIMER}\n")
    report: dict[str, Any] = {"model": args.model, "threads": args.threads, "collections": {}}
    for name in args.collections.split(","):
        coll = load_collection(Path(args.data) / name, args.max_docs, args.max_queries)
        report["collections"][name] = evaluate_collection(coll, args, prefetches)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def evaluate_collection(
    coll: Collection, args: argparse.Namespace, prefetches: list[int]
) -> dict[str, Any]:
    # Holds every document: encode once (and across runs with --cache-file).
    cache = EmbeddingCache(max_bytes=8 << 30, path=args.cache_file)
    model = ColBERT.from_pretrained(args.model, threads=args.threads, cache=cache)
    model.encode_queries(["warm up"])
    print(
        f"## {coll.name}: {len(coll.texts)} documents, {len(coll.queries)} queries "
        f"(model {Path(args.model).name}, dim {model.dim}, threads {args.threads})\n"
    )
    systems: list[SystemResult] = []

    bm25_result, bm25 = run_bm25(coll)
    systems.append(bm25_result)

    # Encode every document once; the indexes below then read them from the cache.
    started = time.perf_counter()
    doc_vectors = model.encode_documents(coll.texts, batch_size=args.batch_size)
    encode_s = time.perf_counter() - started
    if cache.stats().disk_hits:
        print(
            f"NOTE: {cache.stats().disk_hits} document encodings were read from --cache-file: "
            "the encoding and build times below do not include encoding them."
        )
    n_tokens = sum(len(v) for v in doc_vectors)
    print(
        f"document encoding: {encode_s:.1f} s ({len(coll.texts) / encode_s:.1f} docs/s, "
        f"{n_tokens / len(coll.texts):.0f} vectors/doc)\n"
    )
    started = time.perf_counter()
    query_vectors = model.encode_queries(coll.queries)
    query_encode_ms = 1000 * (time.perf_counter() - started) / len(coll.queries)

    # Exact in-process index.
    exact = SystemResult("colbert-exact (InMemoryIndex)")
    index = InMemoryIndex(model)
    started = time.perf_counter()
    index.add(coll.texts, ids=coll.doc_ids, batch_size=args.batch_size)
    exact.build_s = encode_s + time.perf_counter() - started
    tmp = Path(tempfile.mkdtemp())
    try:
        exact.size_bytes = dir_size(index.save(tmp / "index"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    k = min(100, len(coll.texts))
    encode_times = []  # one query at a time, as a retriever does
    for qid, query in zip(coll.query_ids, coll.queries, strict=True):
        started = time.perf_counter()
        model.encode_queries([query])
        encode_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        hits = index.search(query, k=k)
        exact.latencies.append(time.perf_counter() - started)
        exact.runs[qid] = [h.id for h in hits]
    for qv in query_vectors:
        started = time.perf_counter()
        index.search_vectors(qv, k=k)
        exact.search_latencies.append(time.perf_counter() - started)
    systems.append(exact)

    # Agreement with a brute-force reference.
    identical, max_diff = 0, 0.0
    full_scores: dict[str, np.ndarray] = {}
    position = {d: i for i, d in enumerate(coll.doc_ids)}
    for qid, qv in zip(coll.query_ids, query_vectors, strict=True):
        scores = model.score_vectors(qv, doc_vectors)
        full_scores[qid] = scores
        reference = [coll.doc_ids[i] for i in rank_order(scores, 10)]
        hits = index.search_vectors(qv, k=10)
        identical += [h.id for h in hits] == reference
        max_diff = max(max_diff, max(abs(h.score - float(scores[position[h.id]])) for h in hits))

    # Qdrant local. Its local mode scores every point in Python on each query (slow), and its
    # prefetch is an exact top-P by the fixed vector, so the two-stage result over all queries
    # is computed with numpy (top-P by fixed-vector dot product, then MaxSim); the first
    # --qdrant-queries queries go through Qdrant itself, for latency and to check that the
    # two agree.
    agreement: dict[str, dict[int, float]] = {}
    checks: dict[str, str] = {}
    n_check = min(args.qdrant_queries, len(coll.query_ids))
    for fixed in args.fixed.split(","):
        qdrant = QdrantIndex(model, location=":memory:", fixed=fixed)  # type: ignore[arg-type]
        started = time.perf_counter()
        qdrant.add(coll.texts, ids=coll.doc_ids, batch_size=args.batch_size)
        qdrant_build = encode_s + time.perf_counter() - started
        qdrant_bytes = 4 * (n_tokens * model.dim + len(coll.texts) * qdrant.fixed_dim)
        fixed_docs = qdrant.fixed_vectors(doc_vectors)
        fixed_queries = qdrant.fixed_vectors(query_vectors, query=True)

        def two_stage(i: int, prefetch: int, top: int, docs: np.ndarray = fixed_docs,
                      queries: np.ndarray = fixed_queries) -> list[str]:  # fmt: skip
            """Top ``top`` by MaxSim among the ``prefetch`` best by the fixed vector."""
            order = np.argsort(-(docs @ queries[i]), kind="stable")
            candidates = order[: max(prefetch, top)]
            ranked = rank_order(full_scores[coll.query_ids[i]][candidates], top)
            return [coll.doc_ids[candidates[j]] for j in ranked]

        default_prefetch = qdrant.prefetch_limit or len(coll.texts)
        result = SystemResult(f"qdrant-local ({fixed}, prefetch {max(default_prefetch, k)})")
        result.build_s, result.size_bytes = qdrant_build, qdrant_bytes
        result.runs = {
            qid: two_stage(i, default_prefetch, k) for i, qid in enumerate(coll.query_ids)
        }
        same_top10 = same_small = 0
        full_scan: list[float] = []
        for i in range(n_check):
            qid, qv = coll.query_ids[i], query_vectors[i]
            qdrant.prefetch_limit = default_prefetch
            started = time.perf_counter()
            hits = qdrant.search_vectors(qv, k=k)
            result.search_latencies.append(time.perf_counter() - started)
            result.latencies.append(result.search_latencies[-1] + encode_times[i])
            same_top10 += [h.id for h in hits[:10]] == result.runs[qid][:10]
            qdrant.prefetch_limit = prefetches[0]  # the smallest prefetch, k=10
            small = [h.id for h in qdrant.search_vectors(qv, k=10)]
            same_small += small == two_stage(i, prefetches[0], 10)
            if i < 5:
                qdrant.prefetch_limit = None
                started = time.perf_counter()
                qdrant.search_vectors(qv, k=k)
                full_scan.append(time.perf_counter() - started)
        systems.append(result)
        checks[fixed] = (
            f"{fixed}: Qdrant's own top-10 (prefetch {max(default_prefetch, k)}, k={k}) equals "
            f"the numpy two-stage top-10 for {same_top10}/{n_check} queries (prefetch "
            f"{prefetches[0]}, k=10: {same_small}/{n_check}); Qdrant local "
            f"search {median_ms(result.search_latencies):.0f} ms p50 with prefetch, "
            f"{median_ms(full_scan):.0f} ms without (full MaxSim scan)"
        )
        agreement[fixed] = {}
        for prefetch in prefetches:
            overlaps = [
                len(set(two_stage(i, prefetch, 10)) & set(exact.runs[qid][:10])) / 10
                for i, qid in enumerate(coll.query_ids)
            ]
            agreement[fixed][prefetch] = statistics.fmean(overlaps)
        qdrant.close()

    # BM25 top 100 + ColBERT rerank (document vectors precomputed, as an index would hold).
    import bm25s

    rerank = SystemResult("bm25 top-100 + colbert rerank")
    rerank.build_s = bm25_result.build_s + encode_s
    rerank.size_bytes = bm25_result.size_bytes + exact.size_bytes
    by_id = dict(zip(coll.doc_ids, doc_vectors, strict=True))
    for qid, query in zip(coll.query_ids, coll.queries, strict=True):
        started = time.perf_counter()
        q_tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)
        indices, _ = bm25.retrieve(q_tokens, k=k, show_progress=False, n_threads=1)
        candidates = [coll.doc_ids[i] for i in indices[0]]
        bm25_s = time.perf_counter() - started
        started = time.perf_counter()
        qv = model.encode_queries([query])[0]
        encoded = time.perf_counter()
        scores = model.score_vectors(qv, [by_id[d] for d in candidates])
        rerank.runs[qid] = [candidates[i] for i in rank_order(scores)]
        done = time.perf_counter()
        rerank.latencies.append(bm25_s + done - started)
        rerank.search_latencies.append(bm25_s + done - encoded)
    systems.append(rerank)

    # Report.
    print("| system | nDCG@10 | R@100 | query ms p50 | search ms p50 | build s | size MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = {}
    for s in systems:
        ndcg, recall = evaluate(s, coll)
        rows[s.name] = {
            "ndcg@10": ndcg,
            "recall@100": recall,
            "query_ms_p50": median_ms(s.latencies),
            "search_ms_p50": median_ms(s.search_latencies),
            "build_s": s.build_s,
            "size_mb": s.size_bytes / 1e6,
        }
        print(
            f"| {s.name} | {ndcg:.3f} | {recall:.3f} | {median_ms(s.latencies):.1f} | "
            f"{median_ms(s.search_latencies):.1f} | {s.build_s:.1f} | {s.size_bytes / 1e6:.1f} |"
        )
    print(
        "\nquery ms: one query end to end (query encoding included: "
        f"{median_ms(encode_times):.1f} ms p50 one at a time, {query_encode_ms:.1f} ms/query "
        "batched; for Qdrant: search ms + that query's encoding time, measured separately, "
        "on the checked queries only); "
        "search ms: with the query already encoded (BM25 and "
        "BM25+rerank: BM25 and MaxSim of the 100 candidates). ColBERT build times include "
        f"document encoding ({encode_s:.1f} s, once). Sizes: BM25 score matrix; exact index: "
        "the saved directory; Qdrant: raw float32 vectors (token multivectors + fixed vector), "
        "Qdrant's own overhead excluded.\n"
    )
    n = len(coll.query_ids)
    print(
        f"Agreement: exact index top-10 == brute-force reference (ColBERT.score_vectors over "
        f"all documents) for {identical}/{n} queries; max |score difference| {max_diff:.2e}."
    )
    print(f"Qdrant two-stage recall@10 against the exact index top-10 (k=10, {n} queries):")
    for fixed, values in agreement.items():
        shown = ", ".join(f"prefetch {p}: {v:.3f}" for p, v in values.items())
        print(f"  {fixed}: {shown}")
    print("Checked through Qdrant (local mode):")
    for line in checks.values():
        print(f"  {line}")
    print(f"\n> {DISCLAIMER}\n")
    return {
        "documents": len(coll.texts),
        "queries": n,
        "encode_s": encode_s,
        "systems": rows,
        "exact_vs_bruteforce_identical_top10": identical,
        "exact_vs_bruteforce_max_score_diff": max_diff,
        "qdrant_checks": checks,
        "qdrant_recall@10_vs_exact": {
            fixed: {str(p): v for p, v in values.items()} for fixed, values in agreement.items()
        },
    }


if __name__ == "__main__":
    main()
