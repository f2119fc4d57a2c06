"""Passages for benchmarks/index_scale.py, and a resumable encoder that fills a persisted cache.

Two real corpora:

- ``beir``: every passage of Cranfield, CISI and SciFact in ../shared/data (title + text),
  about 8,000 passages.
- ``pydoc``: the reStructuredText sources that Debian's ``python3-doc`` package ships
  (``apt-get install python3-doc``), cut into passages of ``--words`` words (default 64, about
  90 tokens), about 22,000 passages; ``linux-doc-*`` sources are added when installed.

``python benchmarks/index_corpora.py encode --corpus beir --cache CACHE.sqlite`` encodes the
passages with the model (threads capped) into an :class:`~colbert_plugins.cache.EmbeddingCache`
SQLite file, in chunks, so that it can be stopped and resumed and ``index_scale.py`` reads the
vectors back without encoding again. It prints progress lines with the passages/s it reached.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ../shared/data beside the checkout, or $COLBERT_PLUGINS_DATA (a worktree elsewhere).
DATA = Path(os.environ.get("COLBERT_PLUGINS_DATA") or ROOT.parent / "shared" / "data")
MODEL = ROOT.parent / "shared" / "models" / "colbert-minilm-proxy"
PYDOC = Path("/usr/share/doc/python3.11/html/_sources")
LINUXDOC = Path("/usr/share/doc")


def beir_passages(data: Path = DATA) -> list[tuple[str, str]]:
    """``(id, text)`` of every Cranfield, CISI and SciFact passage."""
    out = []
    for name in ("cranfield", "cisi", "scifact"):
        with (data / name / "corpus.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                text = f"{doc.get('title', '')} {doc.get('text', '')}".strip()
                if text:
                    out.append((f"{name}:{doc['_id']}", text))
    return out


_MARKUP = re.compile(r"[=\-~^*#`]{3,}|\.\. [a-z-]+::|:[a-z]+:")


def _doc_files() -> Iterator[Path]:
    yield from sorted(PYDOC.rglob("*.rst.txt"))
    for doc in sorted(LINUXDOC.glob("linux-doc-*")):
        # Debian ships the kernel's reStructuredText sources compressed (``*.rst.gz``) under
        # Documentation/, and copies of them (``*.rst.txt``) under html/_sources/: read the
        # sources once, each plain ``*.txt`` of Documentation/ beside them.
        sources = doc / "Documentation"
        yield from sorted(sources.rglob("*.rst"))
        yield from sorted(sources.rglob("*.rst.gz"))
        yield from sorted(sources.rglob("*.txt"))


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8", errors="replace")


def pydoc_passages(words: int = 64, limit: int | None = None) -> list[tuple[str, str]]:
    """Non-overlapping ``words``-word passages of the Debian documentation sources."""
    out: list[tuple[str, str]] = []
    for path in _doc_files():
        tokens = _MARKUP.sub(" ", _read_text(path)).split()
        for i in range(0, len(tokens), words):
            chunk = tokens[i : i + words]
            if len(chunk) >= words // 4:
                out.append((f"{path.name}:{i // words}", " ".join(chunk)))
                if limit is not None and len(out) >= limit:
                    return out
    return out


def passages(corpus: str, words: int = 64, limit: int | None = None) -> list[tuple[str, str]]:
    if corpus == "beir":
        found = beir_passages()
        return found[:limit] if limit else found
    if corpus == "pydoc":
        return pydoc_passages(words, limit)
    raise SystemExit(f"unknown corpus {corpus!r} (beir or pydoc)")


def open_model(  # type: ignore[no-untyped-def]
    cache: Path | None, threads: int, document_length: int | None, model: str | Path | None = None
):
    """The benchmark model (``model``, default :data:`MODEL`), its cache in ``cache``."""
    from colbert_plugins import ColBERT
    from colbert_plugins.cache import EmbeddingCache

    overrides = {} if document_length is None else {"document_length": document_length}
    return ColBERT.from_pretrained(
        model or MODEL,
        threads=threads or None,
        cache=EmbeddingCache(max_bytes=0, path=cache) if cache else True,
        **overrides,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["encode", "count"])
    parser.add_argument("--corpus", default="beir")
    parser.add_argument("--model", default=str(MODEL), help="model directory (default: the proxy)")
    parser.add_argument("--cache", type=Path, required=False)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--words", type=int, default=64)
    parser.add_argument("--document-length", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args(argv)
    items = passages(args.corpus, args.words, args.limit)
    if args.command == "count":
        print(f"{args.corpus}: {len(items)} passages")
        return 0
    model = open_model(args.cache, args.threads, args.document_length, args.model)
    start = time.perf_counter()
    for i in range(0, len(items), args.chunk):
        model.encode_documents([t for _, t in items[i : i + args.chunk]])
        done = min(i + args.chunk, len(items))
        rate = done / (time.perf_counter() - start)
        print(f"{done}/{len(items)} passages, {rate:.1f}/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
