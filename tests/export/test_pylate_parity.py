"""Parity with PyLate on every committed fixture (tests/fixtures/pylate/), without torch.

The comparison is benchmarks/parity_pylate.py's (``run_fixture``, built on
``colbert_plugins.export.parity.check_parity``): identical token ids and attention masks, vectors
within 1e-4 of PyLate's ``encode``, identical MaxSim rankings. The fixtures and PyLate's
reference outputs were made by scripts/make_pylate_fixtures.py in the PyLate environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from colbert_plugins.export.parity import ReferenceOutputs
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]


parity_pylate = load_script("benchmarks/parity_pylate.py")
FIXTURES = parity_pylate.fixture_dirs()
EXPECTED = {
    "bert-unused",
    "bert-qd",
    "bert-prompts",
    "modernbert-expansion",
    "modernbert-noexp",
    "xlmr-attend",
}


def test_every_configuration_has_a_fixture() -> None:
    assert {d.name for d in FIXTURES} >= EXPECTED


@pytest.mark.parametrize("directory", FIXTURES, ids=[d.name for d in FIXTURES])
def test_matches_pylate(directory: Path) -> None:
    result = parity_pylate.run_fixture(directory)
    assert result.error is None, result.error
    report = result.report
    assert report.ok, report.summary() + "\n" + "\n".join(report.failures())
    assert report.query_id_mismatches == 0 and report.document_id_mismatches == 0
    assert report.max_abs_diff <= 1e-4


def _copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / directory.name
    shutil.copytree(directory, target)
    return target


def test_a_vector_off_by_more_than_the_tolerance_fails(tmp_path: Path) -> None:
    fixture = _copy(ROOT / "tests" / "fixtures" / "pylate" / "bert-unused", tmp_path)
    reference = ReferenceOutputs.load(fixture)
    reference.document_vectors[1][2, 0] += 1e-3
    reference.save(fixture)
    report = parity_pylate.run_fixture(fixture).report
    assert report is not None and not report.ok
    bad = [c for c in report.documents if not c.ok(report.atol)]
    assert [c.index for c in bad] == [1]
    assert 9e-4 < bad[0].max_abs_diff < 1.1e-3
    assert "max |diff|" in bad[0].describe()


def test_different_token_ids_fail(tmp_path: Path) -> None:
    fixture = _copy(ROOT / "tests" / "fixtures" / "pylate" / "xlmr-attend", tmp_path)
    reference = ReferenceOutputs.load(fixture)
    reference.query_input_ids[0][2] += 1
    reference.save(fixture)
    report = parity_pylate.run_fixture(fixture).report
    assert report is not None and not report.ok
    assert report.query_id_mismatches == 1
    assert "token ids differ at position 2" in report.failures()[0]


def test_benchmark_script_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _copy(ROOT / "tests" / "fixtures" / "pylate" / "bert-qd", tmp_path / "good")
    assert parity_pylate.main(["--fixtures", str(good.parent)]) == 0
    assert "1/1 configurations match PyLate" in capsys.readouterr().out
    reference = ReferenceOutputs.load(good)
    reference.query_vectors[0] = np.zeros_like(reference.query_vectors[0])
    reference.save(good)
    assert parity_pylate.main(["--fixtures", str(good.parent)]) == 1
    assert parity_pylate.main(["--fixtures", str(tmp_path / "none")]) == 2


def test_shipped_int8_graph_runs_close_to_pylate() -> None:
    """bert-qd ships the exporter's model_int8.onnx: quantize="int8" runs it, near float32."""
    from colbert_plugins import ColBERT

    directory = ROOT / "tests" / "fixtures" / "pylate" / "bert-qd"
    reference = ReferenceOutputs.load(directory)
    model = ColBERT.from_pretrained(directory, quantize="int8", cache=False)
    assert model.encoder.path.name == "model_int8.onnx"
    ours = model.encode_queries(reference.queries) + model.encode_documents(reference.documents)
    theirs = reference.query_vectors + reference.document_vectors
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert float((a * b).sum(axis=1).min()) > 0.99  # unit vectors: cosine similarity
