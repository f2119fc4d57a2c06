"""Time one ColBERTRerank.postprocess_nodes call over N Cranfield nodes.

Usage:
    python benchmarks/llama_index_postprocess.py [MODEL] [--data DIR] [--nodes 20] [--runs 5]
        [--threads 2]

Prints the median (and min/max) wall time of the postprocess and, in the same process and
with the same model, of the bare ``ColBERT.score`` on the same texts: the difference is the
adapter's overhead. Two setups: the document-embedding cache off (every call encodes the 20
documents: a query whose candidates were never seen) and on (every call after the warm-up
finds them cached: repeated candidates). Models are loaded and warmed up before timing.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from colbert_plugins import ColBERT
from colbert_plugins.llama_index import ColBERTRerank

SHARED = Path(__file__).resolve().parents[2] / "shared"


def timed(fn: Callable[..., object], *args: object) -> float:
    """Wall time of one call of ``fn(*args)``."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(SHARED / "models/colbert-minilm-proxy"))
    parser.add_argument("--data", default=str(SHARED / "data/cranfield"))
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    data = Path(args.data)
    with (data / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line, _ in zip(lines, range(args.nodes), strict=False)]
    with (data / "queries.jsonl").open(encoding="utf-8") as lines:
        query = json.loads(lines.readline())["text"]
    nodes = [NodeWithScore(node=TextNode(text=d["text"], id_=d["_id"]), score=1.0) for d in docs]
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]

    bundle = QueryBundle(query)
    print(f"{len(nodes)} Cranfield nodes, threads={args.threads}, {args.runs} runs, {args.model}")
    for cache in (False, True):
        model = ColBERT.from_pretrained(args.model, threads=args.threads, cache=cache)
        reranker = ColBERTRerank(model=model, top_n=5)
        reranker.postprocess_nodes(nodes, bundle)  # warm-up (fills the cache when on)
        post, bare = [], []
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            post.append(timed(reranker.postprocess_nodes, nodes, bundle))
            bare.append(timed(model.score, query, texts))
        label = "cache on (hits)" if cache else "cache off"
        for name, times in (("postprocess_nodes", post), ("ColBERT.score", bare)):
            print(
                f"{label:16s} {name:18s} median {statistics.median(times) * 1000:8.1f} ms  "
                f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
            )
        ratio = statistics.median(post) / statistics.median(bare)
        print(f"{label:16s} postprocess / bare score: {ratio:.3f}")


if __name__ == "__main__":
    main()
