"""ColBERTConfig validation and overrides."""

from __future__ import annotations

import dataclasses

import pytest

from colbert_plugins import ColBERTConfig
from colbert_plugins.errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError


def test_defaults_follow_colbert() -> None:
    cfg = ColBERTConfig()
    assert (cfg.query_length, cfg.document_length, cfg.attend_to_mask_tokens) == (32, 512, False)
    assert (cfg.query_marker, cfg.document_marker, cfg.mask_token) == (1, 2, "[MASK]")
    assert "," in cfg.skiplist and len(cfg.skiplist) == 32


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ColBERTConfig().query_length = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"query_length": 0}, InvalidArgumentError, "query_length must be an integer >= 3"),
        ({"document_length": 2}, InvalidArgumentError, "document_length must be"),
        ({"document_length": 600}, InvalidArgumentError, "exceeds the model's max_length=512"),
        ({"query_length": 2.5}, InvalidArgumentError, "query_length"),
        ({"query_marker": 1.5}, InvalidArgumentTypeError, "query_marker must be a token id"),
        ({"mask_token": None}, InvalidArgumentTypeError, "mask_token must be a token id"),
        ({"family": "stanford"}, InvalidArgumentError, "family must be one of"),
        ({"query_expansion": 1}, InvalidArgumentTypeError, "query_expansion must be True"),
        ({"query_prompt": None}, InvalidArgumentTypeError, "query_prompt must be a string"),
        ({"embedding_dim": 0}, InvalidArgumentError, "embedding_dim must be None or"),
        ({"query_marker": -1}, InvalidArgumentError, "non-negative"),
        ({"normalize_scores": "yes"}, InvalidArgumentTypeError, "normalize_scores must be"),
        ({"skiplist": "abc"}, InvalidArgumentTypeError, "skiplist must be a sequence"),
        ({"bogus": 1}, InvalidArgumentTypeError, "unknown ColBERTConfig field"),
    ],
)
def test_invalid_values_name_the_field(changes: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        ColBERTConfig().replace(**changes)
    assert isinstance(info.value, ColBERTError)


def test_round_trip_dict() -> None:
    cfg = ColBERTConfig(query_length=16, skiplist=("a", "b"), normalize_scores=True)
    assert ColBERTConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.skiplist == ("a", "b")


def test_family_sets_query_truncation_unless_given() -> None:
    assert ColBERTConfig().truncate_queries is False
    pylate = ColBERTConfig(family="pylate")
    assert pylate.truncate_queries is True
    assert pylate.replace(family="fastembed").truncate_queries is False
    assert ColBERTConfig(family="pylate", truncate_queries=False).truncate_queries is False


def test_no_expansion_means_no_attention_to_expansion_tokens() -> None:
    cfg = ColBERTConfig(attend_to_mask_tokens=True, query_expansion=False)
    assert cfg.attend_to_mask_tokens is False
    assert ColBERTConfig(attend_to_mask_tokens=True).attend_to_mask_tokens is True


def test_markers_may_be_absent() -> None:
    cfg = ColBERTConfig(query_marker=None, document_marker=None)
    assert (cfg.query_marker, cfg.document_marker) == (None, None)
    assert ColBERTConfig.from_dict(cfg.to_dict()) == cfg
