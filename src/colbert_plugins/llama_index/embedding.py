"""LlamaIndex embedding: one pooled ColBERT vector per text, for any vector store.

>>> from colbert_plugins.llama_index import ColBERTEmbedding, ColBERTRerank  # doctest: +SKIP
>>> colbert = ColBERT.from_pretrained("answerdotai/answerai-colbert-small-v1")  # doctest: +SKIP
>>> index = VectorStoreIndex(nodes, embed_model=ColBERTEmbedding(colbert))  # doctest: +SKIP
>>> engine = index.as_query_engine(  # doctest: +SKIP
...     similarity_top_k=20, node_postprocessors=[ColBERTRerank(colbert, top_n=3)]
... )

Stage 1 searches pooled vectors; stage 2 reranks the candidates by exact MaxSim. With one
:class:`~colbert_plugins.ColBERT` shared by both, the reranker finds the documents' token
vectors in the model's cache (when the embedded text and the reranked text are the same:
both use ``MetadataMode.EMBED`` by default).

Needs the ``llama-index`` extra (``llama-index-core``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager

from ..errors import InvalidArgumentTypeError
from ..lazy import ModelSlot, split_model
from ..model import ColBERT
from ..pooled import PooledEmbedder, Pooling
from ..pooling import DEFAULT_D_PROJ, DEFAULT_K_SIM, DEFAULT_R_REPS, DEFAULT_SEED
from ..registry import DEFAULT_MODEL

__all__ = ["ColBERTEmbedding"]

Embedding = list[float]


class ColBERTEmbedding(BaseEmbedding):
    """ColBERT as a LlamaIndex embedding model: pooled token vectors, one per text.

    - ``pooling="mean"``: the L2-normalized mean of the token vectors (``dim`` floats); the
      cosine similarity LlamaIndex's default vector store computes is then their dot product.
    - ``pooling="muvera"``: MUVERA fixed-dimensional encodings (see
      :class:`colbert_plugins.pooling.Muvera`): query and document encodings differ and their
      dot product approximates MaxSim; cosine-similarity stores divide by the norms, a further
      approximation, so prefer an inner-product store.

    Queries (:meth:`get_query_embedding`) and documents (:meth:`get_text_embedding`,
    :meth:`get_text_embedding_batch`) are encoded differently, as ColBERT does. The async
    variants run the encoder in a worker thread, so the event loop is not blocked.

    Args:
        model: a Hugging Face repo id or a local model directory, loaded once (lazily, on
            first use, thread-safely) with ``ColBERT.from_pretrained(model, **model_kwargs)``;
            or an existing :class:`~colbert_plugins.ColBERT`, shared and never modified.
        pooling: ``"mean"`` or ``"muvera"``.
        k_sim, d_proj, r_reps, seed: MUVERA parameters (the same give the same encodings).
        embed_batch_size: texts per batch (LlamaIndex's batching; the encoder then batches
            by length under its token budget).
        callback_manager: LlamaIndex callback manager.
        model_kwargs: keyword arguments for ``ColBERT.from_pretrained``; they may also be
            given directly as keywords (e.g. ``threads=2``).
    """

    pooling: Pooling = Field(default="mean", description='"mean" or "muvera".')
    k_sim: int = Field(default=DEFAULT_K_SIM, description="MUVERA: SimHash hyperplanes.")
    d_proj: int | None = Field(default=DEFAULT_D_PROJ, description="MUVERA: projection size.")
    r_reps: int = Field(default=DEFAULT_R_REPS, description="MUVERA: repetitions.")
    seed: int = Field(default=DEFAULT_SEED, description="MUVERA: random seed.")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for ColBERT.from_pretrained."
    )

    _slot: ModelSlot = PrivateAttr(default_factory=ModelSlot)
    _pooler: PooledEmbedder = PrivateAttr(default_factory=PooledEmbedder)

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        pooling: Pooling = "mean",
        *,
        k_sim: int = DEFAULT_K_SIM,
        d_proj: int | None = DEFAULT_D_PROJ,
        r_reps: int = DEFAULT_R_REPS,
        seed: int = DEFAULT_SEED,
        embed_batch_size: int = 32,
        callback_manager: CallbackManager | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name, instance, load_kwargs = split_model(
            model, {**(model_kwargs or {}), **kwargs}, "ColBERTEmbedding"
        )
        pooler = PooledEmbedder(pooling, k_sim=k_sim, d_proj=d_proj, r_reps=r_reps, seed=seed)
        if isinstance(embed_batch_size, bool) or not isinstance(embed_batch_size, int):
            raise InvalidArgumentTypeError(
                f"embed_batch_size must be a positive integer, got {embed_batch_size!r}"
            )
        fields: dict[str, Any] = {
            "model_name": name,
            "pooling": pooling,
            "k_sim": k_sim,
            "d_proj": d_proj,
            "r_reps": r_reps,
            "seed": seed,
            "embed_batch_size": embed_batch_size,
            "model_kwargs": load_kwargs,
        }
        if callback_manager is not None:
            fields["callback_manager"] = callback_manager
        super().__init__(**fields)
        self._slot = ModelSlot(instance)
        self._pooler = pooler

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTEmbedding"

    @property
    def colbert(self) -> ColBERT:
        """The ColBERT model, loaded on first access (once, even with concurrent callers)."""
        return self._slot.get(self.model_name, self.model_kwargs)

    @property
    def dimension(self) -> int:
        """Length of every embedding this model returns."""
        return self._pooler.dimension(self.colbert)

    # -- BaseEmbedding -----------------------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._pooler.queries(self.colbert, [_check_text(query, "query")])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([_check_text(text, "text")])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._pooler.documents(self.colbert, texts, self.embed_batch_size)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def _check_text(text: Any, name: str) -> str:
    if not isinstance(text, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, got {type(text).__name__}")
    return text
