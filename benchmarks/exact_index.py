"""Exact in-memory index speed: float32 vs float16 storage, against the bare matrix product,
and a batch of queries scored in one pass against one query at a time.

Usage:
    python benchmarks/exact_index.py [--docs 10000] [--min-len 40] [--max-len 160] [--dim 128]
        [--query-len 32] [--batch 16] [--repeats 7] [--threads 1]
        [--real-docs 0] [--model DIR] [--data DIR] [--cache-file vectors.sqlite]

Stored vectors: ``--docs`` documents of random unit vectors, ``--min-len``..``--max-len``
tokens each (uniform), ``--dim`` dims; queries: ``--query-len`` random unit vectors. With
``--real-docs N``, a second set: the first N Cranfield documents encoded by the model (the
proxy model encodes ~20 documents/s on 2 cores; ``--cache-file`` keeps the vectors for the
next run) and the Cranfield queries encoded by it.

Measured, each repeat running every variant once in turn (so drift on a shared machine hits
all alike), on the same stored vectors:

- ``bare q@D.T``: the float32 product ``q @ block.T`` over the stored matrix in blocks of
  ``scoring._BLOCK_TOKENS`` (8,192) rows, into a reused output: the floor for exact MaxSim, which
  has to compute every one of these products (``bare D@q.T``: the same product transposed,
  the orientation ``segmented_maxsim_batch`` uses; ``one block in cache``: the same number
  of products on the first block only, which never leaves the cache: if it is not much
  faster, the product, not memory, bounds exact search);
- ``search fp32`` / ``search fp16``: ``InMemoryIndex.search_vectors(q, k=10)`` end to end
  (products, segmented max, top-k, hits) with float32 / float16 storage;
- ``previous fp32`` / ``previous fp16``: the scoring kernel this index used before (one
  ``q @ block.T`` per 65,536 rows, float16 converted by ``astype``, ``reduceat`` along the
  rows of ``[q, rows]``), scores only, for the before/after ratio;
- ``batch fp32`` / ``batch fp16``: ``InMemoryIndex.search_vectors_batch`` on ``--batch``
  queries at once (time per query = batch time / batch).

Ratios are medians of the per-repeat ratios. BLAS threads are set by ``--threads`` (default 1:
on a machine shared with other work, multi-threaded OpenBLAS on these small products spends
its time waiting; set 2 on a quiet machine).

Model: timings only (``--real-docs`` encodes real documents to get real token-count and vector
statistics): the untrained proxy (the default) serves as well as a trained model.
"""

# ruff: noqa: E402  (BLAS threads are set before numpy is imported)
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--min-len", type=int, default=40)
    p.add_argument("--max-len", type=int, default=160)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--query-len", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--real-docs", type=int, default=0, help="also N encoded Cranfield docs")
    p.add_argument("--model", default=os.path.join(shared, "models", "colbert-minilm-proxy"))
    p.add_argument("--data", default=os.path.join(shared, "data", "cranfield"))
    p.add_argument("--cache-file", default=None, help="SQLite file keeping the real vectors")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = str(ARGS.threads)

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache
from colbert_plugins.index import InMemoryIndex
from colbert_plugins.scoring import _BLOCK_TOKENS

FloatArray = npt.NDArray[np.float32]


def unit(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    x = rng.standard_normal(shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def previous_segmented_maxsim(
    query: FloatArray, vectors: npt.NDArray[Any], offsets: npt.NDArray[np.int64]
) -> FloatArray:
    """The index's scoring kernel before segmented_maxsim_batch (for the before/after
    ratio): blocks of 65,536 rows, ``astype`` for float16, ``[q, rows]`` similarities."""
    n = len(offsets) - 1
    scores = np.full(n, -np.inf, dtype=np.float32)
    lengths = np.diff(offsets)
    start = 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + 65_536, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        first, last = int(offsets[start]), int(offsets[stop])
        nonempty = np.flatnonzero(lengths[start:stop] > 0)
        if nonempty.size:
            block = vectors[first:last]
            if block.dtype != np.float32:
                block = block.astype(np.float32)
            sims = query @ block.T
            starts = offsets[start:stop][nonempty] - first
            scores[start + nonempty] = np.maximum.reduceat(sims, starts, axis=1).sum(axis=0)
        start = stop
    return scores


def bare_product(
    query: FloatArray, matrix: FloatArray, transposed: bool, cached: bool = False
) -> None:
    rows = _BLOCK_TOKENS
    if transposed:
        out = np.empty((rows, len(query)), np.float32)
        for s in range(0, len(matrix), rows):
            block = matrix[:rows] if cached else matrix[s : s + rows]
            np.matmul(block, query.T, out=out[: len(block)])
    else:
        out = np.empty((len(query), rows), np.float32)
        for s in range(0, len(matrix), rows):
            block = matrix[s : s + rows]
            np.matmul(query, block.T, out=out[:, : len(block)])


def build_index(model: ColBERT, docs: Sequence[FloatArray], dtype: str) -> InMemoryIndex:
    index = InMemoryIndex(model, dtype=dtype)
    ids = [f"d{i}" for i in range(len(docs))]
    # Stored vectors without encoding: the index's own insertion path after the encoder.
    for start in range(0, len(docs), 1024):
        chunk = slice(start, start + 1024)
        index._upsert(
            ids[chunk], ["" for _ in ids[chunk]], [{} for _ in ids[chunk]], list(docs[chunk])
        )
    return index


def measure(
    name: str,
    docs: list[FloatArray],
    queries: list[FloatArray],
    model: ColBERT,
    args: argparse.Namespace,
) -> dict[str, Any]:
    f32 = build_index(model, docs, "float32")
    f16 = build_index(model, docs, "float16")
    tokens = int(f32._state.tokens)
    matrix = f32._state.buffer[:tokens]
    offsets = f32._state.offsets
    half = f16._state.buffer[:tokens]
    batch = queries[: args.batch]
    # Same hits both ways (one pass over a batch == one search per query).
    for q, hits in zip(batch, f32.search_vectors_batch(batch, k=10), strict=True):
        assert [h.id for h in hits] == [h.id for h in f32.search_vectors(q, k=10)]
    np.testing.assert_allclose(
        previous_segmented_maxsim(batch[0], half, offsets),
        [h for h in _scores(f16, batch[0])],
        rtol=1e-5,
        atol=1e-5,
    )
    variants: dict[str, Callable[[FloatArray], Any]] = {
        "bare q@D.T": lambda q: bare_product(q, matrix, transposed=False),
        "bare D@q.T": lambda q: bare_product(q, matrix, transposed=True),
        "bare D@q.T, one block in cache": lambda q: bare_product(
            q, matrix, transposed=True, cached=True
        ),
        "search fp32": lambda q: f32.search_vectors(q, k=10),
        "search fp16": lambda q: f16.search_vectors(q, k=10),
        "previous fp32": lambda q: previous_segmented_maxsim(q, matrix, offsets),
        "previous fp16": lambda q: previous_segmented_maxsim(q, half, offsets),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    times["batch fp32"] = []
    times["batch fp16"] = []
    for rep in range(args.repeats):
        q = queries[rep % len(queries)]
        for key, fn in variants.items():
            start = time.perf_counter()
            fn(q)
            times[key].append(time.perf_counter() - start)
        for key, index in (("batch fp32", f32), ("batch fp16", f16)):
            start = time.perf_counter()
            index.search_vectors_batch(batch, k=10)
            times[key].append((time.perf_counter() - start) / len(batch))
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    return {
        "set": name,
        "documents": len(docs),
        "tokens": tokens,
        "dim": int(matrix.shape[1]),
        "query_vectors": len(queries[0]),
        "batch": len(batch),
        "ms": ms,
        "ratios": {
            "fp16 / fp32 (search)": ratio("search fp16", "search fp32"),
            "search fp32 / bare q@D.T": ratio("search fp32", "bare q@D.T"),
            "search fp32 / bare D@q.T": ratio("search fp32", "bare D@q.T"),
            "bare D@q.T: streamed / one block in cache": ratio(
                "bare D@q.T", "bare D@q.T, one block in cache"
            ),
            "search fp16 / bare q@D.T": ratio("search fp16", "bare q@D.T"),
            "previous fp16 / previous fp32": ratio("previous fp16", "previous fp32"),
            "search fp32 / previous fp32": ratio("search fp32", "previous fp32"),
            "search fp16 / previous fp16": ratio("search fp16", "previous fp16"),
            "batch throughput / single, fp32": ratio("search fp32", "batch fp32"),
            "batch throughput / single, fp16": ratio("search fp16", "batch fp16"),
        },
    }


def _scores(index: InMemoryIndex, query: FloatArray) -> list[float]:
    """Raw MaxSim of every stored document (in slot order) through the index's kernel."""
    from colbert_plugins.scoring import segmented_maxsim

    state = index._state
    return segmented_maxsim(query, state.buffer, state.offsets).tolist()


def real_vectors(
    args: argparse.Namespace, model: ColBERT
) -> tuple[list[FloatArray], list[FloatArray]]:
    data = Path(args.data)
    texts = []
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
            if len(texts) >= args.real_docs:
                break
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh][: max(args.batch, args.repeats)]
    start = time.perf_counter()
    docs = model.encode_documents(texts, batch_size=32)
    print(f"encoded {len(texts)} documents in {time.perf_counter() - start:.0f} s", flush=True)
    return docs, model.encode_queries(queries)


def report(result: dict[str, Any]) -> None:
    print(
        f"\n{result['set']}: {result['documents']} documents, {result['tokens']} token vectors "
        f"x {result['dim']} dims; queries of {result['query_vectors']} vectors; batch "
        f"{result['batch']}"
    )
    print("| variant | median ms per query |")
    print("| --- | --- |")
    for key, value in result["ms"].items():
        print(f"| {key} | {value:.1f} |")
    print("| ratio (median of per-repeat ratios) | value |")
    print("| --- | --- |")
    for key, value in result["ratios"].items():
        print(f"| {key} | {value:.2f} |")


def main(args: argparse.Namespace) -> int:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"BLAS threads {args.threads}; numpy {np.__version__}; repeats {args.repeats}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    cache = EmbeddingCache(max_bytes=8 << 30, path=args.cache_file) if args.cache_file else None
    model = ColBERT.from_pretrained(args.model, cache=cache or False)
    if model.dim != args.dim:
        print(f"note: the model has {model.dim}-dim vectors; using --dim {model.dim}")
        args.dim = model.dim
    rng = np.random.default_rng(args.seed)
    lengths = rng.integers(args.min_len, args.max_len + 1, size=args.docs)
    docs = [unit(rng, (int(n), args.dim)) for n in lengths]
    queries = [unit(rng, (args.query_len, args.dim)) for _ in range(max(args.batch, args.repeats))]
    report(measure("random unit vectors", docs, queries, model, args))
    if args.real_docs:
        real_docs, real_queries = real_vectors(args, model)
        report(
            measure(
                f"Cranfield ({args.real_docs} documents, encoded)",
                real_docs,
                real_queries,
                model,
                args,
            )
        )
    return 0


if __name__ == "__main__":
    assert ARGS is not None
    sys.exit(main(ARGS))
