"""A shipped ``model_int8.onnx`` (NextPlaid's recipe) against our int8 recipe, on real queries.

    python benchmarks/shipped_int8.py [--model ../shared/models/colbert-minilm-trained] \
        [--data ../shared/data/cranfield] [--queries 30] [--pool 300] [--threads 2] \
        [--shipped EXPORT_DIR_OR_model_int8.onnx ...]

Models published by NextPlaid ship a ``model_int8.onnx`` made by ``pylate-onnx-export
--quantize``: ``onnxruntime.quantization.quantize_dynamic(model.onnx, weight_type=QInt8)`` on
the whole graph. ``ColBERT.from_pretrained(..., quantize="int8")`` runs that file when a model
has one. This script makes that file for the model (in a temporary copy of its directory, as
the exporter does), then measures, in one run and on the same candidate pool, the ranking
agreement with float32 and the encoding speed of (a) the shipped file and (b) our recipe
(``optimize._quantize``: per-channel reduced-range weights, GELU-fed products kept float32),
as ``quantization_agreement.py`` measures ours.

``--shipped PATH`` (repeatable) measures an existing int8 graph too, e.g. the
``model_int8.onnx`` that ``colbert-plugins export --int8`` wrote: PATH is that file or the
directory holding it. The file runs in a temporary copy of ``--model`` (its tokenizer and
settings), against ``--model``'s float32 graph; when a ``model.onnx`` sits beside the file
and differs from ``--model``'s, the script says so (the agreement then also counts the
difference between the two float32 graphs).

Which model: the default, ../shared/models/colbert-minilm-trained, is trained for late
interaction, so the agreement says how each recipe moves a real ColBERT's rankings. On the
untrained proxy (colbert-minilm-proxy) it only says how much each recipe moves the vectors;
the speed ratios are meaningful on either (same architecture).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from quantization_agreement import agreement, arguments, candidate_pool

INT8_FILE = "model_int8.onnx"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shipped",
        action="append",
        default=[],
        metavar="PATH",
        help=f"an existing {INT8_FILE} (or the directory holding one) to measure too; repeatable",
    )


def shipped_file(path: str) -> Path:
    """The int8 graph a ``--shipped`` argument names; exits with a message when there is none."""
    given = Path(path).expanduser()
    found = given / INT8_FILE if given.is_dir() else given
    if not found.is_file():
        sys.exit(f"--shipped {path}: no such file {found} (give a {INT8_FILE} or its directory)")
    return found


def model_copy(source: Path, int8_graph: Path | None, into: Path) -> Path:
    """A copy of the model directory ``source`` (``into/name``) with ``int8_graph`` as its
    shipped ``model_int8.onnx`` (None: made here with ``quantize_dynamic(QInt8)``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    into.mkdir(parents=True)
    target = into / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(INT8_FILE))
    if int8_graph is None:
        quantize_dynamic(
            model_input=str(target / "model.onnx"),
            model_output=str(target / INT8_FILE),
            weight_type=QuantType.QInt8,
        )
    else:
        shutil.copyfile(int8_graph, target / INT8_FILE)
    return target


def main() -> None:
    args = arguments(__doc__.splitlines()[0], _options)

    from colbert_plugins import ColBERT
    from colbert_plugins.files import sha256

    source = Path(args.model)
    given = [shipped_file(p) for p in args.shipped]
    notes = []
    for path in given:
        beside = path.parent / "model.onnx"
        if beside.is_file() and sha256(beside) != sha256(source / "model.onnx"):
            notes.append(
                f"NOTE: {beside} differs from {source / 'model.onnx'} (the float32 reference "
                f"here): the agreement of {path} also counts that difference."
            )
    chosen, queries, pool = candidate_pool(Path(args.data), args.queries, args.pool)
    with tempfile.TemporaryDirectory() as tmp:
        directories = [("shipped recipe made here (quantize_dynamic QInt8)", None)]
        directories += [(f"shipped file {path}", path) for path in given]
        fp32 = ColBERT.from_pretrained(source, threads=args.threads)
        results = {}
        for i, (name, graph) in enumerate(directories):
            copy = model_copy(source, graph, Path(tmp) / str(i))
            model = ColBERT.from_pretrained(copy, threads=args.threads, quantize="int8")
            if model.encoder.path.name != INT8_FILE:
                sys.exit(f"{name}: ran {model.encoder.path}, not the shipped {INT8_FILE}")
            results[name] = agreement(fp32, model, chosen, queries, pool)
        ours = ColBERT.from_pretrained(source, threads=args.threads, quantize="int8")
        if ours.encoder.path.resolve().parent == source.resolve():
            sys.exit(f"{source} ships its own {INT8_FILE}: our recipe cannot be measured on it")
        results["our recipe (int8-v2)"] = agreement(fp32, ours, chosen, queries, pool)
    print(f"{len(chosen)} {Path(args.data).name} queries x {len(pool)} candidates, {source.name}")
    for line in notes:
        print(line)
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
