"""A document-embedding cache: never encode the same document twice.

Entries are keyed by the model's identity plus the exact document text. The in-memory layer
is an LRU bounded by a byte budget; an optional SQLite file persists entries across restarts
(WAL mode: many readers, one writer, safe across threads and processes). Every persisted
entry carries a checksum; a corrupt or truncated one is detected, dropped and recomputed,
never returned.

The disk layer is an optimization and never fails a caller: each ``put_many`` is one
transaction (a writer killed midway leaves the file as it was before that call); a file
that is not a SQLite database or is damaged (overwritten, truncated) is moved aside to
``<name>.corrupt-<time>`` with a warning and a new one is started, its entries recomputed on
demand; other disk errors (locked past the timeout, disk full) are logged and the call is
served without the disk. Only a path that cannot be opened at all (a directory, no
permission) raises :class:`~colbert_plugins.errors.CacheError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from .checks import check_int
from .errors import CacheError, InvalidArgumentError

__all__ = ["CacheStats", "EmbeddingCache", "text_key"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_T = TypeVar("_T")
_R = TypeVar("_R")

#: Default memory budget: about 1,300 documents of 200 tokens x 128 dims.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def text_key(model_key: str, text: str) -> str:
    """The cache key of one document for one model (hex sha256).

    >>> text_key("m", "hello") == text_key("m", "hello") != text_key("m2", "hello")
    True
    """
    digest = hashlib.sha256(model_key.encode("utf-8"))
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """Counters of an :class:`EmbeddingCache` (memory and disk layers together)."""

    hits: int
    misses: int
    disk_hits: int
    entries: int
    bytes: int
    max_bytes: int
    corrupt: int


class EmbeddingCache:
    """Thread-safe LRU of ``[n_tokens, dim]`` float32 arrays, optionally backed by SQLite.

    Args:
        max_bytes: memory budget of the in-memory layer; least recently used entries are
            evicted beyond it (an entry larger than the budget is not kept in memory).
        path: a SQLite file that persists every entry (created if missing; a corrupt one is
            moved aside and replaced, see the module documentation).

    Stored arrays are read-only views: callers must copy before modifying them.

    Raises:
        CacheError: ``path`` cannot be opened as a database file (e.g. it is a directory).
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, path: str | os.PathLike[str] | None = None
    ) -> None:
        self.max_bytes = check_int(max_bytes, "max_bytes", minimum=0)
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, FloatArray] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._disk_hits = self._corrupt = 0
        self._local = threading.local()
        # Disk layer state, guarded by _disk_lock: connections of an older generation are
        # reopened (the file was replaced); _identity is the (device, inode) of the file in use.
        self._disk_lock = threading.Lock()
        self._generation = 0
        self._identity: tuple[int, int] | None = None
        self._disk_enabled = self.path is not None
        if self.path is not None:
            self._open_disk()

    # -- public API --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[FloatArray | None]:
        """Cached arrays for the keys (None where absent), counting hits and misses."""
        found: list[FloatArray | None] = [None] * len(keys)
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                value = self._entries.get(key)
                if value is None:
                    missing.append(i)
                else:
                    self._entries.move_to_end(key)
                    found[i] = value
        disk: dict[str, FloatArray] = {}
        if missing and self._disk_enabled:
            disk = self._guarded("read", self._read, [keys[i] for i in missing]) or {}
        with self._lock:
            for i in missing:
                value = disk.get(keys[i])
                if value is not None:
                    found[i] = value
                    self._remember(keys[i], value)
            self._disk_hits += len(disk)
            self._hits += len(keys) - len(missing) + len(disk)
            self._misses += len(missing) - len(disk)
        return found

    def put_many(self, items: Sequence[tuple[str, FloatArray]]) -> None:
        """Store arrays (copied to float32, made read-only)."""
        frozen = []
        for key, value in items:
            array = np.array(value, dtype=np.float32, copy=True)
            if array.ndim != 2:
                raise InvalidArgumentError(f"cache values must be 2-D arrays, got {array.shape}")
            array.setflags(write=False)
            frozen.append((key, array))
        with self._lock:
            for key, array in frozen:
                self._remember(key, array)
        if self._disk_enabled and frozen:
            self._guarded("write", self._write, frozen)

    def stats(self) -> CacheStats:
        """Current counters."""
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                disk_hits=self._disk_hits,
                entries=len(self._entries),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                corrupt=self._corrupt,
            )

    def clear(self) -> None:
        """Drop the in-memory entries and counters (the SQLite file is kept)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._hits = self._misses = self._disk_hits = self._corrupt = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"EmbeddingCache(entries={s.entries}, bytes={s.bytes}, max_bytes={s.max_bytes}, "
            f"hits={s.hits}, misses={s.misses}, path={self.path})"
        )

    # -- internals ---------------------------------------------------------------------------

    def _remember(self, key: str, value: FloatArray) -> None:
        """Insert into the LRU; the caller holds the lock."""
        size = int(value.nbytes)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= int(old.nbytes)
        self._entries[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= int(evicted.nbytes)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and self._local.generation != self._generation:
            db.close()  # the file was replaced: reopen by path
            db = None
        if db is None:
            assert self.path is not None
            generation = self._generation
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                db.close()
                raise
            self._local.db = db
            self._local.generation = generation
        return db

    # -- disk failures -----------------------------------------------------------------------

    def _open_disk(self) -> None:
        """Open (or create) the SQLite file; a corrupt one is moved aside and replaced."""
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the cache directory {self.path.parent}: {exc}"
            ) from exc
        try:
            self._init_schema()
        except sqlite3.Error as exc:
            if not _is_corruption(exc):
                raise CacheError(
                    f"cannot use {self.path} as an embedding cache file: {exc}. Pass the path "
                    "of a (new or existing) cache file in a writable directory."
                ) from exc
            with self._disk_lock:
                self._replace_corrupt_file(exc)
            try:
                self._init_schema()
            except sqlite3.Error as again:
                raise CacheError(
                    f"cannot create a new embedding cache file at {self.path}: {again}"
                ) from again

    def _init_schema(self) -> None:
        assert self.path is not None
        db = self._connection()
        db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, rows INTEGER, "
            "dim INTEGER, checksum INTEGER, data BLOB)"
        )
        # Cheap probe of the table's structure (the first and last leaf pages).
        db.execute("SELECT key FROM embeddings ORDER BY key LIMIT 1").fetchall()
        db.execute("SELECT key FROM embeddings ORDER BY key DESC LIMIT 1").fetchall()
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)

    def _guarded(
        self, what: str, operation: Callable[[Sequence[_T]], _R], items: Sequence[_T]
    ) -> _R | None:
        """Run a disk operation; on a SQLite error log it, repair if corrupt, return None."""
        generation = self._generation
        try:
            return operation(items)
        except sqlite3.Error as exc:
            with self._disk_lock:
                if not _is_corruption(exc):
                    logger.warning(
                        "embedding cache %s: %s of %d entries failed (%s); served without the "
                        "disk cache",
                        self.path,
                        what,
                        len(items),
                        exc,
                    )
                elif generation == self._generation:  # not yet repaired by another thread
                    self._replace_corrupt_file(exc)
                    try:
                        self._init_schema()
                    except sqlite3.Error as again:
                        self._disk_enabled = False
                        logger.warning(
                            "embedding cache %s: cannot start a new file (%s); the disk cache "
                            "is off for this instance",
                            self.path,
                            again,
                        )
            return None

    def _replace_corrupt_file(self, exc: sqlite3.Error) -> None:
        """Move the damaged file (and its WAL files) aside; the caller holds _disk_lock.

        The file is only moved if it is still the one this instance opened: another process
        may already have replaced it with a healthy one.
        """
        assert self.path is not None
        self._generation += 1
        try:
            stat = os.stat(self.path)
        except OSError:
            return
        if self._identity is not None and (stat.st_dev, stat.st_ino) != self._identity:
            logger.info("embedding cache %s was already replaced; reopening it", self.path)
            return
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        try:
            for suffix in ("-wal", "-shm", ""):  # the database last
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    os.replace(source, f"{aside}{suffix}")
        except OSError as move_error:
            self._disk_enabled = False
            logger.warning(
                "embedding cache %s is damaged (%s) and cannot be moved aside (%s); the disk "
                "cache is off for this instance",
                self.path,
                exc,
                move_error,
            )
            return
        logger.warning(
            "embedding cache %s is damaged (%s); moved it to %s and started a new file "
            "(entries are recomputed on demand)",
            self.path,
            exc,
            aside,
        )

    def _read(self, keys: Sequence[str]) -> dict[str, FloatArray]:
        db = self._connection()
        found: dict[str, FloatArray] = {}
        bad: list[str] = []
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT key, rows, dim, checksum, data FROM embeddings WHERE key IN ({marks})",
                chunk,
            ).fetchall()
            for key, n_rows, dim, checksum, data in rows:
                array = _decode(n_rows, dim, checksum, data)
                if array is None:
                    bad.append(key)
                else:
                    found[key] = array
        if bad:
            logger.warning("dropping %d corrupt cache entries from %s", len(bad), self.path)
            with self._lock:
                self._corrupt += len(bad)
            db.executemany("DELETE FROM embeddings WHERE key = ?", [(k,) for k in bad])
        return found

    def _write(self, items: Sequence[tuple[str, FloatArray]]) -> None:
        rows = []
        for key, array in items:
            data = array.astype("<f4").tobytes()
            rows.append((key, array.shape[0], array.shape[1], zlib.crc32(data), data))
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _is_corruption(exc: sqlite3.Error) -> bool:
    """Whether a SQLite error says the file is damaged or not a database at all."""
    name = getattr(exc, "sqlite_errorname", None)  # Python >= 3.11
    if isinstance(name, str):
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    message = str(exc).lower()
    return "malformed" in message or "not a database" in message


def _decode(n_rows: object, dim: object, checksum: object, data: object) -> FloatArray | None:
    """A stored entry as an array, or None when it is corrupt or truncated."""
    if not (isinstance(n_rows, int) and isinstance(dim, int) and isinstance(data, bytes)):
        return None
    if n_rows < 0 or dim < 0 or len(data) != n_rows * dim * 4 or zlib.crc32(data) != checksum:
        return None
    array = np.frombuffer(data, dtype="<f4").reshape(n_rows, dim).astype(np.float32)
    array.setflags(write=False)
    return array
