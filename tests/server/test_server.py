"""The rerank server over real HTTP (uvicorn on a loopback port) with the tiny model.

Results must equal ``ColBERT.rerank``/``score`` on the same inputs; errors must be JSON with
the right status; concurrent requests must share model calls and still each get their own
answer; overload gives 503 with Retry-After; a failing request does not fail the others;
shutdown answers the requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from colbert_plugins import ColBERT
from colbert_plugins.cli import main as cli_main
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.server import BackgroundServer, ServerSettings
from serving import POISON, HeldColBERT
from tiny_model import VOCAB

WORDS = [w for w in VOCAB if w.isalpha() and len(w) > 1]
DOCS = [
    "paris is the capital of france",
    "the cat sat on the mat",
    "berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "the seine is a river in paris",
]
QUERY = "what is the capital of france"


@pytest.fixture(scope="module")
def model(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(tiny_model_dir, query_length=8, threads=1)


@pytest.fixture(scope="module")
def server(model: ColBERT) -> Iterator[BackgroundServer]:
    with BackgroundServer(model, ServerSettings(max_documents=20, max_request_bytes=4096)) as s:
        yield s


@pytest.fixture(scope="module")
def keyed(model: ColBERT) -> Iterator[BackgroundServer]:
    with BackgroundServer(model, ServerSettings(api_key="s3cret")) as s:
        yield s


def expected(model: ColBERT, query: str, docs: list[str]) -> tuple[list[int], np.ndarray]:
    """ColBERT.rerank's order and the normalized MaxSim of each document."""
    order = [r.index for r in model.rerank(query, docs)]
    return order, model.score(query, docs, normalize=True)


def assert_ranking(results: list[dict[str, Any]], key: str, order: list[int], scores: Any) -> None:
    assert [r["index"] for r in results] == order
    np.testing.assert_allclose([r[key] for r in results], scores[order], rtol=1e-5, atol=1e-6)


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
def test_cohere_rerank_equals_colbert_rerank(
    server: BackgroundServer, model: ColBERT, path: str
) -> None:
    r = httpx.post(server.url + path, json={"query": QUERY, "documents": DOCS, "model": "any"})
    assert r.status_code == 200, r.text
    body = r.json()
    order, scores = expected(model, QUERY, DOCS)
    assert_ranking(body["results"], "relevance_score", order, scores)
    assert "document" not in body["results"][0]
    assert body["id"] and body["meta"]["api_version"]["version"] == path[2]


def test_top_n_return_documents_and_text_objects(server: BackgroundServer, model: ColBERT) -> None:
    docs = [{"text": d, "title": "ignored"} for d in DOCS]
    r = httpx.post(
        server.url + "/v1/rerank",
        json={"query": QUERY, "documents": docs, "top_n": 2, "return_documents": True},
    )
    results = r.json()["results"]
    order, scores = expected(model, QUERY, DOCS)
    assert_ranking(results, "relevance_score", order[:2], scores)
    assert [x["document"] for x in results] == [{"text": DOCS[i]} for i in order[:2]]
    # top_n beyond the number of documents: all of them
    r = httpx.post(server.url + "/v1/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 99})
    assert len(r.json()["results"]) == len(DOCS)


def test_relevance_score_is_normalized_maxsim(server: BackgroundServer, model: ColBERT) -> None:
    """Normalized: raw MaxSim divided by the number of query vectors, within [-1, 1]."""
    long_query = " ".join(WORDS[:20])  # longer than query_length: more query vectors
    for query in (QUERY, long_query):
        r = httpx.post(server.url + "/v2/rerank", json={"query": query, "documents": DOCS})
        got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
        n = model.encode_queries([query])[0].shape[0]
        raw = model.score(query, DOCS, normalize=False)
        np.testing.assert_allclose([got[i] for i in range(len(DOCS))], raw / n, rtol=1e-5)
        assert all(-1.0 <= s <= 1.0 for s in got.values())


def test_duplicates_and_empty_documents(server: BackgroundServer, model: ColBERT) -> None:
    docs = [DOCS[0], "", DOCS[0], DOCS[1]]
    r = httpx.post(server.url + "/v1/rerank", json={"query": QUERY, "documents": docs})
    order, scores = expected(model, QUERY, docs)
    assert_ranking(r.json()["results"], "relevance_score", order, scores)
    r = httpx.post(server.url + "/v1/rerank", json={"query": QUERY, "documents": []})
    assert r.status_code == 200 and r.json()["results"] == []


@pytest.mark.parametrize("raw", [False, True])
def test_tei_rerank(server: BackgroundServer, model: ColBERT, raw: bool) -> None:
    r = httpx.post(
        server.url + "/rerank",
        json={"query": QUERY, "texts": DOCS, "raw_scores": raw, "return_text": True},
    )
    assert r.status_code == 200, r.text
    order = [x.index for x in model.rerank(QUERY, DOCS)]
    scores = model.score(QUERY, DOCS, normalize=not raw)
    assert_ranking(r.json(), "score", order, scores)
    assert [x["text"] for x in r.json()] == [DOCS[i] for i in order]


def test_health_models_metrics(server: BackgroundServer, model: ColBERT) -> None:
    httpx.post(server.url + "/v1/rerank", json={"query": QUERY, "documents": DOCS})
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    listed = httpx.get(server.url + "/v1/models").json()
    # A local model is named by its directory's own name: no filesystem path in responses.
    public = pathlib.Path(model.name).name
    assert listed["object"] == "list" and listed["data"][0]["id"] == public
    assert httpx.get(server.url + "/health").json()["model"] == public
    r = httpx.get(server.url + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = {
        (s.labels["endpoint"], s.labels["code"]): s.value
        for s in families["colbert_requests"].samples
    }
    assert requests[("/v1/rerank", "200")] >= 1
    latency = families["colbert_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.name.endswith("_count") and s.value >= 1 for s in latency.samples)
    for name in ("colbert_documents", "colbert_documents_encoded", "colbert_cache_hits"):
        assert families[name].type == "counter"
    assert families["colbert_cache_hits"].samples[0].value >= 1  # DOCS were sent repeatedly


def _requests_counted(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["endpoint"], s.labels["code"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "colbert_requests"
        for s in f.samples
        if s.name.endswith("_total")
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning:starlette.testclient")
def test_two_apps_in_one_process_count_apart(model: ColBERT) -> None:
    """Each app has its own registry: no shared counters, nothing in the global registry."""
    from prometheus_client import REGISTRY
    from starlette.testclient import TestClient

    from colbert_plugins.server import create_app

    with TestClient(create_app(model)) as first, TestClient(create_app(model)) as second:
        for _ in range(3):
            assert first.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).is_success
        assert second.get("/health").is_success
        first_counts = _requests_counted(first.get("/metrics").text)
        second_counts = _requests_counted(second.get("/metrics").text)
    assert first_counts[("/v1/rerank", "200")] == 3 and ("/health", "200") not in first_counts
    assert second_counts == {("/health", "200"): 1}
    assert not [n for n in REGISTRY._names_to_collectors if n.startswith("colbert_")]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"documents": ["a"]}', "query must be a string"),
        (b'{"query": "", "documents": ["a"]}', "query must not be empty"),
        (b'{"query": "q", "documents": "a"}', "documents must be a list"),
        (b'{"query": "q", "documents": ["a", 3]}', "documents[1]"),
        (b'{"query": "q", "documents": [{"txt": "a"}]}', "documents[0]"),
        (b'{"query": "q", "documents": ["a"], "top_n": 0}', "top_n must be >= 1"),
        (b'{"query": "q", "documents": ["a"], "top_n": "2"}', "top_n must be"),
        (b'{"query": "q", "documents": ["a"], "return_documents": "yes"}', "return_documents"),
    ],
)
def test_bad_requests_get_422(server: BackgroundServer, body: bytes, needle: str) -> None:
    r = httpx.post(server.url + "/v1/rerank", content=body)
    assert r.status_code == 422
    assert needle in r.json()["message"] and r.json()["error"] == r.json()["message"]


def test_bad_tei_requests_get_422(server: BackgroundServer) -> None:
    r = httpx.post(server.url + "/rerank", json={"query": "q", "texts": ["a", None]})
    assert r.status_code == 422 and "texts[1]" in r.json()["error"]
    r = httpx.post(server.url + "/rerank", json={"query": "q", "texts": ["a"], "raw_scores": 1})
    assert r.status_code == 422 and "raw_scores" in r.json()["error"]


def test_too_large_requests_get_413(server: BackgroundServer) -> None:
    r = httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": ["a"] * 21})
    assert r.status_code == 413 and "--max-documents" in r.json()["message"]
    r = httpx.post(server.url + "/rerank", json={"query": "q", "texts": ["a"] * 21})
    assert r.status_code == 413
    big = {"query": "q", "documents": ["the cat " * 600]}
    r = httpx.post(server.url + "/v1/rerank", json=big)
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield json.dumps(big).encode()

    r = httpx.post(server.url + "/v1/rerank", content=chunks())
    assert r.status_code == 413
    # and the server still answers
    assert httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": ["a"]}).is_success


def test_api_key(keyed: BackgroundServer) -> None:
    body = {"query": QUERY, "documents": DOCS}
    assert httpx.post(keyed.url + "/v1/rerank", json=body).status_code == 401
    wrong = httpx.post(keyed.url + "/v1/rerank", json=body, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "wrong API key"
    assert wrong.headers["www-authenticate"] == "Bearer"
    good = {"Authorization": "Bearer s3cret"}
    assert httpx.post(keyed.url + "/v1/rerank", json=body, headers=good).status_code == 200
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    assert httpx.get(keyed.url + "/health").status_code == 200  # for load balancers


def test_unknown_route_and_method_are_json(server: BackgroundServer) -> None:
    assert httpx.get(server.url + "/nope").json()["error_type"] == "http"
    r = httpx.get(server.url + "/v1/rerank")
    assert r.status_code == 405 and "message" in r.json()


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(model: ColBERT) -> None:
    rng = random.Random(3)
    requests = []
    for _ in range(40):
        docs = [
            " ".join(rng.choices(WORDS, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 8))
        ]
        requests.append((" ".join(rng.choices(WORDS, k=rng.randint(1, 6))), docs))
    held = HeldColBERT(model)  # hold the first call so that the others queue behind it

    async def run(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            tasks = [
                asyncio.create_task(client.post("/v1/rerank", json={"query": q, "documents": d}))
                for q, d in requests
            ]
            await asyncio.sleep(0.5)
            held.release.set()
            return await asyncio.gather(*tasks)

    with BackgroundServer(held) as server:
        responses = asyncio.run(run(server.url))
        metrics = httpx.get(server.url + "/metrics").text
    for (query, docs), r in zip(requests, responses, strict=True):
        assert r.status_code == 200, r.text
        _, scores = expected(model, query, docs)
        got = r.json()["results"]
        indices = [x["index"] for x in got]
        assert sorted(indices) == list(range(len(docs)))
        np.testing.assert_allclose(
            [x["relevance_score"] for x in got], scores[indices], rtol=1e-5, atol=1e-6
        )
        # best first by the reference scores too (near-ties may swap only within rounding)
        assert (np.diff(scores[indices]) <= 1e-6).all()
    batches = next(
        s.value
        for f in text_string_to_metric_families(metrics)
        if f.name == "colbert_batch_requests"
        for s in f.samples
        if s.name.endswith("_count")
    )
    assert batches < len(requests) / 2, f"{batches} model calls for {len(requests)} requests"


def post_in_thread(url: str, body: dict[str, Any], out: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(httpx.post(url, json=body, timeout=60)))
    thread.start()
    return thread


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_full_queue_gets_503_with_retry_after(model: ColBERT) -> None:
    held = HeldColBERT(model)
    with BackgroundServer(held, ServerSettings(max_queue=1)) as server:
        first: list[httpx.Response] = []
        second: list[httpx.Response] = []
        url = server.url + "/v1/rerank"
        t1 = post_in_thread(url, {"query": QUERY, "documents": DOCS[:2]}, first)
        held.entered.wait(10)  # the first request is in the model
        t2 = post_in_thread(url, {"query": QUERY, "documents": DOCS[2:]}, second)
        wait_for(lambda: server.app.state.batcher.queue_depth == 1)  # the second waits
        r = httpx.post(url, json={"query": QUERY, "documents": DOCS})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "busy" in r.json()["message"]
        held.release.set()
        t1.join(30)
        t2.join(30)
        assert first[0].status_code == 200 and second[0].status_code == 200


def test_a_failing_request_does_not_fail_the_others(model: ColBERT) -> None:
    held = HeldColBERT(model)
    with BackgroundServer(held) as server:
        url = server.url + "/v1/rerank"
        outs: list[list[httpx.Response]] = [[], [], []]
        t0 = post_in_thread(url, {"query": QUERY, "documents": DOCS[:1]}, outs[0])
        held.entered.wait(10)
        t1 = post_in_thread(url, {"query": QUERY, "documents": [POISON, DOCS[1]]}, outs[1])
        t2 = post_in_thread(url, {"query": QUERY, "documents": DOCS[2:]}, outs[2])
        wait_for(lambda: server.app.state.batcher.queue_depth == 2)  # one batch together
        held.release.set()
        for t in (t0, t1, t2):
            t.join(30)
        assert outs[1][0].status_code == 500 and outs[1][0].json()["error_type"] == "server"
        assert outs[0][0].status_code == 200 and outs[2][0].status_code == 200
        order, scores = expected(model, QUERY, DOCS[2:])
        assert_ranking(outs[2][0].json()["results"], "relevance_score", order, scores)


def test_shutdown_answers_requests_in_flight(model: ColBERT) -> None:
    held = HeldColBERT(model)
    server = BackgroundServer(held).start()
    outs: list[httpx.Response] = []
    url = server.url + "/v1/rerank"
    threads = [post_in_thread(url, {"query": QUERY, "documents": DOCS}, outs) for _ in range(3)]
    held.entered.wait(10)
    wait_for(lambda: server.app.state.batcher.queue_depth >= 1)
    wait_for(lambda: server.app.state.metrics.in_flight == 3)  # every request has arrived
    stopper = threading.Thread(target=server.stop)
    stopper.start()  # shutdown begins while the requests wait for the model
    time.sleep(0.3)
    held.release.set()
    for t in (*threads, stopper):
        t.join(30)
    assert [r.status_code for r in outs] == [200, 200, 200]
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json={"query": QUERY, "documents": DOCS})


def test_settings_are_validated() -> None:
    with pytest.raises(InvalidArgumentError, match="max_queue must be >= 1"):
        ServerSettings(max_queue=0)
    with pytest.raises(InvalidArgumentTypeError, match="max_documents"):
        ServerSettings(max_documents="10")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="api_key"):
        ServerSettings(api_key="")


def test_served_model_name_replaces_the_path_everywhere(model: ColBERT) -> None:
    assert pathlib.Path(model.name).is_absolute()  # the fixture loads a directory by its path
    with BackgroundServer(model, ServerSettings(served_model_name="team/colbert")) as s:
        rerank = httpx.post(s.url + "/v1/rerank", json={"query": QUERY, "documents": DOCS})
        bodies = [
            rerank.text,
            httpx.get(s.url + "/health").text,
            httpx.get(s.url + "/v1/models").text,
        ]
    assert rerank.json()["model"] == "team/colbert"
    for body in bodies:
        assert "team/colbert" in body
        assert model.name not in body and str(pathlib.Path(model.name).parent) not in body
    with pytest.raises(InvalidArgumentError, match="served_model_name"):
        ServerSettings(served_model_name=" ")


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_cli_serve_refuses_a_bad_port_before_loading(
    port: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The port is checked first: the model directory below does not even exist."""
    missing = str(tmp_path / "no-such-model")
    assert cli_main(["serve", "--model", missing, "--port", port]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "port number" in err and "no-such-model" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_serve_checks_the_port_before_loading(tmp_path: pathlib.Path) -> None:
    from colbert_plugins.server import serve

    with pytest.raises(InvalidArgumentError, match="port must be between 0 and 65535"):
        serve(str(tmp_path / "no-such-model"), port=70000)


def test_cli_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--api-key",
        "--max-documents",
        "--max-request-bytes",
        "--threads",
        "--served-model-name",
    ):
        assert option in out


@pytest.mark.parametrize("hidden", ["starlette", "prometheus_client"])
def test_missing_server_extra_names_it(hidden: str) -> None:
    """Without Starlette (or prometheus_client), importing the server (or `serve`) says which
    extra to install."""
    code = (
        "import sys\n"
        f"sys.modules[{hidden!r}] = None\n"
        "from colbert_plugins.errors import MissingDependencyError\n"
        "try:\n"
        "    import colbert_plugins.server\n"
        "except MissingDependencyError as exc:\n"
        "    assert 'colbert-plugins[server]' in str(exc), exc\n"
        f"    assert {hidden!r} in str(exc), exc\n"
        "else:\n"
        f"    raise SystemExit('imported without {hidden}')\n"
        "from colbert_plugins.cli import main\n"
        "assert main(['serve', '--model', 'unused']) == 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "colbert-plugins[server]" in result.stderr  # the CLI's one-line error


def test_core_import_does_not_import_the_server() -> None:
    code = (
        "import sys, colbert_plugins, colbert_plugins.cli, colbert_plugins.index\n"
        "lazy = ('starlette', 'uvicorn', 'prometheus_client', 'pydantic', 'filelock')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in lazy)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
