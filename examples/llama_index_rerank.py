"""A LlamaIndex query engine with ColBERT reranking over the first Cranfield documents.

Usage:
    python examples/llama_index_rerank.py MODEL [--data DIR] [--query "..."] [--docs N]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id. DIR holds a BEIR-layout collection (corpus.jsonl, queries.jsonl); the default is
../shared/data/cranfield next to the repository. Embeddings and the LLM are LlamaIndex's mocks,
so nothing is downloaded but the model: the vector search returns arbitrary candidates and
ColBERT alone puts them in order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode

from colbert_plugins import ColBERTError
from colbert_plugins.llama_index import ColBERTRerank

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
    args = parser.parse_args()

    data = find_data(args.data)
    query = args.query or first_query(data)
    index = VectorStoreIndex(load_nodes(data, args.docs), embed_model=MockEmbedding(embed_dim=8))
    reranker = ColBERTRerank(model=args.model, top_n=3, keep_retrieval_score=True)
    engine = index.as_query_engine(
        similarity_top_k=10, node_postprocessors=[reranker], llm=MockLLM()
    )
    try:
        response = engine.query(query)
    except ColBERTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"query: {query}")
    for rank, hit in enumerate(response.source_nodes, start=1):
        retrieval = hit.node.metadata["retrieval_score"]
        text = hit.node.get_content().replace("\n", " ")
        print(
            f"{rank}. colbert {hit.get_score():7.3f}  vector {retrieval:.3f}  [{hit.node.node_id}]"
        )
        print(f"   {text[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
