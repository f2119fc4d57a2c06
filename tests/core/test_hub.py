"""Model files: local directories, the registry, config inference, and the offline hub cache."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from colbert_plugins import ColBERT
from colbert_plugins.errors import (
    ModelFilesError,
    ModelLoadError,
    ModelNotFoundError,
    ModelOutputError,
)
from colbert_plugins.hub import resolve_model_files
from colbert_plugins.registry import DEFAULT_MODEL, known_model
from tiny_model import build_model_dir, prefill_hf_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.mark.parametrize("onnx_name", ["model.onnx", "onnx/model.onnx", "vespa_colbert.onnx"])
def test_finds_the_graph_in_known_places(tmp_path: pathlib.Path, onnx_name: str) -> None:
    build_model_dir(tmp_path, onnx_name=onnx_name)
    assert resolve_model_files(tmp_path).onnx_path == tmp_path / onnx_name


def test_external_data_loads(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path, onnx_name="onnx/model.onnx", external_data=True)
    assert (tmp_path / "onnx/model.onnx_data").is_file()
    model = ColBERT.from_pretrained(tmp_path)
    assert model.encode_documents(["cat"])[0].shape == (4, 8)


def test_model_file_picks_a_graph(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path, onnx_name="custom/graph.onnx")
    files = resolve_model_files(tmp_path, model_file="custom/graph.onnx")
    assert files.onnx_path == tmp_path / "custom/graph.onnx"
    with pytest.raises(ModelFilesError, match=r"model_file 'nope\.onnx' not found"):
        resolve_model_files(tmp_path, model_file="nope.onnx")


def test_missing_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        ColBERT.from_pretrained(tmp_path / "nowhere")


def test_file_instead_of_directory(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path)
    with pytest.raises(ModelFilesError, match="pass the directory"):
        ColBERT.from_pretrained(tmp_path / "model.onnx")


def test_no_onnx_graph(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(ModelFilesError, match=r"no ONNX graph in .*looked for model.onnx"):
        ColBERT.from_pretrained(tmp_path)


def test_no_tokenizer(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path, write_tokenizer=False)
    with pytest.raises(ModelFilesError, match=r"no tokenizer\.json"):
        ColBERT.from_pretrained(tmp_path)


def test_corrupt_tokenizer_and_truncated_graph(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelFilesError, match="could not read the tokenizer"):
        ColBERT.from_pretrained(tmp_path)
    build_model_dir(tmp_path)
    data = (tmp_path / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="could not load"):
        ColBERT.from_pretrained(tmp_path)


def test_pooled_graph_is_refused(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path, output_rank=2)
    with pytest.raises(ModelOutputError, match=r"\[batch, sequence, dim\]"):
        ColBERT.from_pretrained(tmp_path)


def test_config_from_tokenizer_config_and_overrides(tmp_path: pathlib.Path) -> None:
    build_model_dir(tmp_path, max_position=64, model_max_length=48)
    model = ColBERT.from_pretrained(tmp_path)
    assert (model.config.max_length, model.config.document_length) == (48, 48)
    model = ColBERT.from_pretrained(tmp_path, document_length=20, attend_to_mask_tokens=True)
    assert model.config.document_length == 20 and model.config.attend_to_mask_tokens


def test_pylate_style_config_is_read(tmp_path: pathlib.Path) -> None:
    st = {
        "query_prefix": "[unused1] ",
        "document_prefix": "[unused0] ",
        "query_length": 12,
        "document_length": 30,
        "attend_to_expansion_tokens": True,
        "skiplist_words": ["!", "cat"],
    }
    build_model_dir(tmp_path, extra_files={"config_sentence_transformers.json": json.dumps(st)})
    cfg = ColBERT.from_pretrained(tmp_path).config
    assert (cfg.query_marker, cfg.document_marker) == ("[unused1]", "[unused0]")
    assert (cfg.query_length, cfg.document_length, cfg.attend_to_mask_tokens) == (12, 30, True)
    assert cfg.skiplist == ("!", "cat")


def test_registry() -> None:
    assert known_model(DEFAULT_MODEL).model_file == "vespa_colbert.onnx"
    assert known_model("colbert-ir/colbertv2.0").dim == 128
    jina = known_model("jinaai/jina-colbert-v2")
    assert jina.config["query_marker"] == 250002 and jina.config["attend_to_mask_tokens"]
    assert jina.additional_files == ("onnx/model.onnx_data",)


# -- the hub, offline, against a real cache layout -------------------------------------------


@pytest.fixture
def hub_cache(tmp_path: pathlib.Path) -> pathlib.Path:
    cache = tmp_path / "hf-cache"
    src = build_model_dir(tmp_path / "src", onnx_name="onnx/model.onnx", external_data=True)
    prefill_hf_cache(cache, "tiny-org/tiny-colbert", src, commit=COMMIT)
    return cache


def test_hub_id_resolves_offline_from_cache(hub_cache: pathlib.Path, hub_offline: None) -> None:
    model = ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache)
    assert model.files is not None
    assert model.files.onnx_path.as_posix().endswith(f"snapshots/{COMMIT}/onnx/model.onnx")
    assert model.name == "tiny-org/tiny-colbert"
    assert model.encode_documents(["the cat"])[0].shape == (5, 8)


def test_local_files_only_without_env(hub_cache: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(
        "tiny-org/tiny-colbert", cache_dir=hub_cache, local_files_only=True
    )
    assert model.dim == 8


def test_revision_is_pinned(
    hub_cache: pathlib.Path, tmp_path: pathlib.Path, hub_offline: None
) -> None:
    other = build_model_dir(tmp_path / "other", dim=4, seed=3)
    prefill_hf_cache(hub_cache, "tiny-org/tiny-colbert", other, commit=OTHER, ref="v2")
    pinned = ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache, revision=OTHER)
    assert pinned.dim == 4
    by_tag = ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache, revision="v2")
    assert by_tag.dim == 4
    assert ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache).dim == 8


def test_uncached_repo_offline_is_a_clear_error(tmp_path: pathlib.Path, hub_offline: None) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ColBERT.from_pretrained("nobody/not-cached", cache_dir=tmp_path)
    message = str(info.value)
    assert "'nobody/not-cached' is not in cache_dir=" in message
    assert "HF_HUB_OFFLINE is set" in message and "colbert-plugins download" in message


def test_uncached_revision_offline(hub_cache: pathlib.Path, hub_offline: None) -> None:
    with pytest.raises(ModelNotFoundError, match="at revision 'v9'"):
        ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache, revision="v9")


def test_hub_offline_env_in_a_fresh_process(hub_cache: pathlib.Path) -> None:
    """HF_HUB_OFFLINE set before anything is imported, as a user would."""
    code = (
        "import sys; from colbert_plugins import ColBERT; "
        "m = ColBERT.from_pretrained('tiny-org/tiny-colbert', cache_dir=sys.argv[1]); "
        "print(m.encode_queries(['cat'])[0].shape)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(hub_cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(32, 8)"


def test_hub_vectors_equal_local_vectors(
    hub_cache: pathlib.Path, tmp_path: pathlib.Path, hub_offline: None
) -> None:
    hub = ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache)
    local = ColBERT.from_pretrained(tmp_path / "src")
    np.testing.assert_array_equal(
        hub.encode_documents(["the cat"])[0], local.encode_documents(["the cat"])[0]
    )


# -- an unreachable hub fails fast --------------------------------------------------------------


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """The hub endpoint moved to a loopback port where nothing listens (refused at once), no
    proxy, HF_HUB_OFFLINE unset: what a machine without network sees, minus the DNS wait."""
    import socket

    from huggingface_hub import constants

    with socket.socket() as sock:  # a free port, closed again: nothing listens there
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    return endpoint


def test_unreachable_hub_fails_at_once_with_the_reason(
    unreachable_hub: str, tmp_path: pathlib.Path
) -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        ColBERT.from_pretrained("nobody/not-cached", cache_dir=tmp_path)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    assert "could not be reached" in message and "127.0.0.1" in message
    assert "colbert-plugins download" in message
    # huggingface_hub alone retries five times with back-off (about 25 s).
    assert elapsed < 10, elapsed


def test_unreachable_hub_uses_the_cache(unreachable_hub: str, hub_cache: pathlib.Path) -> None:
    model = ColBERT.from_pretrained("tiny-org/tiny-colbert", cache_dir=hub_cache)
    assert model.dim == 8 and model.name == "tiny-org/tiny-colbert"
