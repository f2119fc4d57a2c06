"""LlamaIndex base-class contracts of the three adapters, through LlamaIndex's own API:
``to_dict``/``from_dict`` (and JSON) round trips, every base-class field accepted, copies
(``model_copy(update=...)``, ``copy.deepcopy``) that use their own settings and share an
unchanged model, and constraints declared as pydantic fields that raise our errors."""

from __future__ import annotations

import copy
import pathlib
import pickle
from typing import Any

import numpy as np
import pytest
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.llama_index import ColBERTEmbedding, ColBERTRerank, ColBERTRetriever

QUERY = "what is the capital of france"
TEXTS = [
    "the cat sat on the mat",
    "paris is the capital of france",
    "berlin is the capital of germany",
    "london is on the thames",
]


@pytest.fixture(scope="module")
def long_queries_model(tiny_model_dir: pathlib.Path) -> ColBERT:
    """The tiny model with other settings (query_length 16): other scores than tiny_model's."""
    return ColBERT.from_pretrained(tiny_model_dir, query_length=16, threads=1, cache=False)


def make_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=0.5)
        for i, text in enumerate(TEXTS)
    ]


def ranked(reranker: ColBERTRerank) -> list[tuple[str, float]]:
    return [
        (n.node.node_id, n.score or 0.0)
        for n in reranker.postprocess_nodes(make_nodes(), query_str=QUERY)
    ]


# -- ColBERTEmbedding ---------------------------------------------------------------------------


def test_embedding_dict_and_json_round_trip(tiny_model_dir: pathlib.Path) -> None:
    embed = ColBERTEmbedding(
        tiny_model_dir, pooling="muvera", k_sim=2, embed_batch_size=3, query_length=8, threads=1
    )
    data = embed.to_dict()
    assert data["class_name"] == "ColBERTEmbedding"
    assert data["model_name"] == str(tiny_model_dir)
    assert data["model_kwargs"] == {"query_length": 8, "threads": 1}
    restored = ColBERTEmbedding.from_dict(data)
    assert restored.to_dict() == data
    from_json = ColBERTEmbedding.from_json(embed.to_json())
    assert from_json.to_dict() == data
    np.testing.assert_allclose(
        restored.get_query_embedding(QUERY), embed.get_query_embedding(QUERY), rtol=1e-6
    )
    np.testing.assert_allclose(
        from_json.get_text_embedding_batch(TEXTS), embed.get_text_embedding_batch(TEXTS)
    )


def test_embedding_of_an_instance_round_trips_by_name(tiny_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model)
    restored = ColBERTEmbedding.from_dict(embed.to_dict())
    assert restored.model_name == tiny_model.name
    # Loaded again from the name, with that directory's own settings.
    expected = ColBERT.from_pretrained(tiny_model.name).encode_queries([QUERY])[0].mean(axis=0)
    got = np.asarray(restored.get_query_embedding(QUERY))
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)


def test_embedding_accepts_every_base_class_field(tiny_model_dir: pathlib.Path) -> None:
    handler = LlamaDebugHandler()
    cache = SimpleKVStore()
    embed = ColBERTEmbedding(
        model_name=str(tiny_model_dir),  # BaseEmbedding's own field names the model
        embed_batch_size=2,
        callback_manager=CallbackManager([handler]),
        num_workers=1,
        embeddings_cache=cache,
        query_length=8,
    )
    assert embed.model_name == str(tiny_model_dir)
    assert embed.colbert.config.query_length == 8
    assert (embed.embed_batch_size, embed.num_workers, embed.embeddings_cache) == (2, 1, cache)
    vectors = embed.get_text_embedding_batch(TEXTS)
    assert len(vectors) == len(TEXTS)
    assert handler.get_event_pairs(CBEventType.EMBEDDING)
    assert cache.get_all(collection="embeddings")  # LlamaIndex's own cache was filled
    with pytest.raises(InvalidArgumentError, match="not both"):
        ColBERTEmbedding(tiny_model_dir, model_name=str(tiny_model_dir))


def test_embedding_unpickles_through_its_constructor(tiny_model_dir: pathlib.Path) -> None:
    embed = ColBERTEmbedding(tiny_model_dir, num_workers=2, query_length=8)
    clone = pickle.loads(pickle.dumps(embed))  # BaseComponent.__setstate__ calls __init__
    assert clone.to_dict() == embed.to_dict()


def test_embedding_copies(tiny_model: ColBERT, long_queries_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model)
    muvera = embed.model_copy(update={"pooling": "muvera", "k_sim": 2})
    assert muvera.dimension != embed.dimension == tiny_model.dim
    assert len(muvera.get_query_embedding(QUERY)) == muvera.dimension
    assert muvera.colbert is tiny_model
    moved = embed.model_copy(update={"model_name": long_queries_model})
    assert moved.colbert is long_queries_model and moved.model_name == long_queries_model.name
    assert not np.allclose(moved.get_query_embedding(QUERY), embed.get_query_embedding(QUERY))
    assert copy.deepcopy(embed).colbert is tiny_model


def test_embedding_assignment_is_validated_and_used(tiny_model: ColBERT) -> None:
    embed = ColBERTEmbedding(tiny_model)
    embed.pooling = "muvera"
    assert embed.dimension == len(embed.get_query_embedding(QUERY)) != tiny_model.dim
    for name, bad in (("k_sim", -1), ("k_sim", 99), ("r_reps", 0), ("seed", "x")):
        with pytest.raises((ValueError, TypeError), match=name):
            setattr(embed, name, bad)
    assert (embed.k_sim, embed.r_reps, embed.seed) == (4, 20, 42)  # nothing half-assigned


# -- ColBERTRerank ------------------------------------------------------------------------------


def test_rerank_dict_round_trip(tiny_model_dir: pathlib.Path) -> None:
    reranker = ColBERTRerank(
        tiny_model_dir,
        top_n=2,
        keep_retrieval_score=True,
        normalize_scores=True,
        metadata_mode=MetadataMode.NONE,
        query_length=8,
    )
    data = reranker.to_dict()
    restored = ColBERTRerank.from_dict(data)
    assert restored.to_dict() == data
    assert (restored.normalize_scores, restored.metadata_mode) == (True, MetadataMode.NONE)
    assert ranked(restored) == ranked(reranker)
    assert ColBERTRerank.from_dict(ColBERTRerank().to_dict()).normalize_scores is None


def test_rerank_model_copy_scores_with_the_new_model(
    tiny_model: ColBERT, long_queries_model: ColBERT
) -> None:
    reranker = ColBERTRerank(tiny_model, top_n=len(TEXTS))
    copied = reranker.model_copy(update={"model": long_queries_model})
    assert copied.colbert is long_queries_model
    expected = long_queries_model.rerank(QUERY, TEXTS)
    got = ranked(copied)
    assert [node_id for node_id, _ in got] == [f"n{r.index}" for r in expected]
    assert [score for _, score in got] == pytest.approx([r.score for r in expected], rel=1e-6)
    assert [score for _, score in got] != pytest.approx([s for _, s in ranked(reranker)])
    assert reranker.colbert is tiny_model


def test_rerank_copies_share_an_unchanged_model(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[Any, ...]]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, top_n=2, query_length=8)
    copies = [
        copy.deepcopy(reranker),
        reranker.model_copy(update={"top_n": 1}),
        reranker.model_copy(deep=True),
    ]
    assert all(c.colbert is reranker.colbert for c in copies)
    assert len(count_loads) == 1
    assert len(copies[1].postprocess_nodes(make_nodes(), query_str=QUERY)) == 1
    longer = reranker.model_copy(update={"model_kwargs": {"query_length": 16}})
    assert longer.colbert.config.query_length == 16 and len(count_loads) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"keep_retrieval_score": "yes"}, InvalidArgumentTypeError, "keep_retrieval_score"),
        ({"normalize_scores": 0}, InvalidArgumentTypeError, "normalize_scores"),
        ({"metadata_mode": "everything"}, InvalidArgumentError, "metadata_mode"),
        ({"top_n": 0}, InvalidArgumentError, "top_n must be >= 1"),
    ],
)
def test_rerank_constraints_raise_our_errors_from_dict(
    tiny_model_dir: pathlib.Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    data = {**ColBERTRerank(tiny_model_dir).to_dict(), **kwargs}
    with pytest.raises(error, match=match):
        ColBERTRerank.from_dict(data)


# -- ColBERTRetriever ---------------------------------------------------------------------------


def test_retriever_settings_round_trip_with_the_index(tiny_model: ColBERT) -> None:
    nodes = [TextNode(text=t, id_=f"n{i}", metadata={"i": i % 2}) for i, t in enumerate(TEXTS)]
    filters = MetadataFilters(
        filters=[MetadataFilter(key="i", value=[0, 1], operator=FilterOperator.IN)]
    )
    retriever = ColBERTRetriever.from_nodes(
        nodes, model=tiny_model, similarity_top_k=2, filters=filters
    )
    data = retriever.to_dict()
    assert data["class_name"] == "ColBERTRetriever" and data["similarity_top_k"] == 2
    restored = ColBERTRetriever.from_dict(data, index=retriever.index)
    assert restored.to_dict() == data and restored.filters == filters
    assert [n.node.node_id for n in restored.retrieve(QUERY)] == [
        n.node.node_id for n in retriever.retrieve(QUERY)
    ]
    again = ColBERTRetriever.from_json(retriever.to_json(), index=retriever.index)
    assert again.to_dict() == data
    with pytest.raises(InvalidArgumentError, match="needs the index"):
        ColBERTRetriever.from_dict(data)
    with pytest.raises(InvalidArgumentTypeError, match="bogus"):
        ColBERTRetriever.from_dict({**data, "bogus": 1}, index=retriever.index)


def test_retriever_deepcopy_shares_the_index(tiny_model: ColBERT) -> None:
    retriever = ColBERTRetriever.from_nodes(
        [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)], model=tiny_model
    )
    copied = copy.deepcopy(retriever)
    assert copied.index is retriever.index
    copied.similarity_top_k = 1
    assert len(copied.retrieve(QUERY)) == 1 and retriever.similarity_top_k == 4


def test_deepcopy_shares_loading_resources(tiny_model_dir: pathlib.Path) -> None:
    from colbert_plugins.cache import EmbeddingCache

    cache = EmbeddingCache()
    for component in (
        ColBERTRerank(tiny_model_dir, cache=cache, query_length=8),
        ColBERTEmbedding(tiny_model_dir, cache=cache, query_length=8),
    ):
        copied = copy.deepcopy(component)
        assert copied.model_kwargs["cache"] is cache
        assert copied.colbert is component.colbert
