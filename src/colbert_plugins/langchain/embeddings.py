"""LangChain ``Embeddings``: one pooled ColBERT vector per text, or the per-token vectors."""

from __future__ import annotations

import os
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..lazy import ModelSlot, split_model
from ..model import ColBERT
from ..pooled import PooledEmbedder
from ..pooling import DEFAULT_D_PROJ, DEFAULT_K_SIM, DEFAULT_R_REPS, DEFAULT_SEED, Muvera
from ..registry import DEFAULT_MODEL
from ._common import check_text

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
        text = check_text(text, "text")
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
        text = check_text(text, "text")
        return self.colbert.encode_queries([text])[0].tolist()  # type: ignore[no-any-return]
