"""``colbert-plugins index``: build and query a :class:`~colbert_plugins.index.CompressedIndex`.

Examples::

    colbert-plugins index add ./my-index corpus.jsonl --model ./my-model
    colbert-plugins index search ./my-index --model ./my-model --query "wing flutter" \\
        --k 5 --filter '{"source": "a.pdf"}'
    colbert-plugins index delete ./my-index --model ./my-model doc-17 doc-18
    colbert-plugins index compact ./my-index --model ./my-model

JSON Lines input keeps every field other than the text and the id as the document's metadata;
documents without an id get their line number within the file (``FILE:N``).

Only ``add`` creates an index; ``search``, ``delete`` and ``compact`` refuse a directory that
holds none, before loading anything. Every command but the first ``add`` may leave out
``--model``: the index records the model it was built with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..checks import check_query, require
from .common import positive, progress
from .input import InputError, UsageError, display_name, read_documents

__all__ = ["add_index_parser"]


def add_index_parser(
    sub: Any, loading: argparse.ArgumentParser, quiet: argparse.ArgumentParser
) -> None:
    """Register ``index add|search|delete|compact`` on the main parser's subcommands."""
    parser = sub.add_parser(
        "index",
        help="a compressed on-disk index: add, search, delete, compact",
        description="Build and query a compressed, memory-mapped ColBERT index in a directory.",
    )
    commands = parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("path", metavar="DIR", help="the index directory")
    common.add_argument(
        "--model",
        help="model directory or Hugging Face repo id (default: the one the index records; "
        "required to create an index)",
    )

    p = commands.add_parser(
        "add", parents=[common, loading, quiet], help="encode and add the documents of FILE"
    )
    p.add_argument("file", metavar="FILE", help="text lines or JSON Lines; - for stdin")
    p.add_argument("--field", help="JSON Lines text field (default: text, page_content, content)")
    p.add_argument("--batch-size", type=positive, default=32, help="documents per encoder call")
    p.add_argument(
        "--no-originals",
        action="store_true",
        help="create the index without the float16 copy of every token vector that the final "
        "exact rerank reads (256 bytes per token on disk at 128 dims): codes only, lower recall",
    )
    p.set_defaults(handler=_cmd_add)

    p = commands.add_parser("search", parents=[common, loading, quiet], help="search the index")
    p.add_argument("--query", required=True, help="the query text")
    p.add_argument("--k", type=positive, default=10, help="number of results")
    p.add_argument("--filter", help='metadata filter as JSON, e.g. \'{"source": "a.pdf"}\'')
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.set_defaults(handler=_cmd_search)

    p = commands.add_parser("delete", parents=[common, loading, quiet], help="delete by id")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--missing-ok", action="store_true", help="ignore unknown ids")
    p.set_defaults(handler=_cmd_delete)

    p = commands.add_parser(
        "compact", parents=[common, loading, quiet], help="merge segments, drop deleted documents"
    )
    p.set_defaults(handler=_cmd_compact)


_MANIFEST = "manifest.json"  # the compressed index's commit file (index.store.MANIFEST)


def _recorded(path: Path) -> dict[str, Any] | None:
    """The index manifest at ``path``, or None when the directory holds no index."""
    manifest = path / _MANIFEST
    if not manifest.is_file():
        return None
    from ..index.base import IndexFormatError, read_manifest_json

    try:
        return read_manifest_json(manifest, f"{manifest} is missing")
    except IndexFormatError as exc:
        raise InputError(f"{exc}: not a usable index") from exc


def _existing(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest of the index ``args.path`` names; a clear error when there is none."""
    path = Path(args.path)
    found = _recorded(path) if path.is_dir() else None
    if found is None:
        reason = (
            "does not exist"
            if not path.exists()
            else "is not a directory"
            if not path.is_dir()
            else f"holds no index (no {_MANIFEST})"
        )
        raise InputError(
            f"index directory {args.path} {reason}; check the path, or build an index there "
            f"with 'colbert-plugins index add {args.path} FILE --model MODEL'"
        )
    return found


def _open(args: argparse.Namespace, manifest: dict[str, Any] | None) -> Any:
    """The index at ``args.path`` with ``--model``, or with the model the index records."""
    from ..errors import ModelNotFoundError
    from ..index import CompressedIndex
    from .common import load_model

    if args.model is None:
        recorded = manifest.get("model_name") if manifest else None
        if not isinstance(recorded, str) or not recorded:
            raise UsageError(f"{args.path} records no model name; pass --model")
        args.model = recorded
        try:
            model = load_model(args, cache=False)
        except ModelNotFoundError as exc:
            raise UsageError(
                f"the index at {args.path} was built with model {recorded!r}, which cannot be "
                f"loaded here ({exc}); pass --model"
            ) from exc
    else:
        model = load_model(args, cache=False)
    from ..index import IndexMismatchError
    from ..index.base import MISMATCH_HINT

    originals = False if getattr(args, "no_originals", False) else None
    try:
        return CompressedIndex(model, args.path, originals=originals)
    except IndexMismatchError as exc:
        hint = "Leave out --model to use the model the index records, or rebuild the index"
        raise InputError(str(exc).replace(MISMATCH_HINT, hint)) from exc


def _read(path: str, field: str | None) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Texts, ids (the document's own, else ``FILE:LINE``) and metadata (the other fields)."""
    docs = read_documents(path, field=field)
    name = display_name(path)
    ids = [doc.id if doc.id is not None else f"{name}:{doc.line}" for doc in docs]
    return [doc.text for doc in docs], ids, [dict(doc.metadata) for doc in docs]


def _cmd_add(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not path.is_dir():
        raise InputError(f"index directory {args.path} is a file; choose a directory")
    manifest = _recorded(path) if path.is_dir() else None
    if manifest is None and args.model is None:
        raise UsageError(f"{args.path} holds no index yet: pass --model to create one")
    if not (manifest or {}).get("codec"):
        # Checked before any document is read or encoded: a first add trains the centroids.
        require("faiss", extra="index", feature="building a compressed index (it trains centroids)")
    texts, ids, metas = _read(args.file, args.field)
    index = _open(args, manifest)
    index.add(
        texts,
        ids=ids,
        metadatas=metas,
        batch_size=args.batch_size,
        show_progress=progress(args),
    )
    if not args.quiet:
        print(f"added {len(ids)} documents; {len(index)} in {args.path}", file=sys.stderr)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    check_query(args.query, "--query")  # before opening the index or loading the model
    flt = None
    if args.filter:
        try:
            flt = json.loads(args.filter)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--filter is not JSON: {exc.msg}") from exc
    index = _open(args, _existing(args))
    hits = index.search(args.query, k=args.k, filter=flt)
    for rank, hit in enumerate(hits, 1):
        if args.json:
            record = {"rank": rank, "id": hit.id, "score": hit.score, "text": hit.text}
            print(json.dumps(record | {"metadata": hit.metadata}, ensure_ascii=False))
        else:
            preview = " ".join(hit.text.split())[:100]
            print(f"{rank:>4}  {hit.score:10.4f}  [{hit.id}] {preview}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    from ..index import UnknownIdError

    index = _open(args, _existing(args))
    try:
        index.delete(args.ids, missing_ok=args.missing_ok)
    except UnknownIdError as exc:
        shown = ", ".join(repr(i) for i in exc.missing[:5])
        more = f" and {len(exc.missing) - 5} more" if len(exc.missing) > 5 else ""
        raise InputError(
            f"{len(exc.missing)} id(s) not in {args.path}: {shown}{more}; nothing was deleted "
            "(pass --missing-ok to delete the others)"
        ) from exc
    if not args.quiet:
        print(f"{len(index)} documents left in {args.path}", file=sys.stderr)
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    index = _open(args, _existing(args))
    index.compact()
    if not args.quiet:
        print(f"compacted: {len(index)} documents in {args.path}", file=sys.stderr)
    return 0
