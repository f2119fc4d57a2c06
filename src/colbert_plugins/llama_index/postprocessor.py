"""LlamaIndex ``BaseNodePostprocessor``: exact ColBERT (MaxSim) reranking of retrieved nodes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from ..checks import check_items, check_query
from ..components import ColBERTComponent, PositiveInt, model_field
from ..errors import InvalidArgumentError
from ..model import ColBERT, FloatArray, rank_order
from ..registry import DEFAULT_MODEL

__all__ = ["RETRIEVAL_SCORE_KEY", "ColBERTRerank"]


#: Metadata key under which ``keep_retrieval_score=True`` keeps the previous score
#: (the key LlamaIndex's own rerankers use).
RETRIEVAL_SCORE_KEY = "retrieval_score"

dispatcher = get_dispatcher(__name__)


class ColBERTRerank(ColBERTComponent, BaseNodePostprocessor):
    """Rerank retrieved nodes by exact ColBERT late-interaction (MaxSim) score.

    Each node's ``get_content(metadata_mode=metadata_mode)`` is scored against the query
    string; the result is new :class:`NodeWithScore` objects (the caller's are never
    modified), best first with ties in input order, at most ``top_n`` of them. Nodes with
    empty text are scored like any other; duplicates (the same node twice, or the same id or
    text) are neither merged nor dropped, and identical texts get identical scores.

    Args:
        model: a Hugging Face repo id or a local model directory, loaded once (lazily, on
            first use, thread-safely) with ``ColBERT.from_pretrained(model, **model_kwargs)``;
            or an existing :class:`~colbert_plugins.ColBERT`, shared and never modified.
        top_n: number of nodes to return (>= 1).
        keep_retrieval_score: keep each node's previous score in a copy of its metadata
            under ``"retrieval_score"``.
        normalize_scores: ``True`` divides MaxSim by the number of query vectors (scores in
            [-1, 1]), ``False`` never does, ``None`` (the default) follows the model's own
            setting (``config.normalize_scores``).
        metadata_mode: which metadata is part of the scored text (``MetadataMode.EMBED``,
            as for embeddings, by default; ``MetadataMode.NONE`` scores the text alone).
        callback_manager: LlamaIndex callback manager (query engines set their own).
        model_kwargs: keyword arguments for ``ColBERT.from_pretrained``; they may also be
            given directly as keywords (e.g. ``threads=2, document_length=256``).

    ``to_dict()`` / ``from_dict()`` round-trip every setting (a ColBERT instance given as the
    model is stored by its name, and loaded from it). Copies (``model_copy(update=...)``,
    ``copy.deepcopy``) use their own settings and share the loaded model while ``model`` and
    ``model_kwargs`` stay the same.
    """

    model: str = model_field()
    top_n: PositiveInt = Field(default=5, description="Number of nodes to return sorted by score.")
    keep_retrieval_score: bool = Field(
        default=False,
        strict=True,
        description="Whether to keep the retrieval score in metadata (`retrieval_score`).",
    )
    normalize_scores: bool | None = Field(
        default=None,
        strict=True,
        description="Whether to divide MaxSim by the number of query vectors (range [-1, 1]); "
        "None: the model's own setting.",
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED,
        description="Metadata mode used to get each node's text for scoring.",
    )

    def __init__(
        self,
        model: str | os.PathLike[str] | ColBERT = DEFAULT_MODEL,
        top_n: int = 5,
        keep_retrieval_score: bool = False,
        normalize_scores: bool | None = None,
        metadata_mode: MetadataMode = MetadataMode.EMBED,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            **{
                "model": model,
                "top_n": top_n,
                "keep_retrieval_score": keep_retrieval_score,
                "normalize_scores": normalize_scores,
                "metadata_mode": metadata_mode,
                **kwargs,
            }
        )

    @classmethod
    def class_name(cls) -> str:
        return "ColBERTRerank"

    # -- scoring -----------------------------------------------------------------------------

    def score(self, query: str, texts: Sequence[str]) -> FloatArray:
        """MaxSim scores of ``texts`` for ``query`` (``ColBERT.score``, plus
        ``normalize_scores``)."""
        return self.colbert.score(query, texts, normalize=self.normalize_scores)

    # -- postprocessing ----------------------------------------------------------------------

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise InvalidArgumentError(
                "ColBERTRerank needs the query: pass query_bundle=QueryBundle(...) or "
                "query_str=... to postprocess_nodes()"
            )
        nodes = check_items(nodes, "nodes", NodeWithScore, hint=_wrap_hint)
        query = check_query(query_bundle.query_str, "query_str")
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=self.model
            )
        )
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            reranked = self._rerank(query, nodes)
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        # Encoding is CPU-bound: run it in a worker thread so the event loop stays free.
        return await asyncio.to_thread(self._postprocess_nodes, nodes, query_bundle)

    def _rerank(self, query: str, nodes: list[NodeWithScore]) -> list[NodeWithScore]:
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]
        scores = self.score(query, texts)
        reranked = []
        for i in rank_order(scores, self.top_n):
            original = nodes[i]
            node = original.node
            if self.keep_retrieval_score:
                metadata = {**node.metadata, RETRIEVAL_SCORE_KEY: original.score}
                node = node.model_copy(update={"metadata": metadata})
            reranked.append(NodeWithScore(node=node, score=float(scores[i])))
        return reranked


def _wrap_hint(item: Any) -> str:
    return " (wrap nodes as NodeWithScore(node=...))" if hasattr(item, "node_id") else ""
