"""Parity with fastembed on the same ONNX file: token ids and vectors, max abs difference.

    python benchmarks/parity.py [--model ../shared/models/colbert-minilm-proxy] [--docs 200]

fastembed's query vectors are L2-normalized here (it leaves them as the graph makes them);
its document vectors are compared as they are. Runs ours both on the original graph
(optimize=False) and on the fused graph that ``optimize="auto"`` picks.

Model: the proxy (../shared/models/colbert-minilm-proxy, the default) is the fastembed-family
reference model: parity with fastembed on the same ONNX file holds or not whatever the weights;
it is no quality measure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import QUERY, ROOT, fastembed_model, load_texts

from colbert_plugins import ColBERT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT.parent / "shared/models/colbert-minilm-proxy"))
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/cranfield"))
    p.add_argument("--docs", type=int, default=200)
    args = p.parse_args()
    texts = [*load_texts(Path(args.data), args.docs), "", "emoji 😀 naïve", "x " * 800]
    queries = [QUERY, "boundary layer " * 30, ""]
    fe = fastembed_model(args.model, threads=2)
    theirs_docs = list(fe.embed(texts, batch_size=16))
    theirs_q = []
    for q in queries:
        (v,) = list(fe.query_embed(q))
        theirs_q.append(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))
    result = {"documents": len(texts), "queries": len(queries)}
    for label, optimize in (("original graph", False), ("fused graph", "auto")):
        model = ColBERT.from_pretrained(args.model, threads=2, cache=False, optimize=optimize)
        ours_docs = model.encode_documents(texts)
        ours_q = model.encode_queries(queries)
        shapes = all(a.shape == b.shape for a, b in zip(ours_docs, theirs_docs, strict=True))
        shapes &= all(a.shape == b.shape for a, b in zip(ours_q, theirs_q, strict=True))
        doc_diff = max(
            float(np.abs(a - b).max()) for a, b in zip(ours_docs, theirs_docs, strict=True)
        )
        q_diff = max(float(np.abs(a - b).max()) for a, b in zip(ours_q, theirs_q, strict=True))
        result[label] = {
            "same shapes (token counts)": shapes,
            "max |diff| document vectors": doc_diff,
            "max |diff| query vectors": q_diff,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
