"""The ``colbert-plugins`` command line, in process (fast) and as a subprocess (real exits)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cache import EmbeddingCache, text_key
from colbert_plugins.cli import main, read_documents

DOCS = ["the cat sat on the mat", "paris is the capital of france", "london is in england"]
QUERY = "capital of france"


@pytest.fixture
def docs_txt(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(DOCS) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture
def docs_jsonl(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "docs.jsonl"
    rows = [{"_id": f"d{i}", "page_content": t, "title": "x"} for i, t in enumerate(DOCS)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("colbert-plugins: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err


# -- rerank ---------------------------------------------------------------------------------


def test_rerank_text_lines(
    tiny_model: ColBERT,
    tiny_model_dir: pathlib.Path,
    docs_txt: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["rerank", "--model", str(tiny_model_dir), "--query-length", "8", "--query", QUERY]
    code, out, err = run([*argv, str(docs_txt)], capsys)
    assert code == 0 and err == ""
    expected = tiny_model.rerank(QUERY, DOCS)
    lines = out.splitlines()
    assert len(lines) == 3
    for line, result in zip(lines, expected, strict=True):
        _rank, score, index, *text = line.split()
        assert float(score) == pytest.approx(result.score, abs=1e-4)
        assert index == f"[{result.index}]" and " ".join(text) == result.document


def test_rerank_json_top_n_and_explain(
    tiny_model: ColBERT,
    tiny_model_dir: pathlib.Path,
    docs_jsonl: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["rerank", "--model", str(tiny_model_dir), "--query-length", "8", "--query", QUERY]
    code, out, _ = run([*argv, str(docs_jsonl), "--json", "--top-n", "2", "--explain"], capsys)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    expected = tiny_model.rerank(QUERY, DOCS, top_n=2)
    assert [r["index"] for r in records] == [e.index for e in expected]
    assert [r["rank"] for r in records] == [1, 2]
    assert [r["id"] for r in records] == [f"d{e.index}" for e in expected]
    assert records[0]["score"] >= records[1]["score"]
    for record in records:
        assert record["matches"] and all(
            record["text"][m["start"] : m["end"]] == m["text"] for m in record["matches"]
        )


def test_rerank_int8(
    tiny_model_dir: pathlib.Path, docs_txt: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rerank", "--model", str(tiny_model_dir), "--query-length", "8", "--query", QUERY]
    code, out, _ = run([*argv, "--int8", "--json", str(docs_txt)], capsys)
    assert code == 0
    int8 = ColBERT.from_pretrained(tiny_model_dir, quantize="int8", query_length=8, cache=False)
    assert int8.encoder.path.name.startswith("int8")
    expected = int8.rerank(QUERY, DOCS)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["index"] for r in records] == [e.index for e in expected]
    for record, result in zip(records, expected, strict=True):
        assert record["score"] == pytest.approx(result.score, abs=1e-4)


def test_rerank_reads_stdin_and_custom_fields(
    tiny_model_dir: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = "\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(DOCS))
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    argv = ["rerank", "--model", str(tiny_model_dir), "--query", QUERY, "--field", "body"]
    code, out, _ = run([*argv, "--json", "-"], capsys)
    assert code == 0
    assert sorted(json.loads(line)["id"] for line in out.splitlines()) == ["0", "1", "2"]


def test_read_documents_formats(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"text": "a", "_id": 1}\n\n{"content": "b"}\n{"page_content": "c"}\n', encoding="utf-8"
    )
    docs = read_documents(str(path))
    assert [(d.text, d.id) for d in docs] == [("a", "1"), ("b", None), ("c", None)]
    text = tmp_path / "lines.txt"
    text.write_text('  {not json}\n"quoted"\n', encoding="utf-8")
    assert [d.text for d in read_documents(str(text), fmt="text")] == ["{not json}", '"quoted"']


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"text": "ok"}\n{"text": broken}\n', [":2: invalid JSON"]),
        ('{"title": "no text"}\n', [":1: no 'text' or 'page_content' or 'content' field"]),
        ("[1, 2]\n", ["expected a JSON object"]),
        ('{"text": 3}\n', ["field 'text' is not a string"]),
    ],
)
def test_bad_input_is_one_line_and_status_1(
    tiny_model_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    fragments: list[str],
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(
        ["rerank", "--model", str(tiny_model_dir), "--query", "q", str(path)], capsys
    )
    assert code == 1 and out == ""
    assert_one_error_line(err, *fragments)


def test_runtime_and_usage_errors(
    tiny_model_dir: pathlib.Path, docs_txt: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(tiny_model_dir)
    cases = [
        (["rerank", "--model", model, "--query", "q", "missing.txt"], 1, "missing.txt"),
        (["rerank", "--model", "./nowhere", "--query", "q", str(docs_txt)], 1, "does not exist"),
        (["rerank", "--model", model, str(docs_txt)], 2, "--query"),
        (["frobnicate"], 2, "invalid choice"),
        (["rerank", "--model", model, "--query", "q", "--top-n", "0", str(docs_txt)], 2, "top-n"),
        (["rerank", "--model", model, "--query", "q", "--long-documents", "x", "f"], 2, "choice"),
        (
            ["rerank", "--model", model, "--query", "q", "--document-length", "2", str(docs_txt)],
            2,
            "document_length",
        ),
        (
            ["rerank", "--model", model, "--query", "q", "--document-length", "500", str(docs_txt)],
            2,
            "max_length",
        ),
        (["rerank", "--model", model, "--query", "q", "--field", "x", str(docs_txt)], 2, "--field"),
    ]
    for argv, status, fragment in cases:
        code, out, err = run(argv, capsys)
        assert code == status and out == "", (argv, err)
        assert_one_error_line(err, fragment)


# -- encode ---------------------------------------------------------------------------------


def test_encode_writes_vectors_atomically_and_fills_the_cache(
    tiny_model_dir: pathlib.Path,
    docs_jsonl: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_dir = tmp_path / "out" / "emb"
    db = tmp_path / "cache.sqlite"
    argv = ["encode", "--model", str(tiny_model_dir), str(docs_jsonl), "--out", str(out_dir)]
    code, out, err = run([*argv, "--cache-path", str(db)], capsys)
    assert code == 0 and out == "" and "encoded 3 documents" in err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "embeddings.npy",
        "manifest.json",
        "offsets.npy",
    ]
    assert [p.name for p in out_dir.parent.iterdir()] == ["emb"]  # no temporary leftovers
    embeddings = np.load(out_dir / "embeddings.npy")
    offsets = np.load(out_dir / "offsets.npy")
    manifest = json.loads((out_dir / "manifest.json").read_text())
    model = ColBERT.from_pretrained(tiny_model_dir, cache=False)
    expected = model.encode_documents(DOCS)
    assert offsets.tolist() == [0, *np.cumsum([len(v) for v in expected]).tolist()]
    for i, vectors in enumerate(expected):
        np.testing.assert_allclose(embeddings[offsets[i] : offsets[i + 1]], vectors, atol=1e-6)
    assert manifest["documents"] == 3 and manifest["vectors"] == len(embeddings)
    assert manifest["dim"] == 8 and manifest["ids"] == ["d0", "d1", "d2"]
    assert manifest["model_key"] == model.model_key
    assert manifest["config"]["long_documents"] == "truncate"
    cached = EmbeddingCache(path=db).get_many([text_key(model.model_key, t) for t in DOCS])
    for array, vectors in zip(cached, expected, strict=True):
        assert array is not None
        np.testing.assert_allclose(array, vectors, atol=1e-6)

    # an existing output is kept unless --overwrite; a second run hits the cache
    before = (out_dir / "manifest.json").read_text()
    code, _, err = run([*argv, "--cache-path", str(db), "--long-documents", "windows"], capsys)
    assert code == 2 and (out_dir / "manifest.json").read_text() == before
    assert_one_error_line(err, "--overwrite")
    code, _, err = run([*argv, "--cache-path", str(db), "--overwrite", "--quiet"], capsys)
    assert code == 0 and err == ""
    assert sorted(p.name for p in out_dir.parent.iterdir()) == ["emb"]


def test_encode_with_windows(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_doc = tmp_path / "long.txt"
    long_doc.write_text("the quick brown fox jumps over the lazy dog " * 4 + "\n")
    argv = ["encode", "--model", str(tiny_model_dir), str(long_doc), "--document-length", "10"]
    assert run([*argv, "--out", str(tmp_path / "cut"), "-q"], capsys)[0] == 0
    argv += ["--long-documents", "windows", "--window-stride", "4"]
    assert run([*argv, "--out", str(tmp_path / "win"), "-q"], capsys)[0] == 0
    cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    win = json.loads((tmp_path / "win" / "manifest.json").read_text())
    assert cut["vectors"] == 10 and win["vectors"] > 36  # 36 text tokens, all kept
    assert win["config"]["long_documents"] == "windows" and win["config"]["window_stride"] == 4


# -- info, download, bench ------------------------------------------------------------------


def test_info(tiny_model_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", str(tiny_model_dir), "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["dim"] == 8
    assert info["tokens"]["query_marker"] == {"id": 1, "token": "[unused0]"}
    assert info["tokens"]["document_marker"] == {"id": 2, "token": "[unused1]"}
    assert info["config"]["document_length"] == 64 and info["config"]["query_length"] == 32
    names = [i["name"] for i in info["graph"]["inputs"]]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    assert info["graph"]["outputs"][0]["shape"][-1] == 8
    files = {f["path"]: f for f in info["files"]}
    assert {"model.onnx", "tokenizer.json", "config.json"} <= set(files)
    onnx_bytes = (tiny_model_dir / "model.onnx").read_bytes()
    assert files["model.onnx"]["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert files["model.onnx"]["size"] == len(onnx_bytes)
    code, out, _ = run(["info", str(tiny_model_dir), "--long-documents", "windows"], capsys)
    assert code == 0
    assert "query marker     1 ([unused0])" in out
    assert "windows          61 tokens, stride 45" in out
    assert re.search(r'long_documents +"windows" +argument', out)
    assert re.search(r"document_length +64 +tokenizer_config.json: model_max_length", out)
    assert "family           fastembed" in out
    assert "sha256 " + files["model.onnx"]["sha256"] in out


def test_download_of_a_local_directory(
    tiny_model_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["download", str(tiny_model_dir)], capsys)
    assert code == 0 and out.strip() == str(tiny_model_dir)
    assert "tokenizer.json" in err


def test_bench(tiny_model_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["bench", "--model", str(tiny_model_dir), "--docs", "12", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["documents"] == 12 and result["rerank_candidates"] == 12
    assert result["docs_per_second"] > 0 and result["rerank_warm_ms"] > 0
    assert result["rerank_cold_ms"] > 0


# -- as a real process ----------------------------------------------------------------------


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(extra)
    return env


def test_module_entry_point(tiny_model_dir: pathlib.Path, docs_txt: pathlib.Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "colbert_plugins.cli", "encode", "--model", str(tiny_model_dir),
         str(docs_txt), "--out", str(docs_txt.parent / "out")],
        capture_output=True, text=True, timeout=120, env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "encoded 3 documents" in proc.stderr and "Traceback" not in proc.stderr
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_offline_download_fails_with_one_clear_line(tmp_path: pathlib.Path) -> None:
    env = subprocess_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    proc = subprocess.run(
        [sys.executable, "-m", "colbert_plugins.cli", "download", "someone/colbert-model",
         "--cache-dir", str(tmp_path / "empty-cache")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert_one_error_line(proc.stderr, "'someone/colbert-model'", "HF_HUB_OFFLINE")


def test_console_script_usage_error() -> None:
    script = pathlib.Path(sys.executable).with_name("colbert-plugins")
    if not script.exists():
        pytest.skip("the colbert-plugins script is not installed next to this Python")
    proc = subprocess.run(
        [str(script), "rerank", "--query", "q"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "--model")


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["encode", "--help"], ["documents per batch (default: 32)", "(default: auto)"]),
        (["serve", "--help"], ["(default: 1000)", "(default: 256)"]),
        (["index", "add", "--help"], ["documents per encoder call (default: 32)"]),
        (["index", "search", "--help"], ["number of results (default: 10)"]),
    ],
)
def test_help_shows_defaults(
    argv: list[str], shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(argv, capsys)
    assert code == 0
    flat = " ".join(out.split())
    for text in shown:
        assert text in flat, out
    assert "(default: None)" not in flat and "(default: False)" not in flat


def test_help_never_shows_the_api_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLBERT_PLUGINS_API_KEY", "s3cret-key")
    code, out, _ = run(["serve", "--help"], capsys)
    assert code == 0 and "s3cret-key" not in out


@pytest.mark.parametrize("argv", [["index", "search", "DIR", "--query", "x", "--k", "0"]])
def test_index_counts_are_positive(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert_one_error_line(err, "--k", "expected a positive integer")
