"""Durable, atomic file operations shared by the indexes, the CLI and the export tooling.

Outputs that are directories (a saved index, ``colbert-plugins encode --out``, an exported
model) are written into a temporary sibling directory, flushed, then put in place by
:func:`replace_dir`: readers see the old directory or the new one, never a partial one.
Standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "fsync_file", "replace_dir"]


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the platform can."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(fh: Any) -> None:
    """Flush an open file's buffers and the file itself to disk."""
    fh.flush()
    os.fsync(fh.fileno())


def replace_dir(tmp: Path, target: Path) -> None:
    """Put the directory ``tmp`` at ``target`` (a sibling path) by renames.

    An existing ``target`` is first moved aside, into a new hidden sibling directory; if
    ``tmp`` then cannot be renamed, the previous ``target`` is put back before the error
    propagates. The previous directory is removed once the new one is in place.

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("out", "new"):
    ...     (root / name).mkdir()
    ...     _ = (root / name / "which").write_text(name)
    >>> replace_dir(root / "new", root / "out")
    >>> (root / "out" / "which").read_text(), sorted(p.name for p in root.iterdir())
    ('new', ['out'])
    """
    if not target.exists():
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    old = aside / target.name
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)  # put the previous directory back
        shutil.rmtree(aside, ignore_errors=True)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
