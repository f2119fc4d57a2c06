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

from ..checks import require

require("langchain_core", extra="langchain", feature=__name__)

from ..registry import DEFAULT_MODEL  # noqa: E402
from ._common import RELEVANCE_SCORE_KEY  # noqa: E402
from .compressor import ColBERTRerank  # noqa: E402
from .embeddings import ColBERTEmbeddings  # noqa: E402
from .retriever import ColBERTRetriever  # noqa: E402

__all__ = [
    "DEFAULT_MODEL",
    "RELEVANCE_SCORE_KEY",
    "ColBERTEmbeddings",
    "ColBERTRerank",
    "ColBERTRetriever",
]
