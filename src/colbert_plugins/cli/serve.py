"""``colbert-plugins serve``: the HTTP rerank server."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import Parents, command, load_model, port, positive


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``serve`` on the main parser's subcommands."""
    p = command(
        sub,
        "serve",
        _cmd_serve,
        [parents.loading, parents.quiet],
        "serve the Cohere/Jina /v1/rerank and TEI /rerank APIs over HTTP",
        "Serve the model over HTTP (needs the server extra); see docs/server.md.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="TCP port, 1-65535 (default 8000)")
    p.add_argument(
        "--served-model-name",
        help="the model name responses report (default: the repo id, or the model "
        "directory's name; never its path)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("COLBERT_PLUGINS_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $COLBERT_PLUGINS_API_KEY)",
    )
    p.add_argument("--max-documents", type=positive, default=1000, help="per request")
    p.add_argument("--max-request-bytes", type=positive, default=4 << 20, help="per request")
    p.add_argument("--max-queue", type=positive, default=256, help="waiting requests (503)")
    p.add_argument("--max-batch-documents", type=positive, default=512, help="per model call")
    p.add_argument("--cache-path", help="SQLite document cache kept across restarts")


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..cache import EmbeddingCache
    from ..server import ServerSettings, serve

    cache = EmbeddingCache(path=args.cache_path) if args.cache_path else True
    settings = ServerSettings(
        api_key=args.api_key or None,
        max_documents=args.max_documents,
        max_request_bytes=args.max_request_bytes,
        max_queue=args.max_queue,
        max_batch_documents=args.max_batch_documents,
        served_model_name=args.served_model_name,
    )
    model = load_model(args, cache=cache)
    serve(
        model,
        host=args.host,
        port=args.port,
        settings=settings,
        log_level="warning" if args.quiet else "info",
    )
    return 0
