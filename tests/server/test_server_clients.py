"""Clients we did not write, against the rerank server on a loopback port.

The ``cohere`` SDK (v1 ``Client`` and v2 ``ClientV2``, with ``base_url``), LangChain's
``CohereRerank`` (langchain-cohere), LlamaIndex's ``CohereRerank`` postprocessor and TEI's
request format over plain HTTP (urllib). Every result must equal ``ColBERT.rerank`` on the
same inputs, with ``relevance_score`` the normalized MaxSim.
"""

from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request
from collections.abc import Iterator

import cohere
import numpy as np
import pytest
from langchain_cohere import CohereRerank as LangChainCohereRerank
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.postprocessor.cohere_rerank import CohereRerank as LlamaIndexCohereRerank

from colbert_plugins import ColBERT
from colbert_plugins.server import BackgroundServer, ServerSettings

KEY = "test-key"
QUERY = "which city is the capital of france"
DOCS = [
    "berlin is the capital of germany",
    "paris is the capital of france",
    "the cat sat on the mat",
    "the seine is a river in paris france",
    "london is the capital of england",
    "hello world",
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(tiny_model_dir, query_length=8, threads=1)


@pytest.fixture(scope="module")
def server(model: ColBERT) -> Iterator[BackgroundServer]:
    with BackgroundServer(model, ServerSettings(api_key=KEY)) as s:
        yield s


def reference(model: ColBERT, query: str, docs: list[str], top_n: int | None = None):  # type: ignore[no-untyped-def]
    """(indices best first, normalized scores in that order) from ColBERT.rerank/score."""
    order = [r.index for r in model.rerank(query, docs, top_n=top_n)]
    scores = model.score(query, docs, normalize=True)
    return order, scores[order]


def test_cohere_sdk_v1(server: BackgroundServer, model: ColBERT) -> None:
    client = cohere.Client(api_key=KEY, base_url=server.url)
    response = client.rerank(
        model="colbert", query=QUERY, documents=DOCS, top_n=4, return_documents=True
    )
    order, scores = reference(model, QUERY, DOCS, top_n=4)
    assert [r.index for r in response.results] == order
    np.testing.assert_allclose([r.relevance_score for r in response.results], scores, rtol=1e-5)
    assert [r.document.text for r in response.results] == [DOCS[i] for i in order]  # type: ignore[union-attr]


def test_cohere_sdk_v2(server: BackgroundServer, model: ColBERT) -> None:
    client = cohere.ClientV2(api_key=KEY, base_url=server.url)
    response = client.rerank(model="colbert", query=QUERY, documents=DOCS)
    order, scores = reference(model, QUERY, DOCS)
    assert [r.index for r in response.results] == order
    np.testing.assert_allclose([r.relevance_score for r in response.results], scores, rtol=1e-5)


def test_cohere_sdk_errors(server: BackgroundServer) -> None:
    with pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(
            model="colbert", query=QUERY, documents=DOCS
        )
    with pytest.raises(cohere.UnprocessableEntityError):
        cohere.ClientV2(api_key=KEY, base_url=server.url).rerank(
            model="colbert", query=QUERY, documents=DOCS, top_n=0
        )


def test_langchain_cohere_rerank(server: BackgroundServer, model: ColBERT) -> None:
    reranker = LangChainCohereRerank(
        model="colbert", top_n=3, base_url=server.url, cohere_api_key=KEY
    )
    documents = [Document(page_content=d, metadata={"i": i}) for i, d in enumerate(DOCS)]
    compressed = reranker.compress_documents(documents, QUERY)
    order, scores = reference(model, QUERY, DOCS, top_n=3)
    assert [d.metadata["i"] for d in compressed] == order
    np.testing.assert_allclose(
        [d.metadata["relevance_score"] for d in compressed], scores, rtol=1e-5
    )
    assert "relevance_score" not in documents[0].metadata  # the caller's documents untouched


def test_llama_index_cohere_rerank(server: BackgroundServer, model: ColBERT) -> None:
    reranker = LlamaIndexCohereRerank(api_key=KEY, base_url=server.url, model="colbert", top_n=3)
    nodes = [
        NodeWithScore(node=TextNode(text=d, id_=str(i)), score=0.0) for i, d in enumerate(DOCS)
    ]
    reranked = reranker.postprocess_nodes(nodes, QueryBundle(QUERY))
    order, scores = reference(model, QUERY, DOCS, top_n=3)
    assert [int(n.node.node_id) for n in reranked] == order
    np.testing.assert_allclose([n.score for n in reranked], scores, rtol=1e-5)


def tei_post(url: str, body: dict[str, object], key: str | None = KEY) -> tuple[int, object]:
    request = urllib.request.Request(
        url + "/rerank",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {key}"} if key else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_tei_format_over_plain_http(server: BackgroundServer, model: ColBERT) -> None:
    status, body = tei_post(server.url, {"query": QUERY, "texts": DOCS, "return_text": True})
    assert status == 200 and isinstance(body, list)
    order, scores = reference(model, QUERY, DOCS)
    assert [r["index"] for r in body] == order
    np.testing.assert_allclose([r["score"] for r in body], scores, rtol=1e-5)
    assert [r["text"] for r in body] == [DOCS[i] for i in order]

    status, body = tei_post(server.url, {"query": QUERY, "texts": DOCS, "raw_scores": True})
    raw = model.score(QUERY, DOCS, normalize=False)
    assert isinstance(body, list)
    np.testing.assert_allclose([r["score"] for r in body], raw[order], rtol=1e-5)

    status, body = tei_post(server.url, {"query": QUERY, "texts": "not a list"})
    assert status == 422 and isinstance(body, dict) and "texts" in body["error"]
    status, body = tei_post(server.url, {"query": QUERY, "texts": DOCS}, key=None)
    assert status == 401


@pytest.mark.integration
def test_cohere_sdk_with_the_real_model(real_model_dir: pathlib.Path) -> None:
    """The proxy model through the server equals the proxy model in process."""
    model = ColBERT.from_pretrained(real_model_dir, threads=2)
    docs = [
        "The boundary layer is the thin layer of fluid near a solid surface.",
        "Paris is the capital and most populous city of France.",
        "Heat transfer at hypersonic speeds is dominated by aerodynamic heating.",
        "ColBERT scores queries and documents by late interaction.",
    ]
    query = "what is a boundary layer?"
    with BackgroundServer(model) as server:
        response = cohere.ClientV2(api_key="unused", base_url=server.url).rerank(
            model="colbert", query=query, documents=docs
        )
    order, scores = reference(model, query, docs)
    assert [r.index for r in response.results] == order
    np.testing.assert_allclose([r.relevance_score for r in response.results], scores, rtol=1e-5)
