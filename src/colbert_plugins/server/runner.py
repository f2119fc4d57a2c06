"""Running the server: ``colbert-plugins serve`` and an in-process server for tests.

:func:`serve` loads the model and runs uvicorn until SIGINT/SIGTERM; shutdown stops
accepting connections, finishes the requests in flight (up to ``graceful_timeout_s``) and
then the requests still queued for the model. :class:`BackgroundServer` runs a real uvicorn
server in a thread on a loopback port, for tests and notebooks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from types import TracebackType

import uvicorn

from ..cache import EmbeddingCache
from ..errors import InvalidArgumentError, InvalidArgumentTypeError
from ..model import ColBERT
from .app import ServerSettings, create_app

__all__ = ["BackgroundServer", "check_port", "serve"]

logger = logging.getLogger(__name__)

#: Seconds shutdown waits for requests in flight before closing their connections.
GRACEFUL_TIMEOUT_S = 30


def serve(
    model: ColBERT | str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    threads: int | None = None,
    cache_path: str | os.PathLike[str] | None = None,
    log_level: str = "info",
    graceful_timeout_s: int = GRACEFUL_TIMEOUT_S,
) -> None:
    """Serve ``model`` until interrupted (blocking).

    Args:
        model: a :class:`~colbert_plugins.ColBERT`, or a model directory or Hugging Face repo
            id to load (with ``threads`` and a document cache, persisted at ``cache_path``).
        host, port: where to listen (loopback by default; ``0.0.0.0`` for every interface).
        settings: API key and limits.
        threads: ONNX Runtime threads when loading (default: ONNX Runtime's, every core).
        cache_path: when loading, a SQLite file persisting document embeddings across
            restarts (warm restarts).
        log_level: uvicorn's log level.
        graceful_timeout_s: on shutdown, how long requests in flight may take to finish.
    """
    check_port(port)  # before a model is loaded
    if not isinstance(model, ColBERT):
        cache = EmbeddingCache(path=cache_path) if cache_path is not None else True
        model = ColBERT.from_pretrained(model, threads=threads, cache=cache)
    model.encode_queries(["warm-up"])  # the first run allocates; do it before serving
    logger.info("serving %s on http://%s:%d", model.name, host, port)
    uvicorn.run(
        create_app(model, settings),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout_s,
    )


def check_port(port: object) -> int:
    """``port`` when it is a TCP port number (0 lets the system choose one), else an error.

    >>> check_port(8000)
    8000
    >>> check_port(99999)
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentError: port must be between 0 and 65535, got 99999
    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidArgumentTypeError(f"port must be an integer, got {port!r}")
    if not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port must be between 0 and 65535, got {port}")
    return port


class BackgroundServer:
    """A real uvicorn server for ``model`` in a daemon thread, on a free loopback port.

    >>> with BackgroundServer(model) as server:  # doctest: +SKIP
    ...     httpx.post(server.url + "/v1/rerank", json={...})
    """

    def __init__(
        self, model: ColBERT, settings: ServerSettings | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.app = create_app(model, settings)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            self.app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful shutdown: requests in flight and queued are answered first."""
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
