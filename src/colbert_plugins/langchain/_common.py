"""What the LangChain adapters share: the score key and the documents check."""

from __future__ import annotations

from typing import Any, Literal, overload

from langchain_core.documents import Document

from ..checks import check_items
from ..errors import InvalidArgumentTypeError

#: Metadata key of the score in the documents :meth:`ColBERTRerank.compress_documents` returns
#: (the key LangChain's other rerankers use).
RELEVANCE_SCORE_KEY = "relevance_score"


@overload
def check_documents(documents: Any, *, allow_str: Literal[False]) -> list[Document]: ...
@overload
def check_documents(documents: Any, *, allow_str: Literal[True]) -> list[Document | str]: ...
def check_documents(documents: Any, *, allow_str: bool) -> list[Document] | list[Document | str]:
    """``documents`` as a list, each a ``Document`` (or a ``str`` with ``allow_str``)."""
    items: list[Any] = (
        check_items(documents, "documents", (Document, str), label="Document or a str")
        if allow_str
        else check_items(documents, "documents", Document, label="langchain Document")
    )
    for i, item in enumerate(items):
        if isinstance(item, Document) and not isinstance(item.page_content, str):
            # only possible via model_construct
            raise InvalidArgumentTypeError(
                f"documents[{i}].page_content must be a str, got {type(item.page_content).__name__}"
            )
    return items
