"""Reading a model's ColBERT settings: PyLate and NextPlaid layouts, which file wins, errors."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import string
from typing import Any

import numpy as np
import pytest
from tokenizers import AddedToken

from colbert_plugins import ColBERT
from colbert_plugins.errors import ModelFilesError, ModelLoadError
from colbert_plugins.hub import INT8_FILE as INT8
from colbert_plugins.hub import resolve_model_files
from colbert_plugins.registry import known_model
from colbert_plugins.settings import ModelSettings, resolve_settings
from colbert_plugins.tokenization import load_tokenizer
from tiny_model import VOCAB, build_model_dir, build_tokenizer, prefill_hf_cache

ST = "config_sentence_transformers.json"
ONNX_CONFIG = "onnx_config.json"
SBERT = "sentence_bert_config.json"
DOCS = ["the cat sat on the mat!", "paris is the capital of france.", "hello world"]


def model_dir(tmp_path: pathlib.Path, **files: dict[str, Any]) -> pathlib.Path:
    """The tiny model with JSON files added (keyword names: file names with . as __)."""
    extra = {name.replace("__", "."): json.dumps(value) for name, value in files.items()}
    return build_model_dir(tmp_path / "model", extra_files=extra)


def settings_of(directory: pathlib.Path, **overrides: Any) -> ModelSettings:
    files = resolve_model_files(directory)
    return resolve_settings(files, overrides, load_tokenizer(files.tokenizer_path))


PYLATE_ST = {
    "query_prefix": "[unused0]",
    "document_prefix": "[unused1]",
    "query_length": 12,
    "do_query_expansion": True,
    "attend_to_expansion_tokens": False,
    "skiplist_words": ["!", "."],
}


def test_pylate_config_follows_pylate(tmp_path: pathlib.Path) -> None:
    directory = model_dir(tmp_path, config_sentence_transformers__json=PYLATE_ST)
    settings = settings_of(directory)
    cfg = settings.config
    assert cfg.family == "pylate" and settings.source("family").startswith(ST)
    assert (cfg.query_length, cfg.document_length) == (12, 64)
    assert settings.source("query_length") == f"{ST}: query_length"
    # PyLate's default document_length (180) does not fit this 64-position encoder.
    assert settings.source("document_length") == "PyLate default (capped at max_length 64)"
    assert cfg.truncate_queries and cfg.query_expansion and not cfg.lowercase
    assert cfg.pad_token == cfg.mask_token == "[MASK]"  # PyLate pads with the mask token
    assert cfg.skiplist == ("!", ".")


def test_registry_keeps_fastembed_rules_unless_switched(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = model_dir(tmp_path, config_sentence_transformers__json=PYLATE_ST)
    shutil.copytree(source, tmp_path / "colbert-ir" / "colbertv2.0")
    monkeypatch.chdir(tmp_path)
    files = resolve_model_files("colbert-ir/colbertv2.0")
    assert files.known is not None  # a registry name: the directory is named like the repo
    settings = resolve_settings(files, {}, load_tokenizer(files.tokenizer_path))
    assert settings.config.family == "fastembed" and settings.config.query_length == 32
    assert any("registry model" in w for w in settings.warnings)
    switched = resolve_settings(files, {"family": "pylate"}, load_tokenizer(files.tokenizer_path))
    assert switched.config.family == "pylate" and switched.config.query_length == 12
    assert switched.source("family") == "argument"


def test_onnx_config_alone_is_obeyed_field_by_field(tmp_path: pathlib.Path) -> None:
    onnx_config = {
        "query_prefix": "[Q] ",
        "document_prefix": "[D] ",
        "query_prefix_id": 1,
        "document_prefix_id": 2,
        "query_length": 10,
        "document_length": 40,
        "do_query_expansion": False,
        "attend_to_expansion_tokens": True,
        "skiplist_words": ["!"],
        "embedding_dim": 8,
        "mask_token_id": VOCAB.index("[MASK]"),
        "pad_token_id": VOCAB.index("[MASK]"),
        "uses_token_type_ids": True,
        "do_lower_case": True,
    }
    settings = settings_of(model_dir(tmp_path, onnx_config__json=onnx_config))
    cfg = settings.config
    assert cfg.family == "pylate" and settings.source("family") == ONNX_CONFIG
    assert (cfg.query_marker, cfg.document_marker) == (1, 2)  # the ids, as written
    assert settings.source("query_marker") == f"{ONNX_CONFIG}: query_prefix_id"
    assert (cfg.query_length, cfg.document_length, cfg.query_expansion) == (10, 40, False)
    assert cfg.attend_to_mask_tokens is False  # no expansion: nothing to attend to
    assert cfg.lowercase and settings.source("lowercase") == f"{ONNX_CONFIG}: do_lower_case"
    assert cfg.embedding_dim == 8 and settings.uses_token_type_ids is True
    assert cfg.mask_token == VOCAB.index("[MASK]") == cfg.pad_token


def test_pylate_own_config_wins_over_onnx_config(tmp_path: pathlib.Path) -> None:
    directory = model_dir(
        tmp_path,
        config_sentence_transformers__json=PYLATE_ST,
        onnx_config__json={"query_length": 20, "do_query_expansion": False},
        sentence_bert_config__json={"max_seq_length": 63, "do_lower_case": True},
    )
    settings = settings_of(directory)
    assert settings.config.query_length == 12 and settings.config.query_expansion
    assert settings.config.lowercase and settings.source("lowercase") == f"{SBERT}: do_lower_case"


def test_exporter_written_config_is_obeyed_with_a_warning(tmp_path: pathlib.Path) -> None:
    written = {**PYLATE_ST, "do_query_expansion": False, "uses_token_type_ids": True}
    written |= {"query_prefix_id": 1, "document_prefix_id": 2, "mask_token_id": 6}
    settings = settings_of(model_dir(tmp_path, config_sentence_transformers__json=written))
    assert settings.config.family == "pylate" and not settings.config.query_expansion
    assert any("pylate-onnx-export 0.1.0" in w for w in settings.warnings)


def test_overrides_win(tmp_path: pathlib.Path) -> None:
    directory = model_dir(tmp_path, config_sentence_transformers__json=PYLATE_ST)
    settings = settings_of(directory, query_length=16, query_expansion=False)
    assert settings.config.query_length == 16 and not settings.config.query_expansion
    assert settings.source("query_expansion") == "argument"


@pytest.mark.parametrize(
    ("filename", "values", "message"),
    [
        (ST, {"query_length": "32"}, f"{ST}: query_length must be an integer, got '32'"),
        (ST, {"do_query_expansion": "yes"}, f"{ST}: do_query_expansion must be true or false"),
        (ST, {"skiplist_words": "abc"}, f"{ST}: skiplist_words must be a list of strings"),
        (ST, {"skiplist_words": ["!", 3]}, f"{ST}: skiplist_words must be a list of strings"),
        (ST, {"query_prefix": 7}, f"{ST}: query_prefix must be a string"),
        (ST, {"query_length": 8, "prompts": ["q"]}, f"{ST}: prompts must be an object"),
        (
            ST,
            {"query_length": 8, "prompts": {"q": "x"}, "default_prompt_name": "d"},
            f"{ST}: default_prompt_name 'd' is not one of the prompts",
        ),
        (ONNX_CONFIG, {"embedding_dim": "8"}, f"{ONNX_CONFIG}: embedding_dim must be an integer"),
        (ONNX_CONFIG, {"query_prefix_id": 1.0}, f"{ONNX_CONFIG}: query_prefix_id must be a token"),
        (SBERT, {"do_lower_case": 1}, f"{SBERT}: do_lower_case must be true or false"),
    ],
)
def test_a_field_of_the_wrong_type_names_file_and_field(
    tmp_path: pathlib.Path, filename: str, values: dict[str, Any], message: str
) -> None:
    files = {filename.replace(".", "__"): values}
    if filename == SBERT:
        files[ST.replace(".", "__")] = PYLATE_ST
    with pytest.raises(ModelFilesError, match=message.replace("[", r"\[")):
        ColBERT.from_pretrained(model_dir(tmp_path, **files))


def test_embedding_dim_is_checked_against_the_graph(tmp_path: pathlib.Path) -> None:
    declared = {"embedding_dim": 128, "query_prefix_id": 1, "document_prefix_id": 2}
    directory = model_dir(tmp_path, onnx_config__json=declared)
    with pytest.raises(ModelLoadError, match=f"{ONNX_CONFIG}: embedding_dim says .* 128 .* 8"):
        ColBERT.from_pretrained(directory)
    assert ColBERT.from_pretrained(directory, embedding_dim=None).dim == 8


def test_prefix_text_with_its_space_is_an_added_token(tmp_path: pathlib.Path) -> None:
    directory = model_dir(
        tmp_path, config_sentence_transformers__json={"query_prefix": "[Q] ", "query_length": 8}
    )
    tokenizer = build_tokenizer()
    tokenizer.add_tokens([AddedToken("[Q] ", normalized=False)])
    tokenizer.add_tokens([AddedToken("[D] ", normalized=False)])
    tokenizer.save(str(directory / "tokenizer.json"))
    settings = settings_of(directory)
    assert settings.config.query_marker == "[Q] "  # exact: the trailing space is the token's
    model = ColBERT.from_pretrained(directory)
    assert model.tokenizer.ids.query_marker == len(VOCAB)  # the added token's own id
    assert model.tokenizer.ids.document_marker == len(VOCAB) + 1


def test_skiplist_maps_words_to_their_own_ids_in_the_pylate_family(
    tmp_path: pathlib.Path,
) -> None:
    st = {**PYLATE_ST, "skiplist_words": ["cat", "!", "qqq"]}
    pylate = ColBERT.from_pretrained(model_dir(tmp_path, config_sentence_transformers__json=st))
    unk = VOCAB.index("[UNK]")
    # "qqq" is no token: PyLate's convert_tokens_to_ids gives the unknown token's id.
    assert pylate.tokenizer.ids.skiplist == {VOCAB.index("cat"), VOCAB.index("!"), unk}
    fastembed = ColBERT.from_pretrained(
        tmp_path / "model", family="fastembed", skiplist=["cat", "!", "qqq"]
    )
    # fastembed's rule: the first piece of tokenizing each word ("q" for "qqq").
    assert fastembed.tokenizer.ids.skiplist == {
        VOCAB.index("cat"),
        VOCAB.index("!"),
        VOCAB.index("q"),
    }
    (kept,) = pylate.encode_documents(["the cat sat!"])
    assert kept.shape[0] == 5  # [CLS] [D] the sat [SEP]


def test_without_expansion_queries_keep_only_their_tokens(tmp_path: pathlib.Path) -> None:
    st = {**PYLATE_ST, "do_query_expansion": False}
    model = ColBERT.from_pretrained(model_dir(tmp_path, config_sentence_transformers__json=st))
    short, long_one = model.encode_queries(["cat", "the quick brown fox " * 10])
    assert short.shape[0] == 4  # [CLS] [Q] cat [SEP]: no [MASK] expansion
    assert long_one.shape[0] == 12  # truncated at query_length, as PyLate does
    tokens = model.tokenizer.tokenize_queries(["cat", "the quick fox"])
    assert tokens.lengths == [4, 6]
    assert tokens.attention_mask[0].tolist() == [1, 1, 1, 1, 0, 0]
    with_expansion = ColBERT.from_pretrained(tmp_path / "model", query_expansion=True)
    assert with_expansion.encode_queries(["cat"])[0].shape[0] == 12


def test_texts_are_stripped_and_lowercased_as_configured(tmp_path: pathlib.Path) -> None:
    directory = model_dir(
        tmp_path,
        config_sentence_transformers__json={
            **PYLATE_ST,
            "prompts": {"query": "query: ", "document": "document: "},
            "default_prompt_name": "query",
        },
        sentence_bert_config__json={"do_lower_case": True},
    )
    model = ColBERT.from_pretrained(directory)
    assert model.tokenizer.prepare_queries(["  The Cat  "]) == ["query:   the cat"]
    assert model.tokenizer.prepare_documents([" Paris "]) == ["query:  paris"]
    assert model.settings is not None and model.settings.prompts["document"] == "document: "
    plain = ColBERT.from_pretrained(directory, family="fastembed", query_prompt="")
    assert plain.tokenizer.prepare_queries(["  The Cat  "]) == ["  The Cat  "]


def test_explanations_point_into_the_callers_text_despite_the_prompt(
    tmp_path: pathlib.Path,
) -> None:
    directory = model_dir(tmp_path, config_sentence_transformers__json=PYLATE_ST)
    model = ColBERT.from_pretrained(directory, document_prompt="text: ", cache=False)
    document = "  the cat sat"
    explanation = model.explain("cat the sat", document)
    spanned = [m for m in explanation.matches_all if m.start is not None]
    assert spanned
    for match in spanned:
        assert document[match.start : match.end] == match.document_token


def test_a_model_without_markers(tmp_path: pathlib.Path) -> None:
    st = {**PYLATE_ST, "query_prefix": "", "document_prefix": ""}
    model = ColBERT.from_pretrained(model_dir(tmp_path, config_sentence_transformers__json=st))
    assert model.tokenizer.ids.query_marker is None and model.config.query_marker is None
    (row,) = model.tokenizer.tokenize_documents(["the cat"])
    assert row.tolist() == [VOCAB.index(t) for t in ("[CLS]", "the", "cat", "[SEP]")]
    tokens = model.tokenizer.tokenize_queries(["cat " * 40])
    assert tokens.input_ids.shape == (1, 12)  # query_length, no room kept for a marker
    assert model.encode_documents(["the cat " * 50])[0].shape[0] == 64  # document_length
    explanation = model.explain("cat", "the cat")
    assert "[D]" not in {m.document_token for m in explanation.matches_all}
    assert "[Q]" not in {m.query_token for m in explanation.matches_all}
    assert len(explanation.matches_all) == model.encode_queries(["cat"])[0].shape[0]


def test_a_shipped_int8_graph_is_used(tmp_path: pathlib.Path) -> None:
    directory = model_dir(tmp_path)
    int8 = build_model_dir(tmp_path / "other", seed=5) / "model.onnx"
    shutil.copy(int8, directory / "model_int8.onnx")
    model = ColBERT.from_pretrained(directory, quantize="int8", cache=False)
    assert model.encoder.path == directory / "model_int8.onnx"
    plain = ColBERT.from_pretrained(directory, cache=False)
    assert plain.encoder.path != model.encoder.path
    a, b = model.encode_documents(DOCS[:1])[0], plain.encode_documents(DOCS[:1])[0]
    assert a.shape == b.shape and not np.allclose(a, b)


def test_pylate_default_skiplist_is_punctuation(tmp_path: pathlib.Path) -> None:
    directory = model_dir(tmp_path, config_sentence_transformers__json={"query_length": 8})
    settings = settings_of(directory)
    assert settings.config.skiplist == tuple(string.punctuation)
    assert settings.source("skiplist") == "PyLate default"
    assert settings.config.query_marker == "[Q] " and settings.source("query_marker") == (
        "PyLate default"
    )


NEXTPLAID_CONFIG = {
    "model_type": "ColBERT",
    "uses_token_type_ids": True,
    "query_prefix": "[unused0]",
    "document_prefix": "[unused1]",
    "query_length": 16,
    "document_length": 48,
    "do_query_expansion": True,
    "attend_to_expansion_tokens": False,
    "skiplist_words": list(string.punctuation),
    "embedding_dim": 8,
    "mask_token_id": VOCAB.index("[MASK]"),
    "pad_token_id": VOCAB.index("[MASK]"),
    "query_prefix_id": 1,
    "document_prefix_id": 2,
    "do_lower_case": False,
}


def test_a_nextplaid_repository_from_the_hub_cache(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NextPlaid's layout (model.onnx, model_int8.onnx, tokenizer.json, onnx_config.json) under
    a registry name, offline: PyLate's rules from onnx_config.json, the shipped int8 graph."""
    source = build_model_dir(
        tmp_path / "src", extra_files={ONNX_CONFIG: json.dumps(NEXTPLAID_CONFIG)}
    )
    for name in ("config.json", "tokenizer_config.json", "special_tokens_map.json"):
        (source / name).unlink()  # NextPlaid's repositories carry only the four files
    shutil.copy(build_model_dir(tmp_path / "int8", seed=3) / "model.onnx", source / INT8)
    cache = tmp_path / "hub"
    prefill_hf_cache(cache, "lightonai/LateOn-Code-edge", source)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ColBERT.from_pretrained("lightonai/LateOn-Code-edge", cache_dir=cache, cache=False)
    assert model.config.family == "pylate" and model.settings is not None
    assert model.settings.source("family") == "registry"
    assert (model.config.query_length, model.config.document_length) == (16, 48)
    assert model.encode_queries(["cat"])[0].shape == (16, 8)
    assert model.encoder.path.name == "model.onnx"
    int8 = ColBERT.from_pretrained(
        "lightonai/LateOn-Code-edge", cache_dir=cache, cache=False, quantize="int8"
    )
    assert int8.encoder.path.name == INT8 and int8.files is not None
    assert int8.files.int8_path == int8.encoder.path


def test_a_registry_dimension_is_checked(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(model_dir(tmp_path), tmp_path / "colbert-ir" / "colbertv2.0")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=r"registry \(model card\) says .* 128 .* 8"):
        ColBERT.from_pretrained("colbert-ir/colbertv2.0")


def test_registry_families() -> None:
    assert known_model("lightonai/GTE-ModernColBERT-v1").family == "pylate"
    assert known_model("lightonai/LateOn-Code-edge").dim is None  # not stated: read at load
    assert known_model("colbert-ir/colbertv2.0").family == "fastembed"


def test_info_warns_when_the_graph_contradicts_the_config(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from colbert_plugins.cli import main

    directory = model_dir(
        tmp_path, onnx_config__json={**NEXTPLAID_CONFIG, "uses_token_type_ids": False}
    )
    assert main(["info", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "family           pylate" in out
    assert "warning: the config says uses_token_type_ids=false but the graph declares" in out
    assert re.search(r"query_length +16 +onnx_config.json: query_length", out)
