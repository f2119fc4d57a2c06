"""A ColBERT index on Qdrant: Qdrant Edge in process, or a Qdrant server; exact MaxSim over
HNSW candidates, BM25, and hybrid retrieval in one collection.

- :class:`QdrantIndex` (:mod:`.index`): the :class:`~colbert_plugins.index.ColBERTIndex` on
  Qdrant. ``QdrantIndex(model)`` runs Qdrant Edge (``qdrant-edge-py``: the Qdrant engine as a
  library) on a temporary directory, ``path=DIR`` keeps the collection in ``DIR``, ``url=`` /
  ``client=`` use a Qdrant server;
- :mod:`.layout`: the points every engine holds (named vectors ``colbert``, ``fixed``,
  ``bm25``; payload ``id``, ``text``, ``metadata``), :func:`point_id`;
- :mod:`.edge` and :mod:`.client`: the two engines, behind :class:`~.store.QdrantStore`;
  :func:`qdrant_filter` gives a metadata filter as qdrant-client's ``Filter``.

>>> index = QdrantIndex(model, path="./colbert-qdrant")  # doctest: +SKIP
>>> index.add(texts, ids=ids, metadatas=metadatas)  # doctest: +SKIP
>>> index.search("how do wings behave in a slipstream?", k=10)  # doctest: +SKIP
>>> index.search("wings in a slipstream", retrieval_mode="hybrid")  # doctest: +SKIP

Needs the ``qdrant`` extra (``qdrant-edge-py`` and ``qdrant-client``); importing this package
without ``qdrant-edge-py`` raises :class:`~colbert_plugins.errors.MissingDependencyError`
(``qdrant-client`` is imported when a server is used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...checks import require
from ..filters import MetadataFilter

require("qdrant_edge", extra="qdrant", feature=__name__)

from .index import (  # noqa: E402
    DEFAULT_HYBRID_LIMIT,
    DEFAULT_PREFETCH_LIMIT,
    RETRIEVAL_MODES,
    QdrantIndex,
    RetrievalMode,
)
from .layout import (  # noqa: E402
    BM25_VECTOR,
    COLBERT_VECTOR,
    FIXED_VECTOR,
    POINT_ID_NAMESPACE,
    point_id,
)
from .store import QdrantEngineError  # noqa: E402

if TYPE_CHECKING:
    from qdrant_client import models

__all__ = [
    "BM25_VECTOR",
    "COLBERT_VECTOR",
    "DEFAULT_HYBRID_LIMIT",
    "DEFAULT_PREFETCH_LIMIT",
    "FIXED_VECTOR",
    "POINT_ID_NAMESPACE",
    "RETRIEVAL_MODES",
    "QdrantEngineError",
    "QdrantIndex",
    "RetrievalMode",
    "point_id",
    "qdrant_filter",
]


def qdrant_filter(filter: MetadataFilter) -> models.Filter:
    """A metadata filter as qdrant-client's ``Filter`` (:func:`.client.qdrant_filter`)."""
    from .client import qdrant_filter as build

    return build(filter)
