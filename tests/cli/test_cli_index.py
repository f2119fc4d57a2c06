"""``colbert-plugins index``: a mistyped path, a missing faiss and the recorded model.

Only ``add`` creates an index; the other commands refuse a directory holding none, by name,
before loading a model, and create nothing. ``--model`` may be left out once the index
records its model. Needs faiss (the ``index`` extra) for the commands that build an index.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

from colbert_plugins.cli import main

DOCS = [
    {"id": "p", "text": "paris is the capital of france", "source": "a"},
    {"id": "b", "text": "berlin is the capital of germany", "source": "b"},
    {"id": "l", "text": "london is on the thames", "source": "a"},
]


@pytest.fixture
def docs(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    return path


def one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("colbert-plugins: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "action",
    [
        ["search", "--query", "capital"],
        ["delete", "some-id"],
        ["compact"],
    ],
)
def test_commands_other_than_add_refuse_a_missing_index(
    action: list[str], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexist"
    # No --model: the path is checked before any model would be needed or loaded.
    code = main(["index", action[0], str(missing), *action[1:]])
    assert code == 1
    one_error_line(capsys.readouterr().err, str(missing), "does not exist", "index add")
    assert not missing.exists()  # nothing created

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["index", action[0], str(empty), *action[1:]]) == 1
    one_error_line(capsys.readouterr().err, str(empty), "holds no index")
    assert list(empty.iterdir()) == []  # no lock file, no manifest

    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    assert main(["index", action[0], str(a_file), *action[1:]]) == 1
    one_error_line(capsys.readouterr().err, "is not a directory")


def test_add_without_faiss_fails_before_reading_or_encoding(
    tiny_model_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss-cpu were not installed
    idx = tmp_path / "idx"
    unreadable = tmp_path / "not-there.jsonl"  # reading it would fail with another message
    code = main(["index", "add", str(idx), str(unreadable), "--model", str(tiny_model_dir)])
    assert code == 1
    one_error_line(capsys.readouterr().err, "faiss", "colbert-plugins[index]")
    assert not idx.exists()


def test_first_add_needs_a_model(
    docs: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    assert main(["index", "add", str(idx), str(docs)]) == 2
    one_error_line(capsys.readouterr().err, "--model")
    assert not idx.exists()


def test_the_recorded_model_is_used_without_model_option(
    tiny_model_dir: pathlib.Path,
    docs: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("faiss")
    idx = str(tmp_path / "idx")
    assert main(["index", "add", idx, str(docs), "--model", str(tiny_model_dir), "-q"]) == 0
    capsys.readouterr()
    query = ["--query", "capital of france", "--k", "3", "--json"]
    assert main(["index", "search", idx, *query]) == 0
    assert {json.loads(r)["id"] for r in capsys.readouterr().out.splitlines()} == {"p", "b", "l"}
    assert main(["index", "delete", idx, "p", "-q"]) == 0
    assert main(["index", "compact", idx, "-q"]) == 0
    capsys.readouterr()
    assert main(["index", "search", idx, *query]) == 0
    assert {json.loads(r)["id"] for r in capsys.readouterr().out.splitlines()} == {"b", "l"}

    # An unknown id: the flag is named, not the Python argument, and nothing is deleted.
    assert main(["index", "delete", idx, "b", "nope"]) == 1
    line = one_error_line(capsys.readouterr().err, "'nope'", "--missing-ok")
    assert "missing_ok" not in line
    assert main(["index", "delete", idx, "b", "nope", "--missing-ok", "-q"]) == 0
    capsys.readouterr()
    assert main(["index", "search", idx, *query]) == 0
    assert {json.loads(r)["id"] for r in capsys.readouterr().out.splitlines()} == {"l"}


def test_a_recorded_model_that_is_gone_asks_for_model(
    tiny_model_dir: pathlib.Path,
    docs: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("faiss")
    idx = tmp_path / "idx"
    assert main(["index", "add", str(idx), str(docs), "--model", str(tiny_model_dir), "-q"]) == 0
    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_name"] = str(tmp_path / "moved-away")
    (idx / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()
    assert main(["index", "compact", str(idx)]) == 2
    one_error_line(capsys.readouterr().err, "moved-away", "pass --model")
    assert main(["index", "compact", str(idx), "--model", str(tiny_model_dir), "-q"]) == 0


@pytest.mark.parametrize("command", ["rerank", "index-search"])
def test_an_empty_query_is_refused_before_any_work(
    command: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither the documents file, the index nor the model exist: the query is checked first."""
    missing = str(tmp_path / "none")
    argv = (
        ["rerank", "--model", missing, "--query", "  ", missing]
        if command == "rerank"
        else ["index", "search", missing, "--query", ""]
    )
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "--query is")


def test_a_model_mismatch_names_the_setting_and_the_flag(
    tiny_model_dir: pathlib.Path,
    docs: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("faiss")
    idx = str(tmp_path / "idx")
    model = ["--model", str(tiny_model_dir)]
    assert main(["index", "add", idx, str(docs), *model, "--document-length", "12", "-q"]) == 0
    capsys.readouterr()
    assert main(["index", "search", idx, *model, "--query", "capital"]) == 1
    line = one_error_line(capsys.readouterr().err, "document_length (index 12, this model")
    assert "Leave out --model" in line and "check_model_key" not in line
    assert "the ONNX graph" not in line and "the tokenizer" not in line


def test_add_reads_files_as_rerank_does(
    tmp_path: pathlib.Path, tiny_model_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``index add`` and ``rerank`` share one reader: a file that is not UTF-8 is one error
    line (exit 1) for both, before any model is loaded or index created."""
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    index = tmp_path / "idx"
    for argv in (
        ["index", "add", str(index), str(bad), "--model", str(tiny_model_dir)],
        ["rerank", "--model", str(tiny_model_dir), "--query", "coffee", str(bad)],
    ):
        assert main(argv) == 1
        one_error_line(capsys.readouterr().err, "latin1.txt", "not UTF-8")
    assert not index.exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_add_shows_progress_on_a_terminal_unless_quiet(
    quiet: bool,
    tiny_model_dir: pathlib.Path,
    docs: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a terminal, ``index add`` reports the encoding, then the build's stages; ``-q``
    silences all of it."""
    pytest.importorskip("faiss")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as if stderr were a terminal
    argv = ["index", "add", str(tmp_path / "idx"), str(docs), "--model", str(tiny_model_dir)]
    assert main(argv + (["-q"] if quiet else [])) == 0
    err = capsys.readouterr().err
    if quiet:
        assert err == ""
    else:
        for stage in ("Encoding documents", "Training centroids", "Compressing documents"):
            assert stage in err, err
        assert "added 3 documents" in err


def test_add_shows_no_progress_when_stderr_is_not_a_terminal(
    tiny_model_dir: pathlib.Path,
    docs: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("faiss")
    argv = ["index", "add", str(tmp_path / "idx"), str(docs), "--model", str(tiny_model_dir)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Encoding" not in err and "\r" not in err
    assert err.strip().splitlines() == [f"added 3 documents; 3 in {tmp_path / 'idx'}"]
