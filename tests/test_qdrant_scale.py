"""benchmarks/qdrant_scale.py on a few BEIR-layout documents with the tiny model.

What the README's Qdrant scale table rests on: only passages whose vectors are in the cache are
indexed (nothing is encoded), recall is measured against exact MaxSim (the exact index and the
Edge exact scan reach 1, and so does a prefetch that covers every document), each row reports
its build, disk and serving numbers, and the shards are deleted once measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache
from script_loader import load_script

# fmt: off
WORDS = [
    "the", "city", "capital", "paris", "france", "london", "england", "berlin", "germany",
    "river", "seine", "thames", "cat", "dog", "sat", "mat", "quick", "brown", "fox", "jumps",
    "over", "lazy", "search", "query", "document", "text", "vector", "model",
]
# fmt: on
COLLECTIONS = ("cranfield", "cisi", "scifact")  # the names index_corpora.beir_passages reads
DOCS, QUERIES = 8, 2  # per collection

qdrant_scale = load_script("benchmarks/qdrant_scale.py")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beir")
    rng = np.random.default_rng(5)
    for name in COLLECTIONS:
        (root / name).mkdir()
        with (root / name / "corpus.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(DOCS):
                text = " ".join(rng.choice(WORDS, int(rng.integers(5, 25))))
                fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
        with (root / name / "queries.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(QUERIES):
                fh.write(json.dumps({"_id": f"q{i}", "text": " ".join(rng.choice(WORDS, 3))}))
                fh.write("\n")
        (root / name / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    return root


def _cache(tmp_path: Path, model_dir: Path, data: Path, leave_out: int) -> Path:
    """A cache file with every passage's vectors except the last ``leave_out``."""
    path = tmp_path / "vectors.sqlite"
    model = ColBERT.from_pretrained(
        model_dir, threads=1, cache=EmbeddingCache(max_bytes=0, path=path)
    )
    texts = [t for _, t in qdrant_scale.index_corpora.beir_passages(data)]
    model.encode_documents(texts[: len(texts) - leave_out])
    return path


def test_rows_from_cached_vectors_only(
    tmp_path: Path, tiny_model_dir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("qdrant_edge")
    cache = _cache(tmp_path, tiny_model_dir, data, leave_out=3)
    work = tmp_path / "work"
    systems = "exact,compressed,edge-mean-exact,edge-mean-100,edge-int8-200"
    argv = ["--corpus", "beir", "--cache", str(cache), "--model", str(tiny_model_dir)]
    argv += ["--data", str(data), "--queries", "4", "--systems", systems, "--workdir", str(work)]
    assert qdrant_scale.main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    total = DOCS * len(COLLECTIONS)
    assert "passages listed" in out and f"{total} passages listed" in out
    assert result["passages"] == total - 3  # the passages missing from the cache are left out
    assert result["queries"] == 4
    rows = {row["system"]: row for row in result["rows"]}
    assert list(rows) == systems.split(",")
    # exact MaxSim, and every prefetch that holds every document, find the exact top 10
    for name in ("exact", "edge-mean-exact", "edge-mean-100", "edge-int8-200"):
        assert rows[name]["recall"] == pytest.approx(1.0), name
    assert 0.0 <= rows["compressed"]["recall"] <= 1.0
    for row in rows.values():
        assert row["build_s"] > 0 and row["disk_bytes_per_token"] > 0
        assert row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
        assert row["rss_open_mb"] > 0 and row["rss_after_mb"] > 0 and row["rss_model_mb"] > 0
    # one build for the mean rows (one shard), another for int8; none left behind
    assert rows["edge-mean-exact"]["build_s"] == rows["edge-mean-100"]["build_s"]
    assert rows["edge-int8-200"]["build_s"] != rows["edge-mean-100"]["build_s"]
    assert list(work.iterdir()) == []


def test_default_systems_leave_out_the_exact_scan_of_large_corpora() -> None:
    small = [s.name for s in qdrant_scale.pick_systems(None, 8_041)]
    large = [s.name for s in qdrant_scale.pick_systems(None, 100_000)]
    assert "edge-mean-exact" in small and "edge-mean-exact" not in large
    assert set(small) - set(large) == {"edge-mean-exact"}
    named = qdrant_scale.pick_systems("edge-mean-800,edge-binary-50,edge-muvera-exact", 10)
    assert [(s.name, dict(s.build), dict(s.search)) for s in named] == [
        ("edge-mean-800", {"fixed": "mean", "quantization": None}, {"prefetch_limit": 800}),
        ("edge-binary-50", {"fixed": "mean", "quantization": "binary"}, {"prefetch_limit": 50}),
        ("edge-muvera-exact", {"fixed": "muvera", "quantization": None}, {"prefetch_limit": None}),
    ]
    for bad in ("nope", "edge-mean-0", "edge-mean-x", "edge-pq-100"):
        with pytest.raises(SystemExit, match="unknown system"):
            qdrant_scale.pick_systems(f"exact,{bad}", 10)


def test_distinct_texts_under_distinct_ids() -> None:
    items = [("a", "x"), ("a", "y"), ("b", "x"), ("a", "z"), ("a#2", "w")]
    assert qdrant_scale.distinct(items) == [("a", "x"), ("a#2", "y"), ("a#3", "z"), ("a#2#2", "w")]
