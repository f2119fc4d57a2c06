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
from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field

from ..checks import check_text
from ..components import PooledComponent, PositiveInt, model_field
from ..errors import InvalidArgumentError
from ..model import ColBERT
from ..pooled import Pooling

__all__ = ["ColBERTEmbedding"]

Embedding = list[float]


class ColBERTEmbedding(PooledComponent, BaseEmbedding):
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
            or an existing :class:`~colbert_plugins.ColBERT`, shared and never modified. Also
            accepted as ``model_name=`` (``BaseEmbedding``'s field, where it is stored).
        pooling: ``"mean"`` or ``"muvera"``.
        k_sim, d_proj, r_reps, seed: MUVERA parameters (the same give the same encodings).
        embed_batch_size: texts per batch (LlamaIndex's batching; the encoder then batches
            by length under its token budget).
        model_kwargs: keyword arguments for ``ColBERT.from_pretrained``; they may also be
            given directly as keywords (e.g. ``threads=2``).
        **kwargs: the other ``BaseEmbedding`` fields (``callback_manager``, ``num_workers``,
            ``embeddings_cache``, ...).

    ``to_dict()`` / ``from_dict()`` round-trip every setting, as LlamaIndex serializes
    embeddings in settings, storage contexts and ingestion caches (a ColBERT instance is
    stored by its name). Copies (``model_copy(update=...)``, ``copy.deepcopy``) use their own
    settings and share the loaded model while ``model_name`` and ``model_kwargs`` stay the
    same.
    """

    colbert_field: ClassVar[str] = "model_name"

    model_name: str = model_field()
    embed_batch_size: PositiveInt = Field(default=32, le=2048, description="Texts per batch.")

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT | None = None,
        pooling: Pooling = "mean",
        **kwargs: Any,
    ) -> None:
        if model is not None:
            if "model_name" in kwargs:
                raise InvalidArgumentError("give model or model_name, not both")
            kwargs["model_name"] = model
        super().__init__(pooling=pooling, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTEmbedding"

    # -- BaseEmbedding -----------------------------------------------------------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._pool_query(query, "query")

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([check_text(text, "text")])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._pool_documents(texts, self.embed_batch_size)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
