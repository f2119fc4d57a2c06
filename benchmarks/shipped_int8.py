"""A shipped ``model_int8.onnx`` (NextPlaid's recipe) against our int8 recipe, on real queries.

    python benchmarks/shipped_int8.py [--model ../shared/models/colbert-minilm-proxy] \
        [--data ../shared/data/cranfield] [--queries 30] [--pool 300] [--threads 2]

Models published by NextPlaid ship a ``model_int8.onnx`` made by ``pylate-onnx-export
--quantize``: ``onnxruntime.quantization.quantize_dynamic(model.onnx, weight_type=QInt8)`` on
the whole graph. ``ColBERT.from_pretrained(..., quantize="int8")`` runs that file when a model
has one. This script makes that file for the model (in a temporary copy of its directory, as
the exporter does), then measures, in one run and on the same candidate pool, the ranking
agreement with float32 and the encoding speed of (a) the shipped file and (b) our recipe
(``optimize._quantize``: per-channel reduced-range weights, GELU-fed products kept float32),
as ``quantization_agreement.py`` measures ours.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from quantization_agreement import agreement, arguments, candidate_pool


def main() -> None:
    args = arguments(__doc__.splitlines()[0])

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from colbert_plugins import ColBERT

    source = Path(args.model)
    chosen, queries, pool = candidate_pool(Path(args.data), args.queries, args.pool)
    with tempfile.TemporaryDirectory() as tmp:
        shipped_dir = Path(tmp) / source.name
        shutil.copytree(source, shipped_dir)
        quantize_dynamic(
            model_input=str(shipped_dir / "model.onnx"),
            model_output=str(shipped_dir / "model_int8.onnx"),
            weight_type=QuantType.QInt8,
        )
        fp32 = ColBERT.from_pretrained(source, threads=args.threads)
        shipped = ColBERT.from_pretrained(shipped_dir, threads=args.threads, quantize="int8")
        assert shipped.encoder.path.name == "model_int8.onnx"
        ours = ColBERT.from_pretrained(source, threads=args.threads, quantize="int8")
        results = {
            "shipped model_int8.onnx (quantize_dynamic QInt8)": agreement(
                fp32, shipped, chosen, queries, pool
            ),
            "our recipe (int8-v2)": agreement(fp32, ours, chosen, queries, pool),
        }
    print(f"{len(chosen)} {Path(args.data).name} queries x {len(pool)} candidates, {source.name}")
    print("| int8 graph | top-10 overlap | min | Kendall tau | same top-1 | docs/s vs fp32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['overlap']:.3f} | {r['overlap_min']:.2f} | {r['tau']:.3f} | "
            f"{r['top1']:.0%} | {r['int8_docs_s']:.1f} vs {r['fp32_docs_s']:.1f} "
            f"({r['speedup']:.2f}x) |"
        )


if __name__ == "__main__":
    main()
