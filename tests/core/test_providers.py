"""Execution providers: asking for one the installed ONNX Runtime lacks is an error that names
the fix (``colbert-plugins-gpu``), before any model file is read; ``cpu_fallback=True`` runs on
the CPU with a warning instead. The CPU build of ONNX Runtime (as in CI) has no CUDA."""

from __future__ import annotations

import logging
import pathlib

import onnxruntime as ort
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentTypeError, ProviderUnavailableError

CUDA = "CUDAExecutionProvider"
needs_cpu_only = pytest.mark.skipif(
    CUDA in ort.get_available_providers(), reason="this ONNX Runtime offers CUDA"
)


@needs_cpu_only
def test_cuda_without_the_gpu_build_is_a_clear_error(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(ProviderUnavailableError) as info:
        ColBERT.from_pretrained(tiny_model_dir, providers=[CUDA, "CPUExecutionProvider"])
    message = str(info.value)
    assert CUDA in message and "colbert-plugins-gpu" in message and "cpu_fallback" in message


@needs_cpu_only
def test_the_providers_are_checked_before_the_model_is_looked_for(
    tmp_path: pathlib.Path,
) -> None:
    with pytest.raises(ProviderUnavailableError):
        ColBERT.from_pretrained(tmp_path / "no-such-model", providers=[(CUDA, {"device_id": 0})])


@needs_cpu_only
def test_cpu_fallback_is_opt_in_and_warns(
    tiny_model_dir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="colbert_plugins"):
        model = ColBERT.from_pretrained(tiny_model_dir, providers=[CUDA], cpu_fallback=True)
    assert model.encoder.providers == ["CPUExecutionProvider"]
    assert any(CUDA in r.getMessage() and "CPU" in r.getMessage() for r in caplog.records)
    assert model.encode_queries(["cat"])[0].shape[1] == model.dim


def test_default_and_explicit_cpu(tiny_model_dir: pathlib.Path) -> None:
    assert ColBERT.from_pretrained(tiny_model_dir).encoder.providers == ["CPUExecutionProvider"]
    explicit = ColBERT.from_pretrained(tiny_model_dir, providers=["CPUExecutionProvider"])
    assert explicit.encoder.providers == ["CPUExecutionProvider"]


def test_providers_must_be_a_list(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="must be a list"):
        ColBERT.from_pretrained(tiny_model_dir, providers="CPUExecutionProvider")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="provider names"):
        ColBERT.from_pretrained(tiny_model_dir, providers=[42])
