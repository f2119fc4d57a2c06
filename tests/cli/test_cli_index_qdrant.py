"""``colbert-plugins index`` on Qdrant Edge: ``add --engine qdrant``, the engine found from a
directory's files, ``search --retrieval-mode``, ``delete`` and ``compact`` (optimize), and the
one-line errors (a second opener, a mode the compressed index cannot run, a wrong engine).

The tiny model; the CLI's results are compared with a :class:`QdrantIndex` opened on the same
directory afterwards (which also shows that every command closed the collection).
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterator

import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cli import main
from colbert_plugins.index.qdrant import QdrantIndex

DOCS = [
    {"id": "p", "text": "paris is the capital of france", "source": "a"},
    {"id": "b", "text": "berlin is the capital of germany", "source": "b"},
    {"id": "l", "text": "london is on the thames", "source": "a"},
    {"id": "r", "text": "the seine is a river in paris", "source": "c"},
]
QUERY = "capital of france"


@pytest.fixture
def docs(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def qdrant_dir(
    tmp_path: pathlib.Path,
    docs: pathlib.Path,
    tiny_model_dir: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> pathlib.Path:
    """A directory holding a Qdrant Edge collection of DOCS, made by the CLI."""
    idx = tmp_path / "qdrant-index"
    argv = ["index", "add", str(idx), str(docs), "--model", str(tiny_model_dir), "--engine"]
    assert main([*argv, "qdrant", "-q"]) == 0
    capsys.readouterr()
    return idx


@pytest.fixture
def reopened(qdrant_dir: pathlib.Path, tiny_model_dir: pathlib.Path) -> Iterator[QdrantIndex]:
    """The same collection as Python sees it (opened after the CLI command ran)."""
    model = ColBERT.from_pretrained(tiny_model_dir, threads=1, cache=False)
    with QdrantIndex(model, path=qdrant_dir) as index:
        yield index


def one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("colbert-plugins: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def search(
    path: pathlib.Path, capsys: pytest.CaptureFixture[str], *options: str
) -> list[tuple[str, float]]:
    assert main(["index", "search", str(path), "--query", QUERY, "--json", *options]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in records] == list(range(1, len(records) + 1))
    return ranked([(r["id"], r["score"]) for r in records])


def ranked(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """(id, score) pairs as given, checked best first."""
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True), pairs
    return pairs


def test_add_engine_qdrant_writes_an_edge_collection(
    qdrant_dir: pathlib.Path, tiny_model_dir: pathlib.Path
) -> None:
    collection = qdrant_dir / "colbert"
    assert (collection / "colbert-plugins.json").is_file()
    assert (collection / "shard").is_dir()
    assert not (qdrant_dir / "manifest.json").exists()  # not a compressed index
    manifest = json.loads((collection / "colbert-plugins.json").read_text(encoding="utf-8"))
    assert pathlib.Path(manifest["model_name"]).resolve() == tiny_model_dir.resolve()


def test_search_modes_are_the_index_s(
    qdrant_dir: pathlib.Path, capsys: pytest.CaptureFixture[str], tiny_model_dir: pathlib.Path
) -> None:
    # No --model: the collection records it.
    got = {
        mode: search(qdrant_dir, capsys, "--k", "3", "--retrieval-mode", mode)
        for mode in ("colbert", "bm25", "hybrid")
    }
    default = search(qdrant_dir, capsys, "--k", "3")
    model = ColBERT.from_pretrained(tiny_model_dir, threads=1, cache=False)
    with QdrantIndex(model, path=qdrant_dir) as index:
        for mode, hits in got.items():
            expected = index.search(QUERY, 3, retrieval_mode=mode)
            assert hits == ranked([(h.id, h.score) for h in expected]), mode
        assert index.retrieval_mode == "hybrid"
        assert default == got["hybrid"]  # the index's default mode
    assert len({tuple(h) for h in got.values()}) == 3  # the option reaches the index
    assert {i for i, _ in got["bm25"]} <= {"p", "b"}  # BM25: documents with a query word


def test_search_filter_and_text_output(
    qdrant_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hits = search(qdrant_dir, capsys, "--retrieval-mode", "hybrid", "--filter", '{"source": "a"}')
    assert {i for i, _ in hits} == {"p", "l"}
    assert main(["index", "search", str(qdrant_dir), "--query", QUERY, "--k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[0] == "1" and "[p] paris is the capital of france" in line


def test_add_again_detects_the_engine(
    qdrant_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    tiny_model_dir: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "m", "text": "madrid is in spain"}) + "\n", encoding="utf-8")
    assert main(["index", "add", str(qdrant_dir), str(more)]) == 0  # no --model, no --engine
    assert capsys.readouterr().err.strip() == f"added 1 documents; 5 in {qdrant_dir}"
    assert not (qdrant_dir / "manifest.json").exists()
    assert main(["index", "add", str(qdrant_dir), str(more), "--engine", "qdrant", "-q"]) == 0
    capsys.readouterr()
    # Another engine for an existing index: a usage error, and nothing written.
    assert main(["index", "add", str(qdrant_dir), str(more), "--engine", "compressed"]) == 2
    one_error_line(capsys.readouterr().err, "holds a qdrant index", "--engine compressed")
    assert not (qdrant_dir / "manifest.json").exists()
    model = ["--model", str(tiny_model_dir)]
    compressed = tmp_path / "compressed"
    pytest.importorskip("faiss")
    assert main(["index", "add", str(compressed), str(more), *model, "-q"]) == 0
    assert (compressed / "manifest.json").is_file() and not (compressed / "colbert").exists()
    assert main(["index", "add", str(compressed), str(more), "--engine", "qdrant"]) == 2
    one_error_line(capsys.readouterr().err, "holds a compressed index", "--engine qdrant")
    assert not (compressed / "colbert").exists()


def test_delete_and_compact(
    qdrant_dir: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["index", "delete", str(qdrant_dir), "p"]) == 0
    assert capsys.readouterr().err.strip() == f"3 documents left in {qdrant_dir}"
    assert main(["index", "delete", str(qdrant_dir), "b", "nope"]) == 1
    one_error_line(capsys.readouterr().err, "'nope'", "--missing-ok", "nothing was deleted")
    assert main(["index", "delete", str(qdrant_dir), "b", "nope", "--missing-ok", "-q"]) == 0
    optimized: list[QdrantIndex] = []
    original = QdrantIndex.optimize

    def optimize(self: QdrantIndex) -> None:
        optimized.append(self)
        original(self)

    monkeypatch.setattr(QdrantIndex, "optimize", optimize)
    assert main(["index", "compact", str(qdrant_dir)]) == 0
    assert len(optimized) == 1
    assert capsys.readouterr().err.strip() == f"optimized: 2 documents in {qdrant_dir}"
    assert {i for i, _ in search(qdrant_dir, capsys, "--retrieval-mode", "bm25")} <= {"l", "r"}
    assert {i for i, _ in search(qdrant_dir, capsys)} == {"l", "r"}


def test_a_second_opener_is_one_error_line(
    qdrant_dir: pathlib.Path,
    reopened: QdrantIndex,
    docs: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (
        ["search", str(qdrant_dir), "--query", QUERY],
        ["add", str(qdrant_dir), str(docs)],
        ["delete", str(qdrant_dir), "p"],
        ["compact", str(qdrant_dir)],
    ):
        assert main(["index", *argv]) == 1, argv
        one_error_line(capsys.readouterr().err, str(qdrant_dir), "open in another process")
    assert len(reopened) == len(DOCS)  # the open one still works, and nothing was deleted


def test_the_compressed_index_refuses_bm25_and_hybrid(
    tmp_path: pathlib.Path,
    docs: pathlib.Path,
    tiny_model_dir: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("faiss")
    idx = tmp_path / "compressed"
    assert main(["index", "add", str(idx), str(docs), "--model", str(tiny_model_dir), "-q"]) == 0
    for mode in ("bm25", "hybrid"):
        argv = ["index", "search", str(idx), "--query", QUERY, "--retrieval-mode", mode]
        assert main(argv) == 2
        # The index's own message, and how to get an index that runs the mode.
        one_error_line(
            capsys.readouterr().err,
            f"--retrieval-mode {mode}",
            f"for CompressedIndex, got '{mode}'",
            "need a QdrantIndex",
            "--engine qdrant",
        )
    assert [i for i, _ in search(idx, capsys, "--retrieval-mode", "colbert", "--k", "1")] == ["p"]


def test_usage_errors_before_any_work(
    tmp_path: pathlib.Path,
    docs: pathlib.Path,
    tiny_model_dir: pathlib.Path,
    qdrant_dir: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idx = tmp_path / "new"
    model = ["--model", str(tiny_model_dir)]
    argv = ["index", "add", str(idx), str(docs), *model, "--engine", "qdrant", "--no-originals"]
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "--no-originals", "compressed")
    assert main(["index", "add", str(idx), str(docs), *model, "--engine", "faiss"]) == 2
    one_error_line(capsys.readouterr().err, "--engine", "'compressed', 'qdrant'")
    assert not idx.exists()
    search_argv = ["index", "search", str(qdrant_dir), "--query", QUERY]
    assert main([*search_argv, "--retrieval-mode", "dense"]) == 2
    one_error_line(capsys.readouterr().err, "--retrieval-mode", "'colbert', 'bm25', 'hybrid'")


def test_add_without_qdrant_edge_fails_before_reading_or_encoding(
    tiny_model_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_edge", None)  # as if qdrant-edge-py were missing
    idx = tmp_path / "idx"
    unreadable = tmp_path / "not-there.jsonl"  # reading it would fail with another message
    argv = ["index", "add", str(idx), str(unreadable), "--model", str(tiny_model_dir)]
    assert main([*argv, "--engine", "qdrant"]) == 1
    one_error_line(capsys.readouterr().err, "qdrant_edge", "colbert-plugins[qdrant]")
    assert not idx.exists()


def test_a_directory_with_both_indexes_is_refused(
    qdrant_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (qdrant_dir / "manifest.json").write_text("{}", encoding="utf-8")
    assert main(["index", "search", str(qdrant_dir), "--query", QUERY]) == 1
    one_error_line(capsys.readouterr().err, "both a compressed index", "one index per directory")


def test_a_broken_qdrant_manifest_is_named(
    qdrant_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = qdrant_dir / "colbert" / "colbert-plugins.json"
    manifest.write_text("not json", encoding="utf-8")
    assert main(["index", "compact", str(qdrant_dir)]) == 1
    one_error_line(capsys.readouterr().err, "colbert-plugins.json", "not a usable index")


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        ("add", ["--engine", "default: the existing index's engine; compressed for a new"]),
        ("search", ["--retrieval-mode", "default: the index's: hybrid for a Qdrant index"]),
    ],
)
def test_help_shows_the_defaults(
    action: str, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", action, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in shown:
        assert fragment in text, text


def test_the_command_line_names_the_index_modes_and_files() -> None:
    """cli/index.py keeps its own copies (importing the Qdrant package at start-up would load
    qdrant-edge-py for every command): they must stay the index's."""
    from colbert_plugins.cli import index as cli_index
    from colbert_plugins.index.qdrant import RETRIEVAL_MODES
    from colbert_plugins.index.qdrant.edge import MANIFEST

    assert cli_index.RETRIEVAL_MODES == RETRIEVAL_MODES
    assert cli_index._QDRANT_MANIFEST == MANIFEST
    assert cli_index.QDRANT_COLLECTION == "colbert" == _default_collection()


def _default_collection() -> str:
    import inspect

    return str(inspect.signature(QdrantIndex.__init__).parameters["collection"].default)
