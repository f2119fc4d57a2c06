"""Encoding speed of our ONNX core against PyLate (torch, CPU) on the same ColBERT checkpoint.

Run it from the PyLate environment with our source first on the path:

    PYTHONPATH=src /work/main/.venv-pylate/bin/python benchmarks/speed_pylate.py \
        [--model ../shared/models/colbert-minilm-trained] [--pylate MODEL/pylate] \
        [--docs 400] [--queries 200] [--threads 1,2] [--rounds 5] [--int8] [--stages] \
        [--out benchmarks/results/speed_pylate.md]

What is compared, per thread count (ONNX Runtime ``intra_op_num_threads`` and
``torch.set_num_threads`` set to the same value):

- ours: ``ColBERT.from_pretrained(MODEL, threads=T, cache=False).encode_documents(texts)``
  on the exported ONNX graph (what ``from_pretrained`` runs by default: the fused graph of
  optimize.py when ``onnx`` and ``sympy`` are installed, as they are in ``.venv-pylate``), with
  its default batching (``batch_size=32`` under ``max_batch_tokens=1024``, by token length);
- PyLate: ``models.ColBERT(MODEL/pylate, device="cpu").encode(texts, is_query=False,
  batch_size=32)`` (its defaults: batches of 32 by character length, padded to the longest);
- queries likewise (``encode_queries`` against ``encode(..., is_query=True)``).

The texts are ``--docs`` passages sampled (seed 0) half from SciFact and half from Cranfield
(title + text, cut by both at ``document_length`` = 128 tokens) and ``--queries`` queries from
both. Before timing, both encode a few texts (warm-up, not timed) and the vectors of the two
are compared on ``--check`` documents and queries (shapes and max |diff|), so the comparison is
of equal work. Rounds are interleaved (ours, PyLate, PyLate, ours, ...: the order alternates);
each round encodes every text once (our cache is off, so every document is really encoded).
Reported: the median documents/s (queries/s) of each over the rounds and the median of the
per-round ratios. ``--int8`` adds ours with ``quantize="int8"`` as a separate row (never the
float32 number). ``--stages`` times where the time goes in both, on the same texts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():  # a worktree outside the project directory
    SHARED = Path("/work/shared")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(SHARED / "models/colbert-minilm-trained"))
    p.add_argument("--pylate", help="the PyLate checkpoint (default: MODEL/pylate)")
    p.add_argument("--data", default=str(SHARED / "data"))
    p.add_argument("--collections", default="scifact,cranfield")
    p.add_argument("--docs", type=int, default=400)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32, help="PyLate's and our batch_size")
    p.add_argument("--check", type=int, default=32, help="texts compared for equal vectors")
    p.add_argument("--int8", action="store_true", help="also time ours with quantize='int8'")
    p.add_argument("--stages", action="store_true", help="time the stages of both")
    p.add_argument("--stage-docs", type=int, default=100, help="documents timed by stage")
    p.add_argument("--stage-runs", type=int, default=3, help="stage timings per library")
    p.add_argument("--skip-queries", action="store_true")
    p.add_argument("--out", help="also write the report (markdown) here")
    return p.parse_args(argv)


def sample_texts(
    data: Path, collections: Sequence[str], docs: int, queries: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """``docs`` passages and ``queries`` queries, an equal share from each collection."""
    rng = random.Random(seed)
    doc_texts: list[str] = []
    query_texts: list[str] = []
    for k, name in enumerate(collections):
        share_d = docs // len(collections) + (k < docs % len(collections))
        share_q = queries // len(collections) + (k < queries % len(collections))
        corpus = [json.loads(line) for line in (data / name / "corpus.jsonl").open()]
        passages = [f"{d.get('title', '')} {d.get('text', '')}".strip() for d in corpus]
        doc_texts += rng.sample([t for t in passages if t], share_d)
        qs = [json.loads(line)["text"] for line in (data / name / "queries.jsonl").open()]
        query_texts += rng.sample(qs, min(share_q, len(qs)))
    rng.shuffle(doc_texts)
    rng.shuffle(query_texts)
    return doc_texts, query_texts


# -- the two encoders ---------------------------------------------------------------------------


def load_ours(model: str, threads: int, quantize: str | None = None) -> Any:
    from colbert_plugins import ColBERT

    return ColBERT.from_pretrained(model, threads=threads, cache=False, quantize=quantize)


def load_pylate(path: str) -> Any:
    from pylate import models

    return models.ColBERT(path, device="cpu")


def compare_vectors(ours: Any, pylate: Any, docs: list[str], queries: list[str]) -> dict[str, Any]:
    """Shapes and max |diff| of both libraries' vectors on the same texts."""
    result: dict[str, Any] = {}
    for kind, texts in (("documents", docs), ("queries", queries)):
        if not texts:
            continue
        a = ours.encode_documents(texts) if kind == "documents" else ours.encode_queries(texts)
        b = pylate.encode(texts, is_query=kind == "queries", show_progress_bar=False)
        shapes = sum(x.shape != np.asarray(y).shape for x, y in zip(a, b, strict=True))
        diffs = [
            float(np.abs(x - np.asarray(y)).max())
            for x, y in zip(a, b, strict=True)
            if x.shape == np.asarray(y).shape
        ]
        result[kind] = {
            "texts": len(texts),
            "shape_mismatches": shapes,
            "max_abs_diff": max(diffs, default=float("nan")),
            "tokens": int(sum(x.shape[0] for x in a)),
        }
    return result


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(runners: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds per round for each runner; the order is reversed every other round."""
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            seconds[name].append(timed(runners[name]))
    return seconds


# -- where the time goes ------------------------------------------------------------------------


def our_stages(model: Any, texts: list[str], batch_size: int) -> dict[str, float]:
    """Seconds per stage of one uncached encode_documents, following its code path."""
    from colbert_plugins.model import _pad
    from colbert_plugins.scoring import l2_normalize

    times: dict[str, float] = defaultdict(float)
    t = time.perf_counter()
    ids = model.tokenizer.tokenize_documents(texts)
    times["tokenize"] += time.perf_counter() - t
    t = time.perf_counter()
    batches = list(model._length_batches([len(r) for r in ids], batch_size))
    padded = [_pad([ids[i] for i in b], model.tokenizer.ids.pad) for b in batches]
    times["batch + pad"] += time.perf_counter() - t
    for batch, (input_ids, attention) in zip(batches, padded, strict=True):
        t = time.perf_counter()
        raw = model._run(input_ids, attention)  # forward pass + the output checks
        t1 = time.perf_counter()
        vectors = l2_normalize(raw)
        keep = model.tokenizer.document_keep_mask(input_ids, attention)
        _ = [vectors[row][keep[row]] for row in range(len(batch))]
        t2 = time.perf_counter()
        times["forward (ONNX Runtime, + output checks)"] += t1 - t
        times["normalize, skiplist, unpad"] += t2 - t1
    padded_tokens = sum(ids.size for ids, _ in padded)
    real_tokens = sum(int(mask.sum()) for _, mask in padded)
    times["_padded_tokens"] = padded_tokens
    times["_real_tokens"] = real_tokens
    times["_batches"] = len(batches)
    return dict(times)


def pylate_stages(model: Any, texts: list[str], batch_size: int) -> dict[str, float]:
    """Seconds per stage of ``encode(is_query=False)``, following PyLate 1.6's loop."""
    import torch

    times: dict[str, float] = defaultdict(float)
    prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
    if prompt:
        texts = [prompt + t for t in texts]
    order = np.argsort([-model._text_length(t) for t in texts])
    ordered = [texts[int(i)] for i in order]
    padded_tokens = real_tokens = batches = 0
    outputs = []
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        t = time.perf_counter()
        features = model.tokenize(texts=chunk, is_query=False)
        t1 = time.perf_counter()
        with torch.no_grad():
            hidden = model[0](dict(features))  # the BERT encoder (transformers)
            t2 = time.perf_counter()
            out = hidden
            for module in list(model)[1:]:  # the Dense projection
                out = module(out)
            t3 = time.perf_counter()
            skip = model.skiplist_mask(input_ids=features["input_ids"], skiplist=model.skiplist)
            masks = torch.logical_and(skip, out["attention_mask"])
            for i, mask in enumerate(masks):
                emb = out["token_embeddings"][i]
                outputs.append(torch.nn.functional.normalize(emb[mask], p=2, dim=1).numpy())
            t4 = time.perf_counter()
        times["tokenize"] += t1 - t
        times["forward: BERT encoder (torch)"] += t2 - t1
        times["forward: Dense head"] += t3 - t2
        times["normalize, skiplist, unpad"] += t4 - t3
        padded_tokens += features["input_ids"].numel()
        real_tokens += int(features["attention_mask"].sum())
        batches += 1
    times["_padded_tokens"] = padded_tokens
    times["_real_tokens"] = real_tokens
    times["_batches"] = batches
    return dict(times)


def stage_table(title: str, runs: list[dict[str, float]]) -> list[str]:
    keys = [k for k in runs[0] if not k.startswith("_")]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    total = sum(med.values())
    first = runs[0]
    lines = [
        f"{title}: {int(first['_batches'])} batches, {int(first['_padded_tokens'])} padded "
        f"tokens for {int(first['_real_tokens'])} real "
        f"({first['_padded_tokens'] / first['_real_tokens'] - 1:.1%} padding); "
        f"median of {len(runs)} runs",
        "",
        "| stage | seconds | share |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {k} | {v:.3f} | {v / total:.1%} |" for k, v in med.items()]
    lines.append(f"| total | {total:.3f} | |")
    return lines


# -- report -------------------------------------------------------------------------------------


def rate_row(
    label: str, threads: int, n: int, ours: list[float], ref: list[float]
) -> tuple[str, dict[str, Any]]:
    ratios = [r / o for o, r in zip(ours, ref, strict=True)]  # their seconds / our seconds
    row = {
        "threads": threads,
        "ours_per_s": n / statistics.median(ours),
        "pylate_per_s": n / statistics.median(ref),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    text = (
        f"| {label} | {threads} | {row['ours_per_s']:.1f} | {row['pylate_per_s']:.1f} | "
        f"{row['ratio_median']:.2f}x ({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) |"
    )
    return text, row


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime
    import pylate
    import torch

    pylate_dir = args.pylate or str(Path(args.model) / "pylate")
    docs, queries = sample_texts(
        Path(args.data), args.collections.split(","), args.docs, args.queries
    )
    threads_list = [int(t) for t in args.threads.split(",")]
    torch.set_num_interop_threads(1)
    reference = load_pylate(pylate_dir)

    out: list[str] = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"torch {torch.__version__}, pylate {pylate.__version__}, onnxruntime "
        f"{onnxruntime.__version__}; {len(docs)} passages ({args.collections}), "
        f"{len(queries)} queries; {args.rounds} interleaved rounds; load average at start "
        f"{loadavg()}.",
        "Command: `PYTHONPATH=src .venv-pylate/bin/python benchmarks/speed_pylate.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
    ]
    rows: list[str] = []
    records: list[dict[str, Any]] = []
    stage_lines: list[str] = []
    checks: dict[str, Any] = {}
    for threads in threads_list:
        torch.set_num_threads(threads)
        ours = {"float32": load_ours(args.model, threads)}
        if args.int8:
            ours["int8"] = load_ours(args.model, threads, quantize="int8")
        if not checks:
            out.append(f"Our graph: {ours['float32'].encoder.path}")
            for label, model in ours.items():
                checks[label] = compare_vectors(
                    model, reference, docs[: args.check], queries[: args.check]
                )
        # warm-up, not timed
        for model in ours.values():
            model.encode_documents(docs[:16], batch_size=args.batch_size)
            model.encode_queries(queries[:16], batch_size=args.batch_size)
        reference.encode(docs[:16], is_query=False, batch_size=args.batch_size)
        reference.encode(queries[:16], is_query=True, batch_size=args.batch_size)

        def run_docs(model: Any) -> Callable[[], Any]:
            return lambda: model.encode_documents(docs, batch_size=args.batch_size)

        runners: dict[str, Callable[[], Any]] = {k: run_docs(m) for k, m in ours.items()}
        runners["pylate"] = lambda: reference.encode(
            docs, is_query=False, batch_size=args.batch_size, show_progress_bar=False
        )
        seconds = interleaved(runners, args.rounds)
        for label in ours:
            text, rec = rate_row(
                f"documents, ours {label}", threads, len(docs), seconds[label], seconds["pylate"]
            )
            rows.append(text)
            records.append({"kind": "documents", "ours": label, **rec})
            print(text, flush=True)
        if not args.skip_queries and queries:
            qrunners: dict[str, Callable[[], Any]] = {
                k: (lambda m=m: m.encode_queries(queries, batch_size=args.batch_size))
                for k, m in ours.items()
            }
            qrunners["pylate"] = lambda: reference.encode(
                queries, is_query=True, batch_size=args.batch_size, show_progress_bar=False
            )
            qseconds = interleaved(qrunners, args.rounds)
            for label in ours:
                text, rec = rate_row(
                    f"queries, ours {label}",
                    threads,
                    len(queries),
                    qseconds[label],
                    qseconds["pylate"],
                )
                rows.append(text)
                records.append({"kind": "queries", "ours": label, **rec})
                print(text, flush=True)
        if args.stages:
            ours_runs: list[dict[str, float]] = []
            ref_runs: list[dict[str, float]] = []
            subset = docs[: args.stage_docs]
            for r in range(args.stage_runs):
                if r % 2 == 0:
                    ours_runs.append(our_stages(ours["float32"], subset, args.batch_size))
                    ref_runs.append(pylate_stages(reference, subset, args.batch_size))
                else:
                    ref_runs.append(pylate_stages(reference, subset, args.batch_size))
                    ours_runs.append(our_stages(ours["float32"], subset, args.batch_size))
            what = f"{threads} threads, the first {len(subset)} documents"
            new = ["", *stage_table(f"Ours (float32), {what}", ours_runs)]
            new += ["", *stage_table(f"PyLate, {what}", ref_runs)]
            stage_lines += new
            print("\n".join(new), flush=True)

    out += ["", "Equal work (the first texts, ours against PyLate's `encode`):", ""]
    out += ["| ours | texts | shape mismatches | max abs diff |", "| --- | --- | --- | --- |"]
    for label, check in checks.items():
        for kind, c in check.items():
            out.append(
                f"| {label} | {c['texts']} {kind} | {c['shape_mismatches']} | "
                f"{c['max_abs_diff']:.2e} |"
            )
    out += [
        "",
        "| what | threads | ours /s | PyLate /s | ours / PyLate, median (range) |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        *stage_lines,
        "",
        f"Load average at the end: {loadavg()}.",
    ]
    report = "\n".join(out)
    print("\n" + report)
    if args.out:
        Path(args.out).write_text(report + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"rows": records, "checks": checks}, indent=1) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
