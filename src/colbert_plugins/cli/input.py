"""Input of the ``colbert-plugins`` command line: document files, generated documents, errors.

Input files hold one document per line: plain text, or JSON Lines with a text field
(``--field``, default ``text``, falling back to ``page_content`` and ``content``); ``-`` reads
standard input.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_FIELDS",
    "Document",
    "InputError",
    "UsageError",
    "display_name",
    "generated_documents",
    "read_documents",
]

#: Fields tried, in order, when ``--field`` is left at its default.
DEFAULT_FIELDS = ("text", "page_content", "content")
#: Fields whose value is reported as the document's id, when present.
ID_FIELDS = ("_id", "id", "doc_id")


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


class InputError(Exception):
    """Unreadable or malformed input data (exit status 1)."""


@dataclass(frozen=True)
class Document:
    """One input document: its text; for JSON Lines input, its id if it has one and its other
    fields (``metadata``); ``line``, its line number in the file (1-based)."""

    text: str
    id: str | None = None
    line: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


def read_documents(path: str, *, field: str | None = None, fmt: str = "auto") -> list[Document]:
    """Documents of a text-lines or JSON Lines file (``-``: standard input).

    Text lines: one document per non-blank line. JSON Lines: one object per non-blank line,
    its text in ``field`` (default: the first of ``text``, ``page_content``, ``content``).
    Raises :class:`InputError` on malformed input, naming the file and line.
    """
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if fmt == "auto":
        first = next((line for line in lines if line.strip()), "")
        fmt = (
            "jsonl"
            if path.endswith((".jsonl", ".ndjson")) or first.lstrip().startswith("{")
            else "text"
        )
    if fmt == "text":
        if field is not None:
            raise UsageError("--field applies to JSON Lines input only")
        return [Document(line.strip(), line=n) for n, line in enumerate(lines, 1) if line.strip()]
    fields = (field,) if field else DEFAULT_FIELDS
    docs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{display_name(path)}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
        name = next((f for f in fields if f in record), None)
        if name is None:
            tried = " or ".join(repr(f) for f in fields)
            raise InputError(f"{where}: no {tried} field; choose the text field with --field")
        if not isinstance(record[name], str):
            raise InputError(f"{where}: field {name!r} is not a string")
        id_field = next((f for f in ID_FIELDS if f in record), None)
        doc_id = None if id_field is None else str(record[id_field])
        metadata = {k: v for k, v in record.items() if k not in (name, id_field)}
        docs.append(Document(record[name], doc_id, number, metadata))
    return docs


_VOCABULARY = (
    "flow boundary layer pressure distribution supersonic hypersonic subsonic wing body heat "
    "transfer shock wave laminar turbulent separation reynolds number mach skin friction "
    "theory experiment measurement model aircraft surface temperature velocity profile "
    "stagnation point leading edge cone cylinder plate slender delta nozzle jet stability "
    "buckling panel flutter aeroelastic load structure thermal stress similarity solution "
    "approximate method numerical equation viscous inviscid compressible incompressible "
    "gas air wind tunnel test results investigation analysis obtained presented found"
)
_GLUE = ("the", "of", "a", "in", "and", "for", "on", "at", "with", "is", "are", "to")


def generated_documents(n: int, seed: int = 0, words: int = 160) -> list[str]:
    """``n`` deterministic Cranfield-like abstracts of about ``words`` words (for benches).

    >>> docs = generated_documents(2, words=12)
    >>> len(docs), docs == generated_documents(2, words=12)
    (2, True)
    """
    rng = np.random.default_rng(seed)
    vocabulary = _VOCABULARY.split()
    docs = []
    for _ in range(n):
        out: list[str] = []
        while len(out) < words:
            sentence = [
                str(rng.choice(_GLUE)) if rng.random() < 0.3 else str(rng.choice(vocabulary))
                for _ in range(int(rng.integers(8, 20)))
            ]
            out.extend(sentence)
            out[-1] += "."
        docs.append(" ".join(out).capitalize())
    return docs


def display_name(path: str) -> str:
    """How error messages name an input path."""
    return "<stdin>" if path == "-" else path
