"""Memory while encoding many documents: it must not grow with the document count.

    python benchmarks/encode_memory.py [MODEL] [--docs 10000] [--chunk 500] [--cache-mb 64]
        [--document-length 128] [--threads 2] [--max-growth-mb N]

Encodes ``--docs`` distinct documents (Cranfield, CISI and SciFact texts, then numbered
variants of them) in calls of ``--chunk`` documents, as an indexing job that hands each
chunk's vectors on and drops them would. The document-embedding cache is on, with a budget
of ``--cache-mb``. After each chunk it prints RSS, the peak RSS of that chunk (VmHWM, reset
before each chunk), and the cache's size. RSS may rise until the cache budget is full and
must then stay flat: the growth from the first chunk after the cache filled up to the end is
printed, and with ``--max-growth-mb`` the script exits with status 1 when it is larger.

``--document-length`` caps the tokens per document (default 128) so that 10,000 documents
take minutes rather than an hour on two cores; the memory behaviour does not depend on it.
MODEL defaults to ``$COLBERT_PLUGINS_TEST_MODEL`` or ``../shared/models/colbert-minilm-proxy``.

Model: speed, memory and overhead do not depend on trained weights, so the untrained proxy
(../shared/models/colbert-minilm-proxy, the default) measures them as well as a trained model
of the same architecture; no quality number comes out of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from soak import growth_status, rss_mb  # run from benchmarks/: its sibling script

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = os.environ.get("COLBERT_PLUGINS_TEST_MODEL") or str(
    SHARED / "models/colbert-minilm-proxy"
)


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); ignored where not allowed."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def documents(count: int) -> list[str]:
    base: list[str] = []
    for name in ("cranfield", "cisi", "scifact"):
        corpus = SHARED / "data" / name / "corpus.jsonl"
        if not corpus.is_file():
            continue
        with corpus.open(encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                text = f"{doc.get('title', '')} {doc.get('text', '')}".strip()
                if text:
                    base.append(text)
    if not base:
        base = [f"document {i} about wings, flow and heat transfer" for i in range(100)]
    unique = list(dict.fromkeys(base))
    out = unique[:count]
    copy = 1
    while len(out) < count:
        out += [f"{t} (variant {copy})" for t in unique[: count - len(out)]]
        copy += 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--cache-mb", type=float, default=64)
    parser.add_argument("--document-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-growth-mb", type=float, default=None)
    args = parser.parse_args()

    texts = documents(args.docs)
    cache = EmbeddingCache(max_bytes=int(args.cache_mb * 2**20))
    model = ColBERT.from_pretrained(
        args.model, threads=args.threads, cache=cache, document_length=args.document_length
    )
    model.encode_documents(texts[:8])  # warm up the session's buffers
    print(
        f"model={Path(args.model).name} docs={len(texts)} chunk={args.chunk} "
        f"cache={args.cache_mb:g} MiB document_length={args.document_length} "
        f"threads={args.threads}"
    )
    print(f"start: rss={rss_mb():.1f} MiB (texts and model loaded)", flush=True)
    started = time.perf_counter()
    full_at: float | None = None
    halfway: float | None = None
    rss = rss_mb()
    for begin in range(0, len(texts), args.chunk):
        reset_peak()
        vectors = model.encode_documents(texts[begin : begin + args.chunk])
        result_mb = sum(v.nbytes for v in vectors) / 2**20
        del vectors  # handed on, as an indexing job would
        stats = cache.stats()
        rss = rss_mb()
        done = begin + args.chunk
        print(
            f"docs={min(done, len(texts)):>6}  rss={rss:7.1f} MiB  chunk peak="
            f"{rss_mb('VmHWM'):7.1f} MiB  chunk vectors={result_mb:6.1f} MiB  "
            f"cache={stats.bytes / 2**20:6.1f} MiB ({stats.entries} entries)  "
            f"{min(done, len(texts)) / (time.perf_counter() - started):5.1f} docs/s",
            flush=True,
        )
        if full_at is None and stats.bytes > 0.9 * cache.max_bytes:
            full_at = rss
        if halfway is None and done >= len(texts) // 2:
            halfway = rss
    if full_at is None:
        print("the cache never filled up; growth not measured (use more --docs)")
        return 0
    growth = rss - full_at
    print(f"RSS growth from the chunk where the cache filled up to the end: {growth:+.1f} MiB")
    if halfway is not None:
        print(f"RSS growth over the second half of the documents: {rss - halfway:+.1f} MiB")
    return growth_status(growth, args.max_growth_mb)


if __name__ == "__main__":
    sys.exit(main())
