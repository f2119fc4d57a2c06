"""``colbert-plugins export``: a PyLate checkpoint to a verified ONNX directory."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ColBERTError
from .common import Parents, command, note


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``export`` on the main parser's subcommands."""
    p = command(
        sub,
        "export",
        _cmd_export,
        [parents.quiet],
        "export a PyLate checkpoint to a verified ONNX directory (needs the export extra)",
        (
            "Export a PyLate or Stanford colbert-ai checkpoint to an ONNX model directory, then "
            "check it against PyLate and refuse it if it differs. Needs PyTorch and PyLate: "
            "pip install 'colbert-plugins[export]'."
        ),
        model=False,
    )
    p.add_argument("model", metavar="MODEL", help="PyLate model directory or Hugging Face repo id")
    p.add_argument("out", metavar="OUT", help="output directory")
    p.add_argument("--int8", action="store_true", help="also write model_int8.onnx")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import ExportVerificationError, export_model

    try:
        result = export_model(args.model, args.out, int8=args.int8, force=args.force)
    except ExportVerificationError as exc:
        for line in exc.report.failures():
            note(f"  {line}")
        raise ColBERTError(f"export refused, nothing written: {exc.report.summary()}") from exc
    if not args.quiet:
        check = f"; matches PyLate: {result.report.summary()}" if result.report else ""
        note(f"exported {args.model} with {result.exporter}{check}")
    print(result.directory)
    return 0
