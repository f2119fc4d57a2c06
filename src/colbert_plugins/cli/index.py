"""``colbert-plugins index``: build and query an index in a directory: a
:class:`~colbert_plugins.index.CompressedIndex`, or a
:class:`~colbert_plugins.index.qdrant.QdrantIndex` on Qdrant Edge (``--engine qdrant``).

Examples::

    colbert-plugins index add ./my-index corpus.jsonl --model ./my-model
    colbert-plugins index search ./my-index --model ./my-model --query "wing flutter" \\
        --k 5 --filter '{"source": "a.pdf"}'
    colbert-plugins index delete ./my-index --model ./my-model doc-17 doc-18
    colbert-plugins index compact ./my-index --model ./my-model
    colbert-plugins index add ./my-qdrant corpus.jsonl --model ./my-model --engine qdrant
    colbert-plugins index search ./my-qdrant --query "wing flutter" --retrieval-mode bm25

JSON Lines input keeps every field other than the text and the id as the document's metadata;
documents without an id get their line number within the file (``FILE:N``).

The engine of an existing directory is found from its files: ``DIR/manifest.json`` is a
compressed index, ``DIR/colbert/colbert-plugins.json`` a Qdrant Edge collection named
``colbert``. Only ``add`` creates an index (compressed unless ``--engine qdrant``);
``search``, ``delete`` and ``compact`` refuse a directory that holds none, before loading
anything. Every command but the first ``add`` may leave out ``--model``: the index records
the model it was built with.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks import check_query, require
from .common import positive, progress
from .input import InputError, UsageError, display_name, read_documents

__all__ = ["ENGINES", "add_index_parser"]

#: The ``--engine`` choices: the compressed index, Qdrant Edge.
ENGINES = ("compressed", "qdrant")
#: The ``--retrieval-mode`` choices (a compressed index runs ``colbert`` only).
RETRIEVAL_MODES = ("colbert", "bm25", "hybrid")
#: The Qdrant collection the command line keeps in a directory.
QDRANT_COLLECTION = "colbert"


def add_index_parser(
    sub: Any, loading: argparse.ArgumentParser, quiet: argparse.ArgumentParser
) -> None:
    """Register ``index add|search|delete|compact`` on the main parser's subcommands."""
    parser = sub.add_parser(
        "index",
        help="an on-disk index (compressed, or Qdrant Edge): add, search, delete, compact",
        description="Build and query a ColBERT index in a directory: a compressed, "
        "memory-mapped index, or a Qdrant Edge collection (BM25 and hybrid retrieval too).",
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
        "--engine",
        choices=ENGINES,
        help="the index to create: compressed (faiss codes, memory-mapped) or qdrant (a Qdrant "
        "Edge collection, with BM25 vectors for --retrieval-mode bm25 and hybrid) (default: "
        "the existing index's engine; compressed for a new directory)",
    )
    p.add_argument(
        "--no-originals",
        action="store_true",
        help="create a compressed index without the float16 copy of every token vector that the "
        "final exact rerank reads (256 bytes per token on disk at 128 dims): codes only, lower "
        "recall",
    )
    p.set_defaults(handler=_cmd_add)

    p = commands.add_parser("search", parents=[common, loading, quiet], help="search the index")
    p.add_argument("--query", required=True, help="the query text")
    p.add_argument("--k", type=positive, default=10, help="number of results")
    p.add_argument("--filter", help='metadata filter as JSON, e.g. \'{"source": "a.pdf"}\'')
    p.add_argument(
        "--retrieval-mode",
        choices=RETRIEVAL_MODES,
        help="colbert (MaxSim), bm25, or hybrid (BM25 and ColBERT fused by reciprocal rank); "
        "bm25 and hybrid need a Qdrant index (default: the index's: hybrid for a Qdrant index "
        "with BM25 vectors, colbert otherwise)",
    )
    p.add_argument("--json", action="store_true", help="JSON Lines output")
    p.set_defaults(handler=_cmd_search)

    p = commands.add_parser("delete", parents=[common, loading, quiet], help="delete by id")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--missing-ok", action="store_true", help="ignore unknown ids")
    p.set_defaults(handler=_cmd_delete)

    p = commands.add_parser(
        "compact",
        parents=[common, loading, quiet],
        help="compressed: merge segments, drop deleted documents; qdrant: optimize (build HNSW)",
    )
    p.set_defaults(handler=_cmd_compact)


_MANIFEST = "manifest.json"  # the compressed index's commit file (index.store.MANIFEST)
#: A Qdrant Edge collection's manifest (index.qdrant.edge.MANIFEST), in DIR/<collection>/.
_QDRANT_MANIFEST = "colbert-plugins.json"


@dataclass(frozen=True)
class Found:
    """An index in a directory: its engine and its manifest (which records the model)."""

    engine: str
    manifest: dict[str, Any]


def _manifest_files(path: Path) -> dict[str, Path]:
    """Each engine's manifest file in ``path``."""
    return {
        "compressed": path / _MANIFEST,
        "qdrant": path / QDRANT_COLLECTION / _QDRANT_MANIFEST,
    }


def _recorded(path: Path) -> Found | None:
    """The index in ``path`` (its engine, by the manifest file present), or None when the
    directory holds no index."""
    present = {e: f for e, f in _manifest_files(path).items() if f.is_file()}
    if not present:
        return None
    if len(present) > 1:
        raise InputError(
            f"{path} holds both a compressed index ({_MANIFEST}) and a Qdrant collection "
            f"({QDRANT_COLLECTION}/{_QDRANT_MANIFEST}): keep one index per directory"
        )
    from ..index.base import IndexFormatError, read_manifest_json

    ((engine, manifest),) = present.items()
    try:
        return Found(engine, read_manifest_json(manifest, f"{manifest} is missing"))
    except IndexFormatError as exc:
        raise InputError(f"{exc}: not a usable index") from exc


def _existing(args: argparse.Namespace) -> Found:
    """The index ``args.path`` names; a clear error when there is none."""
    path = Path(args.path)
    found = _recorded(path) if path.is_dir() else None
    if found is None:
        reason = (
            "does not exist"
            if not path.exists()
            else "is not a directory"
            if not path.is_dir()
            else f"holds no index (no {_MANIFEST}, no {QDRANT_COLLECTION}/{_QDRANT_MANIFEST})"
        )
        raise InputError(
            f"index directory {args.path} {reason}; check the path, or build an index there "
            f"with 'colbert-plugins index add {args.path} FILE --model MODEL'"
        )
    return found


def _open(args: argparse.Namespace, found: Found | None, engine: str) -> Any:
    """The ``engine`` index at ``args.path`` with ``--model``, or with the model the index
    records (``found``)."""
    from ..errors import ModelNotFoundError
    from .common import load_model

    if args.model is None:
        recorded = found.manifest.get("model_name") if found else None
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
    from ..index import IndexLockedError, IndexMismatchError
    from ..index.base import MISMATCH_HINT

    try:
        if engine == "qdrant":
            from ..index.qdrant import QdrantIndex

            return QdrantIndex(model, QDRANT_COLLECTION, path=args.path)
        from ..index import CompressedIndex

        originals = False if getattr(args, "no_originals", False) else None
        return CompressedIndex(model, args.path, originals=originals)
    except IndexMismatchError as exc:
        hint = "Leave out --model to use the model the index records, or rebuild the index"
        raise InputError(str(exc).replace(MISMATCH_HINT, hint)) from exc
    except IndexLockedError as exc:
        if engine != "qdrant":
            raise
        raise InputError(
            f"the Qdrant index at {args.path} is open in another process (Qdrant Edge allows "
            "one at a time): wait for it to finish, or stop it, and run the command again"
        ) from exc


@contextmanager
def _opened(args: argparse.Namespace, found: Found | None, engine: str) -> Iterator[Any]:
    """:func:`_open`, closed when the command ends (Qdrant Edge flushes and releases its
    directory)."""
    index = _open(args, found, engine)
    try:
        yield index
    finally:
        close = getattr(index, "close", None)
        if close is not None:
            close()


def _engine(args: argparse.Namespace, found: Found | None) -> str:
    """The engine ``add`` writes with: ``--engine``, which must match an existing index's."""
    if found is None:
        return str(args.engine or "compressed")
    if args.engine is not None and args.engine != found.engine:
        raise UsageError(
            f"{args.path} holds a {found.engine} index: --engine {args.engine} cannot add to it "
            f"(leave out --engine, or choose another directory)"
        )
    return found.engine


def _require_engine(engine: str, found: Found | None) -> None:
    """The extra ``engine`` needs, checked before any document is read or encoded."""
    if engine == "qdrant":
        require("qdrant_edge", extra="qdrant", feature="a Qdrant Edge index (--engine qdrant)")
    elif found is None or not found.manifest.get("codec"):
        # A first add trains the centroids.
        require("faiss", extra="index", feature="building a compressed index (it trains centroids)")


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
    found = _recorded(path) if path.is_dir() else None
    engine = _engine(args, found)
    if found is None and args.model is None:
        raise UsageError(f"{args.path} holds no index yet: pass --model to create one")
    if engine == "qdrant" and args.no_originals:
        raise UsageError("--no-originals applies to a compressed index, not to --engine qdrant")
    _require_engine(engine, found)
    texts, ids, metas = _read(args.file, args.field)
    with _opened(args, found, engine) as index:
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
    found = _existing(args)
    with _opened(args, found, found.engine) as index:
        mode = _retrieval_mode(index, args.retrieval_mode)
        hits = index.search(args.query, k=args.k, filter=flt, retrieval_mode=mode)
    for rank, hit in enumerate(hits, 1):
        if args.json:
            record = {"rank": rank, "id": hit.id, "score": hit.score, "text": hit.text}
            print(json.dumps(record | {"metadata": hit.metadata}, ensure_ascii=False))
        else:
            preview = " ".join(hit.text.split())[:100]
            print(f"{rank:>4}  {hit.score:10.4f}  [{hit.id}] {preview}")
    return 0


def _retrieval_mode(index: Any, mode: str | None) -> str:
    """``--retrieval-mode`` if the index runs it (``None``: the index's default), else a usage
    error with the index's message."""
    from ..errors import InvalidArgumentError

    try:
        return str(index.check_retrieval_mode(mode))
    except InvalidArgumentError as exc:
        hint = ""
        if mode in ("bm25", "hybrid") and mode not in index.retrieval_modes:
            hint = " (create one with 'colbert-plugins index add DIR FILE --engine qdrant')"
        raise UsageError(f"--retrieval-mode {mode}: {exc}{hint}") from exc


def _cmd_delete(args: argparse.Namespace) -> int:
    from ..index import UnknownIdError

    found = _existing(args)
    with _opened(args, found, found.engine) as index:
        try:
            index.delete(args.ids, missing_ok=args.missing_ok)
        except UnknownIdError as exc:
            shown = ", ".join(repr(i) for i in exc.missing[:5])
            more = f" and {len(exc.missing) - 5} more" if len(exc.missing) > 5 else ""
            raise InputError(
                f"{len(exc.missing)} id(s) not in {args.path}: {shown}{more}; nothing was "
                "deleted (pass --missing-ok to delete the others)"
            ) from exc
        if not args.quiet:
            print(f"{len(index)} documents left in {args.path}", file=sys.stderr)
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    found = _existing(args)
    with _opened(args, found, found.engine) as index:
        if found.engine == "qdrant":
            index.optimize()  # Qdrant Edge merges segments and builds the HNSW index
            done = "optimized"
        else:
            index.compact()
            done = "compacted"
        if not args.quiet:
            print(f"{done}: {len(index)} documents in {args.path}", file=sys.stderr)
    return 0
