"""Shared fixtures: a tiny ColBERT model built on the fly, and the real model when configured.

Unit tests never download anything. Integration tests (marker ``integration``) use the model
directory named by ``COLBERT_PLUGINS_TEST_MODEL`` and are skipped when it is unset.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from colbert_plugins import ColBERT
from tiny_model import build_model_dir

TEST_MODEL_ENV = "COLBERT_PLUGINS_TEST_MODEL"


@pytest.fixture(autouse=True, scope="session")
def _private_graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Prepared (fused / int8) graphs go to a temporary directory, not ~/.cache."""
    previous = os.environ.get("COLBERT_PLUGINS_CACHE")
    os.environ["COLBERT_PLUGINS_CACHE"] = str(tmp_path_factory.mktemp("graph-cache"))
    yield
    if previous is None:
        os.environ.pop("COLBERT_PLUGINS_CACHE", None)
    else:
        os.environ["COLBERT_PLUGINS_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A tiny BERT-shaped ColBERT model directory (8-dim vectors, 64 positions)."""
    return build_model_dir(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: pathlib.Path) -> ColBERT:
    """The tiny model (query_length 8, no embedding cache; shared: do not mutate)."""
    return ColBERT.from_pretrained(tiny_model_dir, query_length=8, threads=1, cache=False)


@pytest.fixture(scope="session")
def real_model_dir() -> pathlib.Path:
    """The real model directory from COLBERT_PLUGINS_TEST_MODEL, or skip."""
    value = os.environ.get(TEST_MODEL_ENV)
    if not value:
        pytest.skip(f"{TEST_MODEL_ENV} is not set (point it at a ColBERT ONNX model directory)")
    path = pathlib.Path(value)
    if not path.is_dir():
        pytest.skip(f"{TEST_MODEL_ENV}={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def real_model(real_model_dir: pathlib.Path) -> ColBERT:
    """The real model loaded once for the session (no embedding cache; do not mutate)."""
    return ColBERT.from_pretrained(real_model_dir, threads=2, cache=False)


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for the test, in the environment and in huggingface_hub's constants."""
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    yield


@pytest.fixture
def count_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Record every ColBERT.from_pretrained call as (args, kwargs), slowed down to widen any
    race between threads that load the same model."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    original = ColBERT.from_pretrained

    def counting(*args: Any, **kwargs: Any) -> ColBERT:
        calls.append((args, kwargs))
        time.sleep(0.05)
        return original(*args, **kwargs)

    monkeypatch.setattr(ColBERT, "from_pretrained", counting)
    return calls
