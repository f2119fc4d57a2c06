"""Retrieval quality, agreement and speed: BM25, exact ColBERT, compressed, Qdrant, BM25 + rerank.

Usage:
    python benchmarks/retrieval_eval.py [--model DIR] [--data DIR] [--collections cranfield,scifact]
        [--systems bm25,bm25+rerank,exact,compressed,qdrant] [--max-docs N] [--max-queries N]
        [--threads 2] [--prefetch 50,100,200,400] [--fixed muvera,mean] [--json results.json]
        [--cache-file vectors.sqlite] [--retrieval-modes colbert,bm25,hybrid]

Systems (``--systems``, all by default; e.g. ``--systems compressed`` re-runs that row alone),
on BEIR-layout collections (corpus.jsonl, queries.jsonl, qrels.tsv):

- ``bm25``: bm25s (k1=0.9, b=0.4, English stopwords, no stemming), title + text;
- ``bm25+rerank``: BM25 top 100 reranked by ColBERT MaxSim (document vectors precomputed);
- ``exact``: the in-process :class:`InMemoryIndex` (exact MaxSim over all documents);
- ``compressed``: :class:`CompressedIndex` at its defaults, built in a temporary directory;
- ``qdrant``: :class:`QdrantIndex` on Qdrant Edge (in process, a shard in a temporary
  directory), one row per ``--retrieval-modes`` mode (all by default): ``colbert`` (the
  index's ``prefetch_limit`` candidates by the fixed-length vector's HNSW, then exact MaxSim),
  ``bm25`` (Edge's BM25 sparse vector alone) and ``hybrid`` (the index's BM25 + ColBERT
  fusion); ``--fixed muvera,mean`` gives colbert and hybrid rows for each fixed vector.

Metrics: nDCG@10 (gain 2^rel - 1) and recall@100 over the judged queries; median query
latency (query encoding included; for bm25+rerank: BM25 + query encoding + MaxSim of 100
stored documents); index build time (ColBERT: document encoding, reported once, plus each
backend's insertion) and size. Agreement, against a brute-force reference
(``ColBERT.score_vectors`` over every document, ties in input order): the exact index's top 10
(identical lists), the compressed index's recall@10, and for each fixed vector and prefetch
size P the two-stage recall@10 (top P by the fixed vector, then exact MaxSim) and the first
stage's own recall (the share of the exact top 10 within the top P by the fixed vector; P=10
is the fixed vector alone), computed with numpy (exact top-P by the fixed vector, then
MaxSim; Qdrant's HNSW prefetch approximates the first step, and the script says for how many
queries Qdrant's own top 10 equals numpy's). With several collections, a table pools the
fixed-vector recalls over all their queries, and a last one gives each system's nDCG@10 per
collection and their mean.

``--max-docs`` keeps the documents judged relevant for the selected queries, then fills up
with the others in corpus order, so that the metrics stay meaningful on a slice.

Which model: the default is ../shared/models/colbert-minilm-trained, trained for late
interaction (small, briefly trained, zero-shot on these collections): its nDCG/recall are
that model's quality, and its recalls against exact MaxSim are those of trained vectors. On
the untrained proxy (colbert-minilm-proxy) only agreement and speed mean something.
``--cache-file`` with an :class:`EmbeddingCache` file of the same model and the same
"title text" strings reads document vectors instead of encoding them (the script says how
many it read and how many it encoded).
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
SYSTEMS = ("bm25", "bm25+rerank", "exact", "compressed", "qdrant")
RETRIEVAL_MODES = ("colbert", "bm25", "hybrid")


def disclaimer(model: str) -> str:
    """What the numbers of this model mean."""
    if "proxy" in Path(model).name:
        return (
            "The proxy model (colbert-minilm-proxy) is not trained for late interaction: its "
            "nDCG/recall numbers say nothing about ColBERT's quality. Agreement and speed are "
            "meaningful."
        )
    return (
        f"Model {Path(model).name}: nDCG/recall are this model's quality (zero-shot on these "
        "collections), agreement and recall against exact MaxSim those of its vectors."
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
    top_scores: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


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
        default=str(SHARED / "models/colbert-minilm-trained"),
        help="model directory (default: the trained colbert-minilm-trained)",
    )
    parser.add_argument("--data", default=str(SHARED / "data"))
    parser.add_argument("--collections", default="cranfield", help="comma-separated")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated, among {', '.join(SYSTEMS)} (default: all)",
    )
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
        default=10,
        help="queries also timed on Qdrant with the prefetch off (an exact MaxSim scan)",
    )
    parser.add_argument(
        "--retrieval-modes",
        default=",".join(RETRIEVAL_MODES),
        help="QdrantIndex retrieval modes, one row each (comma-separated, among "
        f"{', '.join(RETRIEVAL_MODES)}; default: all)",
    )
    parser.add_argument(
        "--fixed",
        default="mean",
        help='Qdrant fixed vectors: "mean" (the default), "muvera" or both',
    )
    parser.add_argument(
        "--long-documents",
        choices=("truncate", "windows"),
        default="truncate",
        help="documents longer than the model's document_length: cut (the default) or "
        "encoded as overlapping windows",
    )
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument(
        "--cache-file",
        default=None,
        help="SQLite file persisting document vectors between runs (encoding time is then "
        "that of reading them back); documents missing from it are encoded and written to it",
    )
    args = parser.parse_args()
    wanted = {s.strip() for s in args.systems.split(",") if s.strip()}
    unknown = sorted(wanted - set(SYSTEMS))
    if unknown or not wanted:
        parser.error(f"--systems: unknown {unknown or 'empty list'}; choose among {SYSTEMS}")
    try:
        prefetches = sorted({int(p) for p in args.prefetch.split(",")})
    except ValueError:
        parser.error(f"--prefetch takes comma-separated integers, got {args.prefetch!r}")
    if prefetches[0] < 1:
        parser.error("--prefetch sizes must be >= 1")
    modes = [m.strip() for m in args.retrieval_modes.split(",") if m.strip()]
    bad = sorted(set(modes) - set(RETRIEVAL_MODES))
    if bad or not modes:
        parser.error(
            f"--retrieval-modes: unknown {bad or 'empty list'}; choose among {RETRIEVAL_MODES}"
        )
    args.retrieval_modes = list(dict.fromkeys(modes))

    print(f"> {disclaimer(args.model)}\n")
    report: dict[str, Any] = {
        "model": args.model,
        "threads": args.threads,
        "long_documents": args.long_documents,
        "systems": sorted(wanted),
        "retrieval_modes": args.retrieval_modes,
        "collections": {},
    }
    for name in args.collections.split(","):
        coll = load_collection(Path(args.data) / name, args.max_docs, args.max_queries)
        report["collections"][name] = evaluate_collection(coll, args, prefetches, wanted)
    pooled = pool_fixed(report["collections"])
    if pooled and len(report["collections"]) > 1:
        total = sum(v["queries"] for v in pooled.values()) // len(pooled)
        print(
            f"## Fixed-vector recall, pooled over {', '.join(report['collections'])} "
            f"({total} queries, each collection searched on its own)\n"
        )
        for line in fixed_table(pooled):
            print(line)
        report["fixed_recall@10_vs_exact_pooled"] = pooled
    if len(report["collections"]) > 1:
        print("## nDCG@10 by collection\n")
        for line in ndcg_summary(report["collections"]):
            print(line)
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def ndcg_summary(collections: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per collection and the unweighted mean, one column per system run on
    every collection."""
    names = [
        name
        for name in next(iter(collections.values())).get("systems", {})
        if all(name in c.get("systems", {}) for c in collections.values())
    ]
    if not names:
        return []
    lines = [
        "| collection | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for coll_name, coll in collections.items():
        cells = [f"{coll['systems'][n]['ndcg@10']:.3f}" for n in names]
        lines.append(f"| {coll_name} | " + " | ".join(cells) + " |")
    means = [
        statistics.fmean(c["systems"][n]["ndcg@10"] for c in collections.values()) for n in names
    ]
    lines.append(f"| mean of {len(collections)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return lines


def pool_fixed(collections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Query-weighted means of the collections' fixed-vector recalls."""
    pooled: dict[str, Any] = {}
    for coll in collections.values():
        for fixed, values in coll.get("fixed_recall@10_vs_exact", {}).items():
            into = pooled.setdefault(
                fixed, {"queries": 0, "fixed_dim": values["fixed_dim"], "by_prefetch": {}}
            )
            n = values["queries"]
            for prefetch, recalls in values["by_prefetch"].items():
                sums = into["by_prefetch"].setdefault(
                    prefetch, {"two_stage": 0.0, "first_stage": 0.0}
                )
                for key in sums:
                    sums[key] += n * recalls[key]
            into["queries"] += n
    for values in pooled.values():
        for sums in values["by_prefetch"].values():
            for key in sums:
                sums[key] /= values["queries"]
    return pooled


def evaluate_collection(
    coll: Collection, args: argparse.Namespace, prefetches: list[int], wanted: set[str]
) -> dict[str, Any]:
    k = min(100, len(coll.texts))
    n = len(coll.query_ids)
    print(f"## {coll.name}: {len(coll.texts)} documents, {n} queries\n")
    systems: list[SystemResult] = []
    report: dict[str, Any] = {"documents": len(coll.texts), "queries": n}

    bm25: Any = None
    bm25_result = SystemResult("bm25 (bm25s)")
    if wanted & {"bm25", "bm25+rerank"}:
        bm25_result, bm25 = run_bm25(coll)
        if "bm25" in wanted:
            systems.append(bm25_result)
    if not wanted - {"bm25"}:
        print_table(systems, coll, report)
        return report

    # Holds every document: encode once (and across runs with --cache-file).
    cache = EmbeddingCache(max_bytes=8 << 30, path=args.cache_file)
    model = ColBERT.from_pretrained(
        args.model, threads=args.threads, cache=cache, long_documents=args.long_documents
    )
    model.encode_queries(["warm up"])
    print(
        f"model {Path(args.model).name}, dim {model.dim}, threads {args.threads}, "
        f"document_length {model.config.document_length}, long documents: "
        f"{model.config.long_documents}\n"
    )

    # Encode every document once; the indexes below then read them from the cache.
    started = time.perf_counter()
    doc_vectors = model.encode_documents(coll.texts, batch_size=args.batch_size)
    encode_s = time.perf_counter() - started
    stats = cache.stats()
    print(
        f"document vectors: {stats.disk_hits} read from --cache-file, {stats.misses} encoded"
        + (
            " (the encoding and build times below do not include encoding those read)"
            if stats.disk_hits
            else ""
        )
    )
    report["cache_disk_hits"], report["cache_misses"] = stats.disk_hits, stats.misses
    n_tokens = sum(len(v) for v in doc_vectors)
    print(
        f"document encoding: {encode_s:.1f} s ({len(coll.texts) / encode_s:.1f} docs/s, "
        f"{n_tokens / len(coll.texts):.0f} vectors/doc)\n"
    )
    started = time.perf_counter()
    query_vectors = model.encode_queries(coll.queries)
    query_encode_ms = 1000 * (time.perf_counter() - started) / n
    encode_times = []  # one query at a time, as a retriever does
    for query in coll.queries:
        started = time.perf_counter()
        model.encode_queries([query])
        encode_times.append(time.perf_counter() - started)

    # The brute-force reference every index is held to: ColBERT.score_vectors over every
    # document, ties in input order.
    full_scores: dict[str, np.ndarray] = {}
    reference: dict[str, list[str]] = {}
    for qid, qv in zip(coll.query_ids, query_vectors, strict=True):
        full_scores[qid] = model.score_vectors(qv, doc_vectors)
        reference[qid] = [coll.doc_ids[i] for i in rank_order(full_scores[qid], 10)]

    def recall10(run: dict[str, list[str]], qids: Sequence[str] = coll.query_ids) -> float:
        """Mean share of the brute-force top 10 in a run's top 10."""
        return statistics.fmean(len(set(run[q][:10]) & set(reference[q])) / 10 for q in qids)

    notes: list[str] = []
    if "exact" in wanted:
        exact = run_exact(coll, model, args, query_vectors, k)
        exact.build_s += encode_s
        systems.append(exact)
        position = {d: i for i, d in enumerate(coll.doc_ids)}
        identical = sum(exact.runs[q][:10] == reference[q] for q in coll.query_ids)
        max_diff = max(
            abs(score - float(full_scores[q][position[d]]))
            for q, hits in exact.top_scores.items()
            for d, score in hits
        )
        notes.append(
            f"Agreement: exact index top-10 == brute-force reference (ColBERT.score_vectors "
            f"over all documents) for {identical}/{n} queries; max |score difference| "
            f"{max_diff:.2e}."
        )
        report["exact_vs_bruteforce_identical_top10"] = identical
        report["exact_vs_bruteforce_max_score_diff"] = max_diff

    if "compressed" in wanted:
        compressed = run_compressed(coll, model, args, query_vectors, k)
        compressed.build_s += encode_s
        systems.append(compressed)
        value = recall10(compressed.runs)
        notes.append(
            f"Compressed index recall@10 against the brute-force top 10: {value:.3f} "
            f"({compressed.note})."
        )
        report["compressed_recall@10_vs_exact"] = value
        report["compressed_note"] = compressed.note

    if "qdrant" in wanted:
        qdrant_systems, fixed_report, lines = run_qdrant(
            coll,
            model,
            args,
            prefetches,
            doc_vectors,
            query_vectors,
            full_scores,
            reference,
            encode_times,
            encode_s,
            k,
        )
        systems.extend(qdrant_systems)
        notes.extend(lines)
        report["fixed_recall@10_vs_exact"] = fixed_report

    if "bm25+rerank" in wanted:
        rerank = run_rerank(coll, model, bm25, doc_vectors, k)
        rerank.build_s = bm25_result.build_s + encode_s
        rerank.size_bytes = bm25_result.size_bytes + 4 * n_tokens * model.dim
        systems.append(rerank)

    print_table(systems, coll, report)
    print(
        "\nquery ms: one query end to end (query encoding included: "
        f"{median_ms(encode_times):.1f} ms p50 one at a time, {query_encode_ms:.1f} ms/query "
        "batched); "
        "search ms: with the query already encoded (BM25 and "
        "BM25+rerank: BM25 and MaxSim of the 100 candidates; Qdrant colbert: search_vectors; "
        "Qdrant bm25: the whole search, it encodes no ColBERT query; Qdrant hybrid: the "
        "search with the query's vectors given). ColBERT build times include "
        f"document encoding ({encode_s:.1f} s, once). Sizes: BM25 score matrix; exact and "
        "compressed index: the saved directory; Qdrant: the Edge shard directory "
        "(disk_bytes: every vector, the payload and the write-ahead log); BM25+rerank: BM25 "
        "score matrix + raw float32 token vectors.\n"
    )
    for line in notes:
        print(line)
    print(f"\n> {disclaimer(args.model)}\n")
    report["encode_s"] = encode_s
    return report


def print_table(systems: list[SystemResult], coll: Collection, report: dict[str, Any]) -> None:
    print("| system | nDCG@10 | R@100 | query ms p50 | search ms p50 | build s | size MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = report.setdefault("systems", {})
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


def run_exact(
    coll: Collection,
    model: ColBERT,
    args: argparse.Namespace,
    query_vectors: list[np.ndarray],
    k: int,
) -> SystemResult:
    """The in-process exact index; ``build_s`` excludes document encoding."""
    exact = SystemResult("colbert-exact (InMemoryIndex)")
    index = InMemoryIndex(model)
    started = time.perf_counter()
    index.add(coll.texts, ids=coll.doc_ids, batch_size=args.batch_size)
    exact.build_s = time.perf_counter() - started
    tmp = Path(tempfile.mkdtemp())
    try:
        exact.size_bytes = dir_size(index.save(tmp / "index"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    timed_searches(index, coll, query_vectors, k, exact)
    return exact


def timed_searches(
    index: Any, coll: Collection, query_vectors: list[np.ndarray], k: int, result: SystemResult
) -> None:
    """Each query through ``index.search`` (latency with query encoding, the run) and
    ``index.search_vectors`` (search latency, the top 10 with scores), interleaved so that the
    shared machine's drift hits both."""
    for qid, query, qv in zip(coll.query_ids, coll.queries, query_vectors, strict=True):
        started = time.perf_counter()
        hits = index.search(query, k=k)
        result.latencies.append(time.perf_counter() - started)
        result.runs[qid] = [h.id for h in hits]
        started = time.perf_counter()
        hits = index.search_vectors(qv, k=k)
        result.search_latencies.append(time.perf_counter() - started)
        result.top_scores[qid] = [(h.id, h.score) for h in hits[:10]]


def run_compressed(
    coll: Collection,
    model: ColBERT,
    args: argparse.Namespace,
    query_vectors: list[np.ndarray],
    k: int,
) -> SystemResult:
    """:class:`CompressedIndex` at its defaults, in a temporary directory; ``build_s``
    excludes document encoding (its vectors come from the model's cache)."""
    from colbert_plugins.index import CompressedIndex

    result = SystemResult("colbert-compressed (CompressedIndex, defaults)")
    tmp = Path(tempfile.mkdtemp())
    try:
        index = CompressedIndex(model, tmp / "compressed")
        started = time.perf_counter()
        index.add(coll.texts, ids=coll.doc_ids, batch_size=args.batch_size)
        result.build_s = time.perf_counter() - started
        result.size_bytes = index.disk_bytes()
        timed_searches(index, coll, query_vectors, k, result)
        result.note = (
            f"{index!r}, nprobe {index.nprobe}, candidates {index.candidates}, rerank "
            f"{index.rerank}; {index.vector_bytes() / max(1, index.tokens):.1f} vector bytes "
            f"per token, {index.disk_bytes() / max(1, index.tokens):.1f} on disk in all"
        )
        del index
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def run_qdrant(
    coll: Collection,
    model: ColBERT,
    args: argparse.Namespace,
    prefetches: list[int],
    doc_vectors: list[np.ndarray],
    query_vectors: list[np.ndarray],
    full_scores: dict[str, np.ndarray],
    reference: dict[str, list[str]],
    encode_times: list[float],
    encode_s: float,
    k: int,
) -> tuple[list[SystemResult], dict[str, Any], list[str]]:
    """:class:`QdrantIndex` on Qdrant Edge: one system per fixed vector and retrieval mode,
    and the fixed vectors' first-stage recall.

    Every query runs through the index itself (``search`` with each ``--retrieval-modes``
    mode: its run and its latency, query encoding included). The fixed vectors' recalls
    against the exact top 10 for each prefetch size are computed with numpy (exact top-P by
    the fixed vector, then MaxSim), which is what Qdrant's prefetch approximates with HNSW;
    the "colbert" rows' agreement with that numpy two-stage top 10 is reported.
    """
    systems: list[SystemResult] = []
    fixed_report: dict[str, Any] = {}
    checks: list[str] = []
    agreement: dict[str, dict[str, float]] = {}
    n = len(coll.query_ids)
    modes = args.retrieval_modes
    n_scan = min(args.qdrant_queries, n)
    for number, fixed in enumerate(args.fixed.split(",")):
        qdrant = QdrantIndex(
            model,
            location=":memory:",
            fixed=fixed,  # type: ignore[arg-type]
            bm25=bool({"bm25", "hybrid"} & set(modes)),
        )
        started = time.perf_counter()
        qdrant.add(coll.texts, ids=coll.doc_ids, batch_size=args.batch_size)
        qdrant_build = encode_s + time.perf_counter() - started
        qdrant_bytes = qdrant.disk_bytes()
        fixed_docs = qdrant.fixed_vectors(doc_vectors)
        fixed_queries = qdrant.fixed_vectors(query_vectors, query=True)
        # Every document's rank by the fixed vector, per query (stable: ties in input order).
        orders = [np.argsort(-(fixed_docs @ fq), kind="stable") for fq in fixed_queries]

        def two_stage(
            i: int, prefetch: int, top: int, orders: list[np.ndarray] = orders
        ) -> list[str]:
            """Top ``top`` by MaxSim among the ``prefetch`` best by the fixed vector."""
            candidates = orders[i][: max(prefetch, top)]
            ranked = rank_order(full_scores[coll.query_ids[i]][candidates], top)
            return [coll.doc_ids[candidates[j]] for j in ranked]

        prefetch = qdrant.prefetch_limit
        for mode in modes:
            if mode == "bm25" and number:
                continue  # BM25 does not use the fixed vector: one row is enough
            label = "bm25" if mode == "bm25" else f"{mode}, {fixed}, prefetch {prefetch}"
            result = SystemResult(f"qdrant-edge ({label})")
            result.build_s, result.size_bytes = qdrant_build, qdrant_bytes
            for i, (qid, query) in enumerate(zip(coll.query_ids, coll.queries, strict=True)):
                started = time.perf_counter()
                hits = qdrant.search(query, k=k, retrieval_mode=mode)
                result.latencies.append(time.perf_counter() - started)
                result.runs[qid] = [h.id for h in hits]
                if mode == "colbert":
                    started = time.perf_counter()
                    qdrant.search_vectors(query_vectors[i], k=k)
                    result.search_latencies.append(time.perf_counter() - started)
                elif mode == "bm25":  # no ColBERT query encoding in it
                    result.search_latencies.append(result.latencies[-1])
                else:  # hybrid, with the query's vectors already encoded (no vector API)
                    with encoded_queries(model, {query: query_vectors[i]}):
                        started = time.perf_counter()
                        qdrant.search(query, k=k, retrieval_mode=mode)
                        result.search_latencies.append(time.perf_counter() - started)
            systems.append(result)
            if mode == "colbert":
                same = sum(
                    result.runs[q][:10] == two_stage(i, prefetch or len(coll.texts), 10)
                    for i, q in enumerate(coll.query_ids)
                )
                recall = statistics.fmean(
                    len(set(result.runs[q][:10]) & set(reference[q])) / 10 for q in coll.query_ids
                )
                full_scan: list[float] = []
                qdrant.prefetch_limit = None
                for i in range(n_scan):
                    started = time.perf_counter()
                    qdrant.search_vectors(query_vectors[i], k=k)
                    full_scan.append(time.perf_counter() - started)
                qdrant.prefetch_limit = prefetch
                agreement[fixed] = {"same_top10_as_numpy": same, "recall@10_vs_exact": recall}
                checks.append(
                    f"  {fixed}: Qdrant Edge's top 10 (prefetch {prefetch}, HNSW) equals the numpy "
                    f"two-stage top 10 (exact top {prefetch} by the fixed vector, then MaxSim) "
                    f"for {same}/{n} queries; recall@10 against exact MaxSim {recall:.3f}; search "
                    f"{median_ms(result.search_latencies):.1f} ms p50 with prefetch, "
                    f"{median_ms(full_scan):.1f} ms without (exact MaxSim scan, {n_scan} queries)"
                )
        qdrant.close()
        # Per query: the two-stage top 10 against the exact top 10 (recall@10), and the first
        # stage alone: the share of the exact top 10 within the top P by the fixed vector.
        position = {d: i for i, d in enumerate(coll.doc_ids)}
        exact_rows = [np.array([position[d] for d in reference[q]]) for q in coll.query_ids]
        ranks = []  # rank by the fixed vector of each exact top-10 document, per query
        for i in range(n):
            rank_of = np.empty(len(coll.doc_ids), dtype=np.int64)
            rank_of[orders[i]] = np.arange(len(coll.doc_ids))
            ranks.append(rank_of[exact_rows[i]])
        per_prefetch: dict[str, dict[str, float]] = {}
        for size in [10, *prefetches]:
            two = [
                len(set(two_stage(i, size, 10)) & set(reference[qid])) / 10
                for i, qid in enumerate(coll.query_ids)
            ]
            first = [float(np.mean(r < size)) for r in ranks]
            per_prefetch[str(size)] = {
                "two_stage": statistics.fmean(two),
                "first_stage": statistics.fmean(first),
            }
        fixed_report[fixed] = {
            "queries": n,
            "fixed_dim": qdrant.fixed_dim,
            "by_prefetch": per_prefetch,
        }
        if fixed in agreement:
            fixed_report[fixed]["qdrant_colbert"] = agreement[fixed]
    lines = [
        f"Fixed-vector first stage against the exact top 10 ({n} queries, numpy): two-stage = "
        "recall@10 of (top P by the fixed vector, then exact MaxSim); first stage = share of "
        "the exact top 10 within the top P by the fixed vector (P=10: the fixed vector alone).",
        *fixed_table(fixed_report),
        "Checked through Qdrant Edge:" if checks else "",
        *checks,
    ]
    return systems, fixed_report, [line for line in lines if line]


@contextmanager
def encoded_queries(model: ColBERT, vectors: dict[str, np.ndarray]) -> Iterator[None]:
    """``model.encode_queries`` returns these vectors (by text) instead of encoding: the search
    time of a text search (hybrid) without its query encoding."""

    def encode_queries(texts: Sequence[str], batch_size: int = 32) -> list[np.ndarray]:
        return [vectors[t] for t in texts]

    model.encode_queries = encode_queries  # type: ignore[method-assign]
    try:
        yield
    finally:
        del model.encode_queries


def fixed_table(fixed_report: dict[str, Any]) -> list[str]:
    """Markdown rows: one per fixed vector, ``two-stage / first stage`` per prefetch."""
    if not fixed_report:
        return []
    prefetches = list(next(iter(fixed_report.values()))["by_prefetch"])
    lines = [
        "| fixed vector (dim) | " + " | ".join(f"P={p}" for p in prefetches) + " |",
        "| --- |" + " ---: |" * len(prefetches),
    ]
    for fixed, values in fixed_report.items():
        cells = [
            f"{v['two_stage']:.3f} / {v['first_stage']:.3f}" for v in values["by_prefetch"].values()
        ]
        lines.append(f"| {fixed} ({values['fixed_dim']}) | " + " | ".join(cells) + " |")
    lines.append("(each cell: two-stage recall@10 / first-stage recall of the exact top 10)")
    return lines


def run_rerank(
    coll: Collection, model: ColBERT, bm25: Any, doc_vectors: list[np.ndarray], k: int
) -> SystemResult:
    """BM25 top 100 + ColBERT rerank (document vectors precomputed, as an index holds them)."""
    import bm25s

    rerank = SystemResult("bm25 top-100 + colbert rerank")
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
    return rerank


if __name__ == "__main__":
    main()
