"""int8 recipes against float32 on this CPU: encoding speed and ranking agreement, in one run.

    python benchmarks/int8_variants.py [MODEL] [--data ../shared/data/cranfield] [--queries 100]
        [--pool 300] [--repeats 2] [--threads 2]

Builds four int8 graphs from the same fused float32 graph: the shipped recipe
(``quantize="int8"``: reduced-range weights, GELU-fed products kept float32), the same with
full-range weights, every product quantized (reduced range), and every product quantized with
full-range weights. Each repeat encodes the candidate pool with float32 and every int8 graph
in turn (interleaved, ``--threads`` threads); speeds are medians, ratios medians of per-repeat
ratios. Agreement with float32: mean top-10 overlap and Kendall tau-b per query over the pool
(every document judged relevant for the queries, then the corpus's first documents up to
``--pool``). Full-range weights only make sense on CPUs with AVX-VNNI / AMX: elsewhere the int8
kernel's int16 sums saturate (see ``int8_gemm.py``).

Model: the default, ../shared/models/colbert-minilm-trained, is trained for late interaction,
so the agreement says how each recipe moves a real ColBERT's rankings; on the untrained proxy
it only says how much each recipe moves the vectors. Speed ratios hold on either (same
architecture).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DEFAULT_MODEL = str(HERE.parent.parent / "shared/models/colbert-minilm-trained")


def main() -> None:
    from quantization_agreement import candidate_pool, kendall_tau, top10_overlap

    import colbert_plugins.optimize as optimize
    from colbert_plugins import ColBERT

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--data", default=str(HERE.parent.parent / "shared/data/cranfield"))
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--pool", type=int, default=300)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    data = Path(args.data)
    chosen, queries, pool = candidate_pool(data, args.queries, args.pool)

    models = {
        "float32 (fused)": ColBERT.from_pretrained(args.model, threads=args.threads, cache=False)
    }
    shipped = optimize._quantize
    variants = {
        "int8, shipped recipe": shipped,
        "int8, full-range weights": partial(shipped, reduce_range=False),
        "int8, every product": partial(shipped, keep_gelu_float=False),
        "int8, every product, full range": partial(
            shipped, reduce_range=False, keep_gelu_float=False
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, build) in enumerate(variants.items()):
            optimize._quantize = build  # each recipe in its own cache directory
            os.environ["COLBERT_PLUGINS_CACHE"] = str(Path(tmp) / str(i))
            models[name] = ColBERT.from_pretrained(
                args.model, threads=args.threads, cache=False, quantize="int8"
            )
        optimize._quantize = shipped

    speeds: dict[str, list[float]] = {name: [] for name in models}
    vectors = {}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            vectors[name] = model.encode_documents(pool)
            speeds[name].append(len(pool) / (time.perf_counter() - start))
    base = "float32 (fused)"
    reference = {
        q: models[base].score_vectors(models[base].encode_queries([queries[q]])[0], vectors[base])
        for q in chosen
    }
    print(
        f"{len(chosen)} {data.name} queries x {len(pool)} candidates, model "
        f"{Path(args.model).name}, {args.threads} threads, median of {args.repeats} runs"
    )
    print("| graph | docs/s | vs float32 | top-10 overlap | Kendall tau |")
    print("| --- | --- | --- | --- | --- |")
    for name, model in models.items():
        ratio = statistics.median(a / b for a, b in zip(speeds[name], speeds[base], strict=True))
        overlap, tau = "", ""
        if name != base:
            overlaps, taus = [], []
            for q in chosen:
                a = reference[q]
                b = model.score_vectors(model.encode_queries([queries[q]])[0], vectors[name])
                overlaps.append(top10_overlap(a, b))
                taus.append(kendall_tau(a, b))
            overlap, tau = f"{statistics.mean(overlaps):.3f}", f"{statistics.mean(taus):.3f}"
        rate = statistics.median(speeds[name])
        print(f"| {name} | {rate:.1f} | {ratio:.2f}x | {overlap} | {tau} |", flush=True)


if __name__ == "__main__":
    main()
