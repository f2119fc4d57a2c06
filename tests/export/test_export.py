"""`colbert-plugins export`: PyLate checkpoint -> verified ONNX directory.

The export itself needs PyTorch and PyLate (the ``export`` extra), which CI does not install:
those tests run only in the reference environment,

    bash scripts/pylate_env.sh
    .venv-pylate/bin/python -m pytest tests/export/test_export.py

and are skipped elsewhere. Without them, the command must say which extra to install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cli import main
from script_loader import load_script
from shared_models import TRAINED_MODEL, TRAINED_SKIP_REASON

ROOT = Path(__file__).resolve().parents[2]
HAVE_EXPORT = all(importlib.util.find_spec(m) is not None for m in ("torch", "pylate"))
needs_export = pytest.mark.skipif(
    not HAVE_EXPORT,
    reason="needs the export extra (PyTorch, PyLate), absent here by design: run "
    "bash scripts/pylate_env.sh, then "
    ".venv-pylate/bin/python -m pytest tests/export/test_export.py",
)


@pytest.mark.skipif(HAVE_EXPORT, reason="torch and pylate are installed here")
def test_without_the_extra_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["export", str(tmp_path / "model"), str(tmp_path / "out")])
    assert status == 1
    err = capsys.readouterr().err
    assert "pip install 'colbert-plugins[export]'" in err
    assert not (tmp_path / "out").exists()


def test_the_core_and_the_cli_do_not_import_the_exporter() -> None:
    code = (
        "import sys, colbert_plugins, colbert_plugins.cli\n"
        "colbert_plugins.cli.build_parser()\n"
        "names = ('torch', 'pylate', 'colbert_plugins.export')\n"
        "print(sorted(m for m in names if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- in the reference environment ------------------------------------------------------------


def _fixture_script() -> ModuleType:
    return load_script("scripts/make_pylate_fixtures.py")


@pytest.fixture(scope="module")
def pylate_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small PyLate models: cased BERT with expansion, ModernBERT with two Dense layers."""
    if not HAVE_EXPORT:
        pytest.skip("needs the export extra")
    fixtures = _fixture_script()
    work = tmp_path_factory.mktemp("pylate-models")
    configs = {c.name: c for c in fixtures.CONFIGS}
    return {
        name: fixtures.build_pylate_model(configs[name], work / name)
        for name in ("bert-qd", "modernbert-noexp")
    }


def _settings(directory: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((directory / "onnx_config.json").read_text())
    return result


@needs_export
def test_export_bert_with_int8(
    pylate_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bert-onnx"
    assert main(["export", str(pylate_models["bert-qd"]), str(out), "--int8"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out.absolute())
    assert "matches PyLate" in captured.err
    names = {p.name for p in out.iterdir()}
    assert {
        "model.onnx",
        "model_int8.onnx",
        "tokenizer.json",
        "onnx_config.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "config.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "export_report.json",
    } <= names
    assert not any(n.endswith(".data") for n in names)  # weights inside model.onnx
    settings = _settings(out)
    # The model's true settings, not pylate-onnx-export 0.1.0's forced ones.
    assert settings["do_query_expansion"] is True
    assert settings["do_lower_case"] is False
    assert settings["query_prefix"] == "[Q] " and settings["query_length"] == 24
    assert settings["uses_token_type_ids"] is True
    report = json.loads((out / "export_report.json").read_text())
    assert report["exporter"] == "pylate-onnx-export"
    assert report["check"]["ok"] and report["check"]["query_id_mismatches"] == 0
    model = ColBERT.from_pretrained(out, cache=False)
    assert model.dim == settings["embedding_dim"] == 16
    assert len(model.encode_queries(["a query"])[0]) == 24  # expansion to query_length


@needs_export
def test_export_two_dense_layers_with_torch(pylate_models: dict[str, Path], tmp_path: Path) -> None:
    """pylate-onnx-export keeps only the first Dense layer: this model goes through torch.onnx."""
    from colbert_plugins.export import export_model

    result = export_model(str(pylate_models["modernbert-noexp"]), tmp_path / "mb")
    assert result.exporter == "torch.onnx"
    assert result.report is not None and result.report.ok
    settings = _settings(result.directory)
    assert settings["do_query_expansion"] is False
    assert settings["do_lower_case"] is True
    assert settings["embedding_dim"] == 16 and settings["uses_token_type_ids"] is False


@needs_export
def test_refuses_a_result_that_differs(
    pylate_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A tokenizer that lower-cases a cased model: ids differ, nothing is written."""
    from tokenizers import normalizers

    from colbert_plugins.export import pylate as export

    original = export._write_tokenizer

    def lowercasing(colbert: Any, out: Path) -> None:
        original(colbert, out)
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
        tokenizer.normalizer = normalizers.Sequence([tokenizer.normalizer, normalizers.Lowercase()])
        tokenizer.save(str(out / "tokenizer.json"))

    monkeypatch.setattr(export, "_write_tokenizer", lowercasing)
    out = tmp_path / "refused"
    assert main(["export", str(pylate_models["bert-qd"]), str(out)]) == 1
    err = capsys.readouterr().err
    assert "export refused" in err and "token ids differ" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".refused")]  # no leftovers


@needs_export
def test_existing_output_needs_force(
    pylate_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", str(pylate_models["bert-qd"]), str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


@needs_export
@pytest.mark.skipif(not (TRAINED_MODEL / "pylate").is_dir(), reason=TRAINED_SKIP_REASON)
def test_export_of_the_trained_checkpoint(tmp_path: Path) -> None:
    """colbert-minilm-trained/pylate was saved with what PyLate leaves in its tokenizer at run
    time (model_max_length, max_length, max_seq_length 127; fixed padding and truncation in
    tokenizer.json). The export keeps documents at 128 ids, as PyLate does, and writes the base
    limits instead of the residue."""
    from colbert_plugins.export import export_model

    checkpoint = TRAINED_MODEL / "pylate"
    assert json.loads((checkpoint / "tokenizer_config.json").read_text())["model_max_length"] == 127
    out = tmp_path / "trained"
    result = export_model(str(checkpoint), out)
    report = result.report
    assert report is not None and report.ok, report and report.summary()
    assert report.query_id_mismatches == 0 and report.document_id_mismatches == 0
    assert report.max_abs_diff <= 1e-4 and all(report.rankings_identical)
    assert max(len(c.ours_ids) for c in report.documents) == 128  # the long check document
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == 512  # config.json max_position_embeddings
    assert not {"max_length", "stride", "truncation_strategy"} & set(tokenizer_config)
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    tokenizer_json = json.loads((out / "tokenizer.json").read_text())
    assert tokenizer_json["truncation"] is None and tokenizer_json["padding"] is None
    model = ColBERT.from_pretrained(out, cache=False)
    assert (model.config.document_length, model.config.max_length) == (128, 512)
    assert model.settings is not None
    assert model.settings.source("document_length").endswith(": document_length")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it, not mkdtemp's 0700
