"""Metadata filters: the spec (check_filter, matches_filter) and every backend applying it
before the top-k cut (InMemoryIndex, QdrantIndex in qdrant-client local mode; unit: tiny model).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import (
    ColBERTIndex,
    InMemoryIndex,
    check_filter,
    filter_predicate,
    matches_filter,
)
from colbert_plugins.index.qdrant import QdrantIndex, qdrant_filter

# -- the spec ----------------------------------------------------------------------------------


def test_check_filter_normalizes() -> None:
    assert check_filter(None) is None
    assert check_filter({}) is None
    assert check_filter({"a": "x", "b": 2, "c": 1.5, "d": True, "e": None}) == {
        "a": "x",
        "b": 2,
        "c": 1.5,
        "d": True,
        "e": None,
    }
    # collections become tuples, duplicates (JSON-equal) dropped, order kept
    assert check_filter({"a": ["x", "y", "x"], "b": (1, 1.0, True)}) == {
        "a": ("x", "y"),
        "b": (1, True),
    }
    assert check_filter({"a": frozenset(["x"])}) == {"a": ("x",)}
    assert check_filter({"a": []}) == {"a": ()}
    # numpy scalars become Python scalars
    checked = check_filter({"a": np.int64(3), "b": np.bool_(True), "c": [np.float32(0.5)]})
    assert checked == {"a": 3, "b": True, "c": (0.5,)}
    assert checked is not None and type(checked["a"]) is int and type(checked["b"]) is bool


def test_check_filter_does_not_mutate_the_callers_filter() -> None:
    given = {"a": ["x", "x"]}
    check_filter(given)
    assert given == {"a": ["x", "x"]}


@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        (["a", "b"], InvalidArgumentTypeError, ["mapping", "list"]),
        ("a=b", InvalidArgumentTypeError, ["mapping", "str"]),
        ({1: "x"}, InvalidArgumentTypeError, ["field names", "1"]),
        ({"": "x"}, InvalidArgumentError, ["non-empty"]),
        ({"a": {"$eq": 1}}, InvalidArgumentTypeError, ["filter['a']", "dict", "JSON scalar"]),
        ({"a": ["x", ["y"]]}, InvalidArgumentTypeError, ["filter['a'] contains", "nested"]),
        ({"a": object()}, InvalidArgumentTypeError, ["filter['a']", "object"]),
        ({"a": b"x"}, InvalidArgumentTypeError, ["filter['a']", "bytes"]),
        ({"a": math.nan}, InvalidArgumentError, ["filter['a']", "NaN"]),
        ({"a": [1, math.inf]}, InvalidArgumentError, ["filter['a']", "inf"]),
    ],
)
def test_check_filter_refuses_with_a_clear_error(bad: Any, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        check_filter(bad)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("metadata", "filter", "expected"),
    [
        ({"a": "x"}, {"a": "x"}, True),
        ({"a": "x"}, {"a": "y"}, False),
        ({"a": "x"}, {"b": "x"}, False),  # missing field never matches
        ({}, {"a": None}, False),  # ... not even None
        ({"a": None}, {"a": None}, True),
        ({"a": 0}, {"a": None}, False),
        ({"a": 1}, {"a": 1.0}, True),  # numbers by value
        ({"a": 1.0}, {"a": 1}, True),
        ({"a": 1}, {"a": True}, False),  # bool is not a number (JSON)
        ({"a": True}, {"a": 1}, False),
        ({"a": False}, {"a": 0}, False),
        ({"a": 0}, {"a": False}, False),
        ({"a": True}, {"a": True}, True),
        ({"a": "1"}, {"a": 1}, False),  # no string/number coercion
        ({"a": 1}, {"a": "1"}, False),
        ({"a": ["x", "y"]}, {"a": "y"}, True),  # a list field matches by any element
        ({"a": ("x", "y")}, {"a": "z"}, False),
        ({"a": [1, None]}, {"a": None}, True),
        ({"a": {"b": 1}}, {"a": 1}, False),  # objects are never equal to a scalar
        ({"a": [[1]]}, {"a": 1}, False),  # only one level of list is unwrapped
        ({"a": "x"}, {"a": ["y", "x"]}, True),  # membership
        ({"a": 2}, {"a": [1, 3]}, False),
        ({"a": "x"}, {"a": []}, False),  # empty membership matches nothing
        ({"a": ["p", "q"]}, {"a": ["z", "q"]}, True),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),  # AND
        ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
        ({"a.b": 1}, {"a.b": 1}, True),  # keys are literal field names
        ({"a": {"b": 1}}, {"a.b": 1}, False),
    ],
)
def test_matches_filter(metadata: dict[str, Any], filter: dict[str, Any], expected: bool) -> None:
    checked = check_filter(filter)
    assert matches_filter(metadata, checked) is expected
    assert filter_predicate(checked)(metadata) is expected


def test_no_filter_matches_everything() -> None:
    assert matches_filter({}, None) and matches_filter({"a": 1}, {})


# -- backends ----------------------------------------------------------------------------------

WORDS = ["paris", "france", "berlin", "river", "capital", "model", "dog", "cat", "seine", "map"]
N_DOCS = 24
TEXTS = [
    " ".join(WORDS[(i * 7 + j * (1 + i // 10)) % len(WORDS)] for j in range(3 + i % 5))
    for i in range(N_DOCS)
]
IDS = [f"d{i:02d}" for i in range(N_DOCS)]
METADATAS: list[dict[str, Any]] = [
    {
        "group": i % 4,
        "lang": ["en", "fr", "de"][i % 3],
        "tags": ["even" if i % 2 == 0 else "odd", f"t{i % 5}"],
        "flag": [True, 1, False, 0][i % 4],  # bools and ints that Python would confuse
        "weight": float(i % 3),  # stored as floats: 0.0, 1.0, 2.0
        "maybe": None if i % 6 == 0 else "set",
        **({"rare": "yes"} if i in (5, 17) else {}),
        "odd.key": f"v{i % 2}",
    }
    for i in range(N_DOCS)
]
QUERIES = ["capital of france", "the river seine in paris", "a dog and a cat"]

FILTERS: list[dict[str, Any]] = [
    {"group": 1},
    {"lang": "fr"},
    {"lang": ["fr", "de"]},
    {"tags": "even"},
    {"tags": ["t1", "t3"]},
    {"group": [0, 2], "lang": "en"},
    {"flag": True},
    {"flag": 1},
    {"flag": [False, 0]},
    {"weight": 1},  # int filter, float field
    {"weight": [0.0, 2]},
    {"maybe": None},
    {"maybe": ["set", None]},
    {"rare": "yes"},
    {"odd.key": "v1"},
]


def expected_ids(index: InMemoryIndex, query: str, filter: dict[str, Any], k: int) -> list[str]:
    """The top k of the unfiltered exact ranking, restricted to matching documents."""
    everything = index.search(query, k=N_DOCS)
    kept = [h.id for h in everything if matches_filter(h.metadata, check_filter(filter))]
    return kept[:k]


@pytest.fixture(scope="module")
def exact(tiny_model: ColBERT) -> InMemoryIndex:
    index = InMemoryIndex(tiny_model)
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    return index


@pytest.fixture(
    scope="module",
    params=["memory", "memory-fp16", "qdrant-full", "qdrant-prefetch", "qdrant-server"],
)
def backend(request: pytest.FixtureRequest, tiny_model: ColBERT) -> Iterator[ColBERTIndex]:
    index: ColBERTIndex
    if request.param == "memory":
        index = InMemoryIndex(tiny_model)
    elif request.param == "memory-fp16":
        index = InMemoryIndex(tiny_model, dtype="float16")
    elif request.param == "qdrant-full":
        index = QdrantIndex(tiny_model, prefetch_limit=None, retrieval_mode="colbert")
    elif request.param == "qdrant-server":
        # The server API (qdrant-client's local mode emulates it), with a small prefetch.
        index = QdrantIndex(
            tiny_model, client=QdrantClient(":memory:"), prefetch_limit=2, retrieval_mode="colbert"
        )
    else:
        # 2 candidates from the fixed vector: unless the filter also restricts the prefetch,
        # most filtered searches would come back short.
        index = QdrantIndex(tiny_model, prefetch_limit=2, fixed="mean", retrieval_mode="colbert")
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    yield index
    if isinstance(index, QdrantIndex):
        index.close()


@pytest.mark.parametrize("filter", FILTERS, ids=[repr(f) for f in FILTERS])
def test_filtered_search_returns_k_matching_documents(
    backend: ColBERTIndex, exact: InMemoryIndex, filter: dict[str, Any]
) -> None:
    matching = [i for i, m in zip(IDS, METADATAS, strict=True) if matches_filter(m, filter)]
    assert matching, "every filter in FILTERS matches some documents"
    for k in (1, 3, len(matching), len(matching) + 5):
        hits = backend.search(QUERIES[0], k=k, filter=filter)
        assert len(hits) == min(k, len(matching))
        assert {h.id for h in hits} <= set(matching)
        assert all(matches_filter(h.metadata, check_filter(filter)) for h in hits)
        if not (isinstance(backend, QdrantIndex) and backend.prefetch_limit is not None):
            # exact backends: the filtered top k is the exact ranking restricted to matches
            assert [h.id for h in hits] == expected_ids(exact, QUERIES[0], filter, k)
    # with k = all matching documents, every one of them comes back
    hits = backend.search(QUERIES[1], k=len(matching), filter=filter)
    assert sorted(h.id for h in hits) == sorted(matching)


def test_filtered_scores_equal_unfiltered_scores(
    backend: ColBERTIndex, exact: InMemoryIndex
) -> None:
    for query in QUERIES:
        hits = backend.search(query, k=5, filter={"lang": "de"})
        reference = {h.id: h.score for h in exact.search(query, k=N_DOCS)}
        tolerance = 2e-3 if getattr(backend, "dtype", None) == np.float16 else 1e-5
        for hit in hits:
            assert hit.score == pytest.approx(reference[hit.id], rel=tolerance, abs=tolerance)


@pytest.mark.parametrize(
    "filter",
    [{"group": 9}, {"lang": "it"}, {"nope": "x"}, {"lang": []}, {"flag": "True"}, {"rare": None}],
)
def test_filter_matching_nothing_returns_nothing(
    backend: ColBERTIndex, filter: dict[str, Any]
) -> None:
    assert backend.search(QUERIES[0], k=5, filter=filter) == []
    vectors = backend.model.encode_queries([QUERIES[0]])[0]
    assert backend.search_vectors(vectors, k=5, filter=filter) == []


def test_bool_and_int_are_distinct_in_every_backend(backend: ColBERTIndex) -> None:
    true_ids = {h.id for h in backend.search(QUERIES[0], k=N_DOCS, filter={"flag": True})}
    one_ids = {h.id for h in backend.search(QUERIES[0], k=N_DOCS, filter={"flag": 1})}
    assert true_ids == {IDS[i] for i in range(N_DOCS) if i % 4 == 0}
    assert one_ids == {IDS[i] for i in range(N_DOCS) if i % 4 == 1}


def test_search_vectors_takes_the_filter(backend: ColBERTIndex) -> None:
    vectors = backend.model.encode_queries([QUERIES[2]])[0]
    by_text = backend.search(QUERIES[2], k=4, filter={"group": 3})
    by_vectors = backend.search_vectors(vectors, k=4, filter={"group": 3})
    assert [h.id for h in by_vectors] == [h.id for h in by_text]
    assert len(by_vectors) == 4


def test_bad_filter_is_refused_before_searching(backend: ColBERTIndex) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="filter\\['group'\\]"):
        backend.search(QUERIES[0], filter={"group": {"$in": [1]}})
    vectors = backend.model.encode_queries([QUERIES[0]])[0]
    with pytest.raises(InvalidArgumentTypeError, match="mapping"):
        backend.search_vectors(vectors, filter=[("group", 1)])  # type: ignore[arg-type]


def test_filter_on_an_empty_index(tiny_model: ColBERT) -> None:
    assert InMemoryIndex(tiny_model).search("x", filter={"a": 1}) == []
    with QdrantIndex(tiny_model) as index:
        assert index.search("x", filter={"a": 1}) == []


def test_filter_sees_deletes_and_replacements(tiny_model: ColBERT) -> None:
    for index in (InMemoryIndex(tiny_model), QdrantIndex(tiny_model, prefetch_limit=None)):
        index.add(TEXTS[:6], ids=IDS[:6], metadatas=METADATAS[:6])
        index.delete([IDS[1]])
        index.add([TEXTS[2]], ids=[IDS[2]], metadatas=[{"group": 7}])  # replaced metadata
        assert {h.id for h in index.search("paris", k=10, filter={"group": 1})} == {IDS[5]}
        assert [h.id for h in index.search("paris", k=10, filter={"group": 7})] == [IDS[2]]
        assert index.search("paris", k=10, filter={"group": 2}) == []


# -- the Qdrant translation --------------------------------------------------------------------


def test_qdrant_filter_shapes() -> None:
    built = qdrant_filter({"lang": "fr", "n": 2, "tags": ["a", "b"], "x": None, "f": True})
    assert built.must is not None
    by_key = {getattr(c, "key", None): c for c in built.must}
    assert by_key["metadata.lang"].match == models.MatchValue(value="fr")
    assert by_key["metadata.n"].range == models.Range(gte=2, lte=2)
    assert by_key["metadata.tags"].match == models.MatchAny(any=["a", "b"])
    # Booleans match the payload's "bools" keywords (Qdrant Edge 0.9 never matches a bool).
    assert by_key["bools.f"].match == models.MatchValue(value="true")
    assert any(isinstance(c, models.IsNullCondition) for c in built.must)
    mixed = qdrant_filter({"a": ["x", 1, True, None]}).must
    assert mixed is not None and isinstance(mixed[0], models.Filter)
    assert mixed[0].should is not None and len(mixed[0].should) == 4
    assert qdrant_filter({"a.b": 1}).must[0].key == 'metadata."a.b"'  # type: ignore[index,union-attr]
    huge = 2**60
    assert qdrant_filter({"a": huge}).must[0].match == models.MatchValue(value=huge)  # type: ignore[index,union-attr]


def test_qdrant_refuses_a_key_it_cannot_express(tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentError, match="double quote"):
        qdrant_filter({'a"b': 1})
    with QdrantIndex(tiny_model) as index:
        index.add(["x"], metadatas=[{'a"b': 1}])
        with pytest.raises(InvalidArgumentError, match="double quote"):
            index.search("x", filter={'a"b': 1})
