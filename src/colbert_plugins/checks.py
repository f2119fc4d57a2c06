"""Argument checks shared by the core, the adapters, the indexes, the server and the CLI.

One place for the rules every entry point applies (a positive count, a text, a list of items of
one kind, a finite number, an optional dependency), so that the same mistake gets the same
message whichever door it comes through. Light on purpose (it imports only numpy and
:mod:`colbert_plugins.errors`), so that the command line can check its arguments before it
imports ONNX Runtime or loads a model.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import numpy as np

from .errors import (
    EmptyQueryError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MissingDependencyError,
)

__all__ = [
    "check_int",
    "check_items",
    "check_number",
    "check_optional_int",
    "check_query",
    "check_text",
    "check_texts",
    "missing_dependency",
    "require",
]

T = TypeVar("T")


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
    text = check_text(query, name)
    if not text.strip():
        what = "only whitespace" if text else "an empty string"
        raise EmptyQueryError(f"{name} is {what}: give the text to rank by")
    return text


def check_text(text: Any, name: str = "text") -> str:
    """``text`` when it is a ``str`` (empty allowed).

    >>> check_text(b"abc", "query")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentTypeError: query must be a str, got bytes
    """
    if not isinstance(text, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) of at least ``minimum``.

    >>> check_int(3, "top_n")
    3
    >>> check_int(0, "top_n")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentError: top_n must be >= 1, got 0
    >>> check_int(2.5, "k")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentTypeError: k must be a positive integer, got 2.5
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidArgumentTypeError(f"{name} must be {kind}, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_optional_int(value: Any, name: str, *, minimum: int = 1) -> int | None:
    """``None``, or :func:`check_int` of ``value``.

    >>> check_optional_int(None, "top_n") is None
    True
    """
    return None if value is None else check_int(value, name, minimum=minimum)


@overload
def check_number(value: None, name: str, *, optional: bool = ...) -> None: ...
@overload
def check_number(value: Any, name: str, *, optional: bool = ...) -> float | None: ...
def check_number(value: Any, name: str, *, optional: bool = False) -> float | None:
    """``value`` as a ``float`` when it is a real number (not a bool, not NaN); ``None`` passes
    when ``optional``.

    >>> check_number(0.5, "score_threshold")
    0.5
    >>> check_number(float("nan"), "score_threshold")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentError: score_threshold must not be NaN
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        extra = " or None" if optional else ""
        raise InvalidArgumentTypeError(
            f"{name} must be a number{extra}, got {type(value).__name__}"
        )
    if math.isnan(float(value)):
        raise InvalidArgumentError(f"{name} must not be NaN")
    return float(value)


def check_items(
    items: Any,
    name: str,
    kind: type[T] | tuple[type[Any], ...],
    *,
    label: str | None = None,
    hint: str | Callable[[Any], str] = "",
) -> list[T]:
    """A new list of ``items`` when it is an iterable (not a single string or item) whose every
    element is an instance of ``kind``; ``label`` names the kind in messages, ``hint`` (or
    ``hint(item)``) ends the message about a wrong item.

    >>> check_items(["a", "b"], "texts", str)
    ['a', 'b']
    >>> check_items("ab", "texts", str)
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentTypeError: texts must be a list of str, not a single \
str; wrap it in a list
    >>> check_items(["a", 1], "texts", str)
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentTypeError: texts[1] must be a str, got int
    >>> check_items([b"a"], "texts", str, hint=lambda item: f" ({len(item)} bytes)")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentTypeError: texts[0] must be a str, got bytes (1 bytes)
    """
    kinds = kind if isinstance(kind, tuple) else (kind,)
    what = label or " or ".join(k.__name__ for k in kinds)
    if isinstance(items, (str, bytes, *kinds)):
        raise InvalidArgumentTypeError(
            f"{name} must be a list of {what}, not a single {type(items).__name__}; "
            "wrap it in a list"
        )
    if not isinstance(items, Iterable):
        raise InvalidArgumentTypeError(
            f"{name} must be a list of {what}, got {type(items).__name__}"
        )
    checked = list(items)
    for i, item in enumerate(checked):
        if not isinstance(item, kinds):
            extra = hint(item) if callable(hint) else hint
            raise InvalidArgumentTypeError(
                f"{name}[{i}] must be a {what}, got {type(item).__name__}{extra}"
            )
    return checked


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """A new list of the strings in ``texts`` (:func:`check_items` with ``str``)."""
    return check_items(texts, name, str)


def missing_dependency(module: str, *, extra: str, feature: str) -> MissingDependencyError:
    """The error to raise (``from`` the ImportError) when an optional dependency is missing:
    it names the extra that installs it.

    >>> str(missing_dependency("faiss", extra="index", feature="CompressedIndex"))
    'CompressedIndex needs faiss; install it with `pip install "colbert-plugins[index]"`'
    """
    return MissingDependencyError(
        f'{feature} needs {module}; install it with `pip install "colbert-plugins[{extra}]"`'
    )


def require(*modules: str, extra: str, feature: str) -> None:
    """Raise :func:`missing_dependency` naming the first of ``modules`` (top-level import
    names) that is not installed: the guard at the top of a module that needs an extra.

    >>> require("json", extra="server", feature="colbert_plugins.server")
    >>> require("json", "no_such_module", extra="server", feature="colbert_plugins.server")
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.MissingDependencyError: colbert_plugins.server needs no_such_module; \
install it with `pip install "colbert-plugins[server]"`
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module)  # finds it without importing it
        except (ImportError, ValueError):  # a dotted name whose parent is missing
            found = None
        if found is None:
            raise missing_dependency(module, extra=extra, feature=feature)
