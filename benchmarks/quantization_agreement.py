"""Ranking agreement of the int8-quantized model with float32, on real queries.

    python benchmarks/quantization_agreement.py [--model ../shared/models/colbert-minilm-trained] \
        [--data ../shared/data/cranfield] [--queries 30] [--pool 300] [--threads 2]

A fixed pool of candidate documents (every document judged relevant for the chosen queries,
then the first documents of the corpus up to ``--pool``) is ranked for each query by both
models. Reported: mean top-10 overlap (|top10(fp32) & top10(int8)| / 10), mean Kendall tau-b
over the whole pool, and how often the two top-1 documents agree; plus encoding speed.

Which model: the default, ../shared/models/colbert-minilm-trained, is trained for late
interaction, so its agreement says how int8 moves a real ColBERT's rankings. On the untrained
proxy (colbert-minilm-proxy) the agreement only says how much the recipe moves the vectors;
its speed ratio is meaningful on either (same architecture).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b between two score vectors (O(n^2), fine for a few hundred items).

    >>> kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]))
    1.0
    """
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    da, db = da[upper], db[upper]
    concordant_minus_discordant = float((da * db).sum())
    denom = np.sqrt(float((da != 0).sum()) * float((db != 0).sum()))
    return float(concordant_minus_discordant / denom) if denom else 0.0


def top10_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the 10 best items of ``a`` that are among the 10 best of ``b``.

    >>> top10_overlap(np.arange(20.0), np.arange(20.0)[::-1])
    0.0
    """
    top_a = set(np.argsort(-a, kind="stable")[:10].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:10].tolist())
    return len(top_a & top_b) / 10


def candidate_pool(
    data: Path, n_queries: int, pool_size: int
) -> tuple[list[str], dict[str, str], list[str]]:
    """(chosen query ids, query texts by id, candidate texts) of a BEIR-layout data set.

    The first ``n_queries`` queries with judgements; the pool holds every document judged
    relevant for them, then the corpus's first documents up to ``pool_size``.
    """
    corpus = {}
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc.get('title', '')} {doc.get('text', '')}".strip()
    queries = {}
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    relevant: dict[str, list[str]] = {}
    with (data / "qrels.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            relevant.setdefault(row["query-id"], []).append(row["corpus-id"])
    chosen = [q for q in queries if q in relevant][:n_queries]
    pool_ids = list(dict.fromkeys(d for q in chosen for d in relevant[q] if d in corpus))
    judged = set(pool_ids)
    pool_ids += [d for d in corpus if d not in judged][: max(0, pool_size - len(pool_ids))]
    return chosen, queries, [corpus[d] for d in pool_ids]


def arguments(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The options every agreement script takes: model, data set, pool and threads (and
    those ``extra`` adds to the parser)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--model",
        default=str(ROOT.parent / "shared/models/colbert-minilm-trained"),
        help="model directory (default: the trained colbert-minilm-trained)",
    )
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/cranfield"))
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--pool", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    if extra is not None:
        extra(p)
    return p.parse_args()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])

    from colbert_plugins import ColBERT

    data = Path(args.data)
    chosen, queries, pool = candidate_pool(data, args.queries, args.pool)

    fp32 = ColBERT.from_pretrained(args.model, threads=args.threads)
    int8 = ColBERT.from_pretrained(args.model, threads=args.threads, quantize="int8")
    name = Path(args.model).name
    print(f"{len(chosen)} {data.name} queries x {len(pool)} candidates, model {name}")
    result = agreement(fp32, int8, chosen, queries, pool)
    print("| measure | value |\n| --- | --- |")
    print(f"| top-10 overlap int8 vs fp32 (mean) | {result['overlap']:.3f} |")
    print(f"| top-10 overlap (min) | {result['overlap_min']:.2f} |")
    print(f"| Kendall tau-b over the pool (mean) | {result['tau']:.3f} |")
    print(f"| same top-1 document | {result['top1']:.0%} |")
    print(
        f"| encode docs/s fp32 / int8 | {result['fp32_docs_s']:.1f} / "
        f"{result['int8_docs_s']:.1f} ({result['speedup']:.2f}x) |"
    )


def agreement(
    fp32: Any, int8: Any, chosen: list[str], queries: dict[str, str], pool: list[str]
) -> dict[str, float]:
    """Encoding speed of both models on the pool, then how the int8 model's rankings of the
    pool agree with float32's for each chosen query (means over the queries)."""
    speed = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        if model.cache is not None:
            model.cache.clear()  # time real encoding, also when the model was used before
        start = time.perf_counter()
        model.encode_documents(pool)  # fills the cache; the ranking below reuses it
        speed[name] = len(pool) / (time.perf_counter() - start)
    overlaps, taus, top1 = [], [], []
    for qid in chosen:
        a = fp32.score(queries[qid], pool)
        b = int8.score(queries[qid], pool)
        overlaps.append(top10_overlap(a, b))
        taus.append(kendall_tau(a, b))
        top1.append(int(np.argmax(a) == np.argmax(b)))
    return {
        "overlap": statistics.mean(overlaps),
        "overlap_min": min(overlaps),
        "tau": statistics.mean(taus),
        "top1": statistics.mean(top1),
        "fp32_docs_s": speed["fp32"],
        "int8_docs_s": speed["int8"],
        "speedup": speed["int8"] / speed["fp32"],
    }


if __name__ == "__main__":
    main()
