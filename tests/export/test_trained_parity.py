"""Parity with PyLate on the trained model, without torch: committed reference vectors.

``tests/fixtures/trained/`` holds PyLate's tokenization and ``encode`` vectors (float32) from
the checkpoint in ``colbert-minilm-trained/pylate`` for 5 queries and 16 SciFact/Cranfield
documents, 8 of them longer than document_length (made by scripts/make_trained_reference.py
in .venv-pylate). Our core on the shipped top-level ONNX directory must give identical token
ids, vectors within 1e-4 and identical MaxSim rankings. The full comparison (240 documents, 40
queries, the fresh export too) is ``benchmarks/parity_pylate.py --trained``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from colbert_plugins import ColBERT
from colbert_plugins.export.parity import ReferenceOutputs, check_parity
from pylate_residue import add_residue
from shared_models import TRAINED_MODEL, TRAINED_SKIP_REASON

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "trained"

pytestmark = pytest.mark.skipif(
    not (TRAINED_MODEL / "model.onnx").is_file(), reason=TRAINED_SKIP_REASON
)


@pytest.fixture(scope="module")
def reference() -> ReferenceOutputs:
    return ReferenceOutputs.load(REFERENCE)


def test_reference_was_made_from_this_model(reference: ReferenceOutputs) -> None:
    digest = hashlib.sha256((TRAINED_MODEL / "model.onnx").read_bytes()).hexdigest()
    assert digest == reference.metadata["shipped_model_onnx_sha256"], (
        f"{TRAINED_MODEL}/model.onnx is not the model the reference was made for: run "
        "scripts/make_trained_reference.py in .venv-pylate"
    )


def test_reference_has_long_documents(reference: ReferenceOutputs) -> None:
    limit = reference.metadata["document_length"]
    lengths = [len(ids) for ids in reference.document_input_ids]
    assert lengths.count(limit) >= 8 and min(lengths) < limit
    assert len(reference.queries) == 5 and len(reference.documents) == 16


def test_shipped_directory_matches_pylate(reference: ReferenceOutputs) -> None:
    model = ColBERT.from_pretrained(TRAINED_MODEL, cache=False, local_files_only=True)
    assert model.config.document_length == reference.metadata["document_length"] == 128
    report = check_parity(model, reference, atol=1e-4)
    assert report.ok, report.summary() + "\n" + "\n".join(report.failures())
    assert report.query_id_mismatches == 0 and report.document_id_mismatches == 0
    assert report.max_abs_diff <= 1e-4 and all(report.rankings_identical)


def test_with_the_checkpoints_residue_too(reference: ReferenceOutputs, tmp_path: Path) -> None:
    """The shipped directory with what its PyLate checkpoint was saved with (model_max_length,
    tokenizer.json padding and truncation, max_seq_length: 127) still matches PyLate."""
    directory = tmp_path / "trained"
    directory.mkdir()
    for path in TRAINED_MODEL.iterdir():
        if path.is_file() and path.name != "model.onnx":
            shutil.copyfile(path, directory / path.name)
    (directory / "model.onnx").symlink_to(TRAINED_MODEL / "model.onnx")
    add_residue(directory, reference.metadata["document_length"] - 1)
    model = ColBERT.from_pretrained(directory, cache=False, local_files_only=True)
    report = check_parity(model, reference, atol=1e-4)
    assert report.ok, report.summary() + "\n" + "\n".join(report.failures())
