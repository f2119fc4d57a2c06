"""Document indexes for ColBERT retrieval: token vectors plus text, id and metadata per document.

- :class:`ColBERTIndex` (:mod:`.base`): the interface every backend implements (``add``,
  ``delete``, ``search``, ``search_batch``, ``get``, ``ids``, ``len``); the LangChain and
  LlamaIndex retrievers and the CLI take any of them. Searches take a metadata ``filter``
  (:func:`check_filter`, the filter language of :mod:`.filters`). A backend implements
  ``_search_vectors`` and ``_upsert``; the base class checks the arguments.
- :class:`InMemoryIndex` (:mod:`.memory`): the embedded default, exact MaxSim in process
  (a batch of queries in one pass over the vectors).
- :class:`CompressedIndex` (:mod:`.compressed`, extra ``index`` to build one): compressed,
  memory-mapped token vectors on disk, candidates from inverted lists, for ~1M passages
  (search stages in :mod:`.compressed_search`, writes in :mod:`.compressed_write`, one writer
  at a time: :class:`IndexLockedError`).
- :class:`~colbert_plugins.index.qdrant.QdrantIndex` (:mod:`.qdrant`, extra ``qdrant``): the
  same interface on Qdrant. Import it from :mod:`colbert_plugins.index.qdrant`; importing this
  package never imports ``qdrant_client``.

>>> index = InMemoryIndex(model)  # doctest: +SKIP
>>> texts = ["Paris is in France.", "Berlin is in Germany."]
>>> index.add(texts, metadatas=[{"c": "fr"}, {"c": "de"}])  # doctest: +SKIP
>>> index.search("capital", k=1, filter={"c": "de"})[0].text  # doctest: +SKIP
'Berlin is in Germany.'
"""

from __future__ import annotations

from .base import (
    ColBERTIndex,
    IndexedDocument,
    IndexFormatError,
    IndexLockedError,
    IndexMismatchError,
    MetadataFilter,
    SearchHit,
    UnknownIdError,
    check_filter,
    filter_predicate,
    matches_filter,
)
from .compressed import CompressedIndex
from .memory import FORMAT_NAME, FORMAT_VERSION, InMemoryIndex, resolve_index

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ColBERTIndex",
    "CompressedIndex",
    "InMemoryIndex",
    "IndexFormatError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexedDocument",
    "MetadataFilter",
    "SearchHit",
    "UnknownIdError",
    "check_filter",
    "filter_predicate",
    "matches_filter",
    "resolve_index",
]
