"""What every command shares: the parser class, option types, model loading, messages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from ..config import LONG_DOCUMENT_MODES
from .input import DEFAULT_FIELDS, UsageError

PROG = "colbert-plugins"


_PREVIEW = 100


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, unless it has none (None, False) or the help
    text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False
            or default is argparse.SUPPRESS
            or "default" in text
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError` (one line, exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


MODEL_HELP = "model directory or Hugging Face repo id"


def command(
    sub: Any,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    parents: list[argparse.ArgumentParser],
    help: str,
    description: str,
    *,
    model: bool = True,
) -> argparse.ArgumentParser:
    """Register the command ``name`` run by ``handler``, with a required ``--model`` unless
    ``model=False``; returns its parser for the command's own options."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, parents=parents, help=help, description=description
    )
    if model:
        parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.set_defaults(handler=handler)
    return parser


def load_model(args: argparse.Namespace, *, cache: Any) -> Any:
    from ..model import ColBERT

    overrides = {
        name: getattr(args, name)
        for name in ("document_length", "query_length", "long_documents", "window_stride")
        if getattr(args, name, None) is not None
    }
    return ColBERT.from_pretrained(
        args.model,
        model_file=args.model_file,
        revision=args.revision,
        cache_dir=args.cache_dir,
        threads=args.threads,
        cache=cache,
        quantize="int8" if getattr(args, "int8", False) else None,
        **overrides,
    )


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _integer(text, "a positive integer", 1, None)


def port(text: str) -> int:
    """argparse type: a TCP port number."""
    return _integer(text, "a port number from 1 to 65535", 1, 65535)


def _integer(text: str, what: str, minimum: int, maximum: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def fail(message: str, status: int) -> int:
    line = " ".join(message.split())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return status


def note(message: str) -> None:
    print(message, file=sys.stderr)


def os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def size(n: int) -> str:
    """Human-readable size.

    >>> size(512), size(90_561_252)
    ('512 B', '86.4 MiB')
    """
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


@dataclass(frozen=True)
class Parents:
    """The option groups commands share, as parent parsers."""

    quiet: argparse.ArgumentParser
    loading: argparse.ArgumentParser
    inputs: argparse.ArgumentParser


def parent_parsers() -> Parents:
    """``-q``, the model-loading options and the input-file options."""
    quiet = Parser(add_help=False)
    quiet.add_argument(
        "-q", "--quiet", action="store_true", help="print results only: no progress or summary"
    )
    loading = Parser(add_help=False)
    group = loading.add_argument_group("model options")
    group.add_argument("--revision", help="hub branch, tag or commit")
    group.add_argument("--cache-dir", help="Hugging Face cache directory")
    group.add_argument("--model-file", help="the ONNX graph's path inside the model")
    group.add_argument("--threads", type=positive, help="ONNX Runtime threads")
    group.add_argument("--document-length", type=positive, help="tokens per document")
    group.add_argument("--query-length", type=positive, help="query length (mask padding)")
    group.add_argument(
        "--long-documents",
        choices=LONG_DOCUMENT_MODES,
        help="truncate long documents, or encode them as overlapping windows",
    )
    group.add_argument("--window-stride", type=positive, help="tokens between window starts")
    group.add_argument(
        "--int8",
        action="store_true",
        help="run the int8 dynamically quantized graph (faster on CPU, slightly different scores)",
    )
    inputs = Parser(add_help=False)
    inputs.add_argument("file", metavar="FILE", help="text lines or JSON Lines; - for stdin")
    inputs.add_argument(
        "--field",
        help=f"JSON Lines text field (default: the first of {', '.join(DEFAULT_FIELDS)})",
    )
    inputs.add_argument(
        "--format",
        choices=("auto", "text", "jsonl"),
        default="auto",
        help="input format (auto: JSON Lines when the first line is a JSON object)",
    )

    return Parents(quiet=quiet, loading=loading, inputs=inputs)
