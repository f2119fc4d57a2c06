"""``colbert-plugins rerank``: rank the documents of a file for a query."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..checks import check_query
from .common import Parents, command, load_model, positive, preview, progress
from .input import InputError, display_name, read_documents


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``rerank`` on the main parser's subcommands."""
    p = command(
        sub,
        "rerank",
        _cmd_rerank,
        [parents.loading, parents.inputs, parents.quiet],
        "rank the documents of FILE for a query",
        "Rank the documents of FILE for a query, best first.",
    )
    p.add_argument("--query", required=True, help="the query text")
    p.add_argument("--top-n", type=positive, help="print only the best N")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument(
        "--explain", action="store_true", help="also show the best-matching spans of each result"
    )


def _cmd_rerank(args: argparse.Namespace) -> int:
    check_query(args.query, "--query")  # before reading or loading anything
    docs = read_documents(args.file, field=args.field, fmt=args.format)
    if not docs:
        raise InputError(f"{display_name(args.file)} holds no documents")
    model = load_model(args, cache=True)
    results = model.rerank(
        args.query, [d.text for d in docs], top_n=args.top_n, show_progress=progress(args)
    )
    out = sys.stdout
    for rank, result in enumerate(results, 1):
        doc = docs[result.index]
        spans = _top_spans(model, args.query, doc.text) if args.explain else None
        if args.json:
            record: dict[str, Any] = {"rank": rank, "index": result.index, "score": result.score}
            if doc.id is not None:
                record["id"] = doc.id
            record["text"] = doc.text
            if spans is not None:
                record["matches"] = spans
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            label = f"{doc.id} " if doc.id is not None else ""
            out.write(f"{rank:>4}  {result.score:10.4f}  [{result.index}] {label}")
            out.write(preview(doc.text) + "\n")
            if spans:
                shown = ", ".join(
                    f"{s['text']!r} ({s['query_token']} {s['similarity']:.2f})" for s in spans
                )
                out.write(f"{'':>18}matches: {shown}\n")
    return 0


def _top_spans(model: Any, query: str, text: str) -> list[dict[str, Any]]:
    from ..explain import explain, top_spans

    return top_spans(explain(model, query, text), n=5)
