"""The document-embedding cache: LRU budget, counters, SQLite persistence, corruption, threads."""

from __future__ import annotations

import pathlib
import sqlite3
import threading

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache, text_key
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.onnx_encoder import OnnxEncoder
from tiny_model import build_model_dir

DOCS = ["the cat sat on the mat", "paris is the capital of france", "", "hello world"]


def arr(n: int, value: float = 1.0) -> np.ndarray:
    return np.full((n, 4), value, dtype=np.float32)


def test_lru_respects_the_byte_budget() -> None:
    cache = EmbeddingCache(max_bytes=3 * 16 * 4)  # three 4x4 float32 arrays
    cache.put_many([("a", arr(4)), ("b", arr(4)), ("c", arr(4))])
    cache.get_many(["a"])  # a becomes most recently used
    cache.put_many([("d", arr(4))])
    got = cache.get_many(["a", "b", "c", "d"])
    assert [g is not None for g in got] == [True, False, True, True]
    stats = cache.stats()
    assert stats.bytes <= stats.max_bytes and stats.entries == 3
    assert (stats.hits, stats.misses) == (4, 1)


def test_oversized_entry_is_not_kept_and_values_are_frozen_copies() -> None:
    cache = EmbeddingCache(max_bytes=100)
    cache.put_many([("big", arr(10))])
    assert cache.get_many(["big"]) == [None]
    original = arr(1)
    cache = EmbeddingCache()
    cache.put_many([("k", original)])
    original[:] = 5.0  # the cache holds its own copy
    (stored,) = cache.get_many(["k"])
    assert stored is not None and stored[0, 0] == 1.0
    with pytest.raises(ValueError):
        stored[0, 0] = 2.0


def test_bad_arguments(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError):
        EmbeddingCache(max_bytes=-1)
    with pytest.raises(InvalidArgumentTypeError):
        EmbeddingCache(max_bytes="big")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="cache must be"):
        ColBERT.from_pretrained(tiny_model_dir, cache="yes")  # type: ignore[arg-type]


def test_sqlite_persists_across_instances(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cache.sqlite"
    EmbeddingCache(path=path).put_many([("k", arr(3, 0.5))])
    fresh = EmbeddingCache(path=path)
    (value,) = fresh.get_many(["k"])
    assert value is not None and value.shape == (3, 4) and float(value[0, 0]) == 0.5
    assert fresh.stats().disk_hits == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "shape"])
def test_corrupt_entry_is_detected_and_dropped(tmp_path: pathlib.Path, damage: str) -> None:
    path = tmp_path / "cache.sqlite"
    EmbeddingCache(path=path).put_many([("k", arr(3))])
    db = sqlite3.connect(path)
    (data,) = db.execute("SELECT data FROM embeddings WHERE key='k'").fetchone()
    if damage == "flip":
        db.execute("UPDATE embeddings SET data=? WHERE key='k'", (b"\x01" + data[1:],))
    elif damage == "truncate":
        db.execute("UPDATE embeddings SET data=? WHERE key='k'", (data[:-4],))
    else:
        db.execute("UPDATE embeddings SET rows=7 WHERE key='k'")
    db.commit()
    db.close()
    fresh = EmbeddingCache(path=path)
    assert fresh.get_many(["k"]) == [None]
    assert fresh.stats().corrupt == 1
    assert EmbeddingCache(path=path).get_many(["k"]) == [None]  # deleted, not returned again


def test_threads_share_one_cache(tmp_path: pathlib.Path) -> None:
    cache = EmbeddingCache(max_bytes=10_000, path=tmp_path / "c.sqlite")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                key = f"k{(worker * 7 + i) % 40}"
                cache.put_many([(key, arr(2, float(hash(key) % 97)))])
                (value,) = cache.get_many([key])
                assert value is not None and value[0, 0] == float(hash(key) % 97)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert cache.stats().bytes <= 10_000


# -- the cache inside ColBERT ---------------------------------------------------------------


def count_encoder_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    rows: list[int] = []
    real = OnnxEncoder.__call__

    def counting(self: OnnxEncoder, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows.append(ids.shape[0])
        return real(self, ids, mask)

    monkeypatch.setattr(OnnxEncoder, "__call__", counting)
    return rows


def test_seen_documents_are_not_encoded_again(
    tiny_model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ColBERT.from_pretrained(tiny_model_dir)
    uncached = ColBERT.from_pretrained(tiny_model_dir, cache=False)
    rows = count_encoder_rows(monkeypatch)
    first = model.rerank("cat", DOCS)
    encoded_first = sum(rows)
    second = model.rerank("cat", DOCS)
    assert encoded_first == len(DOCS) + 1  # the documents and the query
    assert sum(rows) - encoded_first == 1  # only the query
    assert first == second == uncached.rerank("cat", DOCS)
    stats = model.cache.stats() if model.cache else None
    assert stats is not None and (stats.hits, stats.misses) == (len(DOCS), len(DOCS))


def test_repeated_texts_are_encoded_once(
    tiny_model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ColBERT.from_pretrained(tiny_model_dir, cache=False)
    rows = count_encoder_rows(monkeypatch)
    out = model.encode_documents(["cat", "dog", "cat", "cat"])
    assert sum(rows) == 2
    np.testing.assert_array_equal(out[0], out[2])
    out[0][0, 0] = 42.0  # each result is the caller's own array
    assert out[2][0, 0] != 42.0


def test_cached_arrays_returned_writable(tiny_model_dir: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(tiny_model_dir)
    model.encode_documents(DOCS)
    again = model.encode_documents(DOCS)
    again[0][0, 0] = 3.0  # must not raise, must not corrupt the cache
    assert model.encode_documents(DOCS)[0][0, 0] != 3.0


def test_models_sharing_a_cache_do_not_collide(tmp_path: pathlib.Path) -> None:
    shared = EmbeddingCache()
    a = ColBERT.from_pretrained(build_model_dir(tmp_path / "a", seed=1), cache=shared)
    b = ColBERT.from_pretrained(build_model_dir(tmp_path / "b", seed=2), cache=shared)
    c = ColBERT.from_pretrained(tmp_path / "a", cache=shared, document_length=5)
    assert len({a.model_key, b.model_key, c.model_key}) == 3
    va, vb = a.encode_documents(["the cat sat"])[0], b.encode_documents(["the cat sat"])[0]
    assert not np.allclose(va, vb)
    assert c.encode_documents(["the cat sat on the mat"])[0].shape[0] == 5
    assert text_key(a.model_key, "x") != text_key(b.model_key, "x")


def test_persistent_cache_survives_a_restart(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "emb.sqlite"
    before = ColBERT.from_pretrained(tiny_model_dir, cache=EmbeddingCache(path=path)).score(
        "cat", DOCS
    )
    rows = count_encoder_rows(monkeypatch)
    restarted = ColBERT.from_pretrained(tiny_model_dir, cache=EmbeddingCache(path=path))
    np.testing.assert_array_equal(restarted.score("cat", DOCS), before)
    assert sum(rows) == 1  # only the query
