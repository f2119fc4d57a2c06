"""A rerank server speaking the Cohere/Jina ``/v1/rerank`` and TEI ``/rerank`` APIs.

Start it with ``colbert-plugins serve --model M`` or, from Python::

    from colbert_plugins.server import serve
    serve("answerdotai/answerai-colbert-small-v1", port=8000)

Needs the ``server`` extra (Starlette, uvicorn, pydantic, prometheus_client); importing this
package without it raises :class:`~colbert_plugins.errors.MissingDependencyError`. See
:mod:`.app` for the endpoints and :mod:`.batching` for how concurrent requests share model
calls.
"""

from __future__ import annotations

from ..checks import require

require("starlette", "uvicorn", "pydantic", "prometheus_client", extra="server", feature=__name__)

from .app import ServerSettings, create_app  # noqa: E402
from .batching import Batcher, QueueFullError, Scores  # noqa: E402
from .runner import BackgroundServer, serve  # noqa: E402

__all__ = [
    "BackgroundServer",
    "Batcher",
    "QueueFullError",
    "Scores",
    "ServerSettings",
    "create_app",
    "serve",
]
