"""LangChain adapters: ColBERTRerank (document compressor) and ColBERTEmbeddings.

Behaviour against the core (ordering equals ``ColBERT.rerank``), LangChain plumbing
(ContextualCompressionRetriever over a real in-memory vector store, DocumentCompressorPipeline,
LCEL chains, async), input validation and model loading. Everything runs on the tiny model.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import pathlib
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import CharacterTextSplitter

from colbert_plugins import ColBERT
from colbert_plugins.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MissingDependencyError,
)
from colbert_plugins.langchain import ColBERTEmbeddings, ColBERTRerank
from colbert_plugins.pooling import Muvera, mean_pool

TEXTS = [
    "the cat sat on the mat",
    "paris is the capital of france",
    "london is the capital of england and the thames is its river",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "the seine is a river in paris",
    "late interaction models score every query token against document tokens",
    "hello world",
]
QUERY = "what is the capital of france"


def make_docs() -> list[Document]:
    return [
        Document(
            page_content=text,
            metadata={"source": f"doc{i}", "tags": ["a", {"nested": [i]}], "score": -1},
            id=f"id-{i}",
        )
        for i, text in enumerate(TEXTS)
    ]


@pytest.fixture
def docs() -> list[Document]:
    return make_docs()


@pytest.fixture
def reranker(tiny_model: ColBERT) -> ColBERTRerank:
    return ColBERTRerank(tiny_model, top_n=3)


# -- module ---------------------------------------------------------------------------------


def test_import_without_langchain_core_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        m for m in sys.modules if m == "langchain_core" or m.startswith("langchain_core.")
    ]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    monkeypatch.delitem(sys.modules, "colbert_plugins.langchain")
    with pytest.raises(MissingDependencyError, match=r'pip install "colbert-plugins\[langchain\]"'):
        importlib.import_module("colbert_plugins.langchain")
    assert issubclass(MissingDependencyError, ImportError)


def test_core_does_not_import_langchain() -> None:
    code = (
        "import sys, colbert_plugins, colbert_plugins.pooling\n"
        "bad = [m for m in sys.modules if m.startswith(('langchain', 'llama_index', 'qdrant'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- compress_documents ---------------------------------------------------------------------


def test_order_and_scores_equal_colbert_rerank(tiny_model: ColBERT, docs: list[Document]) -> None:
    reranker = ColBERTRerank(tiny_model, top_n=None)
    out = reranker.compress_documents(docs, QUERY)
    expected = tiny_model.rerank(QUERY, TEXTS)
    assert [d.page_content for d in out] == [r.document for r in expected]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [r.score for r in expected], abs=1e-5
    )
    assert [d.id for d in out] == [f"id-{r.index}" for r in expected]
    assert len({d.metadata["relevance_score"] for d in out}) > 3  # real, varied scores


@pytest.mark.parametrize("top_n", [1, 2, 3, 8, 20])
def test_top_n(tiny_model: ColBERT, docs: list[Document], top_n: int) -> None:
    everything = ColBERTRerank(tiny_model, top_n=None).compress_documents(docs, QUERY)
    out = ColBERTRerank(tiny_model, top_n=top_n).compress_documents(docs, QUERY)
    assert out == everything[:top_n]
    assert len(out) == min(top_n, len(docs))


def test_default_top_n_is_three(tiny_model: ColBERT, docs: list[Document]) -> None:
    assert len(ColBERTRerank(tiny_model).compress_documents(docs, QUERY)) == 3


def test_score_threshold(tiny_model: ColBERT, docs: list[Document]) -> None:
    scores = [
        d.metadata["relevance_score"]
        for d in ColBERTRerank(tiny_model, top_n=None).compress_documents(docs, QUERY)
    ]
    cut = (scores[3] + scores[4]) / 2  # keeps exactly four
    out = ColBERTRerank(tiny_model, top_n=None, score_threshold=cut).compress_documents(docs, QUERY)
    assert [d.metadata["relevance_score"] for d in out] == scores[:4]
    # top_n and threshold together: the stricter one wins
    assert (
        len(ColBERTRerank(tiny_model, top_n=2, score_threshold=cut).compress_documents(docs, QUERY))
        == 2
    )
    assert (
        len(ColBERTRerank(tiny_model, top_n=6, score_threshold=cut).compress_documents(docs, QUERY))
        == 4
    )
    # a score equal to the threshold is kept
    exact = ColBERTRerank(tiny_model, top_n=None, score_threshold=scores[0])
    assert len(exact.compress_documents(docs, QUERY)) >= 1
    above_all = ColBERTRerank(tiny_model, top_n=None, score_threshold=scores[0] + 1)
    assert above_all.compress_documents(docs, QUERY) == []


def test_inputs_are_never_mutated(reranker: ColBERTRerank, docs: list[Document]) -> None:
    before = copy.deepcopy(docs)
    metadata_ids = [id(d.metadata) for d in docs]
    out = reranker.compress_documents(docs, QUERY)
    assert docs == before
    assert all("relevance_score" not in d.metadata for d in docs)
    assert [id(d.metadata) for d in docs] == metadata_ids
    assert not any(o is d for o in out for d in docs)
    assert not any(o.metadata is d.metadata for o in out for d in docs)
    out[0].metadata["source"] = "changed"  # the copy is independent at the top level
    assert docs == before


def test_metadata_ids_and_types_are_kept(reranker: ColBERTRerank, docs: list[Document]) -> None:
    by_id = {d.id: d for d in docs}
    out = reranker.compress_documents(docs, QUERY)
    assert len(out) == 3
    for doc in out:
        original = by_id[doc.id]
        score = doc.metadata.pop("relevance_score")
        assert type(score) is float
        assert doc.metadata == original.metadata
        assert doc.page_content == original.page_content
        assert type(doc) is Document


def test_metadata_values_of_any_kind_are_kept_not_copied(reranker: ColBERTRerank) -> None:
    lock = threading.Lock()  # cannot be deep-copied
    doc = Document(page_content="paris", metadata={"lock": lock, "fn": len, "n": None})
    (out,) = reranker.compress_documents([doc], "paris")
    assert out.metadata["lock"] is lock and out.metadata["fn"] is len
    assert set(doc.metadata) == {"lock", "fn", "n"}


def test_existing_relevance_score_is_replaced_in_the_copy(reranker: ColBERTRerank) -> None:
    doc = Document(page_content="paris", metadata={"relevance_score": "old"})
    (out,) = reranker.compress_documents([doc], "paris")
    assert isinstance(out.metadata["relevance_score"], float)
    assert doc.metadata == {"relevance_score": "old"}


def test_ties_keep_input_order(reranker: ColBERTRerank) -> None:
    same = [Document(page_content="hello world", id=str(i)) for i in range(5)]
    out = ColBERTRerank(reranker.colbert, top_n=None).compress_documents(same, "hello")
    assert [d.id for d in out] == ["0", "1", "2", "3", "4"]
    assert len({d.metadata["relevance_score"] for d in out}) == 1


def test_empty_input_returns_empty_without_loading(
    tiny_model_dir: pathlib.Path, count_loads: list[Any]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, query_length=8)
    assert reranker.compress_documents([], QUERY) == []
    assert reranker.rerank([], QUERY) == []
    assert count_loads == []


def test_empty_page_content_scores_normally(reranker: ColBERTRerank) -> None:
    docs = [Document(page_content="", id="empty"), Document(page_content="hello world")]
    out = ColBERTRerank(reranker.colbert, top_n=None).compress_documents(docs, QUERY)
    assert len(out) == 2
    by_id = {d.id: d.metadata["relevance_score"] for d in out}
    assert np.isfinite(by_id["empty"])
    assert by_id["empty"] == pytest.approx(float(reranker.colbert.score(QUERY, [""])[0]), abs=1e-5)


def test_document_subclasses_and_extra_fields_survive(reranker: ColBERTRerank) -> None:
    class MyDocument(Document):
        origin: str = "x"

    doc = MyDocument(page_content="paris", origin="web", id="m")
    (out,) = reranker.compress_documents([doc], "paris")
    assert type(out) is MyDocument and out.origin == "web" and out.id == "m"


async def test_async_equals_sync_and_runs_in_a_worker_thread(
    reranker: ColBERTRerank, docs: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = reranker.compress_documents(docs, QUERY)
    threads: list[int] = []
    original = ColBERTRerank.compress_documents

    def recording(self: ColBERTRerank, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ColBERTRerank, "compress_documents", recording)
    result = await reranker.acompress_documents(docs, QUERY)
    assert list(result) == list(sync)
    assert threads and threads[0] != threading.get_ident()
    queries = ("cat", "fox", "hello world")
    many = await asyncio.gather(*(reranker.acompress_documents(docs, q) for q in queries))
    assert [list(r) for r in many] == [list(reranker.compress_documents(docs, q)) for q in queries]
    assert await reranker.arerank(docs, QUERY) == reranker.rerank(docs, QUERY)


# -- rerank helper --------------------------------------------------------------------------


def test_rerank_helper(tiny_model: ColBERT, reranker: ColBERTRerank, docs: list[Document]) -> None:
    mixed: list[Document | str] = [*docs[:4], *TEXTS[4:]]
    pairs = reranker.rerank(mixed, QUERY)
    assert len(pairs) == len(TEXTS)  # top_n=None: all, whatever the compressor's top_n
    assert all(type(i) is int and type(s) is float for i, s in pairs)
    expected = tiny_model.rerank(QUERY, TEXTS)
    assert [i for i, _ in pairs] == [r.index for r in expected]
    assert [s for _, s in pairs] == pytest.approx([r.score for r in expected], abs=1e-5)
    assert reranker.rerank(mixed, QUERY, top_n=2) == pairs[:2]
    # the threshold is a compress_documents filter only
    strict = ColBERTRerank(tiny_model, score_threshold=1e9)
    assert len(strict.rerank(TEXTS, QUERY)) == len(TEXTS)


# -- LangChain plumbing ---------------------------------------------------------------------


@pytest.fixture
def store(tiny_model: ColBERT, docs: list[Document]) -> InMemoryVectorStore:
    store = InMemoryVectorStore(embedding=ColBERTEmbeddings(tiny_model))
    store.add_documents(docs)
    return store


async def test_contextual_compression_retriever(
    store: InMemoryVectorStore, reranker: ColBERTRerank
) -> None:
    base = store.as_retriever(search_kwargs={"k": 6})
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    out = retriever.invoke(QUERY)
    candidates = base.invoke(QUERY)
    assert len(candidates) == 6
    assert out == list(reranker.compress_documents(candidates, QUERY))
    assert len(out) == 3
    scores = [d.metadata["relevance_score"] for d in out]
    assert scores == sorted(scores, reverse=True)
    assert {d.id for d in out} <= {d.id for d in candidates}
    assert await retriever.ainvoke(QUERY) == out
    assert all("relevance_score" not in d.metadata for d in candidates)


def test_contextual_compression_with_a_custom_retriever(reranker: ColBERTRerank) -> None:
    class FixedRetriever(BaseRetriever):
        documents: list[Document]

        def _get_relevant_documents(self, query: str, **kwargs: Any) -> list[Document]:
            return self.documents

    base = FixedRetriever(documents=make_docs())
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    queries = ["capital of france", "the lazy dog"]
    results = retriever.batch(queries)
    assert results == [list(reranker.compress_documents(make_docs(), q)) for q in queries]
    assert results[0] != results[1]
    assert base.documents == make_docs()
    empty = ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=FixedRetriever(documents=[])
    )
    assert empty.invoke(QUERY) == []


async def test_document_compressor_pipeline(tiny_model: ColBERT) -> None:
    long_doc = Document(page_content=". ".join(TEXTS), metadata={"source": "all"}, id="long")
    splitter = CharacterTextSplitter(separator=". ", chunk_size=40, chunk_overlap=0)
    pipeline = DocumentCompressorPipeline(
        transformers=[splitter, ColBERTRerank(tiny_model, top_n=2)]
    )
    out = pipeline.compress_documents([long_doc], "the capital of germany")
    chunks = splitter.split_documents([long_doc])
    assert len(chunks) >= 5
    assert len(out) == 2
    best = tiny_model.rerank("the capital of germany", [c.page_content for c in chunks])
    assert [d.page_content for d in out] == [r.document for r in best[:2]]
    assert all(d.metadata["source"] == "all" for d in out)
    assert out[0].metadata["relevance_score"] >= out[1].metadata["relevance_score"]
    assert list(await pipeline.acompress_documents([long_doc], "the capital of germany")) == list(
        out
    )
    assert long_doc.metadata == {"source": "all"}


async def test_lcel_chain(store: InMemoryVectorStore, reranker: ColBERTRerank) -> None:
    def rerank_step(inputs: dict[str, Any]) -> list[Document]:
        return list(reranker.compress_documents(inputs["docs"], inputs["query"]))

    def format_docs(documents: list[Document]) -> str:
        return "\n".join(f"{d.metadata['relevance_score']:.3f} {d.page_content}" for d in documents)

    chain = (
        RunnableParallel(
            docs=store.as_retriever(search_kwargs={"k": 8}), query=RunnablePassthrough()
        )
        | RunnableLambda(rerank_step)
        | RunnableLambda(format_docs)
    )
    text = chain.invoke("the cat on the mat")
    lines = text.splitlines()
    assert len(lines) == 3
    best = reranker.colbert.rerank("the cat on the mat", TEXTS, top_n=3)  # k=8: all documents
    assert lines == [f"{r.score:.3f} {r.document}" for r in best]
    assert await chain.ainvoke("the cat on the mat") == text
    # The compression retriever is itself a runnable.
    retriever = ContextualCompressionRetriever(
        base_compressor=reranker, base_retriever=store.as_retriever(search_kwargs={"k": 8})
    )
    assert (retriever | RunnableLambda(format_docs)).invoke("the cat on the mat") == text


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "match"),
    [
        (["a plain string"], r"documents\[0\] must be a langchain Document, got str"),
        ([Document(page_content="x"), None], r"documents\[1\] .* got NoneType"),
        ([{"page_content": "x"}], r"documents\[0\] .* got dict"),
        ("a string", "not a single str"),
        (Document(page_content="x"), "not a single Document"),
        (42, "got int"),
    ],
)
def test_bad_documents(reranker: ColBERTRerank, documents: Any, match: str) -> None:
    with pytest.raises(InvalidArgumentTypeError, match=match):
        reranker.compress_documents(documents, QUERY)


@pytest.mark.parametrize("query", [None, 42, b"bytes", ["list"]])
def test_bad_query(reranker: ColBERTRerank, docs: list[Document], query: Any) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="query must be a str"):
        reranker.compress_documents(docs, query)
    with pytest.raises(InvalidArgumentTypeError, match="query must be a str"):
        reranker.rerank(docs, query)


def test_rerank_helper_bad_items(reranker: ColBERTRerank) -> None:
    with pytest.raises(
        InvalidArgumentTypeError, match=r"documents\[1\] must be a Document or a str"
    ):
        reranker.rerank(["ok", 3], QUERY)
    with pytest.raises(InvalidArgumentError):
        reranker.rerank(["ok"], QUERY, top_n=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"top_n": 0}, InvalidArgumentError, "top_n must be >= 1"),
        ({"top_n": -3}, InvalidArgumentError, "top_n must be >= 1"),
        ({"top_n": "3"}, InvalidArgumentTypeError, "top_n must be a positive integer"),
        ({"top_n": True}, InvalidArgumentTypeError, "top_n must be a positive integer"),
        ({"top_n": 2.5}, InvalidArgumentTypeError, "top_n must be a positive integer"),
        ({"score_threshold": "high"}, InvalidArgumentTypeError, "score_threshold must be"),
        ({"score_threshold": float("nan")}, InvalidArgumentError, "NaN"),
        ({"score_threshold": True}, InvalidArgumentTypeError, "score_threshold must be"),
        ({"normalize_scores": "yes"}, InvalidArgumentTypeError, "normalize_scores"),
        ({"threads": 1}, InvalidArgumentError, "not to a ColBERT instance"),
    ],
)
def test_bad_constructor_arguments(
    tiny_model: ColBERT, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ColBERTRerank(tiny_model, **kwargs)


def test_bad_model_arguments(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentTypeError, match=r"unexpected keyword argument.*bogus"):
        ColBERTRerank(tiny_model_dir, bogus=1)
    with pytest.raises(InvalidArgumentTypeError, match="model must be"):
        ColBERTRerank(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match=r"unexpected keyword argument.*bogus"):
        ColBERTEmbeddings(tiny_model_dir, model_kwargs={"bogus": 1})


def test_fields_are_validated_on_assignment(reranker: ColBERTRerank) -> None:
    reranker.top_n = 5
    assert reranker.top_n == 5
    reranker.top_n = None
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        reranker.top_n = 0
    with pytest.raises(TypeError, match="top_n must be a positive integer"):
        reranker.top_n = "2"  # type: ignore[assignment]
    reranker.score_threshold = 1
    assert reranker.score_threshold == 1.0 and type(reranker.score_threshold) is float


# -- model loading and sharing --------------------------------------------------------------


def test_lazy_loading_from_a_path_happens_once(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, top_n=2, threads=1, query_length=8)
    assert count_loads == []  # construction loads nothing
    assert reranker.model == str(tiny_model_dir)
    docs = make_docs()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: reranker.compress_documents(docs, QUERY), range(8)))
    assert len(count_loads) == 1
    (name,), kwargs = count_loads[0]
    assert name == str(tiny_model_dir)
    assert kwargs == {"threads": 1, "query_length": 8}  # normalize_scores applies per call
    assert all(r == results[0] for r in results)
    assert copy.deepcopy(reranker).colbert is reranker.colbert  # copies share the model
    assert reranker.model_copy().colbert is reranker.colbert
    assert len(count_loads) == 1


def test_embeddings_lazy_loading(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    embeddings = ColBERTEmbeddings(tiny_model_dir, model_kwargs={"query_length": 8})
    assert count_loads == []
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda t: embeddings.embed_query(t), ["a", "b", "c", "d"]))
    assert count_loads == [((str(tiny_model_dir),), {"query_length": 8})]


def test_one_shared_instance_serves_several_components(
    tiny_model: ColBERT, count_loads: list[Any], docs: list[Document]
) -> None:
    reranker = ColBERTRerank(tiny_model, normalize_scores=True, top_n=None)
    raw = ColBERTRerank(tiny_model, top_n=None)
    embeddings = ColBERTEmbeddings(tiny_model)
    assert reranker.colbert is raw.colbert is embeddings.colbert is tiny_model
    assert reranker.model == tiny_model.name
    normalized = reranker.compress_documents(docs, QUERY)
    unnormalized = raw.compress_documents(docs, QUERY)
    n_query_vectors = tiny_model.encode_queries([QUERY])[0].shape[0]
    assert [d.metadata["relevance_score"] for d in normalized] == pytest.approx(
        [d.metadata["relevance_score"] / n_query_vectors for d in unnormalized], abs=1e-6
    )
    assert all(-1.0 <= d.metadata["relevance_score"] <= 1.0 for d in normalized)
    assert tiny_model.config.normalize_scores is False  # the shared instance is untouched
    embeddings.embed_documents(TEXTS)
    assert count_loads == []


def test_normalize_scores_when_loading(tiny_model_dir: pathlib.Path, docs: list[Document]) -> None:
    reranker = ColBERTRerank(tiny_model_dir, top_n=None, normalize_scores=True, query_length=8)
    assert reranker.colbert.config.normalize_scores is False  # applied per call, not loaded
    pairs = reranker.rerank(docs, QUERY)
    raw = reranker.colbert.rerank(QUERY, TEXTS)
    n = reranker.colbert.encode_queries([QUERY])[0].shape[0]
    assert [s for _, s in pairs] == pytest.approx([r.score / n for r in raw], abs=1e-6)
    assert all(-1.0 <= s <= 1.0 for _, s in pairs)


@pytest.mark.parametrize("normalizing_model", [False, True])
def test_normalize_scores_three_way(tiny_model_dir: pathlib.Path, normalizing_model: bool) -> None:
    """None follows the model's own setting; True and False force it either way."""
    model = ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, normalize_scores=normalizing_model
    )
    n = model.encode_queries([QUERY])[0].shape[0]
    raw = model.score(QUERY, TEXTS, normalize=False)
    expected = {None: raw / n if normalizing_model else raw, True: raw / n, False: raw}
    for setting, want in expected.items():
        got = ColBERTRerank(model, normalize_scores=setting).score(QUERY, TEXTS)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"normalize_scores={setting}")
    assert ColBERTRerank(model).normalize_scores is None


# -- embeddings -----------------------------------------------------------------------------


def test_mean_embeddings(tiny_model: ColBERT) -> None:
    embeddings = ColBERTEmbeddings(tiny_model)
    assert embeddings.dimension == tiny_model.dim == 8
    vectors = embeddings.embed_documents(TEXTS)
    assert len(vectors) == len(TEXTS)
    assert all(len(v) == 8 and all(type(x) is float for x in v) for v in vectors)
    expected = [mean_pool(v) for v in tiny_model.encode_documents(TEXTS)]
    np.testing.assert_allclose(np.array(vectors), np.stack(expected), atol=1e-6)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0] * len(TEXTS), abs=1e-5)
    query = embeddings.embed_query(QUERY)
    np.testing.assert_allclose(query, mean_pool(tiny_model.encode_queries([QUERY])[0]), atol=1e-6)
    assert embeddings.embed_documents([]) == []


def test_muvera_embeddings(tiny_model: ColBERT) -> None:
    embeddings = ColBERTEmbeddings(tiny_model, pooling="muvera", k_sim=3, d_proj=4, r_reps=5)
    muvera = Muvera(tiny_model.dim, k_sim=3, d_proj=4, r_reps=5, seed=42)
    assert embeddings.dimension == muvera.dimension == 5 * 8 * 4
    docs = embeddings.embed_documents(TEXTS)
    assert all(len(v) == embeddings.dimension and type(v[0]) is float for v in docs)
    np.testing.assert_allclose(
        np.array(docs), muvera.encode_documents(tiny_model.encode_documents(TEXTS)), atol=1e-6
    )
    query = embeddings.embed_query(QUERY)
    np.testing.assert_allclose(
        query, muvera.encode_query(tiny_model.encode_queries([QUERY])[0]), atol=1e-6
    )
    # query and document encodings differ (sum vs average)
    assert embeddings.embed_query(TEXTS[0]) != embeddings.embed_documents([TEXTS[0]])[0]
    same_seed = ColBERTEmbeddings(tiny_model, pooling="muvera", k_sim=3, d_proj=4, r_reps=5)
    assert same_seed.embed_documents(TEXTS) == docs
    other_seed = ColBERTEmbeddings(
        tiny_model, pooling="muvera", k_sim=3, d_proj=4, r_reps=5, seed=7
    )
    assert other_seed.embed_documents(TEXTS) != docs


def test_default_muvera_size(tiny_model: ColBERT) -> None:
    # d_proj=16 >= dim=8: no projection, 20 repetitions x 16 buckets x 8
    assert ColBERTEmbeddings(tiny_model, pooling="muvera").dimension == 20 * 16 * 8


def test_multivector_embeddings(tiny_model: ColBERT) -> None:
    embeddings = ColBERTEmbeddings(tiny_model)
    docs = embeddings.embed_documents_multivector(TEXTS[:3])
    expected = tiny_model.encode_documents(TEXTS[:3])
    assert [len(d) for d in docs] == [len(e) for e in expected]
    assert type(docs[0][0][0]) is float
    np.testing.assert_allclose(np.array(docs[1]), expected[1], atol=1e-6)
    query = embeddings.embed_query_multivector("cat")
    assert np.array(query).shape == (8, 8)  # padded to query_length=8


async def test_async_embeddings_equal_sync(tiny_model: ColBERT) -> None:
    embeddings = ColBERTEmbeddings(tiny_model, pooling="muvera", r_reps=2)
    assert await embeddings.aembed_documents(TEXTS) == embeddings.embed_documents(TEXTS)
    assert await embeddings.aembed_query(QUERY) == embeddings.embed_query(QUERY)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda e: e.embed_documents(["ok", None]), r"texts\[1\] must be a str"),
        (lambda e: e.embed_documents("a single string"), "not a single str"),
        (lambda e: e.embed_query(None), "text must be a str"),
        (lambda e: e.embed_query(["list"]), "text must be a str"),
        (lambda e: e.embed_documents_multivector([1]), r"texts\[0\] must be a str"),
        (lambda e: e.embed_query_multivector(3), "text must be a str"),
    ],
)
def test_embeddings_bad_input(tiny_model: ColBERT, call: Any, match: str) -> None:
    with pytest.raises(InvalidArgumentTypeError, match=match):
        call(ColBERTEmbeddings(tiny_model))
    assert issubclass(InvalidArgumentTypeError, TypeError)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pooling": "max"}, InvalidArgumentError),
        ({"k_sim": -1}, InvalidArgumentError),
        ({"d_proj": 0}, InvalidArgumentError),
        ({"r_reps": 0}, InvalidArgumentError),
        ({"seed": "x"}, InvalidArgumentTypeError),
        ({"threads": 1}, InvalidArgumentError),
    ],
)
def test_embeddings_bad_constructor_arguments(
    tiny_model: ColBERT, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ColBERTEmbeddings(tiny_model, **kwargs)


def test_embeddings_are_immutable(tiny_model: ColBERT) -> None:
    embeddings = ColBERTEmbeddings(tiny_model, pooling="muvera")
    with pytest.raises(ValueError, match="frozen"):
        embeddings.pooling = "mean"  # type: ignore[misc]


def test_a_normalizing_instance_keeps_its_setting(tiny_model_dir: pathlib.Path) -> None:
    normalizing = ColBERT.from_pretrained(tiny_model_dir, query_length=8, normalize_scores=True)
    raw = ColBERT.from_pretrained(tiny_model_dir, query_length=8)
    pairs = ColBERTRerank(normalizing).rerank(TEXTS, QUERY)  # normalize_scores=False: keep
    raw_pairs = ColBERTRerank(raw).rerank(TEXTS, QUERY)
    n = raw.encode_queries([QUERY])[0].shape[0]
    assert [s for _, s in pairs] == pytest.approx([s / n for _, s in raw_pairs], abs=1e-6)


# -- pydantic contracts: copies use their own settings, share an unchanged model --------------


@pytest.fixture(scope="module")
def long_queries_model(tiny_model_dir: pathlib.Path) -> ColBERT:
    """The tiny model with other settings (query_length 16): other scores than tiny_model's."""
    return ColBERT.from_pretrained(tiny_model_dir, query_length=16, threads=1, cache=False)


def test_model_copy_with_another_model_scores_with_it(
    tiny_model: ColBERT, long_queries_model: ColBERT
) -> None:
    reranker = ColBERTRerank(tiny_model, top_n=None)
    before = reranker.score(QUERY, TEXTS)
    copied = reranker.model_copy(update={"model": long_queries_model})
    assert copied.colbert is long_queries_model
    np.testing.assert_allclose(copied.score(QUERY, TEXTS), long_queries_model.score(QUERY, TEXTS))
    assert not np.allclose(copied.score(QUERY, TEXTS), before)  # the models really differ
    assert reranker.colbert is tiny_model  # the original keeps its model
    np.testing.assert_array_equal(reranker.score(QUERY, TEXTS), before)
    assert copied.model_dump()["model"] == long_queries_model.name  # serializes the name


def test_model_copy_with_new_load_settings_loads_them(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, top_n=None, query_length=8, threads=1)
    assert reranker.colbert.config.query_length == 8
    longer = reranker.model_copy(update={"model_kwargs": {"query_length": 16, "threads": 1}})
    assert longer.colbert.config.query_length == 16
    assert reranker.colbert.config.query_length == 8
    other_dir = str(tiny_model_dir) + "/."  # another name for the same files
    renamed = reranker.model_copy(update={"model": other_dir})
    assert renamed.colbert.name == other_dir
    assert [kwargs["query_length"] for _, kwargs in count_loads] == [8, 16, 8]


def test_copies_share_an_unchanged_model(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, top_n=2, query_length=8, threads=1)
    model = reranker.colbert
    copies = [
        reranker.model_copy(update={"top_n": 1, "normalize_scores": True}),
        reranker.model_copy(deep=True),
        copy.deepcopy(reranker),
        copy.copy(reranker),
    ]
    assert all(c.colbert is model for c in copies)
    assert len(count_loads) == 1
    got = copies[0].compress_documents(make_docs(), QUERY)
    assert len(got) == 1 and -1.0 <= got[0].metadata["relevance_score"] <= 1.0
    assert reranker.top_n == 2 and reranker.normalize_scores is None  # original unchanged


def test_copies_before_the_first_load_load_once_each_setting(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    reranker = ColBERTRerank(tiny_model_dir, query_length=8, threads=1)
    copied = copy.deepcopy(reranker)
    assert copied.colbert is reranker.colbert
    assert len(count_loads) == 1


def test_embeddings_model_copy_uses_the_new_pooling(tiny_model: ColBERT) -> None:
    mean = ColBERTEmbeddings(tiny_model)
    assert mean.dimension == tiny_model.dim
    muvera = mean.model_copy(update={"pooling": "muvera", "k_sim": 2})
    expected = Muvera(tiny_model.dim, k_sim=2)
    assert muvera.dimension == expected.dimension != mean.dimension
    np.testing.assert_allclose(
        muvera.embed_query(QUERY),
        expected.encode_query(tiny_model.encode_queries([QUERY])[0]),
        rtol=1e-5,
    )
    assert muvera.colbert is tiny_model and mean.dimension == tiny_model.dim
    other = ColBERT.from_pretrained(tiny_model.name, query_length=16, threads=1, cache=False)
    moved = mean.model_copy(update={"model": other})
    np.testing.assert_allclose(
        moved.embed_query(QUERY), mean_pool(other.encode_queries([QUERY])[0]), rtol=1e-5
    )
    assert copy.deepcopy(muvera).dimension == muvera.dimension


def test_retriever_copies_search_the_same_index(tiny_model: ColBERT) -> None:
    from colbert_plugins.langchain import ColBERTRetriever

    retriever = ColBERTRetriever.from_texts(TEXTS, model=tiny_model, k=3)
    deep = copy.deepcopy(retriever)
    assert deep.index is retriever.index
    assert [d.id for d in deep.invoke(QUERY)] == [d.id for d in retriever.invoke(QUERY)]
    one = retriever.model_copy(update={"k": 1})
    assert len(one.invoke(QUERY)) == 1 and len(retriever.invoke(QUERY)) == 3
    deep.k = 2  # settings are the copy's own
    assert retriever.k == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, InvalidArgumentError, "batch_size must be >= 1"),
        ({"batch_size": 2.0}, InvalidArgumentTypeError, "batch_size must be a positive integer"),
        ({"normalize_scores": 1}, InvalidArgumentTypeError, "normalize_scores"),
        ({"model_kwargs": ["threads"]}, InvalidArgumentTypeError, "model_kwargs must be a dict"),
    ],
)
def test_declared_constraints_raise_our_errors(
    tiny_model_dir: pathlib.Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ColBERTRerank(tiny_model_dir, **kwargs)
    with pytest.raises(error, match=match):  # the same through pydantic's own constructor
        ColBERTRerank.model_validate({"model": str(tiny_model_dir), **kwargs})


def test_deepcopy_shares_loading_resources(
    tiny_model_dir: pathlib.Path, count_loads: list[tuple[str, dict[str, Any]]]
) -> None:
    from colbert_plugins.cache import EmbeddingCache

    cache = EmbeddingCache()
    reranker = ColBERTRerank(tiny_model_dir, cache=cache, query_length=8)
    embeddings = ColBERTEmbeddings(tiny_model_dir, cache=cache, query_length=8)
    for component in (reranker, embeddings):
        copied = copy.deepcopy(component)  # the cache (with its lock) is shared, not copied
        assert copied.model_kwargs["cache"] is cache
        assert copied.colbert is component.colbert
    assert len(count_loads) == 2  # one per component, none for the copies
