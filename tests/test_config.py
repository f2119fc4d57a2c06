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
        ({"query_marker": None}, InvalidArgumentTypeError, "query_marker must be a token id"),
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
