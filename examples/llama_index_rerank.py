"""A LlamaIndex query engine over the first Cranfield documents, ColBERT in both stages.

Usage:
    python examples/llama_index_rerank.py MODEL [--data DIR] [--query "..."] [--docs N]
        [--pooling mean|muvera]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id. DIR holds a BEIR-layout collection (corpus.jsonl, queries.jsonl); the default is
../shared/data/cranfield next to the repository.

Stage 1: a ``VectorStoreIndex`` over ``ColBERTEmbedding`` (one pooled vector per node; the
vector score is the cosine similarity of the pooled query and node vectors). Stage 2:
``ColBERTRerank`` reorders the candidates by exact MaxSim. One ColBERT instance serves both,
so the reranker finds the nodes' token vectors in its cache. The LLM is LlamaIndex's
``MockLLM``: nothing is downloaded but the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode

from colbert_plugins import ColBERT, ColBERTError
from colbert_plugins.llama_index import ColBERTEmbedding, ColBERTRerank

REPO = Path(__file__).resolve().parents[1]


def find_data(given: str | None) -> Path:
    candidates = (
        [Path(given)]
        if given
        else [REPO.parent / "shared/data/cranfield", Path.cwd().parent / "shared/data/cranfield"]
    )
    for path in candidates:
        if (path / "corpus.jsonl").is_file():
            return path
    raise SystemExit(f"error: no corpus.jsonl in {', '.join(map(str, candidates))}; use --data")


def load_nodes(data: Path, limit: int) -> list[TextNode]:
    nodes = []
    with (data / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            nodes.append(
                TextNode(text=doc["text"], id_=doc["_id"], metadata={"doc_id": doc["_id"]})
            )
            if len(nodes) == limit:
                break
    return nodes


def first_query(data: Path) -> str:
    queries = data / "queries.jsonl"
    if queries.is_file():
        with queries.open(encoding="utf-8") as lines:
            return str(json.loads(lines.readline())["text"])
    return "what similarity laws must be obeyed when constructing aeroelastic models?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory or Hugging Face repo id")
    parser.add_argument("--data", help="BEIR-layout directory (default: ../shared/data/cranfield)")
    parser.add_argument("--query", help="query text (default: the collection's first query)")
    parser.add_argument("--docs", type=int, default=50, help="documents to index (default 50)")
    parser.add_argument("--pooling", choices=["mean", "muvera"], default="mean")
    args = parser.parse_args()

    data = find_data(args.data)
    query = args.query or first_query(data)
    try:
        colbert = ColBERT.from_pretrained(args.model)  # one model (and cache) for both stages
        embed_model = ColBERTEmbedding(colbert, pooling=args.pooling)
        index = VectorStoreIndex(load_nodes(data, args.docs), embed_model=embed_model)
        reranker = ColBERTRerank(model=colbert, top_n=3, keep_retrieval_score=True)
        engine = index.as_query_engine(
            similarity_top_k=10, node_postprocessors=[reranker], llm=MockLLM()
        )
        response = engine.query(query)
    except ColBERTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"query: {query}")
    print(
        f"stage 1: {args.pooling}-pooled ColBERT vectors ({embed_model.dimension} floats), cosine"
    )
    for rank, hit in enumerate(response.source_nodes, start=1):
        retrieval = hit.node.metadata["retrieval_score"]
        text = hit.node.get_content().replace("\n", " ")
        print(
            f"{rank}. colbert {hit.get_score():7.3f}  vector {retrieval:.3f}  [{hit.node.node_id}]"
        )
        print(f"   {text[:100]}")
    if colbert.cache is not None:
        stats = colbert.cache.stats()
        print(f"document-embedding cache: {stats.hits} hits (reranker reused stage-1 encodings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
