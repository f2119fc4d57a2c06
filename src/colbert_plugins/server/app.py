"""The ASGI application: routes, authentication, limits, errors (Starlette).

=====================  ==================================================================
``POST /v1/rerank``    Cohere v1 / Jina rerank (``query``, ``documents``, ``top_n``,
                       ``return_documents``)
``POST /v2/rerank``    Cohere v2 rerank (same body and answer)
``POST /rerank``       Hugging Face TEI rerank (``query``, ``texts``, ``raw_scores``,
                       ``return_text``)
``GET /health``        ``{"status": "ok", ...}`` once the model is loaded
``GET /v1/models``     the served model, OpenAI-style list
``GET /metrics``       Prometheus text
=====================  ==================================================================

Scores: ``relevance_score`` (and TEI's ``score`` unless ``raw_scores``) is the normalized
MaxSim, the mean over query vectors of the best cosine similarity with a document token: in
[-1, 1] and comparable across queries. TEI's ``raw_scores: true`` gives the unnormalized sum.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..checks import check_int
from ..errors import InvalidArgumentError
from ..model import ColBERT, rank_order
from .batching import DEFAULT_MAX_BATCH_DOCUMENTS, DEFAULT_MAX_QUEUE, Batcher, QueueFullError
from .metrics import CONTENT_TYPE, Metrics
from .schemas import (
    DEFAULT_MAX_DOCUMENTS,
    DEFAULT_MAX_REQUEST_BYTES,
    Limits,
    RequestError,
    cohere_response,
    error_body,
    parse_json,
    parse_rerank,
    parse_tei,
    tei_response,
)

__all__ = ["ServerSettings", "create_app"]

logger = logging.getLogger(__name__)

#: Seconds a client is told to wait when the queue is full.
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class ServerSettings:
    """What a server accepts and how it batches.

    Args:
        api_key: when set, every endpoint but ``/health`` needs ``Authorization: Bearer KEY``.
        max_documents: documents (or TEI texts) per request; more get 413.
        max_request_bytes: request body size; larger gets 413.
        max_queue: requests waiting for the model; beyond, 503 with ``Retry-After``.
        max_batch_documents: documents gathered into one model call.
        served_model_name: the model name responses, ``/health`` and ``/v1/models`` report
            (vLLM's and TEI's ``--served-model-name``). Default: the Hugging Face repo id of a
            hub model, the directory's own name (never its filesystem path) of a local one.
    """

    api_key: str | None = None
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_queue: int = DEFAULT_MAX_QUEUE
    max_batch_documents: int = DEFAULT_MAX_BATCH_DOCUMENTS
    served_model_name: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_documents", "max_request_bytes", "max_queue", "max_batch_documents"):
            check_int(getattr(self, name), name)
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise InvalidArgumentError("api_key must be a non-empty string or None")
        served = self.served_model_name
        if served is not None and (not isinstance(served, str) or not served.strip()):
            raise InvalidArgumentError("served_model_name must be a non-empty string or None")

    @property
    def limits(self) -> Limits:
        return Limits(self.max_documents, self.max_request_bytes)


def public_model_name(name: str) -> str:
    """The name a server shows for a model loaded from ``name``: a hub repo id as it is, a
    local directory by its own name only, so that no filesystem path leaves the machine.

    >>> public_model_name("answerdotai/answerai-colbert-small-v1")
    'answerdotai/answerai-colbert-small-v1'
    >>> public_model_name("/srv/models/my-colbert/")
    'my-colbert'
    """
    path = Path(name).expanduser()
    looks_like_repo = name.count("/") == 1 and not name.startswith((".", "/", "~"))
    if looks_like_repo and not path.is_dir():
        return name
    return path.name or name


Handler = Callable[[Request], Awaitable[Response]]


def create_app(model: ColBERT, settings: ServerSettings | None = None) -> Starlette:
    """A Starlette app serving ``model`` (shared by every request, with its cache).

    Run it with any ASGI server, e.g. ``uvicorn.run(create_app(model), port=8000)``.
    """
    settings = settings or ServerSettings()
    served_name = settings.served_model_name or public_model_name(model.name)
    metrics = Metrics(cache_stats=lambda: _cache_stats(model))
    batcher = Batcher(
        model,
        max_queue=settings.max_queue,
        max_batch_documents=settings.max_batch_documents,
        metrics=metrics,
    )
    started = time.time()

    def endpoint(path: str, handler: Handler, *, auth: bool = True) -> Handler:
        """Wrap a handler: key check, JSON errors, metrics."""

        async def wrapped(request: Request) -> Response:
            begin = time.perf_counter()
            metrics.add_in_flight(1)
            documents = 0
            try:
                if auth:
                    _check_key(request, settings.api_key)
                response = await handler(request)
                documents = getattr(request.state, "documents", 0)
            except RequestError as exc:
                response = _error(exc.status, exc.message, exc.error_type)
            except QueueFullError as exc:
                response = _error(
                    503, f"the server is busy ({exc}); retry in {RETRY_AFTER_S} s", "overloaded"
                )
                response.headers["Retry-After"] = str(RETRY_AFTER_S)
            except Exception:
                logger.exception("error answering %s", path)
                response = _error(500, "internal error; see the server log", "server")
            finally:
                metrics.add_in_flight(-1)
            metrics.observe_request(
                path, response.status_code, time.perf_counter() - begin, documents=documents
            )
            return response

        return wrapped

    async def rerank_cohere(request: Request, api_version: str) -> Response:
        req = parse_rerank(parse_json(await _body(request, settings.limits)), settings.limits)
        request.state.documents = len(req.documents)
        scores = await batcher.submit(req.query, req.documents)
        order = rank_order(scores.raw, req.top_n)  # ColBERT.rerank's order, ties in input order
        return JSONResponse(
            cohere_response(
                req,
                order,
                scores.normalized.tolist(),
                model=served_name,
                api_version=api_version,
            )
        )

    async def rerank_v1(request: Request) -> Response:
        return await rerank_cohere(request, "1")

    async def rerank_v2(request: Request) -> Response:
        return await rerank_cohere(request, "2")

    async def rerank_tei(request: Request) -> Response:
        req = parse_tei(parse_json(await _body(request, settings.limits)), settings.limits)
        request.state.documents = len(req.texts)
        scores = await batcher.submit(req.query, req.texts)
        values = scores.raw if req.raw_scores else scores.normalized
        order = rank_order(scores.raw)  # ColBERT.rerank's order, ties in input order
        return JSONResponse(tei_response(req, order, values.tolist()))

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "model": served_name,
                "queue_depth": batcher.queue_depth,
                "uptime_s": round(time.time() - started, 1),
            }
        )

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": served_name,
                        "object": "model",
                        "created": int(started),
                        "owned_by": "colbert-plugins",
                        "dim": model.encoder.dim,
                        "colbert_plugins_version": __version__,
                    }
                ],
            }
        )

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()  # answers every accepted request first

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail), "http")

    routes = [
        Route("/v1/rerank", endpoint("/v1/rerank", rerank_v1), methods=["POST"]),
        Route("/v2/rerank", endpoint("/v2/rerank", rerank_v2), methods=["POST"]),
        Route("/rerank", endpoint("/rerank", rerank_tei), methods=["POST"]),
        Route("/health", endpoint("/health", health, auth=False), methods=["GET"]),
        Route("/v1/models", endpoint("/v1/models", models), methods=["GET"]),
        Route("/metrics", endpoint("/metrics", metrics_text), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    return app


async def _body(request: Request, limits: Limits) -> bytes:
    """The request body, refused with 413 as soon as it passes the byte limit."""
    too_large = RequestError(
        413,
        f"the request body is larger than this server's limit of {limits.max_request_bytes} "
        "bytes; send fewer or shorter documents (or start the server with a larger "
        "--max-request-bytes)",
        "payload_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_request_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise RequestError(
            401, "missing API key: send the header 'Authorization: Bearer <key>'", "auth"
        )
    if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise RequestError(401, "wrong API key", "auth")


def _error(status: int, message: str, error_type: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(message, error_type), status_code=status, headers=headers)


def _cache_stats(model: ColBERT) -> tuple[int, int, int, int] | None:
    if model.cache is None:
        return None
    stats = model.cache.stats()
    return stats.hits, stats.misses, stats.entries, stats.bytes
