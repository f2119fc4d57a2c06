"""The small texts and queries the unit tests share (one copy; tests slice what they need).

``TEXTS[1]`` answers ``QUERY``; ``TEXTS_WITH_TIE`` repeats it at position 4, a tie that must
keep its input order after it.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

QUERY = "what is the capital of france"
QUERIES = [QUERY, "the lazy dog", "late interaction model", "where is the river seine"]
TEXTS = [
    "the cat sat on the mat",
    "paris is the capital of france",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "london is on the thames",
    "late interaction model",
    "the seine is a river in paris, france!",
    "what is a vector",
]
TEXTS_WITH_TIE = [*TEXTS[:4], TEXTS[1], *TEXTS[4:7]]

#: The shared data directory beside the checkout (../shared/data), present in CI.
DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
CRANFIELD = DATA / "cranfield"


def cranfield(documents: int, queries: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The first ``documents`` Cranfield records (``_id``, ``title``, ``text``) and the first
    ``queries`` query texts; skips the test when the data is absent."""
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"Cranfield data not found at {CRANFIELD}")
    with (CRANFIELD / "corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line) for _, line in zip(range(documents), fh, strict=False)]
    with (CRANFIELD / "queries.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(queries), fh, strict=False)]
    return docs, texts
