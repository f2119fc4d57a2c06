"""LlamaIndex integration: a ColBERT (MaxSim) node postprocessor for any query engine, and
a ColBERT embedding (:class:`ColBERTEmbedding`) and retriever (:class:`ColBERTRetriever`).

>>> from colbert_plugins.llama_index import ColBERTRerank  # doctest: +SKIP
>>> reranker = ColBERTRerank(model="answerdotai/answerai-colbert-small-v1", top_n=3)
>>> engine = index.as_query_engine(  # doctest: +SKIP
...     similarity_top_k=20, node_postprocessors=[reranker]
... )
>>> response = engine.query("how do wings behave in a slipstream?")  # doctest: +SKIP

Needs the ``llama-index`` extra (``llama-index-core``); importing this module without it
raises :class:`~colbert_plugins.errors.MissingDependencyError`.
"""

from __future__ import annotations

from ..checks import require

require("llama_index.core", extra="llama-index", feature=__name__)

from ..registry import DEFAULT_MODEL  # noqa: E402
from .embedding import ColBERTEmbedding  # noqa: E402
from .postprocessor import RETRIEVAL_SCORE_KEY, ColBERTRerank  # noqa: E402
from .retriever import NODE_CONTENT_KEY, NODE_TYPE_KEY, ColBERTRetriever, metadata_filter  # noqa: E402

__all__ = [
    "DEFAULT_MODEL",
    "NODE_CONTENT_KEY",
    "NODE_TYPE_KEY",
    "RETRIEVAL_SCORE_KEY",
    "ColBERTEmbedding",
    "ColBERTRerank",
    "ColBERTRetriever",
    "metadata_filter",
]
