"""Token ids exactly as ColBERT wants them: markers, [MASK] augmentation, truncation, skiplist."""

from __future__ import annotations

import string

import numpy as np
import pytest

from colbert_plugins import ColBERTConfig
from colbert_plugins.errors import ModelLoadError
from colbert_plugins.tokenization import ColBERTTokenizer
from tiny_model import VOCAB, build_tokenizer

CLS, SEP, PAD, MASK, Q, D = (
    VOCAB.index(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[unused0]", "[unused1]")
)


def make(**overrides: object) -> ColBERTTokenizer:
    return ColBERTTokenizer(build_tokenizer(), ColBERTConfig(max_length=64).replace(**overrides))


def test_query_marker_after_cls_and_mask_padding() -> None:
    tok = make(query_length=10)
    out = tok.tokenize_queries(["the cat sat"])
    cat, sat, the = VOCAB.index("cat"), VOCAB.index("sat"), VOCAB.index("the")
    assert out.input_ids.tolist() == [[CLS, Q, the, cat, sat, SEP, MASK, MASK, MASK, MASK]]
    assert out.attention_mask.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0, 0, 0]]
    assert out.lengths == [10]


def test_attend_to_mask_tokens_sets_attention_one() -> None:
    out = make(query_length=8, attend_to_mask_tokens=True).tokenize_queries(["cat"])
    assert out.input_ids[0].tolist() == [CLS, Q, VOCAB.index("cat"), SEP, MASK, MASK, MASK, MASK]
    assert out.attention_mask[0].tolist() == [1] * 8


def test_long_query_kept_by_default_and_cut_when_truncating() -> None:
    text = " ".join(["cat"] * 12)
    kept = make(query_length=8).tokenize_queries([text])
    assert kept.lengths == [15]  # CLS Q 12 tokens SEP: not cut, no [MASK]
    assert MASK not in kept.input_ids[0].tolist()
    cut = make(query_length=8, truncate_queries=True).tokenize_queries([text])
    assert cut.input_ids[0].tolist() == [CLS, Q] + [VOCAB.index("cat")] * 5 + [SEP]


def test_query_batch_padding_is_not_mask_augmentation() -> None:
    """A short query next to a long one keeps exactly query_length vectors."""
    out = make(query_length=6).tokenize_queries(["cat", " ".join(["dog"] * 10)])
    assert out.lengths == [6, 13]
    row = out.input_ids[0].tolist()
    assert row[:6] == [CLS, Q, VOCAB.index("cat"), SEP, MASK, MASK]
    assert row[6:] == [PAD] * 7
    assert out.attention_mask[0, 6:].tolist() == [0] * 7


def test_document_marker_and_truncation() -> None:
    tok = make(document_length=6)
    ids = tok.tokenize_documents(["the cat sat on the mat", "cat"])
    the, cat, sat = (VOCAB.index(w) for w in ("the", "cat", "sat"))
    assert ids[0].tolist() == [CLS, D, the, cat, sat, SEP]
    assert ids[1].tolist() == [CLS, D, cat, SEP]


def test_empty_document_keeps_cls_marker_sep() -> None:
    assert make().tokenize_documents([""])[0].tolist() == [CLS, D, SEP]


def test_skiplist_is_first_id_of_each_punctuation_char() -> None:
    tok = make()
    assert tok.ids.skiplist == frozenset(VOCAB.index(c) for c in string.punctuation)
    ids = np.array([[CLS, D, VOCAB.index("cat"), VOCAB.index(","), SEP, PAD]])
    keep = tok.document_keep_mask(ids, np.array([[1, 1, 1, 1, 1, 0]]))
    assert keep.tolist() == [[True, True, True, False, True, False]]


def test_custom_skiplist_and_markers_by_token_string() -> None:
    tok = make(skiplist=("cat",), query_marker="[unused1]", document_marker="[unused0]")
    assert tok.ids.skiplist == frozenset({VOCAB.index("cat")})
    assert tok.ids.query_marker == D and tok.ids.document_marker == Q


def test_unknown_marker_token_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match=r"query_marker '\[Q\]' is not in the tokenizer"):
        make(query_marker="[Q]")
    with pytest.raises(ModelLoadError, match="outside the tokenizer's vocabulary"):
        make(document_marker=10_000)


def test_tokenizer_is_not_mutated_by_calls() -> None:
    tok = make(query_length=8, document_length=5)
    before = tok.tokenize_documents(["the cat sat on the mat"])[0].tolist()
    tok.tokenize_queries([" ".join(["cat"] * 30)])
    assert tok.tokenize_documents(["the cat sat on the mat"])[0].tolist() == before
