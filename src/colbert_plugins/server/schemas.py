"""The rerank APIs' request bodies (pydantic models) and JSON responses.

Each request body is a pydantic model in strict mode (a JSON ``"2"`` is not an integer, ``1``
is not ``true``); :func:`parse_rerank` and :func:`parse_tei` validate decoded JSON and turn the
first validation error into a :class:`RequestError` carrying the HTTP status and one line that
says what was wrong (``documents[1] must be a string or an object with a text string, got
integer``). Unknown fields are ignored, so that clients written for Cohere, Jina or TEI (which
send ``model``, ``max_tokens_per_doc``, ``truncate``, ...) work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

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


def _text_of(value: Any) -> Any:
    """A document object's ``text`` (then checked as a string, like a plain document)."""
    return value["text"] if isinstance(value, dict) and "text" in value else value


def _default_false(value: Any) -> Any:
    return False if value is None else value


#: A document: a string, or an object with a ``text`` string (other keys ignored).
Document = Annotated[StrictStr, BeforeValidator(_text_of)]
#: A flag: ``true``, ``false``, or ``null`` for the default (false).
Flag = Annotated[bool, BeforeValidator(_default_false)]

#: What each field (``name[]``: each item of a list field) must be, for the error message.
_EXPECTED = {
    "query": "a string",
    "documents": "a list of strings or of objects with a text field",
    "documents[]": "a string or an object with a text string",
    "texts": "a list of strings",
    "texts[]": "a string",
    "top_n": "a positive integer or null",
    "model": "a string",
}


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    @field_validator("query", check_fields=False)
    @classmethod
    def _query_has_text(cls, query: str) -> str:
        if not query.strip():
            raise PydanticCustomError("empty", "must not be empty")
        return query

    @field_validator("documents", "texts", mode="before", check_fields=False)
    @classmethod
    def _within_limits(cls, items: Any, info: ValidationInfo) -> Any:
        limits = info.context.get("limits") if isinstance(info.context, dict) else None
        if isinstance(items, list) and limits is not None and len(items) > limits.max_documents:
            raise RequestError(
                413,
                f"{info.field_name} holds {len(items)} items, more than this server's limit of "
                f"{limits.max_documents}; split the request (or start the server with a larger "
                "--max-documents)",
                "payload_too_large",
            )
        return items


Body = TypeVar("Body", bound=_Body)


class RerankRequest(_Body):
    """A Cohere/Jina ``/v1/rerank`` or ``/v2/rerank`` request. ``top_n`` larger than the
    number of documents means all of them."""

    query: StrictStr
    documents: list[Document]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: Flag = False
    model: StrictStr | None = None


class TeiRequest(_Body):
    """A Hugging Face Text Embeddings Inference ``/rerank`` request."""

    query: StrictStr
    texts: list[StrictStr]
    raw_scores: Flag = False
    return_text: Flag = False


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

    >>> parse_rerank({"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1}, Limits())
    RerankRequest(query='q', documents=['a', 'b'], top_n=1, return_documents=False, model=None)
    >>> parse_rerank({"query": "q", "documents": ["a", {"txt": "b"}]}, Limits())
    Traceback (most recent call last):
    ...
    colbert_plugins.server.schemas.RequestError: documents[1] must be a string or an object \
with a text string, got object
    """
    return _validate(RerankRequest, data, limits)


def parse_tei(data: dict[str, Any], limits: Limits) -> TeiRequest:
    """Validate a TEI ``/rerank`` request.

    >>> parse_tei({"query": "q", "texts": ["a"], "raw_scores": True}, Limits()).raw_scores
    True
    >>> parse_tei({"query": "q", "texts": ["a"], "raw_scores": 1}, Limits())
    Traceback (most recent call last):
    ...
    colbert_plugins.server.schemas.RequestError: raw_scores must be true or false, got integer
    """
    return _validate(TeiRequest, data, limits)


def _validate(model: type[Body], data: dict[str, Any], limits: Limits) -> Body:
    try:
        return model.model_validate(data, context={"limits": limits})
    except ValidationError as exc:
        raise _request_error(exc, data) from None


def _request_error(exc: ValidationError, data: dict[str, Any]) -> RequestError:
    """The first validation error as a 422 with one line: the field (``documents[1]``), what
    it must be, and the JSON type it has."""
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    field = str(loc[0])
    name, key, value = field, field, data.get(field)
    if len(loc) > 1 and isinstance(loc[1], int) and isinstance(value, list):
        name, key, value = f"{field}[{loc[1]}]", f"{field}[]", value[loc[1]]
    if error["type"] == "empty":
        return RequestError(422, f"{name} {error['msg']}")
    if error["type"] == "greater_than_equal":
        return RequestError(422, f"{name} must be >= {error['ctx']['ge']}, got {value!r}")
    expected = _EXPECTED.get(key, "true or false")
    return RequestError(422, f"{name} must be {expected}, got {_json_type(value)}")


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
