"""Qdrant Edge behaviour of QdrantIndex: the collection directory, one opener, durability
after SIGKILL, refusing another model's shard, payload indexes (unit: tiny model)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError
from colbert_plugins.index import IndexFormatError, IndexLockedError, IndexMismatchError
from colbert_plugins.index.qdrant import QdrantEngineError, QdrantIndex
from corpus import QUERY, TEXTS
from tiny_model import build_model_dir

IDS = [f"d{i}" for i in range(len(TEXTS))]


def test_directory_layout_and_reopen(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    with QdrantIndex(tiny_model, path=tmp_path) as index:
        index.add(TEXTS, ids=IDS, metadatas=[{"n": i} for i in range(len(TEXTS))])
        hits = index.search(QUERY, k=3)
        assert index.disk_bytes() > 0
    root = tmp_path / "colbert"
    manifest = json.loads((root / "colbert-plugins.json").read_text())
    assert manifest["model_key"] == tiny_model.model_key and manifest["dim"] == tiny_model.dim
    assert manifest["collection_config"] == index.collection_config()
    assert (root / "shard").is_dir() and (root / ".lock").exists()
    with QdrantIndex(tiny_model, path=tmp_path) as again:
        assert len(again) == len(TEXTS)
        assert again.search(QUERY, k=3) == hits
    with QdrantIndex(tiny_model, "second", path=tmp_path) as other:  # its own subdirectory
        assert len(other) == 0


def test_memory_location_removes_its_directory(tiny_model: ColBERT) -> None:
    index = QdrantIndex(tiny_model)
    index.add(TEXTS[:2])
    root = index._store.root  # type: ignore[attr-defined]
    assert root.is_dir()
    index.close()
    assert not root.exists()
    with pytest.raises(QdrantEngineError, match="closed"):
        len(index)
    index.close()  # idempotent


def test_one_opener_per_directory(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    first = QdrantIndex(tiny_model, path=tmp_path)
    first.add(TEXTS[:3], ids=IDS[:3])
    with pytest.raises(IndexLockedError, match="one opener"):
        QdrantIndex(tiny_model, path=tmp_path)
    # Another process is refused the same way, and the first index is intact afterwards.
    code = textwrap.dedent(
        """
        import sys
        from colbert_plugins import ColBERT
        from colbert_plugins.index import IndexLockedError
        from colbert_plugins.index.qdrant import QdrantIndex
        model = ColBERT.from_pretrained(sys.argv[1], query_length=8, cache=False)
        try:
            QdrantIndex(model, path=sys.argv[2])
        except IndexLockedError as exc:
            print("locked:", exc)
        """
    )
    model_dir = tiny_model.name
    out = subprocess.run(
        [sys.executable, "-c", code, model_dir, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.startswith("locked:"), out.stdout + out.stderr
    first.add(TEXTS[3:5], ids=IDS[3:5])
    assert len(first) == 5
    first.close()
    with QdrantIndex(tiny_model, path=tmp_path) as reopened:
        assert sorted(reopened.ids()) == IDS[:5]


_WRITER = textwrap.dedent(
    """
    import sys
    from colbert_plugins import ColBERT
    from colbert_plugins.index.qdrant import QdrantIndex
    model = ColBERT.from_pretrained(sys.argv[1], query_length=8, cache=False)
    index = QdrantIndex(model, path=sys.argv[2])
    i = 0
    while True:
        ids = [f"p{i}-{j}" for j in range(8)]
        index.add([f"passage {i} {j} about wings and flow" for j in range(8)], ids=ids)
        print(i, flush=True)  # acknowledged: add() returned
        i += 1
    """
)


def test_sigkill_during_add_keeps_every_acknowledged_write(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, tiny_model.name, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 90
    while acknowledged < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)  # mid-add: the next batch is being written
    proc.wait(timeout=30)
    assert acknowledged >= 5, "the writer did not get going"
    with QdrantIndex(tiny_model, path=tmp_path) as index:
        present = set(index.ids())
        wanted = {f"p{i}-{j}" for i in range(acknowledged + 1) for j in range(8)}
        assert wanted <= present
        assert len(present) in (len(wanted), len(wanted) + 8)  # at most the batch in flight
        assert index.search("wings", k=3)


def test_another_model_or_layout_is_refused_by_name(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    with QdrantIndex(tiny_model, path=tmp_path) as index:
        index.add(TEXTS[:2], ids=IDS[:2])
    seed1 = ColBERT.from_pretrained(build_model_dir(tmp_path / "s1", seed=1), cache=False)
    with pytest.raises(IndexMismatchError, match="was built with model") as info:
        QdrantIndex(seed1, path=tmp_path)
    assert str(tmp_path / "s1") in str(info.value)  # this model, by name
    with QdrantIndex(seed1, path=tmp_path, check_model_key=False) as anyway:
        assert len(anyway) == 2
    dim16 = ColBERT.from_pretrained(build_model_dir(tmp_path / "m16", dim=16), cache=False)
    with pytest.raises(IndexMismatchError, match="16-dim"):
        QdrantIndex(dim16, path=tmp_path)
    with pytest.raises(IndexMismatchError, match="fixed vectors are mean"):
        QdrantIndex(tiny_model, path=tmp_path, fixed="muvera")
    with pytest.raises(IndexMismatchError, match="has BM25"):
        QdrantIndex(tiny_model, path=tmp_path, bm25=False)
    # The lock was released by each refused opener.
    with QdrantIndex(tiny_model, path=tmp_path) as index:
        assert len(index) == 2


def test_foreign_directories_are_refused(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    local = tmp_path / "local"
    client = QdrantClient(path=str(local / "colbert"))
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    client.close()
    with pytest.raises(IndexFormatError, match="local mode"):
        QdrantIndex(tiny_model, path=local)
    (tmp_path / "bare" / "colbert" / "shard").mkdir(parents=True)
    with pytest.raises(IndexFormatError, match=r"without colbert-plugins\.json"):
        QdrantIndex(tiny_model, path=tmp_path / "bare")
    broken = tmp_path / "broken" / "colbert"
    broken.mkdir(parents=True)
    (broken / "colbert-plugins.json").write_text("{")
    with pytest.raises(IndexFormatError, match="cannot read"):
        QdrantIndex(tiny_model, path=tmp_path / "broken")


def test_filters_create_payload_indexes(tiny_model: ColBERT, tmp_path: pathlib.Path) -> None:
    metadatas: list[dict[str, Any]] = [
        {"lang": "en" if i % 2 else "fr", "year": 2000 + i, "ok": i % 3 == 0}
        for i in range(len(TEXTS))
    ]
    with QdrantIndex(tiny_model, path=tmp_path, prefetch_limit=2) as index:
        index.add(TEXTS, ids=IDS, metadatas=metadatas)
        assert index.payload_indexes() == ["id"]
        hits = index.search(
            QUERY, k=3, filter={"lang": "fr", "year": [2000, 2002, 2004], "ok": True}
        )
        expected = {
            IDS[i]
            for i, m in enumerate(metadatas)
            if m["lang"] == "fr" and m["ok"] and m["year"] in (2000, 2002, 2004)
        }
        assert {h.id for h in hits} == expected and expected
    with QdrantIndex(tiny_model, path=tmp_path) as again:  # the indexes are in the shard
        assert again.payload_indexes() == ["bools.ok", "id", "metadata.lang", "metadata.year"]


def test_a_refused_opening_releases_the_directory(
    tiny_model: ColBERT, tmp_path: pathlib.Path
) -> None:
    with QdrantIndex(tiny_model, path=tmp_path, bm25=False) as index:
        index.add(TEXTS[:2], ids=IDS[:2])
    with pytest.raises(InvalidArgumentError, match="needs BM25") as refused:
        QdrantIndex(tiny_model, path=tmp_path, retrieval_mode="hybrid")
    # The traceback keeps the refused object alive: it must have let go of the directory.
    assert refused.traceback
    with QdrantIndex(tiny_model, path=tmp_path) as again:
        assert len(again) == 2
