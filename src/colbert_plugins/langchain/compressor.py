"""LangChain ``BaseDocumentCompressor``: exact ColBERT (MaxSim) reranking."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables.config import run_in_executor
from pydantic import Field

from ..checks import check_optional_int, check_query
from ..components import (
    ColBERTComponent,
    OptionalNumber,
    OptionalPositiveInt,
    PositiveInt,
    model_field,
)
from ..model import ColBERT, FloatArray, rank_order
from ..registry import DEFAULT_MODEL
from ._common import RELEVANCE_SCORE_KEY, check_documents


class ColBERTRerank(ColBERTComponent, BaseDocumentCompressor):
    """Rerank documents by exact ColBERT late-interaction (MaxSim) score.

    :meth:`compress_documents` returns new :class:`~langchain_core.documents.Document` objects
    (same ``page_content`` and ``id``, a copy of the metadata with ``"relevance_score"`` set
    to the score as a float), best first with ties in input order, at most ``top_n``, without
    those scoring below ``score_threshold``. The documents given are never modified.

    Every document is scored, whatever its content or metadata: empty or whitespace-only
    ``page_content`` scores like any text; duplicates (same ``id`` or same text) are neither
    merged nor dropped, and identical texts get identical scores (so keep their input order);
    metadata values of any kind (locks, clients, cyclic structures) are passed through by
    reference, never copied, compared or pickled.

    Args:
        model: a Hugging Face repo id or a local model directory, loaded once (lazily on first
            use, thread-safely) with ``ColBERT.from_pretrained(model, **model_kwargs)``; or an
            existing :class:`~colbert_plugins.ColBERT`, used as is (never modified) so that
            one loaded model serves several components.
        top_n: number of documents to return (>= 1), or ``None`` for all of them.
        score_threshold: drop documents scoring below this (``None``: keep all). Raw MaxSim
            scores lie in ``[-n, n]`` for ``n`` query vectors (32 or more); normalized ones
            in ``[-1, 1]``.
        normalize_scores: ``True`` divides MaxSim by the number of query vectors (scores in
            ``[-1, 1]``, comparable across queries), ``False`` never does, ``None`` (the
            default) follows the model's own setting (``config.normalize_scores``).
        batch_size: documents per encoder call.
        **model_kwargs: keyword arguments of ``ColBERT.from_pretrained`` (e.g. ``threads=2``,
            ``document_length=256``); also accepted as a ``model_kwargs`` dict.

    Copies (``model_copy(update=...)``, ``copy.deepcopy``) use their own settings and share
    the loaded model while ``model`` and ``model_kwargs`` stay the same.

    >>> reranker = ColBERTRerank("path/to/model", top_n=2)  # doctest: +SKIP
    >>> reranker.compress_documents(docs, "what is late interaction?")  # doctest: +SKIP
    """

    model: str = model_field()
    top_n: OptionalPositiveInt = Field(
        default=3, description="Number of documents to return (None: all), best first."
    )
    score_threshold: OptionalNumber = Field(
        default=None, description="Drop documents whose relevance score is below this."
    )
    normalize_scores: bool | None = Field(
        default=None,
        strict=True,
        description="Divide MaxSim by the number of query vectors (scores in [-1, 1]); "
        "None: the model's own setting.",
    )
    batch_size: PositiveInt = Field(default=32, description="Documents per batch.")

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        top_n: int | None = 3,
        score_threshold: float | None = None,
        normalize_scores: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            **{
                "model": model,
                "top_n": top_n,
                "score_threshold": score_threshold,
                "normalize_scores": normalize_scores,
                **kwargs,
            }
        )

    # -- scoring ---------------------------------------------------------------------------

    def score(self, query: str, texts: Sequence[str]) -> FloatArray:
        """MaxSim scores of ``texts`` for ``query``, in input order (float32 array)."""
        query = check_query(query)
        return self.colbert.score(
            query, texts, normalize=self.normalize_scores, batch_size=self.batch_size
        )

    def rerank(
        self,
        documents: Sequence[Document | str],
        query: str,
        top_n: int | None = None,
    ) -> list[tuple[int, float]]:
        """``(index, score)`` pairs, best first (ties in input order).

        Unlike :meth:`compress_documents`, ``score_threshold`` is not applied and ``top_n``
        defaults to all documents.

        Args:
            documents: Documents or plain strings.
            query: the query text.
            top_n: keep the best ``top_n`` pairs (``None``: all).
        """
        top_n = check_optional_int(top_n, "top_n")
        query = check_query(query)
        items = check_documents(documents, allow_str=True)
        if not items:
            return []
        texts = [item.page_content if isinstance(item, Document) else item for item in items]
        scores = self.score(query, texts)
        return [(i, float(scores[i])) for i in rank_order(scores, top_n)]

    async def arerank(
        self,
        documents: Sequence[Document | str],
        query: str,
        top_n: int | None = None,
    ) -> list[tuple[int, float]]:
        """:meth:`rerank` in a worker thread, so the event loop is not blocked."""
        return await run_in_executor(None, self.rerank, documents, query, top_n)

    # -- BaseDocumentCompressor ----------------------------------------------------------------

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The best documents for ``query`` as new Documents with ``"relevance_score"``.

        Args:
            documents: the retrieved documents (not modified).
            query: the query text.
            callbacks: accepted for the interface; unused.

        Returns:
            At most ``top_n`` new documents, best first, none below ``score_threshold``.
        """
        query = check_query(query)
        items = check_documents(documents, allow_str=False)
        if not items:
            return []
        docs = [item for item in items if isinstance(item, Document)]
        ranked = self.rerank(docs, query, top_n=self.top_n)
        threshold = self.score_threshold
        return [
            _with_score(docs[i], score)
            for i, score in ranked
            if threshold is None or score >= threshold
        ]

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """:meth:`compress_documents` in a worker thread, so the event loop is not blocked."""
        return await run_in_executor(None, self.compress_documents, documents, query, callbacks)


def _with_score(document: Document, score: float) -> Document:
    """A copy of ``document`` (same class, content and id) with the score in new metadata."""
    # A shallow copy: metadata values may be anything (locks, clients), never deep-copied.
    original = document.metadata
    metadata = dict(original) if isinstance(original, Mapping) else {}
    metadata[RELEVANCE_SCORE_KEY] = score
    return document.model_copy(update={"metadata": metadata})
