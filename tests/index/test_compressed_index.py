"""Tests for CompressedIndex: recall against exact MaxSim, filters, add/delete/replace,
persistence (reopen, compaction, a writer killed mid-commit), refusal of foreign indexes, and
both retrievers on it. Tiny model for unit tests; the real model (integration) for recall."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import (
    CompressedIndex,
    IndexFormatError,
    IndexMismatchError,
    InMemoryIndex,
    UnknownIdError,
)
from colbert_plugins.index.codec import ResidualCodec
from colbert_plugins.langchain.retriever import ColBERTRetriever as LCRetriever
from colbert_plugins.llama_index.retriever import ColBERTRetriever as LIRetriever
from corpus import cranfield

pytest.importorskip("faiss")

WORDS = [
    "the",
    "a",
    "city",
    "capital",
    "paris",
    "france",
    "london",
    "england",
    "berlin",
    "germany",
    "river",
    "seine",
    "thames",
    "cat",
    "dog",
    "sat",
    "mat",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "hello",
    "world",
    "search",
    "query",
    "document",
    "text",
    "vector",
    "model",
    "late",
    "interaction",
    "colbert",
    "token",
]
TESTS = pathlib.Path(__file__).resolve().parent


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(4, 24)))) for _ in range(n)]


@pytest.fixture
def index(tiny_model: ColBERT, tmp_path: pathlib.Path) -> CompressedIndex:
    idx = CompressedIndex(tiny_model, tmp_path / "idx")
    texts = random_texts(120)
    idx.add(texts, ids=[f"d{i}" for i in range(120)], metadatas=[{"g": i % 4} for i in range(120)])
    return idx


# -- codec -------------------------------------------------------------------------------------


def test_codec_round_trip_is_close() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codec = ResidualCodec.train(vectors, 16, nbits=2)
    ids, codes = codec.encode(vectors)
    assert codes.shape == (4000, 8) and codes.dtype == np.uint8 and ids.dtype == np.uint16
    decoded = codec.decode(ids, codes)
    cosine = (decoded * vectors).sum(axis=1)
    centroid_only = (codec.centroids[ids.astype(int)] * vectors).sum(axis=1)
    assert cosine.mean() > 0.85
    assert cosine.mean() > centroid_only.mean() + 0.1  # the residual codes carry information


def test_codec_scales_unit_norm_and_similarities_without_decoding() -> None:
    """The stored scale bytes make decoded vectors unit-norm (to the bytes' 0.27%), close
    to exact renormalization; scoring from codes equals scoring the decoded vectors."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codec = ResidualCodec.train(vectors, 16, nbits=2)
    ids, codes = codec.encode(vectors)
    scales = codec.scales(ids, codes)
    assert scales.dtype == np.uint8 and scales.shape == (3000,)
    assert len(np.unique(scales)) > 3  # the norms vary, and so do their bytes
    scaled = codec.decode(ids, codes, scales)
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), 1.0, atol=0.003)
    renormalized = codec.decode(ids, codes)
    assert float(np.abs(scaled - renormalized).max()) < 0.003
    query = rng.standard_normal((5, 32)).astype(np.float32)
    np.testing.assert_allclose(
        codec.centroid_scores(query), query @ codec.centroids.T, rtol=1e-5, atol=1e-5
    )
    sims = codec.similarities(query, codec.centroid_scores(query), ids, codes, scales)
    np.testing.assert_allclose(sims, query @ scaled.T, rtol=1e-5, atol=1e-5)


def test_quantize_scales_round_trip() -> None:
    from colbert_plugins.index.codec import SCALES, quantize_scales

    values = np.linspace(0.55, 1.9, 500)
    decoded = SCALES[quantize_scales(values)]
    assert float(np.abs(decoded / values - 1).max()) <= 0.0028
    assert quantize_scales([0.1, 5.0]).tolist() == [0, 255]  # clipped, not wrapped


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_codec_faiss_and_numpy_encoders_agree(nbits: int) -> None:
    """The faiss encoder (used when faiss is installed) and the numpy fallback pick the same
    codebook entries, so an index written with either decodes the same."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codec = ResidualCodec.train(vectors, 16, nbits=nbits)
    assert codec._faiss_encoder() is not None
    ids, codes = codec.encode(vectors)
    residuals = vectors - codec.centroids[ids.astype(np.intp)]
    fallback = codec._numpy_codes(residuals)
    assert fallback.shape == codes.shape == (3000, 32 * nbits // 8)
    assert (fallback == codes).mean() > 0.999  # float ties aside


def test_without_faiss_an_index_takes_documents_but_cannot_be_created(
    tiny_model: ColBERT, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faiss trains the centroids; after that, adds and searches run on numpy alone."""
    first = CompressedIndex(tiny_model, tmp_path / "idx")
    first.add(random_texts(60, seed=5), ids=[f"d{i}" for i in range(60)])
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    reopened = CompressedIndex(tiny_model, tmp_path / "idx")
    reopened.add(["paris is the capital of france"], ids=["new"])
    itself = tiny_model.encode_documents(["paris is the capital of france"])[0]
    assert reopened.search_vectors(itself, k=1)[0].id == "new"
    assert len(CompressedIndex(tiny_model, tmp_path / "idx")) == 61
    with pytest.raises(ImportError, match=r"colbert-plugins\[index\]"):
        CompressedIndex(tiny_model, tmp_path / "other").add(["a text"])


def _clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_two_level_codec_partitions_centroids_and_assigns_near_exactly() -> None:
    from colbert_plugins.index import codec as codec_module

    vectors = _clustered(60_000, 32, 300, seed=2)
    codec = ResidualCodec.train(vectors, 1024, nbits=2)
    assert codec.coarse is not None and codec.cell_offsets is not None
    k = len(codec.centroids)
    assert 0.9 * 1024 <= k <= 1024  # about k, never more (the ids stay 2 bytes)
    offsets = codec.cell_offsets
    assert offsets[0] == 0 and offsets[-1] == k and (np.diff(offsets) > 0).all()
    assert len(codec.coarse) == len(offsets) - 1
    near = codec.assign(vectors)
    exact = codec_module.assign(codec.centroids, vectors)
    assert (near == exact).mean() > 0.9
    sims = (vectors * codec.centroids[near]).sum(axis=1)
    best = (vectors * codec.centroids[exact]).sum(axis=1)
    assert sims.mean() > best.mean() - 0.01  # a missed nearest centroid is a near one
    decoded = codec.decode(*codec.encode(vectors))
    assert (decoded * vectors).sum(axis=1).mean() > 0.9


@pytest.mark.parametrize(
    ("k", "counts"),
    [(10, [5, 0, 5]), (7, [1, 1, 1, 100]), (3, [10, 10, 10, 10, 10]), (50, [2, 3, 4])],
)
def test_apportion_shares(k: int, counts: list[int]) -> None:
    from colbert_plugins.index.codec import _apportion

    c = np.asarray(counts)
    quota = _apportion(k, c)
    assert quota.sum() <= k and (quota <= c).all()
    if (c > 0).sum() <= k:  # room for one centroid in every non-empty cell
        assert ((quota >= 1) == (c > 0)).all()
    assert quota.sum() == min(k, int(c.sum()))


def test_two_level_index_persists_and_searches_like_before(
    tiny_model: ColBERT, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colbert_plugins.index import codec as codec_module

    monkeypatch.setattr(codec_module, "TWO_LEVEL_MIN", 4)
    idx = CompressedIndex(tiny_model, tmp_path / "idx", ncentroids=16)
    idx.add(random_texts(80, seed=7), ids=[f"d{i}" for i in range(80)])
    snap = idx._snapshot
    assert snap.codec is not None and snap.codec.coarse is not None
    query = tiny_model.encode_queries(["paris capital of france"])[0]
    before = idx.search_vectors(query, k=5)
    reopened = CompressedIndex(tiny_model, tmp_path / "idx")
    codec = reopened._snapshot.codec
    assert codec is not None and codec.coarse is not None and codec.cell_offsets is not None
    np.testing.assert_array_equal(codec.cell_offsets, snap.codec.cell_offsets)
    assert reopened.search_vectors(query, k=5) == before
    reopened.add(["the capital of france is paris"], ids=["new"])  # encodes with the cells
    assert "new" in reopened and len(reopened) == 81


@pytest.mark.parametrize(("n", "count"), [(60_918, 5), (4096, 5), (1000, 17), (30, 3), (5, 5)])
def test_top_columns_finds_the_largest_values_of_each_row(n: int, count: int) -> None:
    from colbert_plugins.index.compressed_search import _top_columns

    rng = np.random.default_rng(n)
    scores = rng.standard_normal((8, n)).astype(np.float32)
    scores[0] = 1.0  # ties everywhere
    scores[1, -1] = 99.0  # the largest value in the (short) last block
    got = _top_columns(scores, count)
    assert got.shape == (8, count)
    for row, columns in zip(scores, got, strict=True):
        assert len(set(columns.tolist())) == count  # distinct columns
        np.testing.assert_array_equal(np.sort(row[columns]), np.sort(row)[n - count :])
    assert n - 1 in got[1]


def test_centroids_are_sized_for_the_whole_first_add(
    tiny_model: ColBERT, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training sees the add's first chunk only, but the centroid count is chosen for every
    token vector the add will store (estimated from that chunk), capped by 20 training points
    per centroid."""
    from colbert_plugins.index import codec as codec_module
    from colbert_plugins.index import compressed_write

    monkeypatch.setattr(compressed_write, "TRAIN_DOCUMENTS", 40)
    seen: list[tuple[int, int]] = []
    real_train = ResidualCodec.train.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, sample: np.ndarray, ncentroids: int, *args: Any, **kw: Any) -> Any:
        seen.append((len(sample), ncentroids))
        return real_train(cls, sample, ncentroids, *args, **kw)

    monkeypatch.setattr(ResidualCodec, "train", classmethod(spy))
    texts = random_texts(400, seed=11)
    first = tiny_model.encode_documents(texts[:40])
    first_tokens = sum(len(v) for v in first)
    idx = CompressedIndex(tiny_model, tmp_path / "idx")
    idx.add(texts, ids=[f"d{i}" for i in range(400)])
    assert len(idx) == 400 and len(seen) == 1
    dim = tiny_model.dim
    expected = codec_module.default_centroids(int(first_tokens * 400 / 40), dim)
    assert seen[0][1] == max(1, min(expected, first_tokens // 20))
    # more than sizing for the first chunk alone would give (29 against 14 here)
    assert seen[0][1] > codec_module.default_centroids(first_tokens, dim)


@pytest.mark.parametrize(
    ("tokens", "dim", "expected"),
    [
        (0, 128, 1),
        (1000, 128, 25),  # k-means' 39+ points per centroid bind
        (240_000, 128, 4096),  # the power of two near 8 * sqrt: the table's cost is allowed
        (1_955_905, 128, 11_264),  # 1.5 bytes per token of float16 table bind, multiple of 256
        (1_955_905, 64, 22_272),  # half the bytes per centroid: 16 * sqrt binds (22,377)
        (24_000_000, 128, 65_536),  # the 2-byte id cap
    ],
)
def test_default_centroids(tokens: int, dim: int, expected: int) -> None:
    from colbert_plugins.index.codec import default_centroids

    k = default_centroids(tokens, dim)
    assert k == expected
    if k >= 1024:
        assert k % 256 == 0
        assert k * dim * 2 <= max(1.5 * tokens, 2 ** round(np.log2(8 * np.sqrt(tokens))) * dim * 2)


def test_inverted_lists_over_many_chunks_name_each_document_once_in_order(
    tiny_model: ColBERT, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every (centroid, document) pair of the stored tokens is in that centroid's list once,
    lists sorted by document, when an add is written in many chunks."""
    from colbert_plugins.index import base, compressed_write

    monkeypatch.setattr(base, "ADD_CHUNK", 7)
    monkeypatch.setattr(compressed_write, "TRAIN_DOCUMENTS", 30)
    idx = CompressedIndex(tiny_model, tmp_path / "idx")
    idx.add(random_texts(100, seed=13), ids=[f"d{i}" for i in range(100)])
    (seg,) = idx._snapshot.segments
    k = len(seg.ivf_offsets) - 1
    expected: list[set[int]] = [set() for _ in range(k)]
    for doc in range(seg.count):
        for c in np.asarray(seg.centroid_ids[seg.doc_offsets[doc] : seg.doc_offsets[doc + 1]]):
            expected[int(c)].add(doc)
    for c in range(k):
        listed = np.asarray(seg.ivf_pids[seg.ivf_offsets[c] : seg.ivf_offsets[c + 1]]).tolist()
        assert listed == sorted(expected[c])


# -- search ------------------------------------------------------------------------------------


def test_full_probe_equals_maxsim_of_decompressed_vectors(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    """With every centroid probed and every document a candidate, and no exact rerank, the
    ranking is exactly MaxSim over the stored (decompressed) vectors."""
    idx = CompressedIndex(
        tiny_model, tmp_path / "idx", nprobe=10_000, candidates=10_000, rerank=10_000, exact=0
    )
    texts = random_texts(60, seed=3)
    idx.add(texts, ids=[f"d{i}" for i in range(60)])
    query = tiny_model.encode_queries(["paris capital of france"])[0]
    hits = idx.search_vectors(query, k=60)
    vectors = idx.get_vectors([h.id for h in hits])
    expected = [float((query @ v.T).max(axis=1).sum()) for v in vectors]
    np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-4, atol=1e-5)
    assert expected == sorted(expected, reverse=True)
    assert {h.id for h in hits} == {f"d{i}" for i in range(60)}


def _recall(index: CompressedIndex, exact: InMemoryIndex, queries: list[str]) -> float:
    overlap = [
        len({h.id for h in index.search(q, k=10)} & {h.id for h in exact.search(q, k=10)}) / 10
        for q in queries
    ]
    return float(np.mean(overlap))


def test_recall_against_exact_on_tiny_model(index: CompressedIndex, tiny_model: ColBERT) -> None:
    exact = InMemoryIndex(tiny_model)
    exact.add([d.text for d in index.get(index.ids())], ids=index.ids())
    queries = random_texts(20, seed=9)
    codes_only = CompressedIndex(tiny_model, index.path, exact=0)
    # 8-dim vectors quantized to 2 bits per dimension: coarse, but far from random (0.08).
    assert _recall(codes_only, exact, queries) >= 0.6
    # The exact rerank over the float16 originals repairs what the codes mis-rank: the
    # candidate stages keep the exact top 10 among the best 32 by the codes (DEFAULT_EXACT).
    assert _recall(index, exact, queries) >= 0.95 > _recall(codes_only, exact, queries)


def test_exact_rerank_scores_are_maxsim_over_the_originals(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    """Every hit's score is MaxSim over the document's float16 originals (the encoder's
    vectors rounded to float16), and the hits are in that order: the exact ranking."""
    idx = CompressedIndex(tiny_model, tmp_path / "idx", nprobe=10_000, candidates=10_000)
    texts = random_texts(60, seed=3)
    vectors = tiny_model.encode_documents(texts)
    idx.add_vectors(vectors, texts, ids=[f"d{i}" for i in range(60)])
    query = tiny_model.encode_queries(["paris capital of france"])[0]
    hits = idx.search_vectors(query, k=60)
    assert len(hits) == 60  # max(k, exact) covers them all
    half = {f"d{i}": v.astype(np.float16).astype(np.float32) for i, v in enumerate(vectors)}
    expected = [float((query @ half[h.id].T).max(axis=1).sum()) for h in hits]
    np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-6, atol=1e-6)
    full = {f"d{i}": float((query @ v.T).max(axis=1).sum()) for i, v in enumerate(vectors)}
    np.testing.assert_allclose([h.score for h in hits], [full[h.id] for h in hits], atol=1e-2)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # Only the best max(k, exact) by the codes are rescored (so every hit has an exact
    # score): the best by the codes, in exact order.
    by_codes = CompressedIndex(tiny_model, idx.path, nprobe=10_000, candidates=10_000, exact=0)
    few = CompressedIndex(tiny_model, idx.path, nprobe=10_000, candidates=10_000, exact=3)
    for k in (3, 10):
        got = few.search_vectors(query, k=k)
        assert {h.id for h in got} == {h.id for h in by_codes.search_vectors(query, k=k)}
        scores = [float((query @ half[h.id].T).max(axis=1).sum()) for h in got]
        np.testing.assert_allclose([h.score for h in got], scores, rtol=1e-6, atol=1e-6)
        assert scores == sorted(scores, reverse=True)


def _check_originals(index: CompressedIndex, model: ColBERT) -> int:
    """Every live document's stored originals are its vectors from ``model`` in float16;
    return how many documents were checked."""
    docs = index.get(index.ids())
    vectors = model.encode_documents([d.text for d in docs])
    snap = index._snapshot
    for doc, v in zip(docs, vectors, strict=True):
        s, local = snap.positions[doc.id]
        seg = snap.segments[s]
        assert seg.originals is not None
        rows = slice(int(seg.doc_offsets[local]), int(seg.doc_offsets[local + 1]))
        np.testing.assert_allclose(np.asarray(seg.originals[rows], np.float32), v, atol=2e-3)
    return len(docs)


def test_search_results_carry_text_and_metadata(index: CompressedIndex) -> None:
    hits = index.search("paris capital", k=3)
    assert len(hits) == 3
    for hit in hits:
        doc = index.get([hit.id])[0]
        assert (hit.text, hit.metadata) == (doc.text, doc.metadata)
    hits[0].metadata["g"] = "changed"
    assert index.get([hits[0].id])[0].metadata != {"g": "changed"}


def test_bytes_per_token(index: CompressedIndex) -> None:
    # 8 dims at 2 bits: 2 bytes of codes + 2 bytes of centroid id + at most 4 bytes of
    # postings per token, plus the centroids and offsets.
    snap = index._snapshot
    assert snap.codec is not None
    k = len(snap.codec.centroids)
    fixed = k * 8 * 2 + (k + 1) * 8 + (len(index) + 1) * 8  # float16 centroids, offsets
    # codes, centroid id, scale byte, postings
    assert index.vector_bytes() <= index.tokens * (2 + 2 + 1 + 4) + fixed
    assert index.disk_bytes() > index.vector_bytes()


# -- filters -----------------------------------------------------------------------------------


def test_filter_applies_before_the_top_k_cut(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    idx = CompressedIndex(tiny_model, tmp_path / "idx", nprobe=1, candidates=2, rerank=1)
    texts = random_texts(100, seed=5)
    metas = [{"keep": i in (3, 17, 42, 77, 98), "tags": ["x", str(i % 2)]} for i in range(100)]
    idx.add(texts, ids=[f"d{i}" for i in range(100)], metadatas=metas)
    hits = idx.search("paris france", k=5, filter={"keep": True})
    assert sorted(h.id for h in hits) == ["d17", "d3", "d42", "d77", "d98"]
    assert all(h.metadata["keep"] is True for h in hits)
    assert idx.search("paris", k=3, filter={"keep": [False], "tags": "1"})
    assert all(
        h.metadata["tags"][1] == "1" for h in idx.search("paris", k=10, filter={"tags": "1"})
    )
    assert idx.search("paris", k=3, filter={"missing": "nothing"}) == []


def test_filter_equals_filtering_the_full_ranking(
    index: CompressedIndex, tiny_model: ColBERT
) -> None:
    wide = CompressedIndex(tiny_model, index.path, nprobe=10_000, candidates=10_000, rerank=10_000)
    ranking = wide.search("london thames river", k=len(wide))
    for flt, keep in (({"g": 1}, {1}), ({"g": [0, 3]}, {0, 3})):
        got = [h.id for h in wide.search("london thames river", k=20, filter=flt)]
        assert got == [h.id for h in ranking if h.metadata["g"] in keep][:20]


# -- add, delete, replace, reopen ----------------------------------------------------------------


def test_add_delete_replace_and_reopen(index: CompressedIndex, tiny_model: ColBERT) -> None:
    assert len(index) == 120 and "d5" in index
    index.delete(["d5", "d6"])
    assert len(index) == 118 and "d5" not in index
    assert all(h.id not in ("d5", "d6") for h in index.search("paris", k=120))
    with pytest.raises(UnknownIdError):
        index.delete(["d5"])
    index.delete(["d5"], missing_ok=True)
    index.add(["berlin germany river"], ids=["d7"], metadatas=[{"g": "new"}])
    assert len(index) == 118
    assert index.get(["d7"])[0].text == "berlin germany river"
    index.add(["paris seine"], ids=["fresh"])
    reopened = CompressedIndex(tiny_model, index.path)
    assert sorted(reopened.ids()) == sorted(index.ids())
    assert reopened.get(["d7"])[0].metadata == {"g": "new"}
    assert reopened.keeps_originals and _check_originals(reopened, tiny_model) == 119
    query = tiny_model.encode_queries(["paris seine"])[0]
    assert [h.id for h in reopened.search_vectors(query, k=5)] == [
        h.id for h in index.search_vectors(query, k=5)
    ]


def test_compaction_and_segment_merging(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    idx = CompressedIndex(tiny_model, tmp_path / "idx", max_segments=2)
    texts = random_texts(50, seed=1)
    for i in range(5):
        idx.add(texts[i * 10 : (i + 1) * 10], ids=[f"d{j}" for j in range(i * 10, (i + 1) * 10)])
        assert len(idx._snapshot.segments) <= 2
    assert _check_originals(idx, tiny_model) == 50  # merged segments carry their originals
    idx.delete([f"d{j}" for j in range(0, 50, 2)])
    before = idx.search("paris capital", k=10)
    idx.compact()
    assert len(idx._snapshot.segments) == 1 and len(idx) == 25
    assert [h.id for h in idx.search("paris capital", k=10)] == [h.id for h in before]
    assert _check_originals(idx, tiny_model) == 25
    seg = idx._snapshot.segments[0]
    assert (idx.path / seg.name / "originals.f16").stat().st_size == seg.tokens * 8 * 2
    segments = [p for p in idx.path.iterdir() if p.name.startswith("seg-")]
    assert len(segments) == 1  # superseded segment files are removed
    idx.clear()
    assert len(idx) == 0 and idx.search("paris") == []
    assert len(CompressedIndex(tiny_model, idx.path)) == 0


def test_empty_index(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    idx = CompressedIndex(tiny_model, tmp_path / "idx")
    assert len(idx) == 0 and idx.search("paris") == [] and idx.ids() == []
    assert idx.add([]) == []
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_bad_arguments(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match="nbits"):
        CompressedIndex(tiny_model, tmp_path / "a", nbits=3)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="non-empty directory"):
        CompressedIndex(tiny_model, tmp_path / "b")
    with pytest.raises(IndexFormatError, match="no manifest"):
        CompressedIndex.load(tmp_path / "c", tiny_model)
    with pytest.raises(InvalidArgumentError, match="exact"):
        CompressedIndex(tiny_model, tmp_path / "d", exact=-1)
    with pytest.raises(InvalidArgumentTypeError, match="originals"):
        CompressedIndex(tiny_model, tmp_path / "d", originals="yes")  # type: ignore[arg-type]


def test_opting_out_of_originals(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    texts = random_texts(80, seed=4)
    ids = [f"d{i}" for i in range(80)]
    lean = CompressedIndex(tiny_model, tmp_path / "lean", originals=False, max_segments=1)
    lean.add(texts[:40], ids=ids[:40])
    lean.add(texts[40:], ids=ids[40:])  # merged: still without originals
    full = CompressedIndex(tiny_model, tmp_path / "full", max_segments=1)
    full.add(texts[:40], ids=ids[:40])  # the same codec as the lean index
    full.add(texts[40:], ids=ids[40:])
    assert not lean.keeps_originals and lean.original_bytes() == 0
    assert not list(lean.path.rglob("originals.f16"))
    assert json.loads((lean.path / "manifest.json").read_text())["originals"] is False
    assert full.original_bytes() == full.tokens * 8 * 2
    assert abs(full.disk_bytes() - full.original_bytes() - lean.disk_bytes()) < 64  # manifest
    # the opt-out ranks by the codes, as exact=0 does on an index with originals
    codes_only = CompressedIndex(tiny_model, full.path, exact=0)
    for q in random_texts(5, seed=11):
        assert [h.id for h in lean.search(q, k=10)] == [h.id for h in codes_only.search(q, k=10)]
    with pytest.raises(InvalidArgumentError, match="without original vectors"):
        CompressedIndex(tiny_model, lean.path, originals=True)
    with pytest.raises(InvalidArgumentError, match="with original vectors"):
        CompressedIndex(tiny_model, full.path, originals=False)
    assert not CompressedIndex(tiny_model, lean.path).keeps_originals


def test_manifest_and_segments_must_agree_on_originals(
    index: CompressedIndex, tiny_model: ColBERT
) -> None:
    manifest_path = index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["segments"][0]["originals"] = False
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="lacks original vectors"):
        CompressedIndex(tiny_model, index.path)
    seg = manifest["segments"][0]
    seg["originals"] = True
    (index.path / seg["name"] / "originals.f16").write_bytes(b"short")
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match=r"originals\.f16 holds 5 bytes"):
        CompressedIndex(tiny_model, index.path)


# -- foreign indexes ---------------------------------------------------------------------------


def test_stores_float16_centroids_and_scales(index: CompressedIndex, tiny_model: ColBERT) -> None:
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest["format_version"] == 3
    codec_dir = index.path / manifest["codec"]["name"]
    assert manifest["codec"]["centroids"] == "centroids.f16"
    assert (codec_dir / "centroids.f16").is_file() and not (codec_dir / "centroids.f32").exists()
    for seg in manifest["segments"]:
        assert seg["scales"] is True
        assert (index.path / seg["name"] / "scales.u8").stat().st_size == seg["tokens"]
    reopened = CompressedIndex(tiny_model, index.path)
    assert index._snapshot.codec is not None and reopened._snapshot.codec is not None
    np.testing.assert_array_equal(
        reopened._snapshot.codec.centroids, index._snapshot.codec.centroids
    )


def _downgrade_to_version_2(path: pathlib.Path) -> None:
    """Rewrite an index as format version 2 wrote it: no originals."""
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["originals"]
    for seg in manifest["segments"]:
        (path / seg["name"] / "originals.f16").unlink()
        del seg["originals"]
    manifest["format_version"] = 2
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_reads_version_2_and_its_new_segments_keep_no_originals(
    index: CompressedIndex, tiny_model: ColBERT
) -> None:
    query = tiny_model.encode_queries(["paris capital of france"])[0]
    by_codes = CompressedIndex(tiny_model, index.path, exact=0).search_vectors(query, k=10)
    _downgrade_to_version_2(index.path)
    old = CompressedIndex(tiny_model, index.path)
    assert not old.keeps_originals and old.original_bytes() == 0
    assert [(h.id, h.score) for h in old.search_vectors(query, k=10)] == [
        (h.id, h.score) for h in by_codes
    ]
    old.add(["the capital of france is paris"], ids=["new"], metadatas=[{"g": 9}])
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest["format_version"] == 3 and manifest["originals"] is False
    assert [seg["originals"] for seg in manifest["segments"]] == [False, False]
    old.delete(["d1"])
    old.compact()
    assert not list(index.path.rglob("originals.f16")) and len(old) == 120
    reopened = CompressedIndex(tiny_model, index.path)
    assert "new" in {h.id for h in reopened.search_vectors(query, k=len(reopened))}


def _downgrade_to_version_1(path: pathlib.Path) -> None:
    """Rewrite an index as format version 1 wrote it: float32 centroids, no scales."""
    _downgrade_to_version_2(path)
    manifest = json.loads((path / "manifest.json").read_text())
    codec_dir = path / manifest["codec"]["name"]
    dim = manifest["dim"]
    centroids = np.fromfile(codec_dir / "centroids.f16", dtype="<f2").reshape(-1, dim)
    centroids.astype("<f4").tofile(codec_dir / "centroids.f32")
    (codec_dir / "centroids.f16").unlink()
    del manifest["codec"]["centroids"]
    for seg in manifest["segments"]:
        (path / seg["name"] / "scales.u8").unlink()
        del seg["scales"]
    manifest["format_version"] = 1
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_reads_version_1_and_writes_scales_in_new_segments(
    index: CompressedIndex, tiny_model: ColBERT
) -> None:
    query = tiny_model.encode_queries(["paris capital of france"])[0]
    before = CompressedIndex(tiny_model, index.path, exact=0).search_vectors(query, k=10)
    _downgrade_to_version_1(index.path)
    old = CompressedIndex(tiny_model, index.path)
    assert all(seg.scales is None for seg in old._snapshot.segments)
    after = old.search_vectors(query, k=10)
    # renormalized instead of scaled by bytes: the same documents, scores within 0.3%
    assert {h.id for h in after[:5]} == {h.id for h in before[:5]}
    np.testing.assert_allclose(
        sorted(h.score for h in after), sorted(h.score for h in before), rtol=0.003
    )
    old.add(["the capital of france is paris"], ids=["new"])
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest["format_version"] == 3
    assert [seg.get("scales", False) for seg in manifest["segments"]] == [False, True]
    mixed = CompressedIndex(tiny_model, index.path)
    assert "new" in {h.id for h in mixed.search_vectors(query, k=len(mixed))}
    mixed.compact()  # rewrites every segment, with scales
    assert all(seg.scales is not None for seg in mixed._snapshot.segments)
    assert len(mixed) == 121


def test_refuses_other_format_version(index: CompressedIndex, tiny_model: ColBERT) -> None:
    manifest_path = index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="format version 99"):
        CompressedIndex(tiny_model, index.path)


def test_refuses_other_model(index: CompressedIndex, tiny_model_dir: pathlib.Path) -> None:
    other = ColBERT.from_pretrained(tiny_model_dir, document_length=20, cache=False)
    with pytest.raises(IndexMismatchError, match="was built with model"):
        CompressedIndex(other, index.path)
    assert len(CompressedIndex(other, index.path, check_model_key=False)) == 120


def test_refuses_an_in_memory_index(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    exact = InMemoryIndex(tiny_model)
    exact.add(["paris"], ids=["p"])
    exact.save(tmp_path / "exact")
    with pytest.raises(IndexFormatError, match=r"InMemoryIndex\.load"):
        CompressedIndex(tiny_model, tmp_path / "exact")


# -- a writer killed mid-commit ----------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, sys
    from colbert_plugins import ColBERT
    from colbert_plugins.index import CompressedIndex
    from colbert_plugins.index import store

    model_dir, path, crash_at = sys.argv[1], sys.argv[2], sys.argv[3]
    model = ColBERT.from_pretrained(model_dir, query_length=8, threads=1, cache=False)
    index = CompressedIndex(model, path, max_segments=3)
    if crash_at == "manifest":
        real_replace = os.replace

        def dying_replace(src, dst):
            if str(dst).endswith("manifest.json") and len(index) >= 20:
                os._exit(3)  # the new manifest is written and flushed, not yet renamed
            real_replace(src, dst)

        store.os.replace = dying_replace
    words = "paris france london thames berlin germany river cat dog".split()
    batch = 0
    while True:
        texts = [" ".join(words[(batch + i) % 9 :] + words[: i % 5]) for i in range(10)]
        index.add(texts, ids=[f"b{batch}-{i}" for i in range(10)])
        if batch % 3 == 2:
            index.delete([f"b{batch - 1}-0"])
        print(f"committed {batch}", flush=True)
        batch += 1
    """
)


def _check_consistent(path: pathlib.Path, model: ColBERT) -> int:
    """The reopened index holds whole batches 0..n-1 only; return n."""
    reopened = CompressedIndex(model, path)
    ids = set(reopened.ids())
    batches = sorted({int(i.split("-")[0][1:]) for i in ids})
    assert batches == list(range(len(batches)))
    for b in batches:
        members = {f"b{b}-{i}" for i in range(10)}
        # Batch b+1's commit deletes b{b}-0 when b % 3 == 1 (the child's rule).
        deleted = b % 3 == 1 and b + 1 in batches
        assert ids & members == (members - {f"b{b}-0"} if deleted else members)
    hits = reopened.search("paris france", k=5)
    assert len(hits) == 5
    reopened.add(["after the crash"], ids=["after"])
    assert "after" in CompressedIndex(model, path)
    leftovers = [p.name for p in path.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []  # the next writer removed the dead writer's files
    _check_originals(CompressedIndex(model, path), model)
    return len(batches)


def _spawn(model_dir: pathlib.Path, path: pathlib.Path, crash_at: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(model_dir), str(path), crash_at],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigkill_mid_write_leaves_last_commit(
    tiny_model: ColBERT, tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "idx"
    child = _spawn(tiny_model_dir, path, "none")
    assert child.stdout is not None
    lines = []
    try:
        while len(lines) < 4:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child died"
            lines.append(line)
        time.sleep(0.013)  # somewhere inside a later commit
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert _check_consistent(path, tiny_model) >= 4


def test_crash_between_manifest_write_and_rename(
    tiny_model: ColBERT, tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "idx"
    child = _spawn(tiny_model_dir, path, "manifest")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 3, err
    committed = out.count("committed")
    assert committed >= 2
    assert any(p.name.startswith(".tmp-manifest") for p in path.iterdir())
    assert _check_consistent(path, tiny_model) == committed


# -- two writers ---------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from colbert_plugins import ColBERT
    from colbert_plugins.index import CompressedIndex

    model = ColBERT.from_pretrained(sys.argv[1], query_length=8, threads=1, cache=False)
    encode = model.encode_documents

    def held(*args, **kwargs):  # runs under the write lock: wait for the parent's go
        print("writing", flush=True)
        sys.stdin.readline()
        return encode(*args, **kwargs)

    model.encode_documents = held
    index = CompressedIndex(model, sys.argv[2])
    index.add(["paris is the capital of france"] * 30, ids=[f"child{i}" for i in range(30)])
    print("committed", flush=True)
    """
)


def test_a_second_writer_process_gets_a_clear_error_then_builds_on_the_first(
    tiny_model: ColBERT, tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """While another process writes, a writer waits ``lock_timeout`` and gets
    IndexLockedError (no hang, no crash, nothing written); once the other has committed, the
    next write builds on that commit instead of replacing it."""
    from colbert_plugins.index import IndexLockedError

    path = tmp_path / "idx"
    ours = CompressedIndex(tiny_model, path, lock_timeout=0.3)  # opened before the child
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tiny_model_dir), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "writing\n", child.stderr and child.stderr.read()
        begin = time.monotonic()
        with pytest.raises(IndexLockedError, match=r"another writer .* lock_timeout"):
            ours.add(random_texts(5), ids=[f"ours{i}" for i in range(5)])
        assert time.monotonic() - begin < 10
        assert len(ours) == 0 and not (path / "manifest.json").exists()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "committed\n"
        assert child.wait(60) == 0
    finally:
        child.kill()
        child.wait()
    ours.add(random_texts(5), ids=[f"ours{i}" for i in range(5)])
    expected = {f"child{i}" for i in range(30)} | {f"ours{i}" for i in range(5)}
    assert set(ours.ids()) == expected
    assert set(CompressedIndex(tiny_model, path).ids()) == expected


def test_lock_timeout_is_checked(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match="lock_timeout"):
        CompressedIndex(tiny_model, tmp_path / "idx", lock_timeout=-1)
    with pytest.raises(InvalidArgumentTypeError, match="lock_timeout"):
        CompressedIndex(tiny_model, tmp_path / "idx", lock_timeout="10")  # type: ignore[arg-type]
    assert CompressedIndex(tiny_model, tmp_path / "idx", lock_timeout=None).lock_timeout is None


# -- retrievers --------------------------------------------------------------------------------


def test_langchain_retriever_on_compressed_index(index: CompressedIndex) -> None:
    retriever = LCRetriever(index=index, k=4)
    docs = retriever.invoke("paris capital of france")
    assert len(docs) == 4 and all(isinstance(d, Document) for d in docs)
    filtered = retriever.invoke("paris", filter={"g": 2})
    assert filtered and all(d.metadata["g"] == 2 for d in filtered)
    added = LCRetriever.from_texts(["london thames"], index=index).index
    assert added is index and len(index) == 121


def test_llama_index_retriever_on_compressed_index(index: CompressedIndex) -> None:
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    retriever = LIRetriever(index=index, similarity_top_k=3)
    nodes = retriever.retrieve("paris capital of france")
    assert len(nodes) == 3 and all(n.score is not None for n in nodes)
    filtered = LIRetriever(
        index=index,
        similarity_top_k=3,
        filters=MetadataFilters(filters=[MetadataFilter(key="g", value=1)]),
    ).retrieve("paris")
    assert len(filtered) == 3 and all(n.node.metadata["g"] == 1 for n in filtered)


class TestLangChainStandardSuiteOnCompressedIndex(RetrieversIntegrationTests):
    """The langchain-tests retriever suite on a CompressedIndex (tiny model)."""

    @pytest.fixture(autouse=True)
    def _index(self, tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
        self.index = CompressedIndex(tiny_model, tmp_path / "idx")
        self.index.add(random_texts(40, seed=2), ids=[f"d{i}" for i in range(40)])

    @property
    def retriever_constructor(self) -> type[LCRetriever]:
        return LCRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": self.index}

    @property
    def retriever_query_example(self) -> str:
        return "paris capital of france"


# -- the real model (integration) --------------------------------------------------------------


@pytest.mark.integration
def test_recall_against_exact_on_real_model(real_model: ColBERT, tmp_path: pathlib.Path) -> None:
    docs, queries = cranfield(150, 20)
    texts = [f"{d['title']} {d['text']}" for d in docs]
    ids = [d["_id"] for d in docs]
    vectors = real_model.encode_documents(texts)
    compressed = CompressedIndex(real_model, tmp_path / "idx")
    compressed.add_vectors(vectors, texts, ids=ids)
    exact = InMemoryIndex(real_model)
    exact._upsert(ids, texts, [{} for _ in ids], vectors)
    codes_only = CompressedIndex(real_model, compressed.path, exact=0)
    recall, codes_recall = [], []
    for q in real_model.encode_queries(queries):
        truth = {h.id for h in exact.search_vectors(q, k=10)}
        recall.append(len({h.id for h in compressed.search_vectors(q, k=10)} & truth) / 10)
        codes_recall.append(len({h.id for h in codes_only.search_vectors(q, k=10)} & truth) / 10)
    # Measured on these 150 documents, proxy and trained model alike: 1.0 with the exact
    # rerank over the originals, 0.92 from the 2-bit codes alone.
    assert float(np.mean(recall)) >= 0.98
    assert float(np.mean(codes_recall)) >= 0.85
    codec = compressed._snapshot.codec
    assert codec is not None
    per_token = compressed.vector_bytes() - codec.centroids.nbytes  # centroids: a fixed cost
    assert per_token / compressed.tokens <= 40  # resident; the originals are on disk
    assert compressed.original_bytes() == compressed.tokens * real_model.dim * 2


# -- command line ------------------------------------------------------------------------------


def test_cli_index_commands(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from colbert_plugins.cli import main

    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "\n".join(
            json.dumps(d)
            for d in [
                {"id": "p", "text": "paris is the capital of france", "source": "a"},
                {"id": "b", "text": "berlin is the capital of germany", "source": "b"},
                {"id": "l", "text": "london is on the thames", "source": "a"},
            ]
        )
    )
    idx = str(tmp_path / "idx")
    model = ["--model", str(tiny_model_dir)]
    assert main(["index", "add", idx, str(docs), *model, "-q"]) == 0
    capsys.readouterr()
    query = ["--query", "capital of france", "--k", "3", "--json"]
    assert main(["index", "search", idx, *model, *query, "--filter", '{"source": "a"}']) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["id"] for r in rows} == {"p", "l"}
    assert all(r["metadata"] == {"source": "a"} for r in rows)
    assert main(["index", "delete", idx, *model, "p", "-q"]) == 0
    assert main(["index", "compact", idx, *model, "-q"]) == 0
    capsys.readouterr()
    assert main(["index", "search", idx, *model, *query]) == 0
    assert "[p]" not in capsys.readouterr().out
    assert main(["index", "search", idx, *model, *query, "--filter", "{bad"]) == 2
    assert main(["index", "delete", idx, *model, "nope"]) == 1
    assert list(pathlib.Path(idx).rglob("originals.f16"))
    lean = tmp_path / "lean"
    assert main(["index", "add", str(lean), str(docs), *model, "--no-originals", "-q"]) == 0
    assert json.loads((lean / "manifest.json").read_text())["originals"] is False
    assert not list(lean.rglob("originals.f16"))
    assert main(["index", "add", str(lean), str(docs), *model, "-q"]) == 0  # keeps its choice
    assert not list(lean.rglob("originals.f16"))
    # an index with originals refuses to lose them
    assert main(["index", "add", idx, str(docs), *model, "--no-originals", "-q"]) != 0
    assert "with original vectors" in capsys.readouterr().err


def test_writer_killed_during_the_first_add(
    tiny_model: ColBERT, tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Only the dead writer's files and no manifest: the directory opens as an empty index."""
    path = tmp_path / "idx"
    path.mkdir()
    (path / ".lock").touch()
    (path / ".tmp-seg-dead").mkdir()
    (path / "codec-dead").mkdir()
    index = CompressedIndex(tiny_model, path)
    assert len(index) == 0
    index.add(random_texts(30), ids=[f"d{i}" for i in range(30)])
    assert not (path / ".tmp-seg-dead").exists() and not (path / "codec-dead").exists()
    assert len(CompressedIndex(tiny_model, path)) == 30


def test_probe_counts_each_document_once_per_query_vector_with_its_best_gain() -> None:
    """A document in several probed lists of one query vector gets the best of their gains
    (not their sum); gains of different query vectors add up."""
    from types import SimpleNamespace

    from colbert_plugins.index.compressed_search import _probe_segment

    # lists: centroid 0 -> docs 0, 1; centroid 1 -> docs 1, 2; centroid 2 -> doc 0
    seg = SimpleNamespace(
        count=4,
        ivf_offsets=np.array([0, 2, 4, 5]),
        ivf_pids=np.array([0, 1, 1, 2, 0], dtype=np.int32),
    )
    probes = np.array([[0, 1], [2, 0]])  # per query vector, ascending gain
    gains = np.array([[0.1, 0.5], [0.2, 0.3]], dtype=np.float32)
    found, approx = _probe_segment(seg, probes, gains)  # type: ignore[arg-type]
    assert found.tolist() == [0, 1, 2]  # doc 3 is in no probed list
    np.testing.assert_allclose(approx, [0.1 + 0.3, 0.5 + 0.3, 0.5])


def test_pruning_keeps_the_best_by_centroid_maxsim(index: CompressedIndex) -> None:
    """candidates > rerank: the reranked documents are the best by MaxSim over their tokens'
    centroids (computed here independently), then ordered by decompressed MaxSim."""
    pruned = CompressedIndex(index.model, index.path, nprobe=10_000, candidates=10_000, rerank=8)
    query = index.model.encode_queries(["paris capital of france"])[0]
    snap = index._snapshot
    assert snap.codec is not None and len(snap.segments) == 1
    seg = snap.segments[0]
    centroid_maxsim = {}
    for local, doc_id in enumerate(seg.ids):
        rows = slice(int(seg.doc_offsets[local]), int(seg.doc_offsets[local + 1]))
        approx = snap.codec.centroids[np.asarray(seg.centroid_ids[rows], dtype=np.intp)]
        centroid_maxsim[doc_id] = float((query @ approx.T).max(axis=1).sum())
    best = sorted(centroid_maxsim, key=lambda d: -centroid_maxsim[d])[:8]
    hits = pruned.search_vectors(query, k=8)
    assert {h.id for h in hits} == set(best)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_reader_survives_a_compaction_that_removes_its_files(index: CompressedIndex) -> None:
    """A reader opened before a writer's compaction keeps searching its snapshot (mapped
    files) after the writer has removed the superseded segment directories."""
    reader = CompressedIndex(index.model, index.path)
    old_segments = {seg.name for seg in reader._snapshot.segments}
    index.delete(["d1"])
    index.compact()
    assert not any((index.path / name).exists() for name in old_segments)
    hits = reader.search("paris capital", k=5, filter={"g": [0, 1, 2, 3]})
    assert len(hits) == 5 and all(h.text for h in hits)
    assert reader.get(["d1"])[0].metadata == {"g": 1}
    assert "d1" not in CompressedIndex(index.model, index.path)


def test_a_small_build_prints_nothing_on_stderr(
    tiny_model: ColBERT, tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """faiss writes its warnings to file descriptor 2 ("WARNING clustering N points to K
    centroids: please provide at least ..."), which a small build must not trigger: an
    index of a few documents, and a codec at 128 dimensions trained on ~50 passages' vectors
    (fewer residuals than faiss's 39 per codebook entry)."""
    capfd.readouterr()
    idx = CompressedIndex(tiny_model, tmp_path / "idx")
    idx.add(random_texts(30), ids=[f"d{i}" for i in range(30)])
    assert len(idx) == 30
    for tokens, k in [(5_430, 135), (300, 8), (40, 1)]:
        vectors = _clustered(tokens, 128, 40, seed=tokens)
        codec = ResidualCodec.train(vectors, k, 2)
        ids, codes = codec.encode(vectors)
        assert len(ids) == len(codes) == tokens
    err = capfd.readouterr().err
    assert "WARNING" not in err and "please provide" not in err, err


def test_a_small_codec_trains_in_time_proportional_to_its_size() -> None:
    """200 passages' worth of vectors (22,400 at 128 dims, 560 centroids, as
    CompressedIndex trains them): the codebooks used to take 20-30 s here (faiss's per-point
    distance loop below 32,000 residuals, and the 65,536-residual sample of a large index);
    about 1 s now. The bound is generous for a loaded machine."""
    vectors = _clustered(22_400, 128, 600, seed=3)
    start = time.perf_counter()
    codec = ResidualCodec.train(vectors, 560, 2)
    codec.encode(vectors)
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"training and encoding took {elapsed:.1f} s"
    decoded = codec.decode(*codec.encode(vectors[:2000]))
    # and it still compresses well: decoded vectors near the originals
    assert float(np.mean(np.sum(decoded * vectors[:2000], axis=1))) > 0.9
