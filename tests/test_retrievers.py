"""Tests for the ColBERT retrievers: LangChain (colbert_plugins.langchain.retriever) and
LlamaIndex (colbert_plugins.llama_index.retriever), on the tiny model (unit) and the real one
(integration: the langchain-tests standard suite and a LlamaIndex query engine)."""

from __future__ import annotations

import asyncio
import copy
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from langchain_tests.integration_tests import RetrieversIntegrationTests
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import (
    Document as LlamaDocument,
)
from llama_index.core.schema import (
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from pydantic import ValidationError

import corpus
from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import InMemoryIndex, UnknownIdError
from colbert_plugins.index.qdrant import QdrantIndex
from colbert_plugins.langchain.retriever import RELEVANCE_SCORE_KEY
from colbert_plugins.langchain.retriever import ColBERTRetriever as LCRetriever
from colbert_plugins.llama_index.retriever import ColBERTRetriever as LIRetriever
from corpus import QUERY
from corpus import TEXTS as ALL_TEXTS

TEXTS = ALL_TEXTS[:6]
IDS = [f"d{i}" for i in range(len(TEXTS))]


def lc_docs() -> list[Document]:
    return [
        Document(page_content=t, id=i, metadata={"n": n, "tags": ["a"]})
        for n, (i, t) in enumerate(zip(IDS, TEXTS, strict=True))
    ]


def li_nodes() -> list[TextNode]:
    nodes = []
    for n, (i, t) in enumerate(zip(IDS, TEXTS, strict=True)):
        node = TextNode(
            text=t, id_=i, metadata={"n": n, "source": "unit"}, excluded_embed_metadata_keys=["n"]
        )
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"doc-{n % 2}")
        nodes.append(node)
    return nodes


def cranfield(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    return corpus.cranfield(n, 3)


class SearchThreads:
    """Records the thread of each index search."""

    def __init__(self, index: InMemoryIndex) -> None:
        self.threads: list[int] = []
        original = index.search

        def search(query: str, k: int = 10, **kwargs: Any) -> Any:
            self.threads.append(threading.get_ident())
            return original(query, k, **kwargs)

        index.search = search  # type: ignore[method-assign]


# == LangChain =================================================================================


@pytest.fixture
def lc_retriever(tiny_model: ColBERT) -> LCRetriever:
    return LCRetriever.from_documents(lc_docs(), model=tiny_model, k=3)


def test_lc_results_are_index_hits(lc_retriever: LCRetriever) -> None:
    got = lc_retriever.invoke(QUERY)
    hits = lc_retriever.index.search(QUERY, k=3)
    assert len(got) == 3 and all(type(d) is Document for d in got)
    assert [d.id for d in got] == [h.id for h in hits]
    assert [d.page_content for d in got] == [h.text for h in hits]
    for d, h in zip(got, hits, strict=True):
        score = d.metadata[RELEVANCE_SCORE_KEY]
        assert type(score) is float and score == h.score
        assert d.metadata == {**h.metadata, RELEVANCE_SCORE_KEY: h.score}


def test_lc_scores_are_maxsim(lc_retriever: LCRetriever, tiny_model: ColBERT) -> None:
    got = lc_retriever.invoke(QUERY, k=len(TEXTS))
    expected = tiny_model.score(QUERY, [d.page_content for d in got])
    np.testing.assert_allclose([d.metadata["relevance_score"] for d in got], expected, rtol=1e-6)
    assert list(expected) == sorted(expected, reverse=True)


def test_lc_k_per_call_and_constructor(lc_retriever: LCRetriever) -> None:
    assert len(lc_retriever.invoke(QUERY)) == 3
    assert len(lc_retriever.invoke(QUERY, k=1)) == 1
    assert len(lc_retriever.invoke(QUERY, k=100)) == len(TEXTS)
    assert len(lc_retriever.invoke(QUERY)) == 3  # the per-call k did not stick
    lc_retriever.k = 2
    assert len(lc_retriever.invoke(QUERY)) == 2
    other = LCRetriever(index=lc_retriever.index, k=5)
    assert len(other.invoke(QUERY)) == 5
    assert LCRetriever(index=lc_retriever.index).k == 4


@pytest.mark.parametrize("k", [0, -3])
def test_lc_k_below_one(lc_retriever: LCRetriever, k: int) -> None:
    with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
        lc_retriever.invoke(QUERY, k=k)
    with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
        LCRetriever(index=lc_retriever.index, k=k)
    with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
        LCRetriever.from_texts(["x"], model=lc_retriever.index.model, k=k)
    with pytest.raises(ValidationError):
        lc_retriever.k = k


def test_lc_bad_arguments(lc_retriever: LCRetriever) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="top_k"):
        lc_retriever.invoke(QUERY, top_k=2)
    with pytest.raises(InvalidArgumentTypeError):
        lc_retriever.invoke(QUERY, k="2")
    with pytest.raises(InvalidArgumentTypeError, match="ColBERTIndex"):
        LCRetriever(index="not an index")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="Document"):
        lc_retriever.add_documents(["plain text"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="give model"):
        LCRetriever.from_texts(["x"])
    assert len(lc_retriever.invoke(QUERY, verbose=True)) == 3  # a callback option, ignored


async def test_lc_async_matches_sync_in_a_thread(lc_retriever: LCRetriever) -> None:
    calls = SearchThreads(lc_retriever.index)  # type: ignore[arg-type]
    sync = lc_retriever.invoke(QUERY, k=4)
    asynchronous = await lc_retriever.ainvoke(QUERY, k=4)
    assert asynchronous == sync
    assert calls.threads[0] == threading.get_ident() != calls.threads[1]
    both = await asyncio.gather(lc_retriever.ainvoke(QUERY), lc_retriever.ainvoke("the lazy dog"))
    assert [len(r) for r in both] == [3, 3]


def test_lc_inputs_untouched_and_ids(tiny_model: ColBERT) -> None:
    docs = lc_docs()
    docs.append(Document(page_content="where is the river seine"))  # no id
    before = copy.deepcopy(docs)
    retriever = LCRetriever.from_documents(docs, model=tiny_model, k=10)
    assert docs == before
    got = retriever.invoke(QUERY)
    assert all(d.id for d in got) and len(got) == len(docs)
    assert {d.id for d in got} >= set(IDS)
    got[0].metadata["n"] = "changed"
    assert retriever.invoke(QUERY)[0].metadata["n"] != "changed"
    # Re-adding a document by id replaces it.
    retriever.add_documents([Document(page_content="late interaction model", id="d1")])
    assert len(retriever.index) == len(docs)
    assert retriever.index.get(["d1"])[0].text == "late interaction model"


def test_lc_from_texts_and_empty_index(tiny_model: ColBERT) -> None:
    retriever = LCRetriever.from_texts(
        TEXTS, model=tiny_model, metadatas=[{"i": i} for i in range(len(TEXTS))], ids=IDS, k=2
    )
    assert [d.id for d in retriever.invoke(QUERY)] == [
        h.id for h in retriever.index.search(QUERY, 2)
    ]
    empty = LCRetriever(index=InMemoryIndex(tiny_model))
    assert empty.invoke(QUERY) == []


def test_lc_from_model_path(tiny_model_dir: pathlib.Path) -> None:
    retriever = LCRetriever.from_texts(
        TEXTS[:2], model=tiny_model_dir, model_kwargs={"query_length": 8, "cache": False}, k=1
    )
    assert retriever.index.model.config.query_length == 8
    assert len(retriever.invoke(QUERY)) == 1


def test_lc_on_qdrant_and_in_a_chain(tiny_model: ColBERT) -> None:
    with QdrantIndex(tiny_model, prefetch_limit=None, retrieval_mode="colbert") as qdrant:
        retriever = LCRetriever.from_documents(lc_docs(), index=qdrant, k=3)
        exact = LCRetriever.from_documents(lc_docs(), model=tiny_model, k=3)
        got, expected = retriever.invoke(QUERY), exact.invoke(QUERY)
        assert [d.id for d in got] == [d.id for d in expected]
        np.testing.assert_allclose(
            [d.metadata["relevance_score"] for d in got],
            [d.metadata["relevance_score"] for d in expected],
            rtol=1e-5,
        )
        chain = retriever | RunnableLambda(lambda docs: [d.id for d in docs])
        assert chain.invoke(QUERY) == [d.id for d in expected]
        assert retriever.batch([QUERY, QUERY]) == [got, got]


class TestColBERTRetrieverOnTinyModel(RetrieversIntegrationTests):
    """The standard retriever suite on the tiny model (runs without a real model)."""

    @pytest.fixture(autouse=True)
    def _index(self, tiny_model: ColBERT) -> None:
        self.index = InMemoryIndex(tiny_model)
        self.index.add(TEXTS, ids=IDS)

    @property
    def retriever_constructor(self) -> type[LCRetriever]:
        return LCRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.index}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


@pytest.fixture(scope="module")
def real_lc_index(real_model: ColBERT) -> InMemoryIndex:
    docs, _ = cranfield(12)
    index = InMemoryIndex(real_model)
    metadatas = [{"title": d["title"]} for d in docs]
    index.add([d["text"] for d in docs], ids=[d["_id"] for d in docs], metadatas=metadatas)
    return index


@pytest.mark.integration
class TestColBERTRetrieverIntegration(RetrieversIntegrationTests):
    """The langchain-tests standard retriever suite on the real model."""

    @pytest.fixture(autouse=True)
    def _index(self, real_lc_index: InMemoryIndex) -> None:
        self.index = real_lc_index

    @property
    def retriever_constructor(self) -> type[LCRetriever]:
        return LCRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.index, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "what similarity laws must be obeyed when constructing aeroelastic models"


# == LlamaIndex ================================================================================


@pytest.fixture
def li_retriever(tiny_model: ColBERT) -> LIRetriever:
    return LIRetriever.from_nodes(li_nodes(), model=tiny_model, similarity_top_k=3)


def test_li_returns_original_nodes_with_scores(li_retriever: LIRetriever) -> None:
    nodes = {n.node_id: n for n in li_nodes()}
    got = li_retriever.retrieve(QUERY)
    hits = li_retriever.index.search(QUERY, k=3)
    assert len(got) == 3 and all(isinstance(n, NodeWithScore) for n in got)
    assert [n.node.node_id for n in got] == [h.id for h in hits]
    assert [n.score for n in got] == [h.score for h in hits]
    for n in got:
        original = nodes[n.node.node_id]
        assert n.node == original  # text, metadata, relationships, templates
        assert n.node.ref_doc_id == original.ref_doc_id
        assert n.node.metadata == {"n": original.metadata["n"], "source": "unit"}


def test_li_indexes_embed_content(li_retriever: LIRetriever, tiny_model: ColBERT) -> None:
    stored = li_retriever.index.get(["d1"])[0]
    assert stored.text == li_nodes()[1].get_content(MetadataMode.EMBED)
    assert stored.text.startswith("source: unit")  # "n" is excluded from embeddings
    got = li_retriever.retrieve(QUERY)
    texts = [n.node.get_content(MetadataMode.EMBED) for n in got]
    np.testing.assert_allclose([n.score for n in got], tiny_model.score(QUERY, texts), rtol=1e-6)


def test_li_metadata_mode_none(tiny_model: ColBERT) -> None:
    retriever = LIRetriever.from_nodes(
        li_nodes(), model=tiny_model, similarity_top_k=2, metadata_mode=MetadataMode.NONE
    )
    assert retriever.index.get(["d1"])[0].text == TEXTS[1]


def test_li_similarity_top_k(li_retriever: LIRetriever) -> None:
    assert li_retriever.similarity_top_k == 3
    li_retriever.similarity_top_k = 1
    assert len(li_retriever.retrieve(QUERY)) == 1
    assert len(LIRetriever(li_retriever.index, similarity_top_k=100).retrieve(QUERY)) == len(TEXTS)
    for bad in (0, -1):
        with pytest.raises(InvalidArgumentError, match="similarity_top_k must be >= 1"):
            li_retriever.similarity_top_k = bad
        with pytest.raises(InvalidArgumentError, match="similarity_top_k"):
            LIRetriever(li_retriever.index, similarity_top_k=bad)
        with pytest.raises(InvalidArgumentError):
            LIRetriever.from_nodes([], model=li_retriever.index.model, similarity_top_k=bad)
    with pytest.raises(InvalidArgumentTypeError):
        LIRetriever(li_retriever.index, similarity_top_k=None)  # type: ignore[arg-type]


async def test_li_async_matches_sync_in_a_thread(li_retriever: LIRetriever) -> None:
    calls = SearchThreads(li_retriever.index)  # type: ignore[arg-type]
    sync = li_retriever.retrieve(QUERY)
    asynchronous = await li_retriever.aretrieve(QueryBundle(QUERY))
    assert [(n.node.node_id, n.score) for n in asynchronous] == [
        (n.node.node_id, n.score) for n in sync
    ]
    assert calls.threads[0] == threading.get_ident() != calls.threads[1]


def test_li_bad_inputs(li_retriever: LIRetriever, tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="ColBERTIndex"):
        LIRetriever("index")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="NodeWithScore"):
        li_retriever.add_nodes([NodeWithScore(node=TextNode(text="x"))])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentTypeError):
        li_retriever.add_nodes(TextNode(text="x"))  # type: ignore[arg-type]
    with pytest.raises(UnknownIdError):
        li_retriever.delete(["nope"])
    li_retriever.delete(["nope", "d1"], missing_ok=True)
    assert "d1" not in li_retriever.index
    assert LIRetriever(InMemoryIndex(tiny_model)).retrieve(QUERY) == []


def test_li_plain_index_gives_text_nodes(tiny_model: ColBERT) -> None:
    index = InMemoryIndex(tiny_model)
    index.add(TEXTS, ids=IDS, metadatas=[{"i": i} for i in range(len(TEXTS))])
    got = LIRetriever(index, similarity_top_k=2).retrieve(QUERY)
    for n in got:
        i = IDS.index(n.node.node_id)
        assert type(n.node) is TextNode
        assert n.node.get_content() == TEXTS[i] and n.node.metadata == {"i": i}


def test_li_from_documents(tiny_model: ColBERT) -> None:
    docs = [LlamaDocument(text=t, id_=f"doc{i}") for i, t in enumerate(TEXTS)]
    whole = LIRetriever.from_documents(docs, model=tiny_model, similarity_top_k=2)
    assert sorted(whole.index.ids()) == sorted(d.doc_id for d in docs)
    long_doc = LlamaDocument(text=". ".join(TEXTS * 3), id_="long")
    split = LIRetriever.from_documents(
        [long_doc],
        model=tiny_model,
        transformations=[SentenceSplitter(chunk_size=24, chunk_overlap=0)],
        similarity_top_k=2,
    )
    assert len(split.index) > 1
    assert all(n.node.ref_doc_id == "long" for n in split.retrieve(QUERY))


def test_li_on_qdrant(tiny_model: ColBERT) -> None:
    exact = LIRetriever.from_nodes(li_nodes(), model=tiny_model, similarity_top_k=3)
    with QdrantIndex(tiny_model, prefetch_limit=None, retrieval_mode="colbert") as qdrant:
        retriever = LIRetriever.from_nodes(li_nodes(), index=qdrant, similarity_top_k=3)
        got, expected = retriever.retrieve(QUERY), exact.retrieve(QUERY)
        assert [n.node for n in got] == [n.node for n in expected]
        np.testing.assert_allclose([n.score for n in got], [n.score for n in expected], rtol=1e-5)


def _engine(retriever: LIRetriever) -> RetrieverQueryEngine:
    return RetrieverQueryEngine.from_args(retriever, llm=MockLLM())


async def test_li_query_engine(li_retriever: LIRetriever) -> None:
    engine = _engine(li_retriever)
    response = engine.query(QUERY)
    expected = li_retriever.retrieve(QUERY)
    assert [(n.node.node_id, n.score) for n in response.source_nodes] == [
        (n.node.node_id, n.score) for n in expected
    ]
    assert expected[0].node.get_content() in str(response)  # the context reached the LLM
    asynchronous = await engine.aquery(QUERY)
    assert [n.node.node_id for n in asynchronous.source_nodes] == [n.node.node_id for n in expected]


@pytest.fixture
def real_nodes() -> Iterator[tuple[list[TextNode], list[str]]]:
    docs, queries = cranfield(15)
    yield (
        [
            TextNode(text=d["text"], id_=f"cranfield-{d['_id']}", metadata={"title": d["title"]})
            for d in docs
        ],
        queries,
    )


@pytest.mark.integration
def test_real_li_query_engine(
    real_model: ColBERT, real_nodes: tuple[list[TextNode], list[str]]
) -> None:
    nodes, queries = real_nodes
    before = copy.deepcopy(nodes)
    retriever = LIRetriever.from_nodes(nodes, model=real_model, similarity_top_k=3)
    response = _engine(retriever).query(queries[0])
    got = response.source_nodes
    assert len(got) == 3
    texts = [n.get_content(MetadataMode.EMBED) for n in nodes]
    scores = real_model.score(queries[0], texts)
    best = [nodes[i].node_id for i in np.argsort(-scores, kind="stable")[:3]]
    assert [n.node.node_id for n in got] == best
    np.testing.assert_allclose([n.score for n in got], np.sort(scores)[::-1][:3], rtol=1e-5)
    assert nodes == before


def test_lc_from_texts_refuses_a_single_string(tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="list of strings"):
        LCRetriever.from_texts("one text", model=tiny_model)
