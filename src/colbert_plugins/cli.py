"""The ``colbert-plugins`` command line: rerank, encode, download, info, bench, serve, export
and index.

Examples::

    colbert-plugins rerank --model answerdotai/answerai-colbert-small-v1 \\
        --query "what is late interaction?" docs.jsonl --top-n 5
    colbert-plugins encode --model ./my-model corpus.jsonl --out embeddings/ --cache-path emb.db
    colbert-plugins download answerdotai/answerai-colbert-small-v1
    colbert-plugins info ./my-model --json
    colbert-plugins bench --model ./my-model --docs 200
    colbert-plugins serve --model ./my-model --port 8000 --api-key "$KEY"
    colbert-plugins export ./my-pylate-model ./my-model-onnx --int8   # the export extra
    colbert-plugins index add ./my-index corpus.jsonl --model ./my-model  (see cli_index)

Input files hold one document per line: plain text, or JSON Lines with a text field
(``--field``, default ``text``, falling back to ``page_content`` and ``content``); ``-`` reads
standard input. Errors print one line, ``colbert-plugins: error: ...``, and exit with 2 for
usage errors (bad options or settings) and 1 for anything else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .checks import check_query
from .cli_index import add_index_parser
from .cli_input import (
    DEFAULT_FIELDS,
    Document,
    InputError,
    UsageError,
    display_name,
    generated_documents,
    read_documents,
)
from .config import LONG_DOCUMENT_MODES
from .errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["Document", "main", "read_documents"]

PROG = "colbert-plugins"
_PREVIEW = 100


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 error, 2 usage)."""
    try:
        args = build_parser().parse_args(None if argv is None else list(argv))
    except UsageError as exc:
        return _fail(str(exc), 2)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    package_logger = logging.getLogger("colbert_plugins")
    level = package_logger.level
    if args.quiet:  # library warnings go to stderr (logging's last resort) unless --quiet
        package_logger.setLevel(logging.ERROR)
    try:
        status: int = args.handler(args)
        return status
    except UsageError as exc:
        return _fail(str(exc), 2)
    except (InvalidArgumentError, InvalidArgumentTypeError) as exc:
        return _fail(str(exc), 2)
    except (ColBERTError, InputError) as exc:
        return _fail(str(exc), 1)
    except BrokenPipeError:  # the reader (e.g. `head`) went away: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        return _fail(_os_error(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    finally:
        package_logger.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tools)."""
    parser = _Parser(
        prog=PROG,
        description="ColBERT late-interaction reranking on ONNX Runtime.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    quiet = _Parser(add_help=False)
    quiet.add_argument(
        "-q", "--quiet", action="store_true", help="print results only: no progress or summary"
    )
    loading = _Parser(add_help=False)
    group = loading.add_argument_group("model options")
    group.add_argument("--revision", help="hub branch, tag or commit")
    group.add_argument("--cache-dir", help="Hugging Face cache directory")
    group.add_argument("--model-file", help="the ONNX graph's path inside the model")
    group.add_argument("--threads", type=_positive, help="ONNX Runtime threads")
    group.add_argument("--document-length", type=_positive, help="tokens per document")
    group.add_argument("--query-length", type=_positive, help="query length (mask padding)")
    group.add_argument(
        "--long-documents",
        choices=LONG_DOCUMENT_MODES,
        help="truncate long documents, or encode them as overlapping windows",
    )
    group.add_argument("--window-stride", type=_positive, help="tokens between window starts")
    group.add_argument(
        "--int8",
        action="store_true",
        help="run the int8 dynamically quantized graph (faster on CPU, slightly different scores)",
    )
    inputs = _Parser(add_help=False)
    inputs.add_argument("file", metavar="FILE", help="text lines or JSON Lines; - for stdin")
    inputs.add_argument(
        "--field",
        help=f"JSON Lines text field (default: the first of {', '.join(DEFAULT_FIELDS)})",
    )
    inputs.add_argument(
        "--format",
        choices=("auto", "text", "jsonl"),
        default="auto",
        help="input format (auto: JSON Lines when the first line is a JSON object)",
    )

    p = sub.add_parser(
        "rerank",
        parents=[loading, inputs, quiet],
        help="rank the documents of FILE for a query",
        description="Rank the documents of FILE for a query, best first.",
    )
    p.add_argument("--model", required=True, help="model directory or Hugging Face repo id")
    p.add_argument("--query", required=True, help="the query text")
    p.add_argument("--top-n", type=_positive, help="print only the best N")
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.add_argument(
        "--explain", action="store_true", help="also show the best-matching spans of each result"
    )
    p.set_defaults(handler=_cmd_rerank)

    p = sub.add_parser(
        "encode",
        parents=[loading, inputs, quiet],
        help="write document embeddings to a directory (and fill the cache)",
        description=(
            "Encode the documents of FILE into DIR: embeddings.npy (all vectors, float32), "
            "offsets.npy (document i is rows offsets[i]:offsets[i+1]) and manifest.json. "
            "DIR is written atomically."
        ),
    )
    p.add_argument("--model", required=True, help="model directory or Hugging Face repo id")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--cache-path", help="SQLite embedding cache to read and fill")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.add_argument("--batch-size", type=_positive, default=32, help="documents per batch")
    p.set_defaults(handler=_cmd_encode)

    p = sub.add_parser(
        "download",
        parents=[quiet],
        help="fetch a model's files into the Hugging Face cache",
        description="Fetch the files a ColBERT ONNX model needs into the Hugging Face cache.",
    )
    p.add_argument("model", metavar="MODEL", help="Hugging Face repo id")
    p.add_argument("--revision", help="hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache directory")
    p.add_argument("--model-file", help="the ONNX graph's path inside the repo")
    p.set_defaults(handler=_cmd_download)

    p = sub.add_parser(
        "info",
        parents=[loading, quiet],
        help="show a model's resolved configuration and files",
        description="Show the resolved ColBERT settings, the graph and the files of a model.",
    )
    p.add_argument("model", metavar="MODEL", help="model directory or Hugging Face repo id")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(handler=_cmd_info)

    p = sub.add_parser(
        "bench",
        parents=[loading, quiet],
        help="quick speed check: encoding throughput and rerank latency",
        description=(
            "Encode N documents (from --corpus or generated Cranfield-like text) and time a "
            "rerank of one query against 100 of them, cold (empty cache) and warm."
        ),
    )
    p.add_argument("--model", required=True, help="model directory or Hugging Face repo id")
    p.add_argument("--docs", type=_positive, default=100, help="documents to encode")
    p.add_argument("--corpus", help="documents to use (text lines or JSON Lines)")
    p.add_argument("--field", help="JSON Lines text field")
    p.add_argument("--query", default=_BENCH_QUERY, help="the rerank query")
    p.add_argument("--repeat", type=_positive, default=5, help="warm rerank repetitions")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(handler=_cmd_bench)

    p = sub.add_parser(
        "serve",
        parents=[loading, quiet],
        help="serve the Cohere/Jina /v1/rerank and TEI /rerank APIs over HTTP",
        description="Serve the model over HTTP (needs the server extra); see the README.",
    )
    p.add_argument("--model", required=True, help="model directory or Hugging Face repo id")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 1-65535 (default 8000)")
    p.add_argument(
        "--served-model-name",
        help="the model name responses report (default: the repo id, or the model "
        "directory's name; never its path)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("COLBERT_PLUGINS_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $COLBERT_PLUGINS_API_KEY)",
    )
    p.add_argument("--max-documents", type=_positive, default=1000, help="per request")
    p.add_argument("--max-request-bytes", type=_positive, default=4 << 20, help="per request")
    p.add_argument("--max-queue", type=_positive, default=256, help="waiting requests (503)")
    p.add_argument("--max-batch-documents", type=_positive, default=512, help="per model call")
    p.add_argument("--cache-path", help="SQLite document cache kept across restarts")
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser(
        "export",
        parents=[quiet],
        help="export a PyLate checkpoint to a verified ONNX directory (needs the export extra)",
        description=(
            "Export a PyLate or Stanford colbert-ai checkpoint to an ONNX model directory, then "
            "check it against PyLate and refuse it if it differs. Needs PyTorch and PyLate: "
            "pip install 'colbert-plugins[export]'."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="PyLate model directory or Hugging Face repo id")
    p.add_argument("out", metavar="OUT", help="output directory")
    p.add_argument("--int8", action="store_true", help="also write model_int8.onnx")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(handler=_cmd_export)

    add_index_parser(sub, loading, quiet)
    return parser


# -- commands -------------------------------------------------------------------------------


def _cmd_rerank(args: argparse.Namespace) -> int:
    check_query(args.query, "--query")  # before reading or loading anything
    docs = read_documents(args.file, field=args.field, fmt=args.format)
    if not docs:
        raise InputError(f"{display_name(args.file)} holds no documents")
    model = _load_model(args, cache=True)
    results = model.rerank(
        args.query, [d.text for d in docs], top_n=args.top_n, show_progress=_progress(args)
    )
    out = sys.stdout
    for rank, result in enumerate(results, 1):
        doc = docs[result.index]
        spans = _top_spans(model, args.query, doc.text) if args.explain else None
        if args.json:
            record: dict[str, Any] = {"rank": rank, "index": result.index, "score": result.score}
            if doc.id is not None:
                record["id"] = doc.id
            record["text"] = doc.text
            if spans is not None:
                record["matches"] = spans
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            label = f"{doc.id} " if doc.id is not None else ""
            out.write(f"{rank:>4}  {result.score:10.4f}  [{result.index}] {label}")
            out.write(_preview(doc.text) + "\n")
            if spans:
                shown = ", ".join(
                    f"{s['text']!r} ({s['query_token']} {s['similarity']:.2f})" for s in spans
                )
                out.write(f"{'':>18}matches: {shown}\n")
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_output(out, args.overwrite)
    docs = read_documents(args.file, field=args.field, fmt=args.format)
    if not docs:
        raise InputError(f"{display_name(args.file)} holds no documents")
    from .cache import EmbeddingCache

    cache: EmbeddingCache | bool = EmbeddingCache(path=args.cache_path) if args.cache_path else True
    model = _load_model(args, cache=cache)
    started = time.perf_counter()
    vectors = model.encode_documents(
        [d.text for d in docs], batch_size=args.batch_size, show_progress=_progress(args)
    )
    seconds = time.perf_counter() - started
    lengths = np.array([v.shape[0] for v in vectors], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    embeddings = np.concatenate(vectors, axis=0).astype(np.float32, copy=False)
    ids = [d.id for d in docs]
    manifest = {
        "format": "colbert-plugins-embeddings",
        "format_version": 1,
        "model": model.name,
        "model_key": model.model_key,
        "dim": int(embeddings.shape[1]),
        "dtype": "float32",
        "documents": len(docs),
        "vectors": int(embeddings.shape[0]),
        "files": {"embeddings": "embeddings.npy", "offsets": "offsets.npy"},
        "source": display_name(args.file),
        "ids": ids if any(i is not None for i in ids) else None,
        "config": model.config.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "colbert_plugins_version": __version__,
    }
    _write_atomically(out, embeddings, offsets, manifest, args.overwrite)
    if not args.quiet:
        stats = model.cache.stats() if model.cache is not None else None
        cached = f" ({stats.hits} from the cache)" if stats and stats.hits else ""
        _note(
            f"encoded {len(docs)} documents{cached} into {embeddings.shape[0]} vectors of "
            f"{embeddings.shape[1]} dims in {seconds:.2f}s -> {out}"
            + (f" (cache: {args.cache_path})" if args.cache_path else "")
        )
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .errors import ModelNotFoundError
    from .hub import _hub_offline, resolve_model_files

    try:
        files = resolve_model_files(
            args.model,
            model_file=args.model_file,
            revision=args.revision,
            cache_dir=args.cache_dir,
            local_files_only=False,
        )
    except ModelNotFoundError as exc:
        if not _hub_offline():
            raise
        where = args.cache_dir or "the default Hugging Face cache"
        raise ModelNotFoundError(
            f"cannot download {args.model!r}: HF_HUB_OFFLINE is set and the model is not in "
            f"{where}; unset HF_HUB_OFFLINE on a machine that reaches the hub and run again"
        ) from exc
    if not args.quiet:
        what = "local model directory" if Path(args.model).expanduser().is_dir() else "model"
        _note(f"{what} {files.name} is ready in:")
    print(files.directory)
    if not args.quiet:
        for path in _model_paths(files):
            _note(f"  {path.relative_to(files.directory).as_posix()}  {_size(path.stat().st_size)}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    model = _load_model(args, cache=False)
    info = _model_info(model)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    lines = [
        f"model            {info['name']}",
        f"directory        {info['directory']}",
        f"dim              {info['dim']}",
        f"family           {info['config']['family']} ({_FAMILY_NOTE[info['config']['family']]})",
        f"query marker     {_token_label(info['tokens']['query_marker'])}",
        f"document marker  {_token_label(info['tokens']['document_marker'])}",
        f"mask / pad       {_token_label(info['tokens']['mask'])} / "
        f"{_token_label(info['tokens']['pad'])}",
        f"skiplist ids     {len(info['tokens']['skiplist'])} tokens",
    ]
    if info["windows"]:
        windows = info["windows"]
        lines.append(f"windows          {windows['length']} tokens, stride {windows['stride']}")
    lines.append("settings (value, and the file or rule it came from)")
    for name, value in info["config"].items():
        shown = f"{len(value)} strings" if name == "skiplist" else json.dumps(value)
        lines.append(f"  {name:<22} {shown:<12} {info['sources'].get(name, 'default')}")
    if info["prompts"]:
        lines.append(
            "prompts          " + ", ".join(f"{k}={v!r}" for k, v in info["prompts"].items())
        )
    lines += [
        "graph inputs     "
        + ", ".join(f"{i['name']} {i['type']} {i['shape']}" for i in info["graph"]["inputs"]),
        "graph outputs    "
        + ", ".join(f"{o['name']} {o['type']} {o['shape']}" for o in info["graph"]["outputs"]),
        f"graph running    {info['graph']['path']} ({', '.join(info['graph']['providers'])})",
        "files",
    ]
    lines += [f"  {f['path']}  {_size(f['size'])}  sha256 {f['sha256']}" for f in info["files"]]
    lines += [f"warning: {w}" for w in info["warnings"]]
    print("\n".join(lines))
    return 0


_FAMILY_NOTE = {
    "fastembed": "fastembed's and colbert-ai's rules",
    "pylate": "PyLate's rules, read from its config",
}


_BENCH_QUERY = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high "
    "speed aircraft"
)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.corpus:
        docs = [d.text for d in read_documents(args.corpus, field=args.field, fmt="auto")]
        if len(docs) < args.docs:
            raise InputError(f"{args.corpus} holds {len(docs)} documents, fewer than --docs")
        docs = docs[: args.docs]
    else:
        docs = generated_documents(args.docs)
    from .cache import EmbeddingCache

    model = _load_model(args, cache=EmbeddingCache())
    assert model.cache is not None
    model.encode_queries([args.query])  # warm-up: sessions allocate on the first run
    started = time.perf_counter()
    vectors = model.encode_documents(docs, show_progress=_progress(args))
    encode_s = time.perf_counter() - started
    candidates = docs[:100]
    model.cache.clear()
    started = time.perf_counter()
    model.rerank(args.query, candidates)
    cold_s = time.perf_counter() - started
    warm = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        model.rerank(args.query, candidates)
        warm.append(time.perf_counter() - started)
    result = {
        "model": model.name,
        "documents": len(docs),
        "vectors": int(sum(v.shape[0] for v in vectors)),
        "encode_seconds": round(encode_s, 4),
        "docs_per_second": round(len(docs) / encode_s, 2),
        "rerank_candidates": len(candidates),
        "rerank_cold_ms": round(cold_s * 1000, 2),
        "rerank_warm_ms": round(statistics.median(warm) * 1000, 3),
        "threads": args.threads,
        "long_documents": model.config.long_documents,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"encode   {result['documents']} docs ({result['vectors']} vectors) in "
            f"{encode_s:.2f}s: {result['docs_per_second']} docs/s\n"
            f"rerank   1x{len(candidates)} cold {result['rerank_cold_ms']} ms, "
            f"warm {result['rerank_warm_ms']} ms (median of {args.repeat})"
        )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .cache import EmbeddingCache
    from .server import ServerSettings, serve

    cache = EmbeddingCache(path=args.cache_path) if args.cache_path else True
    settings = ServerSettings(
        api_key=args.api_key or None,
        max_documents=args.max_documents,
        max_request_bytes=args.max_request_bytes,
        max_queue=args.max_queue,
        max_batch_documents=args.max_batch_documents,
        served_model_name=args.served_model_name,
    )
    model = _load_model(args, cache=cache)
    serve(
        model,
        host=args.host,
        port=args.port,
        settings=settings,
        log_level="warning" if args.quiet else "info",
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportVerificationError, export_model

    try:
        result = export_model(args.model, args.out, int8=args.int8, force=args.force)
    except ExportVerificationError as exc:
        for line in exc.report.failures():
            _note(f"  {line}")
        raise ColBERTError(f"export refused, nothing written: {exc.report.summary()}") from exc
    if not args.quiet:
        check = f"; matches PyLate: {result.report.summary()}" if result.report else ""
        _note(f"exported {args.model} with {result.exporter}{check}")
    print(result.directory)
    return 0


# -- helpers --------------------------------------------------------------------------------


def _load_model(args: argparse.Namespace, *, cache: Any) -> Any:
    from .model import ColBERT

    overrides = {
        name: getattr(args, name)
        for name in ("document_length", "query_length", "long_documents", "window_stride")
        if getattr(args, name, None) is not None
    }
    return ColBERT.from_pretrained(
        args.model,
        model_file=args.model_file,
        revision=args.revision,
        cache_dir=args.cache_dir,
        threads=args.threads,
        cache=cache,
        quantize="int8" if getattr(args, "int8", False) else None,
        **overrides,
    )


def _top_spans(model: Any, query: str, text: str) -> list[dict[str, Any]]:
    from .explain import explain, top_spans

    return top_spans(explain(model, query, text), n=5)


def _model_paths(files: Any) -> list[Path]:
    """The files a model uses: the graph (and its external data), tokenizer, configuration."""
    from .hub import CONFIG_FILES

    graph: Path = files.onnx_path
    paths = [graph, *sorted(graph.parent.glob(graph.name + "*data")), files.tokenizer_path]
    paths += [files.directory / f for f in CONFIG_FILES if (files.directory / f).is_file()]
    if files.int8_path is not None:
        paths.append(files.int8_path)
    return list(dict.fromkeys(paths))


def _model_info(model: Any) -> dict[str, Any]:
    tok = model.tokenizer
    ids = tok.ids
    settings = model.settings

    def token(token_id: int | None) -> dict[str, Any]:
        if token_id is None:  # a model without this marker
            return {"id": None, "token": None}
        return {"id": int(token_id), "token": tok.token_text(token_id)}

    def describe(values: Any) -> list[dict[str, Any]]:
        return [{"name": v.name, "type": v.type, "shape": list(v.shape)} for v in values]

    files = []
    for path in _model_paths(model.files):
        files.append(
            {
                "path": path.relative_to(model.files.directory).as_posix(),
                "size": path.stat().st_size,
                "sha256": _sha256(path),
            }
        )
    session = model.encoder.session
    return {
        "name": model.name,
        "directory": str(model.files.directory.absolute()),
        "revision": model.files.revision,
        "dim": model.dim,
        "config": model.config.to_dict(),
        "tokens": {
            "query_marker": token(ids.query_marker),
            "document_marker": token(ids.document_marker),
            "mask": token(ids.mask),
            "pad": token(ids.pad),
            "skiplist": sorted(int(i) for i in ids.skiplist),
        },
        "sources": dict(settings.sources) if settings else {},
        "warnings": _warnings(model),
        "prompts": dict(settings.prompts) if settings else {},
        "windows": (
            {"length": tok.window_length, "stride": tok.window_stride}
            if model.config.long_documents == "windows"
            else None
        ),
        "graph": {
            "path": str(model.encoder.path),
            "inputs": describe(session.get_inputs()),
            "outputs": describe(session.get_outputs()),
            "providers": list(model.encoder.providers),
        },
        "files": files,
        "colbert_plugins_version": __version__,
    }


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out {out} exists and is not empty; pass --overwrite to replace it")


def _write_atomically(
    out: Path,
    embeddings: np.ndarray[Any, Any],
    offsets: np.ndarray[Any, Any],
    manifest: dict[str, Any],
    overwrite: bool,
) -> None:
    """Write into a temporary sibling directory, then rename it into place."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old: Path | None = None
    try:
        np.save(tmp / "embeddings.npy", embeddings)
        np.save(tmp / "offsets.npy", offsets)
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _check_output(out, overwrite)  # again: something may have appeared meanwhile
        if out.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():  # put the previous output back
            os.replace(old / out.name, out)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {value}")
    return value


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _fail(message: str, status: int) -> int:
    line = " ".join(message.split())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return status


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def _size(n: int) -> str:
    """Human-readable size.

    >>> _size(512), _size(90_561_252)
    ('512 B', '86.4 MiB')
    """
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _warnings(model: Any) -> list[str]:
    """The settings' warnings, and a token_type_ids declaration the graph contradicts."""
    settings = model.settings
    if settings is None:
        return []
    found = list(settings.warnings)
    declared, fed = settings.uses_token_type_ids, model.encoder.uses_token_type_ids
    if declared is not None and declared != fed:
        found.append(
            f"the config says uses_token_type_ids={str(declared).lower()} but the graph "
            f"{'declares' if fed else 'does not declare'} a token_type_ids input; the graph "
            f"decides: {'zeros are fed' if fed else 'none is fed'}"
        )
    return found


def _token_label(token: dict[str, Any]) -> str:
    return "none" if token["id"] is None else f"{token['id']} ({token['token']})"


if __name__ == "__main__":
    sys.exit(main())
