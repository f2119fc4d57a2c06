"""Start the rerank server on a free local port and call its Cohere and TEI APIs over HTTP.

Usage:
    python examples/rerank_server.py MODEL [--query "..."]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id. In production run ``colbert-plugins serve --model MODEL`` instead and point any
Cohere/Jina or TEI rerank client at it (see the README's "Server" section); this script starts
the same server in a background thread and talks to it with the standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

from colbert_plugins import ColBERT, ColBERTError
from colbert_plugins.server import BackgroundServer

PASSAGES = [
    "The boundary layer is the thin layer of fluid near a solid surface where viscous effects "
    "are significant.",
    "Paris is the capital and most populous city of France, on the river Seine.",
    "ColBERT scores a document by matching each query token to its most similar document token.",
    "Heat transfer at hypersonic speeds is dominated by aerodynamic heating of the leading edges.",
]


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory or Hugging Face repo id")
    parser.add_argument("--query", default="what is a boundary layer?")
    args = parser.parse_args()
    try:
        model = ColBERT.from_pretrained(args.model)
    except ColBERTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with BackgroundServer(model) as server:
        print(f"server on {server.url} serving {model.name}")
        cohere = post(
            server.url + "/v1/rerank",
            {"query": args.query, "documents": PASSAGES, "top_n": 2, "return_documents": True},
        )
        print(f"POST /v1/rerank (Cohere/Jina), query: {args.query}")
        for r in cohere["results"]:
            print(f"  {r['relevance_score']:.3f}  [{r['index']}] {r['document']['text'][:70]}")
        tei = post(server.url + "/rerank", {"query": args.query, "texts": PASSAGES})
        print("POST /rerank (TEI): " + ", ".join(f"[{r['index']}] {r['score']:.3f}" for r in tei))
    return 0


if __name__ == "__main__":
    sys.exit(main())
