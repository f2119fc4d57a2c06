"""The metadata filter language every index backend implements.

A filter maps metadata field names to conditions, all of which must hold: a JSON scalar for
equality, a list, tuple or set of them for membership (:func:`check_filter`).
:func:`matches_filter` and :func:`filter_predicate` evaluate one on a document's metadata
(the in-process indexes); :func:`~colbert_plugins.index.qdrant.qdrant_filter` translates one
for Qdrant. Import these from :mod:`colbert_plugins.index`, which re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["MetadataFilter", "check_filter", "filter_predicate", "matches_filter"]

#: A metadata filter as callers write it: ``{field: value}`` (equality) or
#: ``{field: [value, ...]}`` (membership), all fields ANDed. See :func:`check_filter`.
MetadataFilter = Mapping[str, Any]

_SCALAR_TYPES = (str, int, float, bool, type(None))
_MEMBERSHIP_TYPES = (list, tuple, set, frozenset)
_ACCEPTED = (
    "a JSON scalar (str, int, float, bool or None) for equality, or a list, tuple or set of "
    "them for membership"
)


def check_filter(filter: Any) -> dict[str, Any] | None:
    """Validate a metadata filter; return it normalized (``None`` for no filter).

    A filter is a mapping from metadata field names to conditions, all of which must hold:

    - a scalar (``str``, ``int``, ``float``, ``bool`` or ``None``): the field equals it;
    - a ``list``, ``tuple``, ``set`` or ``frozenset`` of scalars: the field equals one of them
      (an empty collection matches no document).

    The normalized form keeps scalars and turns every collection into a tuple (duplicates
    removed, order kept). Numpy scalars become Python ones. Keys are top-level metadata
    field names, taken literally (``"a.b"`` is the field named ``a.b``, not a nested path).
    An empty mapping is no filter at all. See :func:`matches_filter` for how values compare.

    >>> check_filter({"source": "a.pdf", "year": [2023, 2024]})
    {'source': 'a.pdf', 'year': (2023, 2024)}
    >>> check_filter({}) is None
    True

    Raises:
        InvalidArgumentTypeError: the filter is not a mapping, a key is not a string, or a
            value is not a JSON scalar or a collection of them (nested dicts and lists are
            not conditions).
        InvalidArgumentError: a key is empty, or a value is NaN or infinite.
    """
    if filter is None:
        return None
    if not isinstance(filter, Mapping):
        raise InvalidArgumentTypeError(
            "filter must be a mapping of metadata field -> value (equality) or list of values "
            f"(membership), e.g. {{'source': 'a.pdf'}}; got {type(filter).__name__}"
        )
    checked: dict[str, Any] = {}
    for key, value in filter.items():
        if not isinstance(key, str):
            raise InvalidArgumentTypeError(
                f"filter keys must be metadata field names (str), got {type(key).__name__} {key!r}"
            )
        if not key:
            raise InvalidArgumentError("filter keys must be non-empty metadata field names")
        if isinstance(value, _MEMBERSHIP_TYPES):
            members = [_filter_scalar(key, item, membership=True) for item in value]
            checked[key] = tuple(_dedupe(members))
        else:
            checked[key] = _filter_scalar(key, value, membership=False)
    return checked or None


def matches_filter(metadata: Mapping[str, Any], filter: MetadataFilter | None) -> bool:
    """Whether a document's metadata satisfies a filter (validated by :func:`check_filter`).

    Values compare as JSON values: strings with strings, numbers by value (``1`` matches
    ``1.0``), booleans only with booleans (``True`` does not match ``1``), ``None`` with
    ``None`` (a field present and null). A field whose value is a list matches when any of
    its elements does (so ``{"tag": "a"}`` matches ``{"tag": ["a", "b"]}``), as in Qdrant. A
    document without the field never matches.

    >>> matches_filter({"year": 2024, "tags": ["a", "b"]}, {"year": (2023, 2024), "tags": "b"})
    True
    >>> matches_filter({"flag": 1}, {"flag": True})
    False
    >>> matches_filter({}, {"source": None})
    False
    """
    return filter_predicate(filter)(metadata)


def filter_predicate(filter: MetadataFilter | None) -> Callable[[Mapping[str, Any]], bool]:
    """:func:`matches_filter` with the filter validated and compiled once: a function of the
    metadata. Membership tests are set lookups, so a filter listing thousands of values stays
    cheap per document. ``None`` (or ``{}``) matches everything.
    """
    checked = check_filter(filter)
    if not checked:
        return _always
    conditions = [
        (key, frozenset(_typed_key(w) for w in (v if isinstance(v, tuple) else (v,))))
        for key, v in checked.items()
    ]

    def predicate(metadata: Mapping[str, Any]) -> bool:
        for key, wanted in conditions:
            if key not in metadata:
                return False
            value = metadata[key]
            values = value if isinstance(value, list | tuple) else (value,)
            if not any(_typed_key(v) in wanted for v in values):
                return False
        return True

    return predicate


def _always(metadata: Mapping[str, Any]) -> bool:
    return True


def _filter_scalar(key: str, value: Any, *, membership: bool) -> Any:
    if isinstance(value, np.generic) and not isinstance(value, np.str_ | np.bytes_):
        value = value.item()
    if isinstance(value, _SCALAR_TYPES):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgumentError(
                f"filter[{key!r}] holds {value!r}: NaN and infinity are not JSON values and "
                "match nothing"
            )
        return str(value) if isinstance(value, str) else value
    where = f"filter[{key!r}]" + (" contains" if membership else " is")
    nested = " (nested collections are not conditions)" if membership else ""
    raise InvalidArgumentTypeError(
        f"{where} a {type(value).__name__} ({value!r:.60}){nested}; a filter value must be "
        + _ACCEPTED
    )


def _dedupe(values: list[Any]) -> list[Any]:
    seen: set[tuple[Any, ...] | None] = set()
    kept = []
    for value in values:
        key = _typed_key(value)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def _typed_key(value: Any) -> tuple[Any, ...] | None:
    """A hashable key under which two values are equal exactly when they are equal JSON
    values: bools only equal bools, numbers compare by value (``1 == 1.0``), strings with
    strings, ``None`` with ``None``. Anything else (dicts, nested lists) gets ``None``, which
    no filter value has."""
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if value is None:
        return ("null",)
    if isinstance(value, int | float | np.integer | np.floating):
        number = value.item() if isinstance(value, np.generic) else value
        return ("number", number)
    if isinstance(value, str):
        return ("str", str(value))
    return None
