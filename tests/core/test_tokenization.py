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


# -- long documents are tokenized from a prefix, with the same result -----------------------

_PIECES = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "paris",
    "hello",
    ",",
    ".",
    "!",
    " ",
    "  ",
    "\n",
    "\t",
    "\x1c",
    "\u200b",
    "\u00a0",
    "\u3000",
    "日本語",
    "e\u0301",
    "supercalifragilistic" * 8,
    "",
]


def _whole_text_ids(tok: ColBERTTokenizer, texts: list[str]) -> list[list[int]]:
    """What tokenizing the whole of each text gives (the path the prefix must match)."""
    return [
        tok._with_marker(e.ids, tok.ids.document_marker).tolist()
        for e in tok._document.encode_batch(texts)
    ]


def test_long_document_prefix_gives_the_whole_texts_tokens() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    tok = make(document_length=12)
    cut = 20 * 11

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(st.lists(st.sampled_from(_PIECES), min_size=0, max_size=400))
    def check(pieces: list[str]) -> None:
        text = "".join(pieces)
        ids = [row.tolist() for row in tok.tokenize_documents([text, "cat " * 100 + text])]
        assert ids == _whole_text_ids(tok, [text, "cat " * 100 + text])
        (enc,) = tok.document_encodings([text])
        (whole,) = tok._document.encode_batch([text])
        assert enc.offsets == whole.offsets

    check()
    # Cases the prefix cannot serve, redone on the whole text: no space at all, a giant word
    # across the cut, control characters the normalizer drops between words.
    for text in ["x" * (3 * cut), "cat " + "y" * (3 * cut), ("cat\x1c" * cut), "日本語" * cut]:
        assert [r.tolist() for r in tok.tokenize_documents([text])] == _whole_text_ids(tok, [text])


def test_long_document_is_not_tokenized_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = make(document_length=12)
    seen: list[int] = []
    real = tok._document.encode_batch

    class Spy:
        def encode_batch(self, texts: list[str]) -> list:  # type: ignore[type-arg]
            seen.extend(len(t) for t in texts)
            return real(texts)

    monkeypatch.setattr(tok, "_document", Spy())
    text = "the cat sat on the mat. " * 10_000
    (ids,) = tok.tokenize_documents([text])
    assert len(ids) == 12 and max(seen) <= 20 * 11
