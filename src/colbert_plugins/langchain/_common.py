"""What the LangChain adapters share: the score key and argument checks."""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import numpy as np
from langchain_core.documents import Document

from ..errors import InvalidArgumentError, InvalidArgumentTypeError

#: Metadata key of the score in the documents :meth:`ColBERTRerank.compress_documents` returns
#: (the key LangChain's other rerankers use).
RELEVANCE_SCORE_KEY = "relevance_score"


def check_text(query: Any, name: str = "query") -> str:
    if not isinstance(query, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, got {type(query).__name__}")
    return query


@overload
def check_documents(documents: Any, *, allow_str: Literal[False]) -> list[Document]: ...
@overload
def check_documents(documents: Any, *, allow_str: Literal[True]) -> list[Document | str]: ...
def check_documents(documents: Any, *, allow_str: bool) -> list[Document] | list[Document | str]:
    """``documents`` as a list, each a ``Document`` (or a ``str`` with ``allow_str``)."""
    if isinstance(documents, str | bytes | Document):
        raise InvalidArgumentTypeError(
            "documents must be a list of Document objects, not a single "
            f"{type(documents).__name__}; wrap it in a list"
        )
    try:
        items = list(documents)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"documents must be a list of Document objects, got {type(documents).__name__}"
        ) from None
    for i, item in enumerate(items):
        if isinstance(item, Document):
            if not isinstance(item.page_content, str):  # only possible via model_construct
                raise InvalidArgumentTypeError(
                    f"documents[{i}].page_content must be a str, got "
                    f"{type(item.page_content).__name__}"
                )
        elif not (allow_str and isinstance(item, str)):
            expected = "a Document or a str" if allow_str else "a langchain Document"
            raise InvalidArgumentTypeError(
                f"documents[{i}] must be {expected}, got {type(item).__name__}"
            )
    return items


def check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgumentTypeError(
            f"score_threshold must be a number or None, got {type(value).__name__}"
        )
    if math.isnan(float(value)):
        raise InvalidArgumentError("score_threshold must not be NaN")
    return float(value)


# -- reranker ----------------------------------------------------------------------------------
