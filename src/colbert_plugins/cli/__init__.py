"""The ``colbert-plugins`` command line: rerank, encode, download, info, bench, serve, export
and index.

Examples::

    colbert-plugins rerank --model answerdotai/answerai-colbert-small-v1 \\
        --query "what is late interaction?" docs.jsonl --top-n 5
    colbert-plugins encode --model ./my-model corpus.jsonl --out embeddings/ --cache-path emb.db
    colbert-plugins download answerdotai/answerai-colbert-small-v1
    colbert-plugins info ./my-model --json
    colbert-plugins bench --model ./my-model --docs 200
    colbert-plugins serve --model ./my-model --port 8000 --api-key "$KEY"
    colbert-plugins export ./my-pylate-model ./my-model-onnx --int8   # the export extra
    colbert-plugins index add ./my-index corpus.jsonl --model ./my-model  (see cli_index)

Input files hold one document per line: plain text, or JSON Lines with a text field
(``--field``, default ``text``, falling back to ``page_content`` and ``content``); ``-`` reads
standard input. Errors print one line, ``colbert-plugins: error: ...``, and exit with 2 for
usage errors (bad options or settings) and 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError
from . import bench, encode, export, index, model, rerank, serve
from .common import PROG, Parser, fail, os_error, parent_parsers
from .input import Document, InputError, UsageError, read_documents

__all__ = ["Document", "build_parser", "main", "read_documents"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage)."""
    try:
        args = build_parser().parse_args(None if argv is None else list(argv))
    except UsageError as exc:
        return fail(str(exc), 2)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    package_logger = logging.getLogger("colbert_plugins")
    level = package_logger.level
    if args.quiet:  # library warnings go to stderr (logging's last resort) unless --quiet
        package_logger.setLevel(logging.ERROR)
    try:
        status: int = args.handler(args)
        return status
    except UsageError as exc:
        return fail(str(exc), 2)
    except (InvalidArgumentError, InvalidArgumentTypeError) as exc:
        return fail(str(exc), 2)
    except (ColBERTError, InputError) as exc:
        return fail(str(exc), 1)
    except BrokenPipeError:  # the reader (e.g. `head`) went away: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        return fail(os_error(exc), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    finally:
        package_logger.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tools)."""
    parser = Parser(
        prog=PROG,
        description="ColBERT late-interaction reranking on ONNX Runtime.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = parent_parsers()
    for command in (rerank, encode, model, bench, serve, export):
        command.add_parser(sub, parents)
    index.add_index_parser(sub, parents.loading, parents.quiet)
    return parser
