"""A rerank server speaking the Cohere/Jina ``/v1/rerank`` and TEI ``/rerank`` APIs.

Start it with ``colbert-plugins serve --model M`` or, from Python::

    from colbert_plugins.server import serve
    serve("answerdotai/answerai-colbert-small-v1", port=8000)

Needs the ``server`` extra (Starlette and uvicorn); importing this package without it raises
:class:`~colbert_plugins.errors.MissingDependencyError`. See :mod:`.app` for the endpoints
and :mod:`.batching` for how concurrent requests share model calls.
"""

from __future__ import annotations

from ..errors import MissingDependencyError

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides them
    raise MissingDependencyError(
        "colbert_plugins.server needs Starlette and uvicorn; install them with "
        '`pip install "colbert-plugins[server]"`'
    ) from exc

from .app import ServerSettings, create_app
from .batching import Batcher, QueueFullError, Scores
from .runner import BackgroundServer, serve

__all__ = [
    "BackgroundServer",
    "Batcher",
    "QueueFullError",
    "Scores",
    "ServerSettings",
    "create_app",
    "serve",
]
