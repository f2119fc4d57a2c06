"""Request parsing and validation for the rerank APIs, and the JSON responses.

Framework-free: every function takes decoded JSON (plain Python objects) and returns frozen
dataclasses, or raises :class:`RequestError` carrying the HTTP status and a message that says
what was wrong and how to fix it. Unknown fields are ignored, so that clients written for
Cohere, Jina or TEI (which send ``model``, ``max_tokens_per_doc``, ``truncate``, ...) work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Limits",
    "RequestError",
    "RerankRequest",
    "TeiRequest",
    "cohere_response",
    "error_body",
    "parse_json",
    "parse_rerank",
    "parse_tei",
    "tei_response",
]

#: Cohere's own recommendation: no more than 1,000 documents per request.
DEFAULT_MAX_DOCUMENTS = 1000
#: 1,000 documents of ~4 KB each.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, error_type: str = "validation") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class Limits:
    """Per-request limits (larger requests get 413)."""

    max_documents: int = DEFAULT_MAX_DOCUMENTS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


@dataclass(frozen=True)
class RerankRequest:
    """A Cohere/Jina ``/v1/rerank`` or ``/v2/rerank`` request."""

    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    model: str | None = None


@dataclass(frozen=True)
class TeiRequest:
    """A Hugging Face Text Embeddings Inference ``/rerank`` request."""

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False


def error_body(message: str, error_type: str = "validation") -> dict[str, str]:
    """The JSON error body: ``message`` (Cohere's key) and ``error``/``error_type`` (TEI's).

    >>> error_body("top_n must be >= 1")["error"]
    'top_n must be >= 1'
    """
    return {"message": message, "error": message, "error_type": error_type}


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object (422 otherwise).

    >>> parse_json(b'{"query": "q"}')
    {'query': 'q'}
    >>> parse_json(b'[1]')
    Traceback (most recent call last):
    ...
    colbert_plugins.server.schemas.RequestError: the request body must be a JSON object, got array
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(
            422, f"the request body is not valid JSON ({exc}); send a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise RequestError(422, f"the request body must be a JSON object, got {_json_type(data)}")
    return data


def parse_rerank(data: dict[str, Any], limits: Limits) -> RerankRequest:
    """Validate a Cohere/Jina rerank request.

    ``documents`` are strings or objects with a ``text`` string; ``top_n`` is null or a
    positive integer (larger than the number of documents means all of them).

    >>> parse_rerank({"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1}, Limits())
    RerankRequest(query='q', documents=['a', 'b'], top_n=1, return_documents=False, model=None)
    """
    query = _query(data)
    raw = data.get("documents")
    if not isinstance(raw, list):
        raise RequestError(
            422,
            f"documents must be a list of strings or of objects with a text field, got "
            f"{_json_type(raw)}",
        )
    _check_count(len(raw), "documents", limits)
    documents = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            documents.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            documents.append(item["text"])
        else:
            raise RequestError(
                422,
                f"documents[{i}] must be a string or an object with a text string, got "
                f"{_json_type(item)}",
            )
    return RerankRequest(
        query=query,
        documents=documents,
        top_n=_top_n(data.get("top_n")),
        return_documents=_flag(data, "return_documents", False),
        model=_optional_str(data, "model"),
    )


def parse_tei(data: dict[str, Any], limits: Limits) -> TeiRequest:
    """Validate a TEI ``/rerank`` request.

    >>> parse_tei({"query": "q", "texts": ["a"], "raw_scores": True}, Limits()).raw_scores
    True
    """
    query = _query(data)
    texts = data.get("texts")
    if not isinstance(texts, list):
        raise RequestError(422, f"texts must be a list of strings, got {_json_type(texts)}")
    _check_count(len(texts), "texts", limits)
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            raise RequestError(422, f"texts[{i}] must be a string, got {_json_type(item)}")
    return TeiRequest(
        query=query,
        texts=list(texts),
        raw_scores=_flag(data, "raw_scores", False),
        return_text=_flag(data, "return_text", False),
    )


def cohere_response(
    request: RerankRequest,
    order: Sequence[int],
    scores: Sequence[float],
    *,
    model: str,
    api_version: str,
) -> dict[str, Any]:
    """The Cohere/Jina response: results best first, ``relevance_score`` per document."""
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if request.return_documents:
            result["document"] = {"text": request.documents[i]}
        results.append(result)
    return {
        "id": str(uuid.uuid4()),
        "results": results,
        "model": model,
        "meta": {"api_version": {"version": api_version}, "billed_units": {"search_units": 1}},
    }


def tei_response(
    request: TeiRequest, order: Sequence[int], scores: Sequence[float]
) -> list[dict[str, Any]]:
    """The TEI response: ``[{"index", "score", "text"?}]`` best first."""
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "score": scores[i]}
        if request.return_text:
            result["text"] = request.texts[i]
        results.append(result)
    return results


# -- helpers --------------------------------------------------------------------------------


def _query(data: dict[str, Any]) -> str:
    query = data.get("query")
    if not isinstance(query, str):
        raise RequestError(422, f"query must be a string, got {_json_type(query)}")
    if not query.strip():
        raise RequestError(422, "query must not be empty")
    return query


def _check_count(n: int, field: str, limits: Limits) -> None:
    if n > limits.max_documents:
        raise RequestError(
            413,
            f"{field} holds {n} items, more than this server's limit of "
            f"{limits.max_documents}; split the request (or start the server with a larger "
            "--max-documents)",
            "payload_too_large",
        )


def _top_n(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(422, f"top_n must be a positive integer or null, got {value!r}")
    if value < 1:
        raise RequestError(422, f"top_n must be >= 1, got {value}")
    return value


def _flag(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(422, f"{name} must be true or false, got {_json_type(value)}")
    return value


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise RequestError(422, f"{name} must be a string, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type.

    >>> [_json_type(v) for v in (None, True, 1, 1.5, "s", [], {})]
    ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
