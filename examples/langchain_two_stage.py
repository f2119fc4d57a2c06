"""Two-stage retrieval with LangChain on SciFact: pooled ColBERT vectors, then exact MaxSim.

Usage:
    python examples/langchain_two_stage.py MODEL [--data DIR] [--docs N] [--queries N]
        [--k-first 50] [--k 10] [--pooling mean|muvera] [--threads N] [--doc-length N]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id. DIR holds SciFact in BEIR layout (corpus.jsonl, queries.jsonl, qrels.tsv); the
default is ../shared/data/scifact next to the repository.

Stage 1: an ``InMemoryVectorStore`` over ``ColBERTEmbeddings`` (one pooled vector per
document) returns ``--k-first`` candidates. Stage 2: ``ColBERTRerank(top_n=k)`` reorders them
by exact MaxSim inside a ``ContextualCompressionRetriever``. One ColBERT instance serves both
stages, so the reranker reuses the document vectors encoded at indexing time when the core's
document-embedding cache is on. The corpus is the relevant documents of the chosen queries
plus random others (seeded), to keep the run short on a small CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from colbert_plugins import ColBERT, ColBERTError
from colbert_plugins.langchain import ColBERTEmbeddings, ColBERTRerank

REPO = Path(__file__).resolve().parents[1]


def find_data(given: str | None) -> Path:
    """The SciFact directory: --data (as given, or relative to the repository), else the
    default ../shared/data/scifact next to the repository or the current directory."""
    if given:
        candidates = [Path(given), REPO / given]
    else:
        candidates = [
            REPO.parent / "shared/data/scifact",
            Path.cwd().parent / "shared/data/scifact",
        ]
    for path in candidates:
        if all((path / name).is_file() for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv")):
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    raise SystemExit(
        f"error: no SciFact (corpus.jsonl, queries.jsonl, qrels.tsv) in {tried}; use --data"
    )


def load_scifact(
    data: Path, n_queries: int, n_docs: int, seed: int
) -> tuple[dict[str, str], dict[str, set[str]], list[Document]]:
    """(queries, relevant doc ids per query, documents) for the first judged queries."""
    qrels: dict[str, set[str]] = {}
    with (data / "qrels.tsv").open(encoding="utf-8") as lines:
        next(lines)  # header
        for line in lines:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, set()).add(did)
    with (data / "queries.jsonl").open(encoding="utf-8") as lines:
        all_queries = {row["_id"]: row["text"] for row in map(json.loads, lines)}
    chosen = sorted((q for q in qrels if q in all_queries), key=int)[:n_queries]
    queries = {q: all_queries[q] for q in chosen}
    relevant = {q: qrels[q] for q in chosen}

    corpus: dict[str, Document] = {}
    with (data / "corpus.jsonl").open(encoding="utf-8") as lines:
        for row in map(json.loads, lines):
            text = f"{row['title']}. {row['text']}".strip(". ") if row["title"] else row["text"]
            corpus[row["_id"]] = Document(
                page_content=text,
                metadata={"doc_id": row["_id"], "title": row["title"]},
                id=row["_id"],
            )
    needed = sorted({d for ds in relevant.values() for d in ds if d in corpus}, key=int)
    others = sorted(set(corpus) - set(needed), key=int)
    extra = random.Random(seed).sample(others, max(0, min(len(others), n_docs - len(needed))))
    ids = needed + extra
    random.Random(seed + 1).shuffle(ids)  # no ordering hint for ties
    return queries, relevant, [corpus[i] for i in ids]


def recall(ranked: list[Document], relevant: set[str], k: int) -> float:
    found = {d.metadata["doc_id"] for d in ranked[:k]}
    return len(found & relevant) / len(relevant)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory or Hugging Face repo id")
    parser.add_argument("--data", help="SciFact directory (default: ../shared/data/scifact)")
    parser.add_argument("--docs", type=int, default=500, help="corpus size (default 500)")
    parser.add_argument("--queries", type=int, default=20, help="number of queries (default 20)")
    parser.add_argument("--k-first", type=int, default=50, help="stage-1 candidates (default 50)")
    parser.add_argument("--k", type=int, default=10, help="results kept and recall cut-off")
    parser.add_argument("--pooling", choices=["mean", "muvera"], default="mean")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument(
        "--doc-length", type=int, default=None, help="document_length in tokens (default: model's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus sample")
    args = parser.parse_args(argv)
    if min(args.docs, args.queries, args.k_first, args.k) < 1 or args.k > args.k_first:
        parser.error("--docs, --queries, --k-first, --k must be >= 1 and --k <= --k-first")

    data = find_data(args.data)
    queries, relevant, documents = load_scifact(data, args.queries, args.docs, args.seed)
    print(f"SciFact from {data}: {len(queries)} queries, {len(documents)} documents")

    overrides = {} if args.doc_length is None else {"document_length": args.doc_length}
    try:
        start = time.perf_counter()
        model = ColBERT.from_pretrained(args.model, threads=args.threads, **overrides)
        print(f"model {model.name} (dim {model.dim}) loaded in {time.perf_counter() - start:.1f} s")
    except ColBERTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    # One ColBERT instance shared by both stages.
    embeddings = ColBERTEmbeddings(model, pooling=args.pooling)
    store = InMemoryVectorStore(embedding=embeddings)
    start = time.perf_counter()
    print(f"stage 1 index: encoding {len(documents)} documents (a few minutes on 2 CPU cores)...")
    step = max(1, len(documents) // 10)
    for first in range(0, len(documents), step):
        store.add_documents(documents[first : first + step])
        done = min(first + step, len(documents))
        rate = done / (time.perf_counter() - start)
        print(f"  {done}/{len(documents)} documents, {rate:.1f} doc/s", flush=True)
    indexing = time.perf_counter() - start
    print(
        f"stage 1 index: {len(documents)} documents, {args.pooling} pooling "
        f"({embeddings.dimension} floats), {indexing:.1f} s ({len(documents) / indexing:.1f} doc/s)"
    )

    first_stage = store.as_retriever(search_kwargs={"k": args.k_first})
    two_stage = ContextualCompressionRetriever(
        base_compressor=ColBERTRerank(model, top_n=args.k), base_retriever=first_stage
    )

    r_first_k, r_first_all, r_rerank = [], [], []
    t_first = t_both = 0.0
    for qid, text in queries.items():
        start = time.perf_counter()
        candidates = first_stage.invoke(text)
        t_first += time.perf_counter() - start
        start = time.perf_counter()
        reranked = two_stage.invoke(text)
        t_both += time.perf_counter() - start
        r_first_k.append(recall(candidates, relevant[qid], args.k))
        r_first_all.append(recall(candidates, relevant[qid], args.k_first))
        r_rerank.append(recall(reranked, relevant[qid], args.k))

    n = len(queries)
    print()
    print(f"{'':36s}{'recall':>8s}  {'ms/query':>9s}")
    print(
        f"{f'stage 1 ({args.pooling} vectors) @{args.k}':36s}{sum(r_first_k) / n:8.3f}  "
        f"{1000 * t_first / n:9.1f}"
    )
    print(f"{f'stage 1 candidates @{args.k_first} (ceiling)':36s}{sum(r_first_all) / n:8.3f}")
    print(
        f"{f'stage 1 + ColBERT MaxSim rerank @{args.k}':36s}{sum(r_rerank) / n:8.3f}  "
        f"{1000 * t_both / n:9.1f}"
    )
    cache = getattr(model, "cache", None)
    if cache is not None and hasattr(cache, "stats"):
        stats = cache.stats()
        print(f"document-embedding cache: {stats.hits} hits, {stats.misses} misses")
    print()
    print(
        "Note: with an untrained model such as colbert-minilm-proxy these numbers only show\n"
        "that the pipeline works end to end; they say nothing about ColBERT's quality. Use a\n"
        "trained ColBERT (e.g. answerdotai/answerai-colbert-small-v1) for meaningful recall."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
