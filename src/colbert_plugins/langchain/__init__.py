"""LangChain integration: a ColBERT (MaxSim) reranker and ColBERT embeddings.

- :class:`ColBERTRerank`, a ``BaseDocumentCompressor``: exact late-interaction reranking for
  ``ContextualCompressionRetriever``, ``DocumentCompressorPipeline`` or any LCEL chain.
- :class:`ColBERTEmbeddings`, an ``Embeddings``: one fixed-length vector per text (mean
  pooling or MUVERA encodings) for any vector store, plus the per-token vectors.

>>> from colbert_plugins.langchain import ColBERTRerank  # doctest: +SKIP
>>> from langchain_classic.retrievers import ContextualCompressionRetriever  # doctest: +SKIP
>>> retriever = ContextualCompressionRetriever(  # doctest: +SKIP
...     base_compressor=ColBERTRerank(top_n=5), base_retriever=store.as_retriever(k=50)
... )
>>> retriever.invoke("how do wings behave in a slipstream?")  # doctest: +SKIP

Needs the ``langchain`` extra (``langchain-core``); importing this module without it raises
:class:`~colbert_plugins.errors.MissingDependencyError`.
"""

from __future__ import annotations

from ..checks import missing_dependency

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langchain_core
    raise missing_dependency(
        "langchain-core", extra="langchain", feature="colbert_plugins.langchain"
    ) from exc

from ..registry import DEFAULT_MODEL
from ._common import RELEVANCE_SCORE_KEY
from .compressor import ColBERTRerank
from .embeddings import ColBERTEmbeddings
from .retriever import ColBERTRetriever

__all__ = [
    "DEFAULT_MODEL",
    "RELEVANCE_SCORE_KEY",
    "ColBERTEmbeddings",
    "ColBERTRerank",
    "ColBERTRetriever",
]
