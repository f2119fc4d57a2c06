"""One model shared by many threads and many coroutines gives exactly the serial results.

8 threads run 50 mixed calls each (encode_queries, encode_documents, score, rerank, the
LangChain and LlamaIndex rerankers) on one ColBERT instance, with the embedding cache off,
in memory and on disk, and every result is compared with the same call made serially.
The asyncio tests run 100 concurrent ``acompress_documents`` and 100 ``apostprocess_nodes``.
Everything is bounded in time: a hung thread fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import pathlib
import random
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache
from colbert_plugins.langchain import ColBERTRerank as LangChainRerank
from colbert_plugins.llama_index import ColBERTRerank as LlamaIndexRerank
from tiny_model import VOCAB

THREADS = 8
CALLS_PER_THREAD = 50
TIMEOUT_S = 120.0

WORDS = [w for w in VOCAB if w.isalpha()]  # words and letters of the tiny vocabulary


def make_texts(rng: random.Random, n: int, max_words: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, max_words))) for _ in range(n)]


Call = tuple[str, str, list[str]]  # (kind, query, texts)
KINDS = ("encode_queries", "encode_documents", "score", "rerank", "langchain", "llama_index")


def make_calls(seed: int) -> list[Call]:
    """400 calls over a pool of 60 documents, so the threads share and race on documents."""
    rng = random.Random(seed)
    pool = [*make_texts(rng, 60, 40), "", "the cat sat on the mat", "the cat sat on the mat"]
    # Queries to rank by are never empty (EmptyQueryError); an empty text is still encoded.
    queries = [q or "the cat" for q in make_texts(rng, 30, 8)]
    return [
        (KINDS[i % len(KINDS)], rng.choice(queries), rng.sample(pool, rng.randint(1, 12)))
        for i in range(THREADS * CALLS_PER_THREAD)
    ]


class Runner:
    """Runs one call on the shared model and returns a comparable result."""

    def __init__(self, model: ColBERT) -> None:
        self.model = model
        self.langchain = LangChainRerank(model, top_n=None)
        self.llama_index = LlamaIndexRerank(model=model, top_n=100, metadata_mode=MetadataMode.NONE)

    def __call__(self, call: Call) -> Any:
        kind, query, texts = call
        model = self.model
        if kind == "encode_queries":
            return model.encode_queries([query, *texts[:2]], batch_size=2)
        if kind == "encode_documents":
            return model.encode_documents(texts, batch_size=4)
        if kind == "score":
            return model.score(query, texts)
        if kind == "rerank":
            return [(r.index, r.score, r.document) for r in model.rerank(query, texts)]
        if kind == "langchain":
            docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(texts)]
            out = self.langchain.compress_documents(docs, query)
            return [(d.id, d.metadata["relevance_score"]) for d in out]
        nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(texts)]
        got = self.llama_index.postprocess_nodes(nodes, QueryBundle(query))
        return [(n.node.node_id, n.score) for n in got]


def assert_same(got: Any, expected: Any, atol: float, where: str) -> None:
    """Equal structure; arrays and floats equal within atol (0: bitwise)."""
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == expected.shape, where
        if atol == 0:
            assert np.array_equal(got, expected), where
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=where)
    elif isinstance(expected, list | tuple):
        assert type(got) is type(expected) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(g, e, atol, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and abs(got - expected) <= atol, (where, got, expected)
    else:
        assert got == expected, (where, got, expected)


def run_in_threads(work: Callable[[int], None], n: int) -> None:
    """Start n threads together, join them with a deadline, re-raise the first error."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def target(worker: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT_S)
            work(worker)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=target, args=(w,), name=f"worker-{w}", daemon=True)
        for w in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT_S)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running after {TIMEOUT_S}s: {hung}"
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    return make_calls(seed=8)


@pytest.fixture(scope="module")
def serial(tiny_model: ColBERT, calls: list[Call]) -> list[Any]:
    """Every call made once, serially, on the shared model without a cache."""
    run = Runner(tiny_model)
    return [run(c) for c in calls]


@pytest.mark.parametrize("cache", ["off", "memory", "memory-tiny", "sqlite"])
def test_threads_share_one_model(
    tiny_model_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    calls: list[Call],
    serial: list[Any],
    cache: str,
) -> None:
    caches: dict[str, Any] = {
        "off": False,
        "memory": True,
        "memory-tiny": EmbeddingCache(max_bytes=20_000),  # constant eviction under contention
        "sqlite": EmbeddingCache(max_bytes=20_000, path=tmp_path / "cache.sqlite"),
    }
    model = ColBERT.from_pretrained(tiny_model_dir, query_length=8, threads=1, cache=caches[cache])
    run = Runner(model)
    results: list[Any] = [None] * len(calls)

    def work(worker: int) -> None:
        # Each thread takes every 8th call, in an order of its own.
        mine = list(range(worker, len(calls), THREADS))
        random.Random(worker).shuffle(mine)
        for i in mine:
            results[i] = run(calls[i])

    run_in_threads(work, THREADS)
    # Without a cache each call encodes its own batches exactly as the serial run did, so
    # the results are bitwise equal. With a cache a document may come from another call's
    # batch (other padding width), which may change the last bits of a float.
    atol = 0.0 if cache == "off" else 1e-6
    for i, (got, expected) in enumerate(zip(results, serial, strict=True)):
        assert_same(got, expected, atol, f"call {i} ({calls[i][0]})")
    if model.cache is not None:
        stats = model.cache.stats()
        assert stats.hits > 0 and stats.bytes <= stats.max_bytes and stats.corrupt == 0


def test_concurrent_first_use(tiny_model_dir: pathlib.Path) -> None:
    """Threads racing on a fresh model's lazily computed state (model key, cache) agree."""
    model = ColBERT.from_pretrained(tiny_model_dir, query_length=8, threads=1)
    seen: list[tuple[int, str]] = []

    def work(worker: int) -> None:
        model.encode_documents([f"hello world {worker}"])
        seen.append((model.dim, model.model_key))

    run_in_threads(work, THREADS)
    assert len(set(seen)) == 1


async def test_many_concurrent_async_reranks(tiny_model: ColBERT) -> None:
    rng = random.Random(100)
    queries = [q or "the cat" for q in make_texts(rng, 100, 6)]
    pools = [make_texts(rng, rng.randint(1, 10), 30) for _ in range(100)]
    langchain = LangChainRerank(tiny_model, top_n=5)
    llama_index = LlamaIndexRerank(model=tiny_model, top_n=5, metadata_mode=MetadataMode.NONE)

    def documents(i: int) -> list[Document]:
        return [Document(page_content=t, id=f"{i}-{j}") for j, t in enumerate(pools[i])]

    def nodes(i: int) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(text=t, id_=f"{i}-{j}"), score=float(j))
            for j, t in enumerate(pools[i])
        ]

    def lc(out: Any) -> list[tuple[str | None, float]]:
        return [(d.id, d.metadata["relevance_score"]) for d in out]

    def li(out: list[NodeWithScore]) -> list[tuple[str, float | None]]:
        return [(n.node.node_id, n.score) for n in out]

    compressed = asyncio.gather(
        *(langchain.acompress_documents(documents(i), queries[i]) for i in range(100))
    )
    postprocessed = asyncio.gather(
        *(llama_index.apostprocess_nodes(nodes(i), QueryBundle(queries[i])) for i in range(100))
    )
    both = asyncio.gather(compressed, postprocessed)  # all 200 run concurrently
    lc_results, li_results = await asyncio.wait_for(both, timeout=TIMEOUT_S)
    for i in range(100):
        assert lc(lc_results[i]) == lc(langchain.compress_documents(documents(i), queries[i]))
        expected = llama_index.postprocess_nodes(nodes(i), QueryBundle(queries[i]))
        assert li(li_results[i]) == li(expected)
