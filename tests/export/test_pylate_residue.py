"""PyLate's run-time tokenizer state, saved with a checkpoint, never cuts what PyLate keeps.

PyLate's ``tokenize`` sets the transformer module's ``max_seq_length`` to ``document_length - 1``
(or ``query_length - 1``) and the tokenizer's fixed padding and truncation follow each call. A
checkpoint saved afterwards carries them: ``tokenizer_config.json`` ``model_max_length`` and
``max_length``, ``tokenizer.json`` truncation and ``Fixed`` padding, ``sentence_bert_config.json``
``max_seq_length`` (as ``../shared/models/colbert-minilm-trained/pylate`` does, with 127 for a
document_length of 128). PyLate itself never truncates by them. Here each committed PyLate
fixture gets that residue written into a copy and must still match PyLate's stored outputs:
long documents keep ``document_length`` ids, queries ``query_length``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.cli import main
from colbert_plugins.export.parity import ReferenceOutputs
from colbert_plugins.hub import resolve_model_files
from colbert_plugins.settings import resolve_settings
from colbert_plugins.tokenization import load_tokenizer
from pylate_residue import add_residue, read_json, write_json
from script_loader import load_script
from tiny_model import build_model_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "pylate"


parity_pylate = load_script("benchmarks/parity_pylate.py")
NAMES = [d.name for d in parity_pylate.fixture_dirs()]


def residue_copy(name: str, tmp_path: Path, which: str = "document") -> tuple[Path, int]:
    """A copy of fixture ``name`` with PyLate's residue after tokenizing ``which`` texts."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    settings = read_json(target / "onnx_config.json")
    prefix = settings[f"{which}_prefix"]
    length = int(settings[f"{which}_length"]) - (1 if prefix else 0)
    add_residue(target, length)
    return target, length


@pytest.mark.parametrize("which", ["document", "query"])
@pytest.mark.parametrize("name", NAMES)
def test_residue_does_not_cut_what_pylate_keeps(name: str, which: str, tmp_path: Path) -> None:
    directory, length = residue_copy(name, tmp_path, which)
    assert read_json(directory / "tokenizer_config.json")["model_max_length"] == length
    result = parity_pylate.run_fixture(directory)
    assert result.error is None, result.error
    report = result.report
    assert report.ok, report.summary() + "\n" + "\n".join(report.failures())
    assert report.query_id_mismatches == 0 and report.document_id_mismatches == 0
    # The check documents include one far longer than document_length: it keeps them all.
    reference = ReferenceOutputs.load(directory)
    document_length = read_json(directory / "onnx_config.json")["document_length"]
    assert max(len(ids) for ids in reference.document_input_ids) == document_length


def test_info_shows_the_length_pylate_runs_and_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, length = residue_copy("bert-qd", tmp_path)
    files = resolve_model_files(directory)
    settings = resolve_settings(files, {}, load_tokenizer(files.tokenizer_path))
    assert (settings.config.document_length, settings.config.max_length) == (48, 512)
    assert settings.source("document_length") == (
        "config_sentence_transformers.json: document_length"
    )
    assert settings.source("max_length") == "config.json: max_position_embeddings"
    assert any(
        f"model_max_length is {length}, below document_length 48" in w for w in settings.warnings
    )
    assert main(["info", str(directory)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"document_length +48 +config_sentence_transformers.json: document_len", out)
    assert "capped" not in out


def test_onnx_config_alone_with_residue(tmp_path: Path) -> None:
    """pylate-onnx-export's layout (onnx_config.json, no PyLate config) follows PyLate too."""
    directory, _ = residue_copy("bert-unused", tmp_path)
    (directory / "config_sentence_transformers.json").unlink()
    result = parity_pylate.run_fixture(directory)
    assert result.report is not None and result.report.ok, result.error


def test_windows_ignore_the_residue(tmp_path: Path) -> None:
    """Windows tokenize the whole document: the saved truncation and padding must not apply."""
    clean = FIXTURES / "bert-qd"
    directory, _ = residue_copy("bert-qd", tmp_path)
    long_text = ReferenceOutputs.load(clean).documents[2]
    vectors = [
        ColBERT.from_pretrained(d, long_documents="windows", cache=False).encode_documents(
            [long_text]
        )[0]
        for d in (clean, directory)
    ]
    assert vectors[0].shape[0] > 48  # more than one window's worth
    np.testing.assert_array_equal(vectors[0], vectors[1])


def test_fastembed_family_ignores_saved_padding_and_truncation(tmp_path: Path) -> None:
    """The fastembed family keeps its model_max_length cap, but a tokenizer.json's padding and
    truncation (here left-sided) change neither its token ids nor its skiplist."""
    clean = build_model_dir(tmp_path / "clean")
    dirty = build_model_dir(tmp_path / "dirty")
    tokenizer_json = read_json(dirty / "tokenizer.json")
    tokenizer_json["truncation"] = {
        "direction": "Left",
        "max_length": 9,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tokenizer_json["padding"] = {
        "strategy": {"Fixed": 9},
        "direction": "Left",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
    write_json(dirty / "tokenizer.json", tokenizer_json)
    texts = ["the cat sat on the mat, in paris! " * 4, "hello world."]
    models = [ColBERT.from_pretrained(d, cache=False) for d in (clean, dirty)]
    assert models[1].config.family == "fastembed"
    assert models[0].tokenizer.ids.skiplist == models[1].tokenizer.ids.skiplist
    for a, b in zip(
        models[0].tokenizer.tokenize_documents(texts),
        models[1].tokenizer.tokenize_documents(texts),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    queries = [m.tokenizer.tokenize_queries(texts).input_ids for m in models]
    np.testing.assert_array_equal(queries[0], queries[1])


def test_fastembed_family_still_caps_at_model_max_length(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, max_position=64, model_max_length=40)
    model = ColBERT.from_pretrained(directory, cache=False)
    assert (model.config.max_length, model.config.document_length) == (40, 40)
    assert model.settings is not None
    assert model.settings.source("document_length") == "tokenizer_config.json: model_max_length"
