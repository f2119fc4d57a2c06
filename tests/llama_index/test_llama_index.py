"""Tests for colbert_plugins.llama_index.ColBERTRerank (unit: tiny model; integration: real)."""

from __future__ import annotations

import asyncio
import copy
import json
import pathlib
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, ValidationError

import corpus
from colbert_plugins import ColBERT
from colbert_plugins.errors import (
    EmptyQueryError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MissingDependencyError,
)
from colbert_plugins.llama_index import ColBERTRerank
from colbert_plugins.model import rank_order
from corpus import QUERY, TEXTS_WITH_TIE

TEXTS = TEXTS_WITH_TIE[:7]


# -- helpers -------------------------------------------------------------------------------


def make_nodes(texts: list[str] = TEXTS, metadata: bool = False) -> list[NodeWithScore]:
    return [
        NodeWithScore(
            node=TextNode(
                text=text,
                id_=f"n{i}",
                metadata={"city": "berlin germany", "rank": i} if metadata else {},
            ),
            score=1.0 - i / 10,
        )
        for i, text in enumerate(texts)
    ]


def contents(nodes: list[NodeWithScore], mode: MetadataMode = MetadataMode.EMBED) -> list[str]:
    return [n.node.get_content(metadata_mode=mode) for n in nodes]


def snapshot(nodes: list[NodeWithScore]) -> tuple[Any, ...]:
    """Everything that must not change: the list, the objects and their deep content."""
    return (
        list(nodes),
        [id(n.node) for n in nodes],
        copy.deepcopy(nodes),
        json.dumps([n.model_dump(mode="json") for n in nodes], sort_keys=True),
    )


def assert_unchanged(nodes: list[NodeWithScore], before: tuple[Any, ...]) -> None:
    objects, node_ids, deep, dumped = before
    assert len(nodes) == len(objects)
    assert all(a is b for a, b in zip(nodes, objects, strict=True))
    assert [id(n.node) for n in nodes] == node_ids
    assert nodes == deep
    assert json.dumps([n.model_dump(mode="json") for n in nodes], sort_keys=True) == dumped


class EventRecorder(BaseEventHandler):
    """Records every instrumentation event with the thread it fired in."""

    events: list[tuple[BaseEvent, int]] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append((event, threading.get_ident()))

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        return [e for e, _ in self.events if isinstance(e, kind)]


class RerankCallbacks(BaseCallbackHandler):
    """Records the payloads of RERANKING callback events."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.starts: list[dict[str, Any]] = []
        self.ends: list[dict[str, Any]] = []

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        if event_type is CBEventType.RERANKING:
            self.starts.append(dict(payload or {}))
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        if event_type is CBEventType.RERANKING:
            self.ends.append(dict(payload or {}))

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[EventRecorder]:
    """An event handler on the root dispatcher, removed after the test."""
    root = get_dispatcher()
    handler = EventRecorder()
    root.add_event_handler(handler)
    try:
        yield handler
    finally:
        root.event_handlers.remove(handler)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- import and construction ---------------------------------------------------------------


def test_missing_llama_index_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "llama_index" or name.startswith("llama_index."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "llama_index", None)
    monkeypatch.delitem(sys.modules, "colbert_plugins.llama_index")
    with pytest.raises(
        MissingDependencyError, match=r'pip install "colbert-plugins\[llama-index\]"'
    ):
        __import__("colbert_plugins.llama_index")
    with pytest.raises(ImportError):  # also an ImportError, for generic handlers
        __import__("colbert_plugins.llama_index")


def test_core_import_does_not_import_llama_index() -> None:
    code = (
        "import sys, colbert_plugins\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'llama_index')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_fields_and_serialization(tiny_model: ColBERT, tiny_model_dir: pathlib.Path) -> None:
    reranker = ColBERTRerank(model=tiny_model, top_n=3)
    assert ColBERTRerank.class_name() == "ColBERTRerank"
    assert reranker.model == tiny_model.name
    assert (reranker.top_n, reranker.keep_retrieval_score, reranker.normalize_scores) == (
        3,
        False,
        None,  # the model's own setting
    )
    assert reranker.metadata_mode is MetadataMode.EMBED
    assert reranker.colbert is tiny_model
    for name in ("model", "top_n", "keep_retrieval_score", "normalize_scores", "metadata_mode"):
        assert ColBERTRerank.model_fields[name].description
    data = json.loads(reranker.to_json())
    assert data["class_name"] == "ColBERTRerank"
    assert data["model"] == tiny_model.name and data["top_n"] == 3

    from_path = ColBERTRerank(str(tiny_model_dir), top_n=2, query_length=8, threads=1)
    restored = ColBERTRerank.from_json(from_path.to_json())
    assert restored.model_dump() == from_path.model_dump()
    assert restored.model_kwargs == {"query_length": 8, "threads": 1}
    with pytest.raises(ValidationError):
        restored.model = "other"  # type: ignore[misc]

    unpickled = pickle.loads(pickle.dumps(from_path))
    assert unpickled.model_dump() == from_path.model_dump()
    nodes = make_nodes()
    got = unpickled.postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.node_id for n in got] == [
        f"n{r.index}" for r in tiny_model.rerank(QUERY, contents(nodes), top_n=2)
    ]


@pytest.mark.parametrize("top_n", [0, -1])
def test_top_n_below_one_rejected(tiny_model: ColBERT, top_n: int) -> None:
    with pytest.raises(InvalidArgumentError, match="top_n"):
        ColBERTRerank(model=tiny_model, top_n=top_n)


@pytest.mark.parametrize("top_n", ["3", 2.5, True, None])
def test_top_n_not_int_rejected(tiny_model: ColBERT, top_n: Any) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="top_n"):
        ColBERTRerank(model=tiny_model, top_n=top_n)


def test_top_n_assignment_validated(tiny_model: ColBERT) -> None:
    reranker = ColBERTRerank(model=tiny_model, top_n=2)
    reranker.top_n = 4
    assert reranker.top_n == 4
    with pytest.raises(ValueError):
        reranker.top_n = 0


def test_bad_model_arguments(tiny_model: ColBERT, tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="model must be"):
        ColBERTRerank(model=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="threads"):
        ColBERTRerank(model=tiny_model, threads=2)
    with pytest.raises(InvalidArgumentTypeError, match="bogus"):
        ColBERTRerank(model=tiny_model_dir, bogus=1)


# -- reranking -----------------------------------------------------------------------------


def test_order_and_scores_match_colbert(tiny_model: ColBERT) -> None:
    nodes = make_nodes()
    reranker = ColBERTRerank(model=tiny_model, top_n=len(nodes))
    got = reranker.postprocess_nodes(nodes, QueryBundle(QUERY))

    expected = tiny_model.rerank(QUERY, contents(nodes))
    assert [n.node.node_id for n in got] == [f"n{r.index}" for r in expected]
    scores = tiny_model.score(QUERY, contents(nodes))
    np.testing.assert_allclose(
        [n.score for n in got], [scores[r.index] for r in expected], rtol=1e-6, atol=1e-6
    )
    assert all(isinstance(n.score, float) for n in got)
    assert [n.score for n in got] == sorted((n.score for n in got), reverse=True)
    # Ties keep input order: the duplicate text (index 4) comes right after index 1.
    ids = [n.node.node_id for n in got]
    assert ids.index("n1") + 1 == ids.index("n4")
    assert got[ids.index("n1")].score == got[ids.index("n4")].score


def test_query_str_shortcut_equals_bundle(tiny_model: ColBERT) -> None:
    reranker = ColBERTRerank(model=tiny_model, top_n=4)
    a = reranker.postprocess_nodes(make_nodes(), query_str=QUERY)
    b = reranker.postprocess_nodes(make_nodes(), QueryBundle(QUERY))
    assert [(n.node.node_id, n.score) for n in a] == [(n.node.node_id, n.score) for n in b]


@pytest.mark.parametrize("top_n", [1, 3, 100])
def test_top_n(tiny_model: ColBERT, top_n: int) -> None:
    nodes = make_nodes()
    got = ColBERTRerank(model=tiny_model, top_n=top_n).postprocess_nodes(nodes, query_str=QUERY)
    expected = tiny_model.rerank(QUERY, contents(nodes), top_n=top_n)
    assert len(got) == min(top_n, len(nodes))
    assert [n.node.node_id for n in got] == [f"n{r.index}" for r in expected]


@pytest.mark.parametrize("keep", [True, False])
def test_keep_retrieval_score_and_no_mutation(tiny_model: ColBERT, keep: bool) -> None:
    nodes = make_nodes(metadata=True)
    before = snapshot(nodes)
    reranker = ColBERTRerank(model=tiny_model, top_n=len(nodes), keep_retrieval_score=keep)
    got = reranker.postprocess_nodes(nodes, query_str=QUERY)

    assert_unchanged(nodes, before)
    assert all("retrieval_score" not in n.node.metadata for n in nodes)
    assert not any(g is n for g in got for n in nodes)  # new NodeWithScore objects
    by_id = {n.node.node_id: n for n in nodes}
    for g in got:
        original = by_id[g.node.node_id]
        if keep:
            assert g.node is not original.node
            assert g.node.metadata == {**original.node.metadata, "retrieval_score": original.score}
        else:
            assert "retrieval_score" not in g.node.metadata
        assert g.node.get_content(MetadataMode.NONE) == original.node.get_content(MetadataMode.NONE)
    # Mutating the output leaves the input alone.
    for g in got:
        g.score = -1.0
        g.node.metadata["touched"] = True
    if keep:
        assert_unchanged(nodes, before)


def test_metadata_mode(tiny_model: ColBERT) -> None:
    nodes = make_nodes(metadata=True)
    embed = ColBERTRerank(model=tiny_model, top_n=len(nodes)).postprocess_nodes(
        nodes, query_str=QUERY
    )
    none = ColBERTRerank(
        model=tiny_model, top_n=len(nodes), metadata_mode=MetadataMode.NONE
    ).postprocess_nodes(nodes, query_str=QUERY)
    for mode, got in ((MetadataMode.EMBED, embed), (MetadataMode.NONE, none)):
        scores = dict(
            zip(
                (n.node.node_id for n in nodes),
                tiny_model.score(QUERY, contents(nodes, mode)),
                strict=True,
            )
        )
        for g in got:
            assert g.score == pytest.approx(float(scores[g.node.node_id]), rel=1e-6, abs=1e-6)
    # The metadata really is part of the scored text in EMBED mode and not in NONE mode.
    assert "berlin germany" in contents(nodes, MetadataMode.EMBED)[0]
    assert "berlin germany" not in contents(nodes, MetadataMode.NONE)[0]
    assert {n.node.node_id: n.score for n in embed} != {n.node.node_id: n.score for n in none}


def test_normalize_scores(tiny_model: ColBERT) -> None:
    nodes = make_nodes()
    plain = ColBERTRerank(model=tiny_model, top_n=len(nodes)).postprocess_nodes(
        nodes, query_str=QUERY
    )
    normed = ColBERTRerank(
        model=tiny_model, top_n=len(nodes), normalize_scores=True
    ).postprocess_nodes(nodes, query_str=QUERY)
    n_query_vectors = tiny_model.encode_queries([QUERY])[0].shape[0]
    assert [n.node.node_id for n in normed] == [n.node.node_id for n in plain]
    np.testing.assert_allclose(
        [n.score for n in normed], [n.score / n_query_vectors for n in plain], rtol=1e-5
    )
    assert all(-1.0 <= n.score <= 1.0 for n in normed)
    assert not tiny_model.config.normalize_scores  # the shared model was not changed


def test_empty_texts_are_scored(tiny_model: ColBERT) -> None:
    nodes = make_nodes(["", "paris is the capital of france", ""])
    got = ColBERTRerank(model=tiny_model, top_n=3).postprocess_nodes(nodes, query_str=QUERY)
    scores = tiny_model.score(QUERY, ["", "paris is the capital of france", ""])
    assert sorted(n.node.node_id for n in got) == ["n0", "n1", "n2"]
    assert all(np.isfinite(n.score) for n in got)
    for g in got:
        assert g.score == pytest.approx(float(scores[int(g.node.node_id[1:])]), abs=1e-6)
    # An empty query string ranks nothing: a clear error (the same rule everywhere).
    with pytest.raises(EmptyQueryError, match="query_str is an empty string"):
        ColBERTRerank(model=tiny_model, top_n=2).postprocess_nodes(nodes, query_str="")


def test_missing_query_bundle(tiny_model: ColBERT, recorder: EventRecorder) -> None:
    reranker = ColBERTRerank(model=tiny_model)
    with pytest.raises(InvalidArgumentError, match="query"):
        reranker.postprocess_nodes(make_nodes())
    with pytest.raises(ValueError, match="query"):
        reranker.postprocess_nodes(make_nodes(), query_bundle=None)
    assert not recorder.of(ReRankStartEvent)


def test_non_node_items_rejected(tiny_model: ColBERT) -> None:
    reranker = ColBERTRerank(model=tiny_model)
    nodes: list[Any] = make_nodes()
    with pytest.raises(InvalidArgumentTypeError, match=r"nodes\[1\].*TextNode.*NodeWithScore"):
        reranker.postprocess_nodes([nodes[0], nodes[1].node], query_str=QUERY)
    with pytest.raises(InvalidArgumentTypeError, match=r"nodes\[0\].*str"):
        reranker.postprocess_nodes(["some text"], query_str=QUERY)
    with pytest.raises(InvalidArgumentTypeError, match="list of NodeWithScore"):
        reranker.postprocess_nodes(nodes[0], query_str=QUERY)


# -- events --------------------------------------------------------------------------------


def test_instrumentation_and_callback_events(tiny_model: ColBERT, recorder: EventRecorder) -> None:
    callbacks = RerankCallbacks()
    reranker = ColBERTRerank(
        model=tiny_model, top_n=3, callback_manager=CallbackManager([callbacks])
    )
    nodes = make_nodes()
    bundle = QueryBundle(QUERY)
    got = reranker.postprocess_nodes(nodes, bundle)

    starts, ends = recorder.of(ReRankStartEvent), recorder.of(ReRankEndEvent)
    assert len(starts) == 1 and len(ends) == 1
    kinds = [
        type(e) for e, _ in recorder.events if isinstance(e, ReRankStartEvent | ReRankEndEvent)
    ]
    assert kinds == [ReRankStartEvent, ReRankEndEvent]
    assert starts[0].query == bundle
    assert starts[0].nodes == nodes
    assert starts[0].top_n == 3
    assert starts[0].model_name == tiny_model.name
    assert ends[0].nodes == got

    assert len(callbacks.starts) == 1 and len(callbacks.ends) == 1
    payload = callbacks.starts[0]
    assert payload[EventPayload.NODES] == nodes
    assert payload[EventPayload.MODEL_NAME] == tiny_model.name
    assert payload[EventPayload.QUERY_STR] == QUERY
    assert payload[EventPayload.TOP_K] == 3
    assert callbacks.ends[0][EventPayload.NODES] == got


def test_empty_node_list_fires_end_event(
    tiny_model_dir: pathlib.Path, recorder: EventRecorder, count_loads: list[Any]
) -> None:
    callbacks = RerankCallbacks()
    reranker = ColBERTRerank(
        model=tiny_model_dir, query_length=8, callback_manager=CallbackManager([callbacks])
    )
    assert reranker.postprocess_nodes([], query_str=QUERY) == []
    assert len(recorder.of(ReRankStartEvent)) == 1
    assert [e.nodes for e in recorder.of(ReRankEndEvent)] == [[]]
    assert callbacks.ends == [{EventPayload.NODES: []}]
    assert count_loads == []  # nothing to score: the model is not even loaded


# -- async and loading ---------------------------------------------------------------------


async def test_async_equals_sync_off_the_event_loop(
    tiny_model: ColBERT, recorder: EventRecorder
) -> None:
    reranker = ColBERTRerank(model=tiny_model, top_n=4, keep_retrieval_score=True)
    nodes = make_nodes()
    before = snapshot(nodes)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    got = await reranker.apostprocess_nodes(nodes, query_str=QUERY)
    done.set()
    await task
    expected = reranker.postprocess_nodes(nodes, query_str=QUERY)
    assert [(n.node.node_id, n.score, n.node.metadata) for n in got] == [
        (n.node.node_id, n.score, n.node.metadata) for n in expected
    ]
    assert_unchanged(nodes, before)
    loop_thread = threading.get_ident()
    first_start = next(t for e, t in recorder.events if isinstance(e, ReRankStartEvent))
    assert first_start != loop_thread  # the work ran in a worker thread
    assert ticks > 1  # the event loop kept running meanwhile


def test_lazy_load_once_across_threads(
    tiny_model: ColBERT, tiny_model_dir: pathlib.Path, count_loads: list[Any]
) -> None:
    reranker = ColBERTRerank(model=tiny_model_dir, top_n=3, query_length=8, threads=1)
    assert count_loads == []  # construction loads nothing
    nodes = make_nodes()
    barrier = threading.Barrier(6)
    results: list[list[NodeWithScore]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            results.append(reranker.postprocess_nodes(nodes, query_str=QUERY))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(count_loads) == 1
    assert count_loads[0] == ((str(tiny_model_dir),), {"query_length": 8, "threads": 1})
    expected = tiny_model.rerank(QUERY, contents(nodes), top_n=3)
    for got in results:
        assert [n.node.node_id for n in got] == [f"n{r.index}" for r in expected]
        np.testing.assert_allclose([n.score for n in got], [r.score for r in expected], rtol=1e-6)
    reranker.postprocess_nodes(nodes, query_str=QUERY)
    assert len(count_loads) == 1


# -- a real LlamaIndex pipeline ------------------------------------------------------------


def _query_engine(nodes: list[TextNode], reranker: ColBERTRerank, top_k: int) -> Any:
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    engine = index.as_query_engine(
        similarity_top_k=top_k, node_postprocessors=[reranker], llm=MockLLM()
    )
    return index, engine


def _check_pipeline(
    model: ColBERT,
    corpus: list[TextNode],
    query: str,
    recorder: EventRecorder,
    *,
    top_k: int,
    top_n: int,
) -> tuple[list[NodeWithScore], list[NodeWithScore], np.ndarray]:
    """Run a query engine with the reranker; check order, scores, events, no mutation."""
    index, engine = _query_engine(corpus, ColBERTRerank(model=model, top_n=top_n), top_k)
    response = engine.query(query)

    starts, ends = recorder.of(ReRankStartEvent), recorder.of(ReRankEndEvent)
    assert len(starts) == 1 and len(ends) == 1
    candidates: list[NodeWithScore] = starts[0].nodes
    assert len(candidates) == min(top_k, len(corpus))
    texts = contents(candidates)
    scores = model.score(query, texts)
    expected = rank_order(scores, top_n)
    got = response.source_nodes
    assert [n.node.node_id for n in got] == [candidates[i].node.node_id for i in expected]
    np.testing.assert_allclose([n.score for n in got], scores[expected], rtol=1e-5, atol=1e-5)
    assert ends[0].nodes == got
    # The retrieved nodes and the docstore are untouched.
    assert all(c.score == pytest.approx(1.0) for c in candidates)  # MockEmbedding similarity
    for c in candidates:
        assert c.node == index.docstore.get_node(c.node.node_id)
        assert "retrieval_score" not in c.node.metadata
    return got, candidates, scores


def test_tiny_query_engine_pipeline(tiny_model: ColBERT, recorder: EventRecorder) -> None:
    corpus = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    got, candidates, _ = _check_pipeline(tiny_model, corpus, QUERY, recorder, top_k=5, top_n=3)
    assert len(got) == 3 and len(candidates) == 5


async def test_tiny_query_engine_async(tiny_model: ColBERT) -> None:
    corpus = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    _, engine = _query_engine(corpus, ColBERTRerank(model=tiny_model, top_n=3), 5)
    sync = engine.query(QUERY).source_nodes
    asynchronous = (await engine.aquery(QUERY)).source_nodes
    assert [(n.node.node_id, n.score) for n in asynchronous] == [
        (n.node.node_id, n.score) for n in sync
    ]


def _cranfield(n: int) -> tuple[list[TextNode], str]:
    docs, queries = corpus.cranfield(n, 1)
    nodes = [
        TextNode(
            text=doc["text"],
            id_=f"cranfield-{doc['_id']}",
            metadata={"title": doc["title"], "doc_id": doc["_id"]},
            excluded_embed_metadata_keys=["doc_id"],
            excluded_llm_metadata_keys=["doc_id"],
        )
        for doc in docs
    ]
    return nodes, queries[0]


@pytest.mark.integration
def test_real_query_engine(real_model: ColBERT, recorder: EventRecorder, no_network: None) -> None:
    corpus, query = _cranfield(30)
    before = copy.deepcopy(corpus)
    got, candidates, scores = _check_pipeline(
        real_model, corpus, query, recorder, top_k=10, top_n=3
    )
    assert len(got) == 3
    assert all("title: " in n.node.get_content(MetadataMode.EMBED) for n in got)
    assert corpus == before

    # keep_retrieval_score and another top_n through a second engine: the retrieval is the
    # same (checked), so the scores computed above still apply.
    recorder.events.clear()
    reranker = ColBERTRerank(model=real_model, top_n=5, keep_retrieval_score=True)
    index, engine = _query_engine(corpus, reranker, 10)
    kept = engine.query(query).source_nodes
    again = recorder.of(ReRankStartEvent)[0].nodes
    assert [c.node.node_id for c in again] == [c.node.node_id for c in candidates]
    expected = rank_order(scores, 5)
    assert [n.node.node_id for n in kept] == [candidates[i].node.node_id for i in expected]
    np.testing.assert_allclose([n.score for n in kept], scores[expected], rtol=1e-5, atol=1e-5)
    for n, c in zip(kept, (again[i] for i in expected), strict=True):
        assert n.node.metadata == {**c.node.metadata, "retrieval_score": c.score}
        assert "retrieval_score" not in c.node.metadata
        assert "retrieval_score" not in index.docstore.get_node(n.node.node_id).metadata
    assert corpus == before
