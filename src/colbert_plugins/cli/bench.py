"""``colbert-plugins bench``: a quick speed check."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from .common import Parents, command, load_model, positive, progress
from .input import InputError, generated_documents, read_documents

_BENCH_QUERY = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft"
)


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``bench`` on the main parser's subcommands."""
    p = command(
        sub,
        "bench",
        _cmd_bench,
        [parents.loading, parents.quiet],
        "quick speed check: encoding throughput and rerank latency",
        (
            "Encode N documents (from --corpus or generated Cranfield-like text) and time a "
            "rerank of one query against 100 of them, cold (empty cache) and warm."
        ),
    )
    p.add_argument("--docs", type=positive, default=100, help="documents to encode")
    p.add_argument("--corpus", help="documents to use (text lines or JSON Lines)")
    p.add_argument("--field", help="JSON Lines text field")
    p.add_argument("--query", default=_BENCH_QUERY, help="the rerank query")
    p.add_argument("--repeat", type=positive, default=5, help="warm rerank repetitions")
    p.add_argument("--json", action="store_true", help="JSON output")


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.corpus:
        docs = [d.text for d in read_documents(args.corpus, field=args.field, fmt="auto")]
        if len(docs) < args.docs:
            raise InputError(f"{args.corpus} holds {len(docs)} documents, fewer than --docs")
        docs = docs[: args.docs]
    else:
        docs = generated_documents(args.docs)
    from ..cache import EmbeddingCache

    model = load_model(args, cache=EmbeddingCache())
    assert model.cache is not None
    model.encode_queries([args.query])  # warm-up: sessions allocate on the first run
    started = time.perf_counter()
    vectors = model.encode_documents(docs, show_progress=progress(args))
    encode_s = time.perf_counter() - started
    candidates = docs[:100]
    model.cache.clear()
    started = time.perf_counter()
    model.rerank(args.query, candidates)
    cold_s = time.perf_counter() - started
    warm = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        model.rerank(args.query, candidates)
        warm.append(time.perf_counter() - started)
    result = {
        "model": model.name,
        "documents": len(docs),
        "vectors": int(sum(v.shape[0] for v in vectors)),
        "encode_seconds": round(encode_s, 4),
        "docs_per_second": round(len(docs) / encode_s, 2),
        "rerank_candidates": len(candidates),
        "rerank_cold_ms": round(cold_s * 1000, 2),
        "rerank_warm_ms": round(statistics.median(warm) * 1000, 3),
        "threads": args.threads,
        "long_documents": model.config.long_documents,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"encode   {result['documents']} docs ({result['vectors']} vectors) in "
            f"{encode_s:.2f}s: {result['docs_per_second']} docs/s\n"
            f"rerank   1x{len(candidates)} cold {result['rerank_cold_ms']} ms, "
            f"warm {result['rerank_warm_ms']} ms (median of {args.repeat})"
        )
    return 0
