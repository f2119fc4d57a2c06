"""The exact index's scoring kernel (segmented_maxsim_batch: float16 conversion, one pass for
several queries) and the batch search API (search_batch, search_vectors_batch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import InMemoryIndex
from colbert_plugins.index.qdrant import QdrantIndex
from colbert_plugins.scoring import (
    _BlockConverter,
    maxsim,
    segmented_maxsim,
    segmented_maxsim_batch,
)
from corpus import TEXTS

# -- the kernel --------------------------------------------------------------------------------


def reference(queries: list[np.ndarray], docs: list[np.ndarray]) -> np.ndarray:
    """Plain per-pair MaxSim (no blocks, no batching): -inf for empty docs, else 0 for empty
    queries."""
    out = np.empty((len(queries), len(docs)), dtype=np.float64)
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            out[i, j] = maxsim(q, d) if len(q) or not len(d) else 0.0
    return out


def ragged(rng: np.random.Generator, lengths: list[int], dim: int) -> list[np.ndarray]:
    return [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]


DOC_LENGTHS = [5, 0, 1, 12, 3, 0, 8, 2, 30, 1, 0]


@pytest.mark.parametrize("block_tokens", [1, 3, 7, 64, 4096])
@pytest.mark.parametrize(
    "query_lengths",
    [[4], [4, 4, 4], [3, 0, 7, 1], [40, 40], [33, 40, 5]],  # the last two: > 64 vectors
    ids=["one", "same-width", "ragged-with-empty", "wide", "wide-ragged"],
)
def test_batch_equals_per_pair_maxsim(block_tokens: int, query_lengths: list[int]) -> None:
    rng = np.random.default_rng(block_tokens + sum(query_lengths))
    docs = ragged(rng, DOC_LENGTHS, 6)
    queries = ragged(rng, query_lengths, 6)
    offsets = np.concatenate([[0], np.cumsum(DOC_LENGTHS)]).astype(np.int64)
    matrix = np.concatenate(docs)
    got = segmented_maxsim_batch(queries, matrix, offsets, block_tokens=block_tokens)
    assert got.shape == (len(queries), len(docs)) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(queries, docs), rtol=1e-5, atol=1e-5)
    assert np.all(got[:, [1, 5, 10]] == -np.inf)
    for i, q in enumerate(queries):  # the one-query entry point agrees with its batch row
        np.testing.assert_allclose(
            segmented_maxsim(q, matrix, offsets, block_tokens), got[i], rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("scale", [1.0, 2.0**15])  # 2**15: too large to fold the bias in
@pytest.mark.parametrize("query_lengths", [[4], [40, 40]])
def test_float16_is_scored_as_its_exact_float32_copy(
    scale: float, query_lengths: list[int]
) -> None:
    rng = np.random.default_rng(7)
    docs = ragged(rng, DOC_LENGTHS, 6)
    offsets = np.concatenate([[0], np.cumsum(DOC_LENGTHS)]).astype(np.int64)
    half = np.concatenate(docs).astype(np.float16)
    half[0, :3] = [6e-8, -3e-5, -0.0]  # subnormals and a negative zero
    queries = [q * np.float32(scale) for q in ragged(rng, query_lengths, 6)]
    got = segmented_maxsim_batch(queries, half, offsets, block_tokens=8)
    expected = segmented_maxsim_batch(queries, half.astype(np.float32), offsets, block_tokens=8)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_float16_conversion_is_exact_for_every_finite_value() -> None:
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16)
    finite = values[np.isfinite(values)].reshape(-1, 4)  # 63,488 values = 15,872 rows of 4
    expected = finite.astype(np.float32)
    converter = _BlockConverter(np.dtype(np.float16), 4)
    got = converter(finite)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # -0.0 included
    converter.rescale = False  # the caller folds 2**112 into the query
    raw = converter(finite).astype(np.float64) * 2.0**112
    assert np.array_equal(raw, expected.astype(np.float64))


def test_kernel_edge_cases() -> None:
    offsets = np.array([0, 2, 2], dtype=np.int64)
    vectors = np.ones((2, 3), dtype=np.float16)
    assert segmented_maxsim_batch([], vectors, offsets).shape == (0, 2)
    empty_query = np.zeros((0, 3), np.float32)
    assert segmented_maxsim_batch([empty_query], vectors, offsets).tolist() == [[0.0, -np.inf]]
    none = segmented_maxsim_batch([np.ones((2, 3), np.float32)], vectors[:0], np.zeros(1, int))
    assert none.shape == (1, 0)


# -- the index API -----------------------------------------------------------------------------

QUERIES = ["what is the capital of france", "the lazy dog", "a river", "x"]


def same_hits(got: list[Any], expected: list[Any], rtol: float = 1e-6) -> None:
    assert [h.id for h in got] == [h.id for h in expected]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], rtol=rtol)
    assert [(h.text, h.metadata) for h in got] == [(h.text, h.metadata) for h in expected]


@pytest.fixture(params=["float32", "float16"])
def index(request: pytest.FixtureRequest, tiny_model: ColBERT) -> InMemoryIndex:
    idx = InMemoryIndex(tiny_model, dtype=request.param)
    idx.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))], metadatas=[{"i": i} for i in range(8)])
    return idx


def test_search_batch_equals_one_search_per_query(index: InMemoryIndex) -> None:
    batch = index.search_batch(QUERIES, k=5)
    assert len(batch) == len(QUERIES)
    for query, hits in zip(QUERIES, batch, strict=True):
        same_hits(hits, index.search(query, k=5))
    filtered = index.search_batch(QUERIES, k=3, filter={"i": [1, 2, 6]})
    for query, hits in zip(QUERIES, filtered, strict=True):
        same_hits(hits, index.search(query, k=3, filter={"i": [1, 2, 6]}))
        assert {h.id for h in hits} <= {"d1", "d2", "d6"}


def test_search_vectors_batch_takes_a_list_or_a_3d_array(index: InMemoryIndex) -> None:
    vectors = index.model.encode_queries(["the lazy dog", "a river", "paris"])
    assert len({v.shape for v in vectors}) == 1  # query_length each: they stack
    singles = [index.search_vectors(v, k=4) for v in vectors]
    for got in (
        index.search_vectors_batch(vectors, k=4),
        index.search_vectors_batch(np.stack(vectors), k=4),
    ):
        for hits, expected in zip(got, singles, strict=True):
            same_hits(hits, expected)
    # queries of different lengths (e.g. longer than query_length) in one batch
    ragged = [vectors[0], np.concatenate([vectors[1], vectors[2]])]
    got = index.search_vectors_batch(ragged, k=4)
    for hits, query in zip(got, ragged, strict=True):
        same_hits(hits, index.search_vectors(query, k=4))


def test_batch_normalized_scores_are_per_query(tiny_model_dir: Any) -> None:
    model = ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, threads=1, cache=False, normalize_scores=True
    )
    idx = InMemoryIndex(model)
    idx.add(TEXTS)
    short = model.encode_queries(["paris"])[0]
    long = np.concatenate([short, short, short])  # 3x the vectors, same normalized scores
    a, b = idx.search_vectors_batch([short, long], k=3)
    same_hits(b, a, rtol=1e-5)
    assert all(-1.0 <= h.score <= 1.0 for h in a)


def test_batch_edge_cases(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    assert idx.search_batch([], k=3) == []
    assert idx.search_batch(["a", "b"], k=3) == [[], []]  # empty index
    idx.add(TEXTS)
    assert idx.search_batch([]) == []
    assert idx.search_vectors_batch([], k=3) == []
    assert idx.search_batch(["paris"], filter={"nope": 1}) == [[]]


def test_batch_arguments_are_checked(tiny_model: ColBERT) -> None:
    idx = InMemoryIndex(tiny_model)
    idx.add(TEXTS)
    one = tiny_model.encode_queries(["paris"])[0]
    with pytest.raises(InvalidArgumentError, match="use search_vectors"):
        idx.search_vectors_batch(one)
    with pytest.raises(InvalidArgumentError, match="shape"):
        idx.search_vectors_batch([one[:, :3]])
    with pytest.raises(InvalidArgumentTypeError, match="list"):
        idx.search_vectors_batch("paris")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="use search"):
        idx.search_batch("paris")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="queries\\[1\\]"):
        idx.search_batch(["paris", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        idx.search_batch(["paris"], k=0)
    with pytest.raises(InvalidArgumentTypeError, match="filter"):
        idx.search_vectors_batch([one], filter=["x"])  # type: ignore[arg-type]


def test_other_backends_batch_through_the_default(tiny_model: ColBERT) -> None:
    with QdrantIndex(tiny_model, prefetch_limit=None) as qdrant:
        qdrant.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
        batch = qdrant.search_batch(QUERIES[:3], k=3, filter=None)
        for query, hits in zip(QUERIES[:3], batch, strict=True):
            same_hits(hits, qdrant.search(query, k=3), rtol=1e-5)


def test_blas_threads_are_capped_during_a_search_and_restored_after() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    from colbert_plugins import scoring

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen: list[list[int]] = []
    real = scoring._segmented_maxsim_batch

    def spy(*args: object) -> object:
        seen.append(blas_threads())
        return real(*args)  # type: ignore[arg-type]

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    offsets = np.array([0, 10, 25, 40])
    query = rng.standard_normal((4, 8)).astype(np.float32)
    original = scoring._segmented_maxsim_batch
    scoring._segmented_maxsim_batch = spy  # type: ignore[assignment]
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # the caller's own setting
            before = blas_threads()
            capped = scoring.segmented_maxsim_batch([query], vectors, offsets)
            left = scoring.segmented_maxsim_batch([query], vectors, offsets, blas_threads=None)
            after = blas_threads()
    finally:
        scoring._segmented_maxsim_batch = original  # type: ignore[assignment]
    assert before and set(before) == {2}
    assert seen[0] == [1] * len(before) and seen[1] == before
    assert after == before
    np.testing.assert_array_equal(capped, left)
