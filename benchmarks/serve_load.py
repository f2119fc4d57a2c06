"""Load test of the rerank server: concurrent clients against the same requests run serially.

Usage:
    python benchmarks/serve_load.py [MODEL] [--clients 1,4,16,64] [--requests 64]
        [--repeats 3] [--threads 2] [--data DIR] [--seen 200] [--new-fraction 0.5]
        [--words 60] [--unbatched 16] [--seed 0] [--json]

Every request reranks 20-50 candidates for a query (Cranfield by default, each document cut
to its first ``--words`` words to keep the run short on a small CPU): half drawn from a
pool of ``--seen`` documents that are already in the model's cache ("seen before"), half new
documents that no request has sent before (each new document appears in one request only, so
the server gains nothing from duplicates across requests: what it gains comes from batching).

Variants, each in a fresh process (fresh cache, warmed with the seen pool):
- ``serial``: the requests one after another in process with ``ColBERT.rerank`` (no HTTP);
- ``N clients``: ``colbert-plugins serve`` in a subprocess, N concurrent HTTP clients (asyncio
  + httpx in this process) sending the same requests to ``/v1/rerank``;
- ``N unbatched``: the same with ``--max-batch-documents 1`` (each request its own model call):
  the server without dynamic batching, to isolate what batching adds.

Reported per variant (median over ``--repeats``; the variants are interleaved, their order
rotated each round, because the machine may be shared): requests/s, documents/s, p50 and p95
latency, peak RSS of the process holding the model (VmHWM), requests per model call (from the
server's /metrics). The throughput ratio is against the serial run of the same round.

MODEL defaults to ``$COLBERT_PLUGINS_TEST_MODEL`` or ``../shared/models/colbert-minilm-proxy``.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import load_texts
from soak import rss_mb

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = os.environ.get("COLBERT_PLUGINS_TEST_MODEL") or str(
    SHARED / "models/colbert-minilm-proxy"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--clients", default="1,4,16,64", help="comma-separated client counts")
    p.add_argument("--requests", type=int, default=64, help="requests per variant and round")
    p.add_argument("--repeats", type=int, default=3, help="rounds (medians are reported)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    p.add_argument("--data", default=str(SHARED / "data/cranfield"), help="BEIR directory")
    p.add_argument("--seen", type=int, default=200, help="documents cached before each run")
    p.add_argument(
        "--new-fraction",
        type=float,
        default=0.5,
        help="share of each request's candidates never sent before (default 0.5)",
    )
    p.add_argument(
        "--words", type=int, default=60, help="cut documents to N words (0: whole documents)"
    )
    p.add_argument(
        "--unbatched",
        default="16",
        help="client counts also run against a server without batching (one request per "
        "model call: --max-batch-documents 1); empty for none",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print the raw runs as JSON")
    p.add_argument("--child-serial", metavar="SPEC", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- workload -------------------------------------------------------------------------------


def load_queries(data: Path) -> list[str]:
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def make_workload(
    texts: list[str],
    queries: list[str],
    n_requests: int,
    n_seen: int,
    seed: int,
    new_fraction: float = 0.5,
) -> tuple[list[str], list[dict[str, Any]]]:
    """(seen pool, requests): 20-50 candidates each, ``new_fraction`` of them new, the rest
    from the pool."""
    rng = random.Random(seed)
    order = rng.sample(range(len(texts)), len(texts))
    seen = [texts[i] for i in order[:n_seen]]
    fresh = order[n_seen:]
    requests = []
    for r in range(n_requests):
        n = rng.randint(20, 50)
        n_new = int(n * new_fraction)
        if len(fresh) < n_new:
            raise SystemExit(
                f"error: the corpus has too few documents for {n_requests} requests with new "
                "documents each; use fewer --requests or a larger --data"
            )
        docs = rng.sample(seen, n - n_new) + [texts[i] for i in fresh[:n_new]]
        fresh = fresh[n_new:]
        rng.shuffle(docs)
        requests.append({"query": queries[r % len(queries)], "documents": docs})
    return seen, requests


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(wall: float, latencies: list[float], documents: int, **extra: Any) -> dict[str, Any]:
    return {
        "requests_per_s": len(latencies) / wall,
        "documents_per_s": documents / wall,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        **extra,
    }


# -- serial, in process (child) ---------------------------------------------------------------


def child_serial(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    from colbert_plugins import ColBERT

    model = ColBERT.from_pretrained(spec["model"], threads=spec["threads"])
    model.encode_documents(spec["seen"])
    model.encode_queries(["warm-up"])
    latencies = []
    start = time.perf_counter()
    for request in spec["requests"]:
        begin = time.perf_counter()
        model.rerank(request["query"], request["documents"])
        latencies.append(time.perf_counter() - begin)
    wall = time.perf_counter() - start
    documents = sum(len(r["documents"]) for r in spec["requests"])
    result = summary(wall, latencies, documents, peak_rss_mb=rss_mb("VmHWM"), per_batch=1.0)
    print(json.dumps(result))


def run_serial(args: argparse.Namespace, seen: list[str], requests: list[dict[str, Any]]) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(
            {"model": args.model, "threads": args.threads, "seen": seen, "requests": requests}, fh
        )
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child-serial", fh.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    return json.loads(out.strip().splitlines()[-1])


# -- server, concurrent clients ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_server(
    args: argparse.Namespace,
    clients: int,
    seen: list[str],
    requests: list[dict[str, Any]],
    batched: bool = True,
) -> dict[str, Any]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "colbert_plugins.cli", "serve", "--model", args.model),
            *("--port", str(port), "--threads", str(args.threads), "--quiet"),
            *("--max-queue", str(max(256, clients * 2))),
            *(() if batched else ("--max-batch-documents", "1")),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("error: the server did not start")
            time.sleep(0.1)
        warm = httpx.post(
            url + "/v1/rerank", json={"query": "warm-up", "documents": seen}, timeout=600
        )
        warm.raise_for_status()
        batches_before = batch_count(url)
        wall, latencies, errors = asyncio.run(drive(url, clients, requests))
        batches = batch_count(url) - batches_before
        rss = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    if errors:
        raise SystemExit(f"error: {errors} requests failed with {clients} clients")
    documents = sum(len(r["documents"]) for r in requests)
    return summary(
        wall, latencies, documents, peak_rss_mb=rss, per_batch=len(requests) / max(1, batches)
    )


def batch_count(url: str) -> float:
    import httpx

    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("colbert_batch_requests_count"):
            return float(line.split()[-1])
    return float("nan")


async def drive(
    url: str, clients: int, requests: list[dict[str, Any]]
) -> tuple[float, list[float], int]:
    import httpx

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:

        async def client() -> None:
            nonlocal errors
            while not queue.empty():
                request = queue.get_nowait()
                begin = time.perf_counter()
                response = await http.post("/v1/rerank", json=request)
                latencies.append(time.perf_counter() - begin)
                errors += not response.is_success

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
    return wall, latencies, errors


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_serial:
        child_serial(args.child_serial)
        return 0
    data = Path(args.data)
    texts = load_texts(data, 1_000_000)
    if args.words > 0:
        texts = list(dict.fromkeys(" ".join(t.split()[: args.words]) for t in texts))
    seen, requests = make_workload(
        texts, load_queries(data), args.requests, args.seen, args.seed, args.new_fraction
    )
    # (label, clients, batched); clients 0 is the serial in-process run
    variants: list[tuple[str, int, bool]] = [("serial", 0, True)]
    variants += [(f"{c} clients", int(c), True) for c in args.clients.split(",") if c]
    variants += [(f"{c} unbatched", int(c), False) for c in args.unbatched.split(",") if c]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in variants}
    ratios: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    n_docs = sum(len(r["documents"]) for r in requests)
    print(
        f"model {args.model}; {len(requests)} requests, {n_docs} documents "
        f"({n_docs / len(requests):.1f} per request, {args.new_fraction:.0%} new), "
        f"{args.words or 'all'} words each, {args.threads} ONNX threads, "
        f"{os.cpu_count()} CPUs; {args.repeats} interleaved rounds",
        flush=True,
    )
    for round_ in range(args.repeats):
        shift = round_ % len(variants)
        this_round: dict[str, dict[str, Any]] = {}
        for label, clients, batched in variants[shift:] + variants[:shift]:
            if clients == 0:
                result = run_serial(args, seen, requests)
            else:
                result = run_server(args, clients, seen, requests, batched)
            this_round[label] = result
            runs[label].append(result)
            print(
                f"  round {round_ + 1} {label:>13}: {result['requests_per_s']:.2f} req/s, "
                f"p50 {result['p50_ms']:.0f} ms",
                flush=True,
            )
        for label in runs:
            serial = this_round["serial"]["requests_per_s"]
            ratios[label].append(this_round[label]["requests_per_s"] / serial)

    print()
    print(
        f"{'variant':>13} {'req/s':>7} {'docs/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'peak RSS MiB':>12} {'req/call':>8} {'vs serial':>9}"
    )
    for label in runs:
        med = {k: statistics.median(r[k] for r in runs[label]) for k in runs[label][0]}
        print(
            f"{label:>13} {med['requests_per_s']:7.2f} {med['documents_per_s']:7.1f} "
            f"{med['p50_ms']:8.0f} {med['p95_ms']:8.0f} {med['peak_rss_mb']:12.0f} "
            f"{med['per_batch']:8.1f} {statistics.median(ratios[label]):8.2f}x"
        )
    print(
        "\nmedians of the rounds; 'vs serial' is the median of per-round ratios; serial runs "
        "ColBERT.rerank in process (no HTTP), the others go through the server"
    )
    if args.json:
        print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
