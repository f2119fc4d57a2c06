"""Metadata filters through both framework retrievers: LangChain's ``filter`` search kwarg
and LlamaIndex's ``MetadataFilters``, on the in-process index and on Qdrant local mode
(unit: tiny model)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from pydantic import ValidationError

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import ColBERTIndex, InMemoryIndex, matches_filter
from colbert_plugins.index.qdrant import QdrantIndex
from colbert_plugins.langchain.retriever import ColBERTRetriever as LCRetriever
from colbert_plugins.llama_index.retriever import ColBERTRetriever as LIRetriever
from colbert_plugins.llama_index.retriever import metadata_filter

QUERY = "what is the capital of france"
WORDS = ["paris", "france", "berlin", "river", "capital", "model", "dog", "cat", "seine", "map"]
N = 20
TEXTS = [
    " ".join(WORDS[(i * 3 + j * (1 + i // 10)) % 10] for j in range(3 + i % 4)) for i in range(N)
]
IDS = [f"d{i:02d}" for i in range(N)]
METAS: list[dict[str, Any]] = [
    {"source": f"s{i % 4}", "year": 2020 + i % 3, "lang": "fr" if i % 5 == 0 else "en"}
    for i in range(N)
]


def matching(filter: dict[str, Any]) -> set[str]:
    return {i for i, m in zip(IDS, METAS, strict=True) if matches_filter(m, filter)}


@pytest.fixture(params=["memory", "qdrant"])
def index(request: pytest.FixtureRequest, tiny_model: ColBERT) -> Iterator[ColBERTIndex]:
    if request.param == "memory":
        yield InMemoryIndex(tiny_model)
    else:
        # a small prefetch: the filter must restrict the candidates, not just the final cut
        with QdrantIndex(tiny_model, prefetch_limit=2) as qdrant:
            yield qdrant


# == LangChain =================================================================================


def lc_docs() -> list[Document]:
    return [
        Document(page_content=t, id=i, metadata=dict(m))
        for i, t, m in zip(IDS, TEXTS, METAS, strict=True)
    ]


def test_lc_filter_search_kwarg(index: ColBERTIndex) -> None:
    retriever = LCRetriever.from_documents(lc_docs(), index=index, k=4)
    for filter in ({"source": "s1"}, {"year": [2020, 2022], "lang": "en"}, {"lang": "fr"}):
        expected = matching(filter)
        docs = retriever.invoke(QUERY, filter=filter)
        assert len(docs) == min(4, len(expected))
        assert {d.id for d in docs} <= expected
        everything = retriever.invoke(QUERY, k=N, filter=filter)
        assert {d.id for d in everything} == expected
        assert all("relevance_score" in d.metadata for d in everything)
    assert retriever.invoke(QUERY, filter={"source": "nowhere"}) == []


async def test_lc_filter_async(index: ColBERTIndex) -> None:
    retriever = LCRetriever.from_documents(lc_docs(), index=index, k=3)
    sync = retriever.invoke(QUERY, filter={"source": "s2"})
    asynchronous = await retriever.ainvoke(QUERY, filter={"source": "s2"})
    assert [d.id for d in asynchronous] == [d.id for d in sync]
    assert {d.id for d in sync} <= matching({"source": "s2"}) and len(sync) == 3


def test_lc_default_filter_and_per_call_override(tiny_model: ColBERT) -> None:
    retriever = LCRetriever.from_documents(
        lc_docs(), model=tiny_model, k=N, filter={"source": ["s0", "s3"]}
    )
    assert retriever.filter == {"source": ["s0", "s3"]}
    assert {d.id for d in retriever.invoke(QUERY)} == matching({"source": ["s0", "s3"]})
    # a call's own filter replaces the default, as vector store search kwargs do
    assert {d.id for d in retriever.invoke(QUERY, filter={"lang": "fr"})} == matching(
        {"lang": "fr"}
    )
    assert len(retriever.invoke(QUERY, filter={})) == N  # {}: no filter for this call
    retriever.filter = {"year": 2021}
    assert {d.id for d in retriever.invoke(QUERY)} == matching({"year": 2021})
    retriever.filter = None
    assert len(retriever.invoke(QUERY)) == N


def test_lc_bad_filter_is_refused_clearly(tiny_model: ColBERT) -> None:
    retriever = LCRetriever.from_documents(lc_docs(), model=tiny_model, k=3)
    with pytest.raises(InvalidArgumentTypeError, match="filter\\['year'\\]"):
        retriever.invoke(QUERY, filter={"year": {"$gt": 2020}})
    with pytest.raises(InvalidArgumentTypeError, match="mapping"):
        LCRetriever(index=retriever.index, filter="source=s1")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        LCRetriever(index=retriever.index, filter={"": 1})
    with pytest.raises((ValidationError, InvalidArgumentTypeError), match="filter"):
        retriever.filter = {"year": [[2020]]}
    with pytest.raises(InvalidArgumentTypeError, match="k, filter and retrieval_mode"):
        retriever.invoke(QUERY, filters={"year": 2020})  # LlamaIndex's spelling


def test_lc_default_filter_is_a_copy(tiny_model: ColBERT) -> None:
    given = {"source": "s1"}
    retriever = LCRetriever.from_documents(lc_docs(), model=tiny_model, k=N, filter=given)
    given["source"] = "s2"
    assert {d.id for d in retriever.invoke(QUERY)} == matching({"source": "s1"})


# == LlamaIndex ================================================================================


def li_nodes() -> list[TextNode]:
    return [
        TextNode(text=t, id_=i, metadata=dict(m)) for i, t, m in zip(IDS, TEXTS, METAS, strict=True)
    ]


def eq(key: str, value: Any) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=FilterOperator.EQ)


def test_li_metadata_filters(index: ColBERTIndex) -> None:
    filters = MetadataFilters(
        filters=[eq("lang", "en"), MetadataFilter(key="year", value=[2020, 2021], operator="in")]
    )
    retriever = LIRetriever.from_nodes(li_nodes(), index=index, similarity_top_k=5, filters=filters)
    assert retriever.filters is filters
    expected = matching({"lang": "en", "year": [2020, 2021]})
    got = retriever.retrieve(QUERY)
    assert len(got) == 5 and {n.node.node_id for n in got} <= expected
    assert all(n.node.metadata["lang"] == "en" for n in got)
    retriever.similarity_top_k = N
    assert {n.node.node_id for n in retriever.retrieve(QUERY)} == expected


async def test_li_filters_async_and_setter(tiny_model: ColBERT) -> None:
    retriever = LIRetriever.from_nodes(li_nodes(), model=tiny_model, similarity_top_k=N)
    assert retriever.filters is None and len(retriever.retrieve(QUERY)) == N
    retriever.filters = MetadataFilters(filters=[eq("source", "s3")])
    got = await retriever.aretrieve(QUERY)
    assert {n.node.node_id for n in got} == matching({"source": "s3"})
    retriever.filters = MetadataFilters(filters=[eq("source", "none")])
    assert retriever.retrieve(QUERY) == []
    retriever.filters = None
    assert len(retriever.retrieve(QUERY)) == N


def test_li_nested_and_filters(tiny_model: ColBERT) -> None:
    filters = MetadataFilters(
        filters=[
            eq("lang", "en"),
            MetadataFilters(filters=[eq("source", "s1")], condition=FilterCondition.AND),
        ],
        condition=FilterCondition.AND,
    )
    assert metadata_filter(filters) == {"lang": "en", "source": "s1"}
    retriever = LIRetriever.from_nodes(
        li_nodes(), model=tiny_model, similarity_top_k=N, filters=filters
    )
    assert {n.node.node_id for n in retriever.retrieve(QUERY)} == matching(
        {"lang": "en", "source": "s1"}
    )


def test_metadata_filter_conversion() -> None:
    assert metadata_filter(None) is None
    assert metadata_filter(MetadataFilters(filters=[])) is None
    assert metadata_filter(MetadataFilters(filters=[eq("a", 1), eq("b", 2.5), eq("c", "x")])) == {
        "a": 1,
        "b": 2.5,
        "c": "x",
    }
    got = metadata_filter(
        MetadataFilters(filters=[MetadataFilter(key="a", value=["x", "y"], operator="in")])
    )
    assert got == {"a": ("x", "y")}


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        (MetadataFilters(filters=[MetadataFilter(key="y", value=1, operator="!=")]), ["NE", "'y'"]),
        (MetadataFilters(filters=[MetadataFilter(key="y", value=1, operator=">")]), ["GT", "EQ"]),
        (
            MetadataFilters(filters=[MetadataFilter(key="y", value=[1], operator="nin")]),
            ["NIN"],
        ),
        (MetadataFilters(filters=[eq("a", 1), eq("b", 2)], condition="or"), ["OR", "AND"]),
        (MetadataFilters(filters=[eq("a", 1)], condition="not"), ["NOT"]),
        (MetadataFilters(filters=[eq("a", 1), eq("a", 2)]), ["'a'", "more than once"]),
        (MetadataFilters(filters=[eq("a", [1, 2])]), ["EQ", "IN"]),
        (MetadataFilters(filters=[MetadataFilter(key="a", value=1, operator="in")]), ["list"]),
    ],
)
def test_li_unsupported_filters_are_refused(
    tiny_model: ColBERT, filters: MetadataFilters, words: list[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        metadata_filter(filters)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(InvalidArgumentError):
        LIRetriever(InMemoryIndex(tiny_model), filters=filters)


def test_li_filters_must_be_metadata_filters(tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="MetadataFilters"):
        LIRetriever(InMemoryIndex(tiny_model), filters={"a": 1})  # type: ignore[arg-type]
    retriever = LIRetriever(InMemoryIndex(tiny_model))
    with pytest.raises(InvalidArgumentTypeError, match="MetadataFilters"):
        retriever.filters = [eq("a", 1)]  # type: ignore[assignment]
    assert retriever.filters is None
