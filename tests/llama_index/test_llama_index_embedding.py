"""colbert_plugins.llama_index.ColBERTEmbedding: LlamaIndex embedding conventions, pooling
equal to the core's, sync/async/batch agreement, and a real VectorStoreIndex round trip."""

from __future__ import annotations

import asyncio
import pathlib
import pickle

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.schema import TextNode

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.llama_index import ColBERTEmbedding, ColBERTRerank
from colbert_plugins.pooling import Muvera, mean_pool
from corpus import QUERY
from corpus import TEXTS as ALL_TEXTS

TEXTS = ALL_TEXTS[:5]


def test_mean_pooling_equals_the_core(tiny_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model)
    docs = embed.get_text_embedding_batch(TEXTS)
    expected = [mean_pool(v) for v in tiny_model.encode_documents(TEXTS)]
    np.testing.assert_allclose(docs, expected, rtol=1e-6)
    query = embed.get_query_embedding(QUERY)
    np.testing.assert_allclose(query, mean_pool(tiny_model.encode_queries([QUERY])[0]), rtol=1e-6)
    assert len(query) == embed.dimension == tiny_model.dim
    # queries and documents are encoded differently (markers, query augmentation)
    assert not np.allclose(embed.get_query_embedding(TEXTS[1]), docs[1])


def test_muvera_pooling_equals_the_core(tiny_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model, pooling="muvera", k_sim=3, d_proj=4, r_reps=5)
    muvera = Muvera(tiny_model.dim, k_sim=3, d_proj=4, r_reps=5)
    docs = embed.get_text_embedding_batch(TEXTS)
    np.testing.assert_allclose(docs, muvera.encode_documents(tiny_model.encode_documents(TEXTS)))
    query = embed.get_query_embedding(QUERY)
    np.testing.assert_allclose(query, muvera.encode_query(tiny_model.encode_queries([QUERY])[0]))
    assert len(query) == embed.dimension == muvera.dimension == 5 * 8 * 4


def test_batches_single_texts_and_async_agree(tiny_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model, embed_batch_size=2)
    batch = embed.get_text_embedding_batch(TEXTS)
    singles = [embed.get_text_embedding(t) for t in TEXTS]
    np.testing.assert_allclose(batch, singles, rtol=1e-5, atol=1e-6)

    async def run() -> tuple[list[list[float]], list[float], list[float]]:
        return (
            await embed.aget_text_embedding_batch(TEXTS),
            await embed.aget_query_embedding(QUERY),
            await embed.aget_text_embedding(TEXTS[0]),
        )

    abatch, aquery, atext = asyncio.run(run())
    np.testing.assert_allclose(abatch, batch, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aquery, embed.get_query_embedding(QUERY), rtol=1e-6)
    np.testing.assert_allclose(atext, singles[0], rtol=1e-5, atol=1e-6)
    assert all(isinstance(x, float) for x in batch[0])


def test_conventions_and_loading_by_path(tiny_model_dir: pathlib.Path) -> None:
    handler = LlamaDebugHandler()
    embed = ColBERTEmbedding(
        tiny_model_dir, query_length=8, callback_manager=CallbackManager([handler])
    )
    assert embed.class_name() == "ColBERTEmbedding"
    assert embed.model_name == str(tiny_model_dir) and embed.model_kwargs == {"query_length": 8}
    assert embed.to_dict()["pooling"] == "mean"
    embed.get_text_embedding_batch(TEXTS)
    assert handler.get_event_pairs(CBEventType.EMBEDDING)  # LlamaIndex's embedding events
    clone = pickle.loads(pickle.dumps(embed))  # reloads the model on first use
    np.testing.assert_allclose(
        clone.get_query_embedding(QUERY), embed.get_query_embedding(QUERY), rtol=1e-6
    )


def test_bad_arguments(tiny_model: ColBERT, tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match="pooling"):
        ColBERTEmbedding(tiny_model, pooling="max")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="bogus"):
        ColBERTEmbedding(tiny_model_dir, bogus=1)
    with pytest.raises(InvalidArgumentError, match="only apply"):
        ColBERTEmbedding(tiny_model, threads=1)
    with pytest.raises(InvalidArgumentError):
        ColBERTEmbedding(tiny_model, pooling="muvera", k_sim=-1)
    with pytest.raises(InvalidArgumentTypeError, match="embed_batch_size"):
        ColBERTEmbedding(tiny_model, embed_batch_size="8")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="query must be a str"):
        ColBERTEmbedding(tiny_model).get_query_embedding(None)  # type: ignore[arg-type]


def test_vector_store_index_round_trip(tiny_model: ColBERT) -> None:
    """Stage 1 in LlamaIndex's own vector store, stage 2 the ColBERT reranker."""
    embed = ColBERTEmbedding(tiny_model)
    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=embed)
    hits = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    # The store ranks by cosine of the pooled vectors: recompute it here.
    query = np.array(embed.get_query_embedding(QUERY))
    docs = np.array(embed.get_text_embedding_batch(TEXTS))
    cosine = docs @ query / (np.linalg.norm(docs, axis=1) * np.linalg.norm(query))
    best = np.argsort(-cosine, kind="stable")[:3]
    assert [h.node.node_id for h in hits] == [f"n{i}" for i in best]
    np.testing.assert_allclose([h.score for h in hits], cosine[best], rtol=1e-5)

    reranker = ColBERTRerank(tiny_model, top_n=2)
    engine_hits = index.as_retriever(similarity_top_k=4).retrieve(QUERY)
    reranked = reranker.postprocess_nodes(engine_hits, query_str=QUERY)
    texts = [h.node.get_content() for h in engine_hits]
    scores = tiny_model.score(QUERY, texts)
    assert [n.score for n in reranked] == pytest.approx(sorted(scores, reverse=True)[:2])

    async def aretrieve() -> list[str]:
        return [
            h.node.node_id for h in await index.as_retriever(similarity_top_k=3).aretrieve(QUERY)
        ]

    assert asyncio.run(aretrieve()) == [h.node.node_id for h in hits]
