"""A document-embedding cache: never encode the same document twice.

Entries are keyed by the model's identity plus the exact document text. The in-memory layer
is an LRU bounded by a byte budget; an optional SQLite file persists entries across restarts
(WAL mode: many readers, one writer, safe across threads and processes). Every persisted
entry carries a checksum; a corrupt or truncated one is detected, dropped and recomputed,
never returned.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["CacheStats", "EmbeddingCache", "text_key"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

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
        path: a SQLite file that persists every entry (created if missing).

    Stored arrays are read-only views: callers must copy before modifying them.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, path: str | os.PathLike[str] | None = None
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            raise InvalidArgumentTypeError(f"max_bytes must be an int, got {max_bytes!r}")
        if max_bytes < 0:
            raise InvalidArgumentError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, FloatArray] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._disk_hits = self._corrupt = 0
        self._local = threading.local()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, rows INTEGER, "
                    "dim INTEGER, checksum INTEGER, data BLOB)"
                )

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
        if missing and self.path is not None:
            disk = self._read([keys[i] for i in missing])
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
        if self.path is not None and frozen:
            self._write(frozen)

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
        if db is None:
            assert self.path is not None
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

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


def _decode(n_rows: object, dim: object, checksum: object, data: object) -> FloatArray | None:
    """A stored entry as an array, or None when it is corrupt or truncated."""
    if not (isinstance(n_rows, int) and isinstance(dim, int) and isinstance(data, bytes)):
        return None
    if n_rows < 0 or dim < 0 or len(data) != n_rows * dim * 4 or zlib.crc32(data) != checksum:
        return None
    array = np.frombuffer(data, dtype="<f4").reshape(n_rows, dim).astype(np.float32)
    array.setflags(write=False)
    return array
