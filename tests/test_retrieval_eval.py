"""benchmarks/retrieval_eval.py on a small BEIR-layout collection with the tiny model.

What the README's quality tables rest on: the systems can be run one at a time (the compressed
row alone, after a change to that index), the agreement numbers are computed against brute
force, and the fixed-vector recalls reach 1 once the prefetch holds every document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from script_loader import load_script

pytest.importorskip("bm25s")
pytest.importorskip("qdrant_client")
pytest.importorskip("qdrant_edge")

# fmt: off
WORDS = [
    "the", "city", "capital", "paris", "france", "london", "england", "berlin", "germany",
    "river", "seine", "thames", "cat", "dog", "sat", "mat", "quick", "brown", "fox", "jumps",
    "over", "lazy", "hello", "world", "search", "query", "document", "text", "vector", "model",
    "late", "interaction", "colbert", "token",
]
# fmt: on


retrieval_eval = load_script("benchmarks/retrieval_eval.py")

N_DOCS, N_QUERIES = 60, 6


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR-layout collection ``toy`` (random texts over the tiny vocabulary)."""
    root = tmp_path_factory.mktemp("beir")
    toy = root / "toy"
    toy.mkdir()
    rng = np.random.default_rng(3)
    with (toy / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(N_DOCS):
            text = " ".join(rng.choice(WORDS, int(rng.integers(6, 30))))
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    with (toy / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(N_QUERIES):
            query = " ".join(rng.choice(WORDS, 4))
            fh.write(json.dumps({"_id": f"q{i}", "text": query}) + "\n")
    with (toy / "qrels.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for i in range(N_QUERIES):
            for d in rng.choice(N_DOCS, 3, replace=False):
                fh.write(f"q{i}\td{d}\t1\n")
    return root


def _run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: Path, data: Path, *extra: str
) -> dict:
    out = tmp_path / "report.json"
    argv = ["retrieval_eval.py", "--model", str(model), "--data", str(data)]
    argv += ["--collections", "toy", "--threads", "1", "--json", str(out), *extra]
    monkeypatch.setattr(sys, "argv", argv)
    retrieval_eval.main()
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_system_and_the_fixed_vector_recalls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path, data: Path
) -> None:
    pytest.importorskip("faiss")
    report = _run(
        monkeypatch, tmp_path, tiny_model_dir, data, "--fixed", "muvera,mean",
        "--prefetch", "20,60", "--qdrant-queries", "2", "--cache-file", str(tmp_path / "c.db"),
    )  # fmt: skip
    toy = report["collections"]["toy"]
    assert toy["documents"] == N_DOCS and toy["queries"] == N_QUERIES
    names = set(toy["systems"])
    # bm25s, bm25+rerank, exact, compressed; Qdrant: colbert and hybrid per fixed vector, bm25 once
    assert len(names) == 4 + 2 * 2 + 1
    assert {n.split(" ")[0] for n in names} == {
        "bm25", "colbert-exact", "colbert-compressed", "qdrant-edge",
    }  # fmt: skip
    qdrant_rows = sorted(n for n in names if n.startswith("qdrant-edge"))
    assert [n.split(" ")[1].strip("(,)") for n in qdrant_rows].count("bm25") == 1
    for row in toy["systems"].values():
        assert 0.0 <= row["ndcg@10"] <= 1.0 and 0.0 <= row["recall@100"] <= 1.0
    assert toy["exact_vs_bruteforce_identical_top10"] == N_QUERIES
    assert toy["exact_vs_bruteforce_max_score_diff"] < 1e-4
    assert 0.0 < toy["compressed_recall@10_vs_exact"] <= 1.0
    fixed = toy["fixed_recall@10_vs_exact"]
    assert set(fixed) == {"muvera", "mean"}
    for values in fixed.values():
        # The index's default prefetch holds all 60 documents: Qdrant's top 10 is the exact one.
        assert values["qdrant_colbert"]["recall@10_vs_exact"] == 1.0
        assert values["qdrant_colbert"]["same_top10_as_numpy"] == N_QUERIES
        by_prefetch = values["by_prefetch"]
        assert list(by_prefetch) == ["10", "20", "60"]
        # Every document prefetched: the two-stage top 10 is the exact top 10.
        assert by_prefetch["60"] == {"two_stage": 1.0, "first_stage": 1.0}
        recalls = [v["first_stage"] for v in by_prefetch.values()]
        assert recalls == sorted(recalls)  # more prefetched, never fewer found
        for v in by_prefetch.values():
            # The exact top 10 within the prefetch is what the exact rerank finds.
            assert v["two_stage"] == pytest.approx(v["first_stage"])
    # A second run reads every document from the cache file instead of encoding it.
    again = _run(monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "exact")
    assert again["collections"]["toy"]["cache_misses"] == N_DOCS
    cached = _run(
        monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "exact",
        "--cache-file", str(tmp_path / "c.db"),
    )  # fmt: skip
    assert cached["collections"]["toy"]["cache_disk_hits"] == N_DOCS
    assert cached["collections"]["toy"]["cache_misses"] == 0


def test_one_system_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path, data: Path
) -> None:
    pytest.importorskip("faiss")
    report = _run(monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "compressed")
    toy = report["collections"]["toy"]
    assert list(toy["systems"]) == ["colbert-compressed (CompressedIndex, defaults)"]
    assert "compressed_recall@10_vs_exact" in toy
    assert (
        "fixed_recall@10_vs_exact" not in toy and "exact_vs_bruteforce_identical_top10" not in toy
    )
    report = _run(monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "bm25")
    assert [n.split(" ")[0] for n in report["collections"]["toy"]["systems"]] == ["bm25"]
    report = _run(
        monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "exact",
        "--long-documents", "windows",
    )  # fmt: skip
    assert report["long_documents"] == "windows"
    assert report["collections"]["toy"]["exact_vs_bruteforce_identical_top10"] == N_QUERIES


def test_retrieval_modes_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path, data: Path
) -> None:
    report = _run(
        monkeypatch, tmp_path, tiny_model_dir, data, "--systems", "qdrant",
        "--fixed", "mean", "--retrieval-modes", "bm25, hybrid,bm25", "--qdrant-queries", "1",
    )  # fmt: skip
    assert report["retrieval_modes"] == ["bm25", "hybrid"]
    names = list(report["collections"]["toy"]["systems"])
    assert [n.split(" ")[1].strip("(,)") for n in names] == ["bm25", "hybrid"]
    # No colbert row: no agreement numbers for it.
    assert "qdrant_colbert" not in report["collections"]["toy"]["fixed_recall@10_vs_exact"]["mean"]


def test_ndcg_summary_is_per_collection_with_the_mean() -> None:
    def coll(**ndcg: float) -> dict:
        return {"systems": {name: {"ndcg@10": value} for name, value in ndcg.items()}}

    lines = retrieval_eval.ndcg_summary({"a": coll(x=0.2, y=0.5), "b": coll(x=0.4, z=1.0)})
    assert lines[0] == "| collection | x |"  # y and z are not on every collection
    assert lines[2:] == ["| a | 0.200 |", "| b | 0.400 |", "| mean of 2 | 0.300 |"]


@pytest.mark.parametrize("modes", ["colbert,dense", ","])
def test_unknown_retrieval_modes_are_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_model_dir: Path,
    data: Path,
    modes: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        _run(monkeypatch, tmp_path, tiny_model_dir, data, "--retrieval-modes", modes)
    assert info.value.code == 2
    assert "--retrieval-modes" in capsys.readouterr().err


def test_pooled_fixed_recall_weights_collections_by_queries() -> None:
    def coll(n: int, recall: float) -> dict:
        by = {"10": {"two_stage": recall, "first_stage": recall}}
        return {
            "fixed_recall@10_vs_exact": {"mean": {"queries": n, "fixed_dim": 8, "by_prefetch": by}}
        }

    pooled = retrieval_eval.pool_fixed({"a": coll(1, 0.0), "b": coll(3, 1.0)})
    assert pooled["mean"]["queries"] == 4
    assert pooled["mean"]["by_prefetch"]["10"] == {"two_stage": 0.75, "first_stage": 0.75}


@pytest.mark.parametrize("systems", ["exact,nonsense", ","])
def test_unknown_systems_are_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_model_dir: Path,
    data: Path,
    systems: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        _run(monkeypatch, tmp_path, tiny_model_dir, data, "--systems", systems)
    assert info.value.code == 2
    assert "--systems" in capsys.readouterr().err
