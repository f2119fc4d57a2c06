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

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .checks import check_query
from .errors import InvalidArgumentError, InvalidArgumentTypeError, MissingDependencyError
from .lazy import ModelSlot, split_model
from .model import ColBERT, FloatArray, check_top_n, rank_order
from .pooled import PooledEmbedder
from .pooling import DEFAULT_D_PROJ, DEFAULT_K_SIM, DEFAULT_R_REPS, DEFAULT_SEED, Muvera
from .registry import DEFAULT_MODEL

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.runnables.config import run_in_executor
    from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
except ImportError as exc:  # pragma: no cover - exercised by a test that hides langchain_core
    raise MissingDependencyError(
        "colbert_plugins.langchain needs langchain-core; install it with "
        '`pip install "colbert-plugins[langchain]"`'
    ) from exc

__all__ = [
    "DEFAULT_MODEL",
    "RELEVANCE_SCORE_KEY",
    "ColBERTEmbeddings",
    "ColBERTRerank",
    "ColBERTRetriever",
]


#: Metadata key of the score in the documents :meth:`ColBERTRerank.compress_documents` returns
#: (the key LangChain's other rerankers use).
RELEVANCE_SCORE_KEY = "relevance_score"


def _check_query(query: Any, name: str = "query") -> str:
    if not isinstance(query, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, got {type(query).__name__}")
    return query


def _check_documents(documents: Any, *, allow_str: bool) -> list[Document | str]:
    if isinstance(documents, str | bytes | Document):
        raise InvalidArgumentTypeError(
            "documents must be a list of Document objects, not a single "
            f"{type(documents).__name__}; wrap it in a list"
        )
    try:
        items = list(documents)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"documents must be a list of Document objects, got {type(documents).__name__}"
        ) from None
    for i, item in enumerate(items):
        if isinstance(item, Document):
            if not isinstance(item.page_content, str):  # only possible via model_construct
                raise InvalidArgumentTypeError(
                    f"documents[{i}].page_content must be a str, got "
                    f"{type(item.page_content).__name__}"
                )
        elif not (allow_str and isinstance(item, str)):
            expected = "a Document or a str" if allow_str else "a langchain Document"
            raise InvalidArgumentTypeError(
                f"documents[{i}] must be {expected}, got {type(item).__name__}"
            )
    return items


def _check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgumentTypeError(
            f"score_threshold must be a number or None, got {type(value).__name__}"
        )
    if math.isnan(float(value)):
        raise InvalidArgumentError("score_threshold must not be NaN")
    return float(value)


# -- reranker ----------------------------------------------------------------------------------


class ColBERTRerank(BaseDocumentCompressor):
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
            use, thread-safely) with ``ColBERT.from_pretrained(model, normalize_scores=...,
            **model_kwargs)``; or an existing :class:`~colbert_plugins.ColBERT`, used as is
            (never modified) so that one loaded model serves several components.
        top_n: number of documents to return (>= 1), or ``None`` for all of them.
        score_threshold: drop documents scoring below this (``None``: keep all). Raw MaxSim
            scores lie in ``[-n, n]`` for ``n`` query vectors (32 or more); with
            ``normalize_scores`` they lie in ``[-1, 1]``.
        normalize_scores: divide MaxSim by the number of query vectors, giving scores in
            ``[-1, 1]`` comparable across queries. ``False`` keeps the model's own setting.
        batch_size: documents per encoder call.
        **model_kwargs: keyword arguments of ``ColBERT.from_pretrained`` (e.g. ``threads=2``,
            ``document_length=256``); also accepted as a ``model_kwargs`` dict.

    >>> reranker = ColBERTRerank("path/to/model", top_n=2)  # doctest: +SKIP
    >>> reranker.compress_documents(docs, "what is late interaction?")  # doctest: +SKIP
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        protected_namespaces=(),
        validate_assignment=True,
    )

    model: str = Field(
        default=DEFAULT_MODEL,
        description="ColBERT model: a Hugging Face repo id or a local directory "
        "(for a ColBERT instance given directly, its name).",
        frozen=True,
    )
    top_n: int | None = Field(
        default=3, description="Number of documents to return (None: all), best first."
    )
    score_threshold: float | None = Field(
        default=None, description="Drop documents whose relevance score is below this."
    )
    normalize_scores: bool = Field(
        default=False,
        description="Divide MaxSim by the number of query vectors (scores in [-1, 1]).",
        frozen=True,
    )
    batch_size: int = Field(default=32, ge=1, strict=True, description="Documents per batch.")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for ColBERT.from_pretrained (threads, "
        "document_length, ...).",
        frozen=True,
    )

    _slot: ModelSlot = PrivateAttr(default_factory=ModelSlot)

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        top_n: int | None = 3,
        score_threshold: float | None = None,
        normalize_scores: bool = False,
        *,
        batch_size: int = 32,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name, instance, load_kwargs = split_model(
            model, {**(model_kwargs or {}), **kwargs}, "ColBERTRerank"
        )
        if not isinstance(normalize_scores, bool):
            raise InvalidArgumentTypeError(
                f"normalize_scores must be True or False, got {normalize_scores!r}"
            )
        if "normalize_scores" in load_kwargs:
            raise InvalidArgumentTypeError("give normalize_scores directly, not in model_kwargs")
        fields: dict[str, Any] = {
            "model": name,
            "top_n": check_top_n(top_n),
            "score_threshold": _check_threshold(score_threshold),
            "normalize_scores": normalize_scores,
            "batch_size": batch_size,
            "model_kwargs": load_kwargs,
        }
        super().__init__(**fields)
        self._slot = ModelSlot(instance)

    @field_validator("top_n", mode="before")
    @classmethod
    def _validate_top_n(cls, value: Any) -> int | None:
        return check_top_n(value)

    @field_validator("score_threshold", mode="before")
    @classmethod
    def _validate_threshold(cls, value: Any) -> float | None:
        return _check_threshold(value)

    # -- model -------------------------------------------------------------------------------

    @property
    def colbert(self) -> ColBERT:
        """The ColBERT model, loaded on first access (once, even with concurrent callers)."""
        return self._slot.get(
            self.model, {"normalize_scores": self.normalize_scores, **self.model_kwargs}
        )

    def score(self, query: str, texts: Sequence[str]) -> FloatArray:
        """MaxSim scores of ``texts`` for ``query``, in input order (float32 array)."""
        query = check_query(query)
        normalize = True if self.normalize_scores else None
        return self.colbert.score(query, texts, normalize=normalize, batch_size=self.batch_size)

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
        top_n = check_top_n(top_n)
        query = check_query(query)
        items = _check_documents(documents, allow_str=True)
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
        items = _check_documents(documents, allow_str=False)
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


# -- embeddings --------------------------------------------------------------------------------


class ColBERTEmbeddings(BaseModel, Embeddings):
    """ColBERT embeddings: one fixed-length vector per text, or the per-token vectors.

    ``embed_documents`` and ``embed_query`` pool the token vectors into one vector of
    :attr:`dimension` Python floats, so that any LangChain vector store can serve as a fast
    first stage before an exact :class:`ColBERTRerank`:

    - ``pooling="mean"``: the L2-normalized mean of the token vectors (``dim`` floats); works
      with cosine and inner-product stores alike.
    - ``pooling="muvera"``: MUVERA fixed-dimensional encodings (see
      :class:`colbert_plugins.pooling.Muvera`): query and document encodings differ, and
      their dot product approximates the MaxSim score. Prefer an inner-product store;
      cosine-similarity stores (e.g. ``InMemoryVectorStore``) divide by the document
      encoding's norm, a further approximation.

    Args:
        model: a Hugging Face repo id or a local model directory, loaded once (lazily on first
            use, thread-safely) with ``ColBERT.from_pretrained(model, **model_kwargs)``; or an
            existing :class:`~colbert_plugins.ColBERT`, used as is (never modified).
        pooling: ``"mean"`` or ``"muvera"``.
        k_sim: MUVERA SimHash hyperplanes per repetition (``2**k_sim`` buckets).
        d_proj: MUVERA per-bucket projection size (``None``: no projection).
        r_reps: MUVERA repetitions.
        seed: MUVERA random seed; the same seed (and parameters) gives the same encodings.
        batch_size: texts per encoder call.
        **model_kwargs: keyword arguments of ``ColBERT.from_pretrained`` (e.g. ``threads=2``).

    >>> embeddings = ColBERTEmbeddings("path/to/model", pooling="muvera")  # doctest: +SKIP
    >>> len(embeddings.embed_query("hello")) == embeddings.dimension  # doctest: +SKIP
    True
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        protected_namespaces=(),
        frozen=True,
    )

    model: str = Field(
        default=DEFAULT_MODEL,
        description="ColBERT model: a Hugging Face repo id or a local directory "
        "(for a ColBERT instance given directly, its name).",
    )
    pooling: Literal["mean", "muvera"] = Field(
        default="mean",
        description='How token vectors become one vector: "mean" (L2-normalized mean) or '
        '"muvera" (fixed-dimensional encodings approximating MaxSim).',
    )
    k_sim: int = Field(
        default=DEFAULT_K_SIM, description="MUVERA: SimHash hyperplanes (2**k_sim buckets)."
    )
    d_proj: int | None = Field(
        default=DEFAULT_D_PROJ, description="MUVERA: per-bucket projection size (None: none)."
    )
    r_reps: int = Field(default=DEFAULT_R_REPS, description="MUVERA: repetitions.")
    seed: int = Field(default=DEFAULT_SEED, description="MUVERA: random seed.")
    batch_size: int = Field(default=32, ge=1, strict=True, description="Texts per batch.")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for ColBERT.from_pretrained (threads, "
        "document_length, ...).",
    )

    _slot: ModelSlot = PrivateAttr(default_factory=ModelSlot)
    _pooler: PooledEmbedder = PrivateAttr(default_factory=PooledEmbedder)

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        pooling: Literal["mean", "muvera"] = "mean",
        *,
        k_sim: int = DEFAULT_K_SIM,
        d_proj: int | None = DEFAULT_D_PROJ,
        r_reps: int = DEFAULT_R_REPS,
        seed: int = DEFAULT_SEED,
        batch_size: int = 32,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name, instance, load_kwargs = split_model(
            model, {**(model_kwargs or {}), **kwargs}, "ColBERTEmbeddings"
        )
        pooler = PooledEmbedder(pooling, k_sim=k_sim, d_proj=d_proj, r_reps=r_reps, seed=seed)
        super().__init__(
            model=name,
            pooling=pooling,
            k_sim=k_sim,
            d_proj=d_proj,
            r_reps=r_reps,
            seed=seed,
            batch_size=batch_size,
            model_kwargs=load_kwargs,
        )
        self._slot = ModelSlot(instance)
        self._pooler = pooler

    @property
    def colbert(self) -> ColBERT:
        """The ColBERT model, loaded on first access (once, even with concurrent callers)."""
        return self._slot.get(self.model, self.model_kwargs)

    @property
    def muvera(self) -> Muvera:
        """The MUVERA encoder for this model's token size and the MUVERA parameters."""
        return self._pooler.muvera(self.colbert)

    @property
    def dimension(self) -> int:
        """Length of the vectors of :meth:`embed_documents` and :meth:`embed_query`."""
        return self._pooler.dimension(self.colbert)

    # -- pooled vectors ----------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One pooled vector (``dimension`` floats) per text, in input order."""
        return self._pooler.documents(self.colbert, texts, self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        """The pooled vector (``dimension`` floats) of a query."""
        text = _check_query(text, "text")
        return self._pooler.queries(self.colbert, [text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` in a worker thread, so the event loop is not blocked."""
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` in a worker thread, so the event loop is not blocked."""
        return await run_in_executor(None, self.embed_query, text)

    # -- token vectors -----------------------------------------------------------------------

    def embed_documents_multivector(self, texts: list[str]) -> list[list[list[float]]]:
        """The per-token vectors of each document (``[n_tokens][dim]`` floats per text),
        for exact MaxSim scoring or a multivector store."""
        vectors = self.colbert.encode_documents(texts, batch_size=self.batch_size)
        return [v.tolist() for v in vectors]

    def embed_query_multivector(self, text: str) -> list[list[float]]:
        """The per-token vectors of a query (``[n_tokens][dim]`` floats)."""
        text = _check_query(text, "text")
        return self.colbert.encode_queries([text])[0].tolist()  # type: ignore[no-any-return]


from .langchain_retriever import ColBERTRetriever  # noqa: E402  (re-export; it imports this module's deps)
