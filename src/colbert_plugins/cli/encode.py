"""``colbert-plugins encode``: write document embeddings to a directory."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..files import replace_directory, sibling_directory
from .common import Parents, command, load_model, note, positive, progress
from .input import InputError, UsageError, display_name, read_documents


def add_parser(sub: Any, parents: Parents) -> None:
    """Register ``encode`` on the main parser's subcommands."""
    p = command(
        sub,
        "encode",
        _cmd_encode,
        [parents.loading, parents.inputs, parents.quiet],
        "write document embeddings to a directory (and fill the cache)",
        (
            "Encode the documents of FILE into DIR: embeddings.npy (all vectors, float32), "
            "offsets.npy (document i is rows offsets[i]:offsets[i+1]) and manifest.json. "
            "DIR is written atomically."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--cache-path", help="SQLite embedding cache to read and fill")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.add_argument("--batch-size", type=positive, default=32, help="documents per batch")


def _cmd_encode(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_output(out, args.overwrite)
    docs = read_documents(args.file, field=args.field, fmt=args.format)
    if not docs:
        raise InputError(f"{display_name(args.file)} holds no documents")
    from ..cache import EmbeddingCache

    cache: EmbeddingCache | bool = EmbeddingCache(path=args.cache_path) if args.cache_path else True
    model = load_model(args, cache=cache)
    started = time.perf_counter()
    vectors = model.encode_documents(
        [d.text for d in docs], batch_size=args.batch_size, show_progress=progress(args)
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
        note(
            f"encoded {len(docs)} documents{cached} into {embeddings.shape[0]} vectors of "
            f"{embeddings.shape[1]} dims in {seconds:.2f}s -> {out}"
            + (f" (cache: {args.cache_path})" if args.cache_path else "")
        )
    return 0


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
    """Write into a new sibling directory, then rename it into place."""
    out = out.absolute()
    staged = sibling_directory(out)
    try:
        np.save(staged / "embeddings.npy", embeddings)
        np.save(staged / "offsets.npy", offsets)
        (staged / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _check_output(out, overwrite)  # again: something may have appeared meanwhile
        replace_directory(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
