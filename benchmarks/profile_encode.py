"""Where the encoding time goes: our Python side, and ONNX Runtime's operators.

    python benchmarks/profile_encode.py [MODEL] [--docs 300] [--threads 2] [--int8]
        [--data ../shared/data/cranfield]

Part 1 times the stages of ``encode_documents`` on ``--docs`` Cranfield documents (cache off):
tokenization, padding, the ONNX Runtime forward passes, and our post-processing (output checks,
L2 normalization, skiplist masking, splitting into per-document arrays).

Part 2 runs the same batches through ONNX Runtime with its profiler on and sums the time of
each operator type (fused float32 graph, and the int8 graph with ``--int8``), so the table
shows which kernels the remaining time is spent in.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench import load_texts  # run from benchmarks/: its sibling script

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = os.environ.get("COLBERT_PLUGINS_TEST_MODEL") or str(
    ROOT.parent / "shared/models/colbert-minilm-proxy"
)


def stage_times(model, texts: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seconds per stage of one uncached encode_documents, mirroring its code path."""
    from colbert_plugins.model import _pad
    from colbert_plugins.scoring import l2_normalize

    times: dict[str, float] = collections.defaultdict(float)
    t = time.perf_counter()
    ids = model.tokenizer.tokenize_documents(texts)
    batches = list(model._length_batches([len(r) for r in ids], 32))
    times["tokenize + plan batches"] += time.perf_counter() - t
    for batch in batches:
        t = time.perf_counter()
        input_ids, attention = _pad([ids[i] for i in batch], model.tokenizer.ids.pad)
        t1 = time.perf_counter()
        raw = model.encoder(input_ids, attention)  # what model._run wraps
        t2 = time.perf_counter()
        if not np.isfinite(raw).all() or not raw[attention.astype(bool)].any(axis=-1).all():
            raise SystemExit("bad model output")
        vectors = l2_normalize(raw)
        keep = model.tokenizer.document_keep_mask(input_ids, attention)
        _ = [vectors[row][keep[row]] for row in range(len(batch))]
        t3 = time.perf_counter()
        times["pad"] += t1 - t
        times["ONNX Runtime forward"] += t2 - t1
        times["checks, normalize, mask, split"] += t3 - t2
    return dict(times)


def operator_profile(graph: Path, batches: list, threads: int) -> dict[str, float]:  # type: ignore[type-arg]
    """Microseconds per operator type over all batches, from ONNX Runtime's profiler."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        for input_ids, mask in batches:
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    return dict(per_op)


def print_table(title: str, values: dict[str, float], unit: str) -> None:
    total = sum(values.values())
    print(f"\n{title}\n| part | {unit} | share |\n| --- | --- | --- |")
    for name, value in sorted(values.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {value:.2f} | {value / total:.1%} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--docs", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--int8", action="store_true", help="also profile the int8 graph")
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/cranfield"))
    args = p.parse_args()

    from colbert_plugins import ColBERT
    from colbert_plugins.model import _pad

    texts = load_texts(Path(args.data), args.docs)
    model = ColBERT.from_pretrained(args.model, threads=args.threads, cache=False)
    model.encode_documents(texts[:16])  # warm up
    stages = stage_times(model, texts)
    data_name = Path(args.data).name
    print(f"{len(texts)} {data_name} documents, {args.threads} threads, graph {model.encoder.path}")
    print_table("Stages of encode_documents (seconds)", stages, "s")

    ids = model.tokenizer.tokenize_documents(texts)
    batches = [
        _pad([ids[i] for i in b], model.tokenizer.ids.pad)
        for b in model._length_batches([len(r) for r in ids], 32)
    ]
    graphs = {"fused float32": model.encoder.path}
    if args.int8:
        graphs["int8"] = ColBERT.from_pretrained(
            args.model, threads=args.threads, cache=False, quantize="int8"
        ).encoder.path
    for label, graph in graphs.items():
        per_op = operator_profile(graph, batches, args.threads)
        print_table(
            f"ONNX Runtime operators, {label} graph (milliseconds over all batches)",
            {k: v / 1000 for k, v in per_op.items()},
            "ms",
        )


if __name__ == "__main__":
    main()
