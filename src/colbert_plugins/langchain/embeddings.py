"""LangChain ``Embeddings``: one pooled ColBERT vector per text, or the per-token vectors."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from ..checks import check_text
from ..components import PooledComponent, PositiveInt, model_field
from ..model import ColBERT
from ..pooled import Pooling
from ..pooling import Muvera
from ..registry import DEFAULT_MODEL


class ColBERTEmbeddings(PooledComponent, Embeddings):
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

    model_config = ConfigDict(frozen=True)

    model: str = model_field()
    batch_size: PositiveInt = Field(default=32, description="Texts per batch.")

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        pooling: Pooling = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(**{"model": model, "pooling": pooling, **kwargs})

    @property
    def muvera(self) -> Muvera:
        """The MUVERA encoder for this model's token size and the MUVERA parameters."""
        return self.pooler.muvera(self.colbert)

    # -- pooled vectors ----------------------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One pooled vector (``dimension`` floats) per text, in input order."""
        return self._pool_documents(texts, self.batch_size)

    def embed_query(self, text: str) -> list[float]:
        """The pooled vector (``dimension`` floats) of a query."""
        return self._pool_query(text)

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
        text = check_text(text, "text")
        return self.colbert.encode_queries([text])[0].tolist()  # type: ignore[no-any-return]
