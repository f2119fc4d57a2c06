"""Tests for the tiny ONNX ColBERT model / tokenizer / HF cache helpers in ``tiny_model``."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache

from tiny_model import VOCAB, build_model_dir, build_tokenizer, prefill_hf_cache

REPO = "tiny-org/tiny-colbert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _session(path: pathlib.Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _encode(texts: list[str], pad_to: int = 0) -> dict[str, np.ndarray]:
    """Right-pad the encodings of ``texts`` to a common length (at least ``pad_to``)."""
    encs = [build_tokenizer().encode(t).ids for t in texts]
    seq = max(pad_to, *(len(e) for e in encs))
    ids = np.zeros((len(encs), seq), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def test_vocab_and_tokenizer() -> None:
    assert len(VOCAB) == len(set(VOCAB))
    assert VOCAB[:7] == ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ids = {w: VOCAB.index(w) for w in ["!", ",", "the", "a", "cat", "paris", "b", "##z", "##9"]}
    assert ids == {
        "!": 7,
        ",": 18,
        "the": 39,
        "a": 40,
        "cat": 76,
        "paris": 67,
        "b": 99,
        "##z": 149,
        "##9": 169,
    }
    tok = build_tokenizer()
    enc = tok.encode("The cat, in Paris! Cats zq [MASK]")
    assert enc.tokens == [
        "[CLS]",
        "the",
        "cat",
        ",",
        "in",
        "paris",
        "!",
        "cat",
        "##s",
        "z",
        "##q",
        "[MASK]",
        "[SEP]",
    ]
    assert enc.ids[:4] == [4, 39, 76, 18] and enc.ids[-2:] == [6, 5]
    assert 3 not in tok.encode("Éclairs 1984 xyzzy").ids
    pair = tok.encode("cat", "dog")
    assert pair.ids == [4, 76, 5, VOCAB.index("dog"), 5]
    assert pair.type_ids == [0, 0, 0, 1, 1]
    assert tok.padding is None and tok.truncation is None


def test_model_dir_runs_and_is_deterministic(tmp_path: pathlib.Path) -> None:
    d = build_model_dir(tmp_path / "m")
    names = {p.name for p in d.iterdir()}
    assert {
        "model.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    } <= names
    onnx.checker.check_model(str(d / "model.onnx"))
    assert json.loads((d / "config.json").read_text())["max_position_embeddings"] == 64
    assert json.loads((d / "tokenizer_config.json").read_text())["model_max_length"] == 64
    sess = _session(d / "model.onnx")
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    out = sess.run(None, _encode(["the cat sat", "paris is the capital of france"]))[0]
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    again = build_model_dir(tmp_path / "m2")
    assert (d / "model.onnx").read_bytes() == (again / "model.onnx").read_bytes()


def test_padding_invariance_and_mask_effect(tmp_path: pathlib.Path) -> None:
    sess = _session(build_model_dir(tmp_path) / "model.onnx")
    alone = sess.run(None, _encode(["the cat sat on the mat"]))[0][0]
    n = alone.shape[0]
    batched = sess.run(
        None, _encode(["what is the capital city of france", "the cat sat on the mat"], pad_to=40)
    )[0][1]
    np.testing.assert_allclose(batched[:n], alone, atol=1e-5)
    feeds = _encode(["the cat sat on the mat"])
    feeds["attention_mask"][0, 2] = 0
    masked = sess.run(None, feeds)[0][0]
    assert np.abs(masked[1] - alone[1]).max() > 1e-3


@pytest.mark.parametrize("normalize", [False, True])
def test_model_variants(tmp_path: pathlib.Path, normalize: bool) -> None:
    d = build_model_dir(
        tmp_path,
        dim=4,
        with_token_type_ids=False,
        onnx_name="onnx/model.onnx",
        external_data=True,
        normalize_output=normalize,
        write_tokenizer=False,
        model_max_length=32,
        tokenizer_config={"do_lower_case": False},
        extra_files={"config_sentence_transformers.json": "{}"},
    )
    assert (d / "onnx" / "model.onnx_data").is_file() and not (d / "tokenizer.json").exists()
    assert (d / "config_sentence_transformers.json").read_text() == "{}"
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    assert cfg["model_max_length"] == 32 and cfg["do_lower_case"] is False
    onnx.checker.check_model(str(d / "onnx" / "model.onnx"))
    sess = _session(d / "onnx" / "model.onnx")
    assert [i.name for i in sess.get_inputs()] == ["input_ids", "attention_mask"]
    feeds = _encode(["the quick brown fox"])
    del feeds["token_type_ids"]
    out = sess.run(None, feeds)[0]
    assert out.shape == (1, 6, 4)
    assert np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5) == normalize
    bad = _session(build_model_dir(tmp_path / "bad", output_rank=2) / "model.onnx")
    assert bad.run(None, _encode(["the quick brown fox"]))[0].shape == (1, 8)


def test_prefill_hf_cache(tmp_path: pathlib.Path) -> None:
    src = build_model_dir(tmp_path / "src", onnx_name="onnx/model.onnx", external_data=True)
    cache = tmp_path / "cache"
    snap = prefill_hf_cache(cache, REPO, src)
    assert snap == cache / "models--tiny-org--tiny-colbert" / "snapshots" / COMMIT
    assert (cache / "models--tiny-org--tiny-colbert" / "refs" / "main").read_text() == COMMIT
    link = snap / "onnx" / "model.onnx"
    assert os.readlink(link).startswith("../../../blobs/")
    got = hf_hub_download(REPO, "tokenizer.json", cache_dir=cache, local_files_only=True)
    assert got == str(snap / "tokenizer.json")
    assert try_to_load_from_cache(REPO, "onnx/model.onnx", cache_dir=cache) == str(link)
    assert try_to_load_from_cache(REPO, "missing.json", cache_dir=cache) is None
    assert snapshot_download(REPO, cache_dir=cache, local_files_only=True) == str(snap)

    script = f"""
import os
from huggingface_hub import hf_hub_download, snapshot_download, constants
assert constants.HF_HUB_OFFLINE
c = {str(cache)!r}
print(hf_hub_download({REPO!r}, "onnx/model.onnx_data", cache_dir=c))
print(hf_hub_download({REPO!r}, "config.json", cache_dir=c, revision={COMMIT!r}))
print(hf_hub_download({REPO!r}, "tokenizer.json"))
print(snapshot_download({REPO!r}, cache_dir=c, allow_patterns=["*.json", "onnx/*"]))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    res = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert res.stdout.split() == [
        str(snap / "onnx" / "model.onnx_data"),
        str(snap / "config.json"),
        str(snap / "tokenizer.json"),
        str(snap),
    ]
