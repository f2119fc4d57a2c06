"""Tests for colbert_plugins.index.qdrant on both engines: Qdrant Edge in process (the
default) and the server API (qdrant-client's local mode stands in for a server); unit: tiny
model. Edge-only behaviour (locks, durability, the directory) is in test_qdrant_edge.py."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.index import IndexedDocument, IndexMismatchError, InMemoryIndex, UnknownIdError
from colbert_plugins.index.qdrant import (
    BM25_VECTOR,
    COLBERT_VECTOR,
    FIXED_VECTOR,
    QdrantIndex,
    point_id,
)
from colbert_plugins.index.qdrant.bm25 import mean_length
from colbert_plugins.pooling import Muvera
from corpus import QUERIES, QUERY, TEXTS, cranfield
from tiny_model import build_model_dir

IDS = [f"d{i}" for i in range(len(TEXTS))]
METADATAS: list[dict[str, Any]] = [
    {"n": i, "tags": ["a", "b"], "nested": {"x": [1, 2.5, None]}, "uni": "Zürich ✓"}
    for i in range(len(TEXTS))
]


@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Where a QdrantIndex puts its collection: Qdrant Edge in a temporary directory, or a
    server (a local-mode client, closed at the end)."""
    if request.param == "edge":
        yield {}
        return
    client = QdrantClient(location=":memory:")
    yield {"client": client}
    client.close()


@pytest.fixture
def qindex(tiny_model: ColBERT, engine: dict[str, Any]) -> Iterator[QdrantIndex]:
    index = QdrantIndex(tiny_model, prefetch_limit=None, retrieval_mode="colbert", **engine)
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    yield index
    index.close()


@pytest.fixture(scope="module")
def exact(tiny_model: ColBERT) -> InMemoryIndex:
    index = InMemoryIndex(tiny_model)
    index.add(TEXTS, ids=IDS, metadatas=METADATAS)
    return index


def assert_same_hits(got: list[Any], expected: list[Any]) -> None:
    assert [h.id for h in got] == [h.id for h in expected]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], rtol=1e-5)
    assert [(h.text, h.metadata) for h in got] == [(h.text, h.metadata) for h in expected]


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES)
def test_full_scan_equals_exact_index(
    qindex: QdrantIndex, exact: InMemoryIndex, query: str
) -> None:
    assert_same_hits(qindex.search(query, k=5), exact.search(query, k=5))


@pytest.mark.parametrize("fixed", ["muvera", "mean"])
def test_prefetch_covering_everything_is_exact(
    tiny_model: ColBERT, exact: InMemoryIndex, fixed: Any, engine: dict[str, Any]
) -> None:
    with QdrantIndex(
        tiny_model, fixed=fixed, prefetch_limit=len(TEXTS), retrieval_mode="colbert", **engine
    ) as index:
        index.add(TEXTS, ids=IDS, metadatas=METADATAS)
        for query in QUERIES:
            assert_same_hits(index.search(query, k=3), exact.search(query, k=3))


def test_two_stage_prefetch_limits_candidates(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, prefetch_limit=2, **engine) as index:
        index.add(TEXTS, ids=IDS)
        assert len(index.search(QUERY, k=1)) == 1
        assert len(index.search(QUERY, k=5)) == 5  # the prefetch is at least k
        # The candidates are the best two by the fixed vector, reranked by MaxSim.
        qv = tiny_model.encode_queries([QUERY])[0]
        fixed_q = index.fixed_vectors([qv], query=True)[0]
        fixed_d = index.fixed_vectors(tiny_model.encode_documents(TEXTS))
        best_two = {IDS[i] for i in np.argsort(-(fixed_d @ fixed_q))[:2]}
        assert {h.id for h in index.search(QUERY, k=2)} == best_two


def test_collection_layout(tiny_model: ColBERT) -> None:
    """The server collection has the vectors collection_config() describes, and the points
    the layout gives (payload: id, text, metadata, the bools mirror, what wrote it)."""
    client = QdrantClient(location=":memory:")
    with QdrantIndex(tiny_model, client=client) as index:
        index.add(
            TEXTS, ids=IDS, metadatas=[{**m, "ok": i % 2 == 0} for i, m in enumerate(METADATAS)]
        )
        info = client.get_collection("colbert")
        vectors = info.config.params.vectors
        assert isinstance(vectors, dict)
        colbert = vectors[COLBERT_VECTOR]
        assert colbert.size == tiny_model.dim and colbert.multivector_config is not None
        assert colbert.hnsw_config is not None and colbert.hnsw_config.m == 0
        assert vectors[FIXED_VECTOR].size == tiny_model.dim == index.fixed_dim  # mean
        assert info.config.params.sparse_vectors is not None
        assert set(info.config.params.sparse_vectors) == {BM25_VECTOR}
        (record,) = client.retrieve("colbert", [point_id("d1")], with_payload=True)
        assert record.payload == {
            "id": "d1",
            "text": TEXTS[1],
            "metadata": {**METADATAS[1], "ok": False},
            "bools": {"ok": "false"},
            "model_key": tiny_model.model_key,
            "fixed": "mean",
            "bm25_avg_len": mean_length(TEXTS),  # of the first add's documents
        }
        assert uuid.UUID(point_id("d1")).version == 5
        # The REST body collection_config() gives creates the same collection on a server.
        config = models.CreateCollection(**index.collection_config())
        client.create_collection(
            "from-config",
            vectors_config=config.vectors,
            sparse_vectors_config=config.sparse_vectors,
        )
        QdrantIndex(tiny_model, "from-config", client=client).add(["x"], ids=["x"])
    client.close()


def test_empty_collection_and_bad_k(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, **engine) as index:
        assert len(index) == 0 and index.ids() == [] and index.search(QUERY, k=3) == []
        with pytest.raises(InvalidArgumentError, match="k must be >= 1"):
            index.search(QUERY, k=0)
        with pytest.raises(InvalidArgumentTypeError):
            index.search(QUERY, k="2")  # type: ignore[arg-type]


def test_normalized_scores(tiny_model_dir: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, threads=1, cache=False, normalize_scores=True
    )
    with QdrantIndex(model, prefetch_limit=None, retrieval_mode="colbert") as index:
        index.add(TEXTS, ids=IDS)
        hits = index.search(QUERY, k=3)
        expected = model.score(QUERY, [TEXTS[IDS.index(h.id)] for h in hits])
        np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-5)


# -- add, replace, delete, get -----------------------------------------------------------------


def test_add_get_len_ids(qindex: QdrantIndex) -> None:
    assert len(qindex) == len(TEXTS)
    assert sorted(qindex.ids()) == sorted(IDS)
    assert qindex.get(["d3", "d1"]) == [
        IndexedDocument("d3", TEXTS[3], METADATAS[3]),
        IndexedDocument("d1", TEXTS[1], METADATAS[1]),
    ]
    with pytest.raises(UnknownIdError, match="'nope'"):
        qindex.get(["d1", "nope"])
    assert [d.id for d in qindex.get(["nope", "d1"], missing_ok=True)] == ["d1"]
    assert "d1" in qindex and "nope" not in qindex
    generated = qindex.add(["hello world"])
    assert len(generated) == 1 and generated[0] in qindex


def test_readd_replaces(qindex: QdrantIndex, tiny_model: ColBERT) -> None:
    qindex.add(["the lazy dog"], ids=["d1"], metadatas=[{"new": True}])
    assert len(qindex) == len(TEXTS)
    assert qindex.get(["d1"]) == [IndexedDocument("d1", "the lazy dog", {"new": True})]
    score = {h.id: h.score for h in qindex.search("the lazy dog", k=len(TEXTS))}["d1"]
    assert score == pytest.approx(float(tiny_model.score("the lazy dog", ["the lazy dog"])[0]))
    qindex.add(TEXTS, ids=IDS, metadatas=METADATAS)  # idempotent
    assert len(qindex) == len(TEXTS)


def test_delete(qindex: QdrantIndex) -> None:
    qindex.delete(["d1", "d2"])
    assert len(qindex) == len(TEXTS) - 2
    assert {h.id for h in qindex.search(QUERY, k=100)} == set(IDS) - {"d1", "d2"}
    with pytest.raises(UnknownIdError) as info:
        qindex.delete(["d0", "d1"])  # d1 is gone: nothing is deleted
    assert info.value.missing == ["d1"]
    assert "d0" in qindex
    qindex.delete(["d0", "d1"], missing_ok=True)
    assert "d0" not in qindex and len(qindex) == len(TEXTS) - 3
    qindex.delete([])
    qindex.clear()
    assert len(qindex) == 0 and qindex.search(QUERY, k=2) == []


def test_metadata_must_be_json(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, **engine) as index:
        with pytest.raises(InvalidArgumentTypeError, match="'x'"):
            index.add(["hello", "world"], ids=["ok", "x"], metadatas=[{}, {"t": (1, 2)}])
        assert len(index) == 0


# -- persistence and opening existing collections ----------------------------------------------


def test_path_mode_round_trip(
    tiny_model: ColBERT, exact: InMemoryIndex, tmp_path: pathlib.Path
) -> None:
    with QdrantIndex(tiny_model, path=tmp_path / "q", prefetch_limit=None) as index:
        index.add(TEXTS, ids=IDS, metadatas=METADATAS)
        index.delete(["d7"])
    with QdrantIndex(
        tiny_model, path=tmp_path / "q", prefetch_limit=None, retrieval_mode="colbert"
    ) as reopened:
        assert sorted(reopened.ids()) == IDS[:-1]
        assert reopened.get(IDS[:-1]) == exact.get(IDS[:-1])  # texts and metadata intact
        expected = [h for h in exact.search(QUERY, k=8) if h.id != "d7"][:5]
        assert_same_hits(reopened.search(QUERY, k=5), expected)


def test_reopen_with_other_model_or_settings(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    client = QdrantClient(location=":memory:")
    QdrantIndex(tiny_model, client=client, fixed="muvera").add(TEXTS[:2], ids=IDS[:2])
    # Without settings, an existing collection is opened with its own.
    assert QdrantIndex(tiny_model, client=client).fixed == "muvera"
    with pytest.raises(IndexMismatchError, match="fixed vectors are muvera"):
        QdrantIndex(tiny_model, client=client, fixed="mean")
    with pytest.raises(IndexMismatchError, match="fixed vectors"):
        QdrantIndex(tiny_model, client=client, muvera=Muvera(tiny_model.dim, seed=7))
    with pytest.raises(IndexMismatchError, match="has BM25 vectors"):
        QdrantIndex(tiny_model, client=client, bm25=False)
    dim16 = ColBERT.from_pretrained(build_model_dir(tmp_path / "m16", dim=16), cache=False)
    with pytest.raises(IndexMismatchError, match="16-dim"):
        QdrantIndex(dim16, client=client)
    seed1 = ColBERT.from_pretrained(build_model_dir(tmp_path / "s1", seed=1), cache=False)
    with pytest.raises(IndexMismatchError, match="another model"):
        QdrantIndex(seed1, client=client)
    assert len(QdrantIndex(seed1, client=client, check_model_key=False)) == 2
    # Another collection on the same client is independent.
    QdrantIndex(seed1, "other", client=client).add(["x"], ids=["x"])
    client.close()


def test_given_client_is_not_closed(tiny_model: ColBERT) -> None:
    client = QdrantClient(location=":memory:")
    with QdrantIndex(tiny_model, client=client) as index:
        index.add(["hello"], ids=["h"])
    assert client.collection_exists("colbert")  # still usable
    client.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": "x", "url": "http://localhost:6333"}, InvalidArgumentError, "at most one"),
        ({"location": ":memory:", "path": "x"}, InvalidArgumentError, "at most one"),
        ({"fixed": "max"}, InvalidArgumentError, "fixed must be"),
        ({"fixed": "mean", "muvera": Muvera(8)}, InvalidArgumentError, "only applies"),
        ({"muvera": Muvera(16)}, InvalidArgumentError, "16-dim"),
        ({"muvera": "default"}, InvalidArgumentTypeError, "Muvera instance"),
        ({"prefetch_limit": 0}, InvalidArgumentError, ">= 1"),
        ({"collection": ""}, InvalidArgumentError, "collection"),
        ({"api_key": "k", "client": "c"}, InvalidArgumentError, "at most one|client"),
        ({"api_key": "k"}, InvalidArgumentError, "only apply with url"),
        ({"client": "c"}, InvalidArgumentTypeError, "QdrantClient"),
        ({"location": "http://localhost:6333"}, InvalidArgumentError, "url="),
        ({"collection": "a/b"}, InvalidArgumentError, "collection"),
        ({"bm25": "yes"}, InvalidArgumentTypeError, "bm25"),
        ({"quantization": "int4"}, InvalidArgumentError, "quantization"),
        ({"retrieval_mode": "dense"}, InvalidArgumentError, "retrieval_mode"),
        ({"retrieval_mode": "hybrid", "bm25": False}, InvalidArgumentError, "needs BM25"),
        ({"hybrid_limit": 0}, InvalidArgumentError, ">= 1"),
    ],
)
def test_bad_arguments(
    tiny_model: ColBERT, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        QdrantIndex(tiny_model, **kwargs)


def test_model_must_be_colbert() -> None:
    with pytest.raises(InvalidArgumentTypeError):
        QdrantIndex("model")  # type: ignore[arg-type]


# -- threads -----------------------------------------------------------------------------------


def test_concurrent_search_and_add(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, **engine) as index:
        index.add(TEXTS[:2], ids=IDS[:2])
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    hits = index.search(QUERY, k=3)
                    assert 1 <= len(hits) <= 3
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(2, len(TEXTS)):
                index.add([TEXTS[i]], ids=[IDS[i]])
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[0]
        assert len(index) == len(TEXTS)


# -- optional dependency -----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["qdrant_edge", "qdrant_client"])
def test_a_missing_engine_names_the_extra(missing: str, tiny_model_dir: pathlib.Path) -> None:
    """Without qdrant-edge-py the package does not import; without qdrant-client it does
    (Qdrant Edge needs no client), and a server collection names the extra."""
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "import colbert_plugins, colbert_plugins.index\n"
        "from colbert_plugins.errors import MissingDependencyError\n"
        "try:\n"
        "    from colbert_plugins.index.qdrant import QdrantIndex\n"
        "    model = colbert_plugins.ColBERT.from_pretrained(sys.argv[1], cache=False)\n"
        "    QdrantIndex(model, url='http://127.0.0.1:9')\n"
        "except ImportError as exc:\n"
        "    assert isinstance(exc, MissingDependencyError), type(exc)\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert 'pip install "colbert-plugins[qdrant]"' in out.stdout
    assert missing in out.stdout


def test_core_index_imports_no_framework() -> None:
    code = (
        "import sys, colbert_plugins.index\n"
        "names = ('qdrant_client', 'qdrant_edge', 'langchain_core', 'llama_index')\n"
        "bad = [m for m in names if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- real model --------------------------------------------------------------------------------


@pytest.mark.integration
def test_real_model_qdrant_agrees_with_exact(real_model: ColBERT, tmp_path: pathlib.Path) -> None:
    docs, queries = cranfield(20, 3)
    texts = [f"{d['title']} {d['text']}" for d in docs]
    ids = [d["_id"] for d in docs]
    metas = [{"title": d["title"]} for d in docs]
    # The same ONNX session with a document cache: both indexes encode the documents once.
    model = ColBERT(real_model.tokenizer, real_model.encoder, name=real_model.name, cache=True)
    exact = InMemoryIndex(model)
    exact.add(texts, ids=ids, metadatas=metas)
    with QdrantIndex(
        model, path=tmp_path / "q", prefetch_limit=len(texts), retrieval_mode="colbert"
    ) as index:
        index.add(texts, ids=ids, metadatas=metas)
        for query in queries:
            assert_same_hits(index.search(query, k=10), exact.search(query, k=10))


# -- retrieval modes ---------------------------------------------------------------------------


def rrf(*lists: list[Any], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion by hand: sum of 1 / (k + rank), ranks from 0."""
    fused: dict[str, float] = {}
    for hits in lists:
        for rank, hit in enumerate(hits):
            fused[hit.id] = fused.get(hit.id, 0.0) + 1.0 / (k + rank)
    return fused


def test_bm25_mode_ranks_by_the_words(qindex: QdrantIndex) -> None:
    hits = qindex.search("lazy dog", k=3, retrieval_mode="bm25")
    assert hits and all("dog" in h.text or "lazy" in h.text for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert qindex.search("zzzz qqqq", k=3, retrieval_mode="bm25") == []  # no shared word


@pytest.mark.parametrize("query", QUERIES)
def test_hybrid_is_rrf_of_bm25_and_colbert(qindex: QdrantIndex, query: str) -> None:
    qindex.hybrid_limit = 4
    bm25 = qindex.search(query, k=4, retrieval_mode="bm25")
    colbert = qindex.search(query, k=4, retrieval_mode="colbert")
    hybrid = qindex.search(query, k=3, retrieval_mode="hybrid")
    fused = rrf(bm25, colbert)
    best = sorted(fused.values(), reverse=True)[:3]
    np.testing.assert_allclose([h.score for h in hybrid], best, rtol=1e-5)
    for hit in hybrid:
        assert fused[hit.id] == pytest.approx(hit.score, rel=1e-5)


def test_default_mode_batches_and_filters(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, retrieval_mode="hybrid", prefetch_limit=3, **engine) as index:
        index.add(TEXTS, ids=IDS, metadatas=METADATAS)
        assert index.search(QUERY, k=3) == index.search(QUERY, k=3, retrieval_mode="hybrid")
        for mode in ("bm25", "hybrid", "colbert"):
            batch = index.search_batch(QUERIES[:3], k=3, retrieval_mode=mode)  # type: ignore[arg-type]
            assert batch == [index.search(q, k=3, retrieval_mode=mode) for q in QUERIES[:3]]  # type: ignore[arg-type]
            hits = index.search(QUERY, k=3, filter={"n": [1, 3, 5]}, retrieval_mode=mode)  # type: ignore[arg-type]
            assert hits and {h.id for h in hits} <= {"d1", "d3", "d5"}
        assert index.search_batch([], k=3) == []
        with pytest.raises(InvalidArgumentError, match="retrieval_mode"):
            index.search(QUERY, retrieval_mode="sparse")  # type: ignore[arg-type]


def test_bm25_mean_length_is_the_first_adds_and_kept(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    """BM25's mean document length comes from the first add, in the embedder's tokens, and
    stays the collection's: reopened, and for later documents."""
    first = ["wings flutter in a slipstream of air", "a boundary layer thickens"]
    with QdrantIndex(tiny_model, path=tmp_path) as index:
        assert index.retrieval_mode == "hybrid"  # the default with BM25 vectors
        index.add(first, ids=["a", "b"])
        index.add(["a much longer document " * 20], ids=["c"])
        assert index.bm25_avg_len == mean_length(first) == 3.5
    with QdrantIndex(tiny_model, path=tmp_path) as again:
        assert again.bm25_avg_len == 3.5
        assert again.search("slipstream wings", k=1, retrieval_mode="bm25")[0].id == "a"


def test_without_bm25_only_colbert(tiny_model: ColBERT, engine: dict[str, Any]) -> None:
    with QdrantIndex(tiny_model, bm25=False, **engine) as index:
        assert index.retrieval_mode == "colbert" and index.bm25_avg_len is None
        index.add(TEXTS, ids=IDS)
        assert index.search(QUERY, k=2)
        with pytest.raises(InvalidArgumentError, match="needs BM25"):
            index.search(QUERY, retrieval_mode="hybrid")


def test_edge_and_server_hold_and_answer_the_same(tiny_model: ColBERT) -> None:
    """One point layout: the same documents on both engines give the same results in every
    mode (scores to float tolerance)."""
    client = QdrantClient(location=":memory:")
    with (
        QdrantIndex(tiny_model, prefetch_limit=3) as edge,
        QdrantIndex(tiny_model, client=client, prefetch_limit=3) as server,
    ):
        for index in (edge, server):
            index.add(TEXTS, ids=IDS, metadatas=METADATAS)
        assert edge.collection_config() == server.collection_config()
        assert edge.get(IDS) == server.get(IDS)
        for mode in ("colbert", "bm25", "hybrid"):
            for query in QUERIES:
                a = edge.search(query, k=4, retrieval_mode=mode)  # type: ignore[arg-type]
                b = server.search(query, k=4, retrieval_mode=mode)  # type: ignore[arg-type]
                assert [h.id for h in a] == [h.id for h in b], (mode, query)
                np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-4)
    client.close()


@pytest.mark.parametrize("page", ["README.md", "docs/indexes.md"])
def test_the_documented_server_config_is_the_layouts(page: str) -> None:
    """The README and docs/indexes.md show the body of PUT /collections/colbert: it is what a
    128-dim model's collection_config() gives."""
    from colbert_plugins.index.qdrant.layout import Layout

    text = (pathlib.Path(__file__).parents[2] / page).read_text()
    block = text.split("/collections/colbert", 1)[1].split("```json", 1)[1].split("```")[0]
    assert json.loads(block) == Layout(128, "any").describe()
