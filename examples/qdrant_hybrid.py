"""Hybrid retrieval on Qdrant Edge (the Qdrant engine in process): BM25, ColBERT and both fused.

Usage:
    python examples/qdrant_hybrid.py MODEL [--data DIR] [--docs N] [--queries N] [--dir PATH]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id. DIR holds a collection in BEIR layout (corpus.jsonl, queries.jsonl, qrels.tsv);
the default is ../shared/data/cranfield next to the repository. The corpus is the judged
documents of the first ``--queries`` queries plus seeded random others (``--docs`` in all).

The documents go into a ``QdrantIndex`` on a directory (``--dir``, default a temporary one):
each search is one Qdrant query, in each retrieval mode; the script prints nDCG@10 per mode
on these queries, then retrieves through LangChain's ``ColBERTRetriever`` over the same index.
Needs the ``qdrant`` and ``langchain`` extras (``pip install ".[examples]"``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from colbert_plugins import ColBERT, ColBERTError
from colbert_plugins.index.qdrant import QdrantIndex
from colbert_plugins.langchain import ColBERTRetriever

REPO = Path(__file__).resolve().parents[1]
MODES = ("bm25", "colbert", "hybrid")


def load(data: Path, docs: int, queries: int) -> tuple[dict[str, str], dict[str, str], dict]:
    """Texts by id, query texts by id, and judgements {query: {doc: grade}}."""
    corpus = {}
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc.get('title', '')} {doc.get('text', '')}".strip()
    qrels: dict[str, dict[str, int]] = {}
    with (data / "qrels.tsv").open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            qid, did, grade = line.split("\t")[:3]
            if did in corpus and int(grade) > 0:
                qrels.setdefault(qid, {})[did] = int(grade)
    texts = {}
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in qrels and len(texts) < queries:
                texts[q["_id"]] = q["text"]
    chosen = {d for qid in texts for d in qrels[qid]}
    others = sorted(set(corpus) - chosen)
    random.Random(0).shuffle(others)
    chosen |= set(others[: max(0, docs - len(chosen))])
    return {d: corpus[d] for d in sorted(chosen)}, texts, qrels


def ndcg10(ranked: list[str], judged: dict[str, int]) -> float:
    gain = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    best = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return gain / best if best else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cranfield"))
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--dir", help="keep the collection in this directory")
    args = parser.parse_args()
    try:
        corpus, queries, qrels = load(Path(args.data), args.docs, args.queries)
        model = ColBERT.from_pretrained(args.model)
        with (
            tempfile.TemporaryDirectory() as tmp,
            QdrantIndex(model, path=args.dir or tmp) as index,
        ):
            started = time.perf_counter()
            index.add(list(corpus.values()), ids=list(corpus))
            print(f"indexed {len(index)} documents in {time.perf_counter() - started:.1f} s")
            for mode in MODES:
                runs = index.search_batch(list(queries.values()), k=10, retrieval_mode=mode)
                scores = [
                    ndcg10([h.id for h in hits], qrels[qid])
                    for qid, hits in zip(queries, runs, strict=True)
                ]
                print(f"{mode:8s} nDCG@10 {sum(scores) / len(scores):.3f} on {len(scores)} queries")
            retriever = ColBERTRetriever(index=index, k=3)  # the index's default: hybrid
            query = next(iter(queries.values()))
            print(f"LangChain retriever, {query[:60]!r}:")
            for doc in retriever.invoke(query):
                print(f"  {doc.metadata['relevance_score']:.4f} {doc.page_content[:70]}")
    except (ColBERTError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
