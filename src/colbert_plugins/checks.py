"""Argument checks shared by the core, the adapters, the indexes, the server and the CLI.

Light on purpose (it imports only :mod:`colbert_plugins.errors`), so that the command line can
check its arguments before it imports ONNX Runtime or loads a model.
"""

from __future__ import annotations

from typing import Any

from .errors import EmptyQueryError, InvalidArgumentTypeError

__all__ = ["check_query"]


def check_query(query: Any, name: str = "query") -> str:
    """``query`` when it is a string with some non-whitespace text.

    Ranking by an empty query would return an order that means nothing, so every method that
    ranks or searches by a query text refuses one (encoding methods do not: an empty text has
    vectors like any other).

    >>> check_query("capital of france")
    'capital of france'
    >>> check_query("  ")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.EmptyQueryError: query is only whitespace: give the text to rank by
    """
    if not isinstance(query, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, got {type(query).__name__}")
    if not query.strip():
        what = "only whitespace" if query else "an empty string"
        raise EmptyQueryError(f"{name} is {what}: give the text to rank by")
    return query
