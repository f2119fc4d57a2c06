"""Writing directories so that readers see the old one or the new one, never half of either.

Every output directory (``colbert-plugins encode``, ``export``, an index) is written into a new
sibling (:func:`sibling_directory`), then put in place by :func:`replace_directory`: a rename,
atomic on POSIX, with the previous directory moved aside first and put back if the swap fails.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "fsync_file", "replace_directory", "sha256", "sibling_directory"]


def sibling_directory(target: Path, suffix: str = ".tmp") -> Path:
    """A new empty directory beside ``target`` (hidden, unique), with the mode ``mkdir`` gives
    (the user's umask; ``tempfile.mkdtemp`` makes 0700 directories, and a staged directory
    becomes the output itself).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> staged = sibling_directory(root / "out")
    >>> staged.parent == root, staged.name.startswith(".out."), staged.is_dir()
    (True, True, True)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            path.mkdir()
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        return path


def replace_directory(staged: Path, target: Path, *, durable: bool = False) -> None:
    """Rename ``staged`` to ``target``. An existing ``target`` is moved aside first, put back
    if the rename fails, and removed after it succeeds. ``durable`` also flushes the parent
    directory's entries to disk.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "out").mkdir(); _ = (root / "out" / "old.txt").write_text("old")
    >>> staged = sibling_directory(root / "out"); _ = (staged / "new.txt").write_text("new")
    >>> replace_directory(staged, root / "out")
    >>> sorted(p.name for p in root.iterdir()), sorted(p.name for p in (root / "out").iterdir())
    (['out'], ['new.txt'])
    """
    if not target.exists():
        os.replace(staged, target)
    else:
        aside = sibling_directory(target, ".old")
        os.replace(target, aside / target.name)
        try:
            os.replace(staged, target)
        except BaseException:
            os.replace(aside / target.name, target)  # put the previous directory back
            shutil.rmtree(aside, ignore_errors=True)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    if durable:
        fsync_dir(target.parent)


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


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "f"; _ = path.write_bytes(b"abc")
    >>> sha256(path)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
