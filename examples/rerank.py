"""Rerank a handful of real passages with a ColBERT ONNX model.

Usage:
    python examples/rerank.py MODEL [--query "..."] [--top-n N]

MODEL is a local model directory (e.g. ../shared/models/colbert-minilm-proxy) or a Hugging
Face repo id (e.g. answerdotai/answerai-colbert-small-v1). With HF_HUB_OFFLINE=1 and a model
that is not cached, it prints one clear error line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from colbert_plugins import ColBERT, ColBERTError

PASSAGES = [
    "The boundary layer is the thin layer of fluid near a solid surface where viscous effects "
    "are significant and the flow velocity drops to zero at the wall.",
    "Paris is the capital and most populous city of France, on the river Seine.",
    "ColBERT encodes queries and documents into token-level vectors and scores them with "
    "late interaction: each query token is matched to its most similar document token.",
    "Heat transfer at hypersonic speeds is dominated by aerodynamic heating of the leading edges.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "BM25 is a bag-of-words ranking function based on term frequency and document length.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model directory or Hugging Face repo id")
    parser.add_argument("--query", default="how does late interaction score documents?")
    parser.add_argument("--top-n", type=int, default=None)
    args = parser.parse_args()
    try:
        started = time.perf_counter()
        model = ColBERT.from_pretrained(args.model)
        loaded = time.perf_counter()
        results = model.rerank(args.query, PASSAGES, top_n=args.top_n)
        done = time.perf_counter()
    except ColBERTError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"model: {model.name} (dim {model.dim}); loaded in {loaded - started:.2f} s")
    print(f"query: {args.query}")
    for rank, result in enumerate(results, start=1):
        print(f"{rank:>2}. {result.score:8.3f}  [{result.index}] {result.document[:90]}")
    print(f"reranked {len(PASSAGES)} passages in {(done - loaded) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
