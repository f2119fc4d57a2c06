"""The ColBERT facade on the tiny model: encoding semantics, scoring, reranking, bad input."""

from __future__ import annotations

import copy
import pathlib

import numpy as np
import pytest

from colbert_plugins import ColBERT, RerankResult
from colbert_plugins.errors import (
    ColBERTError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ModelOutputError,
)
from colbert_plugins.scoring import maxsim
from tiny_model import build_model_dir

DOCS = [
    "the cat sat on the mat.",
    "paris is the capital of france!",
    "",
    "the quick brown fox jumps over the lazy dog " * 3,
    "london, england: the river thames",
]


def assert_unit_rows(arrays: list[np.ndarray]) -> None:
    for a in arrays:
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_query_vectors_shape_and_norm(tiny_model: ColBERT) -> None:
    out = tiny_model.encode_queries(["capital of france", "cat", "what is the capital of france"])
    # query_length=8 in the fixture; the longest query has 9 tokens and keeps them all
    assert [a.shape for a in out] == [(8, 8), (8, 8), (9, 8)]
    assert_unit_rows(out)
    assert tiny_model.dim == 8


def test_mask_vectors_are_kept_and_differ_from_padding(tiny_model: ColBERT) -> None:
    (vectors,) = tiny_model.encode_queries(["cat"])  # CLS Q cat SEP + 4 [MASK]
    assert vectors.shape[0] == 8
    assert not np.allclose(vectors[4], vectors[0])


def test_documents_drop_punctuation_and_padding(tiny_model: ColBERT) -> None:
    out = tiny_model.encode_documents(["the cat, sat.", "cat", ""])
    # CLS D the cat , sat . SEP -> ',' and '.' dropped
    assert [a.shape[0] for a in out] == [6, 4, 3]
    assert_unit_rows(out)


def test_documents_truncated_to_document_length(tiny_model_dir: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(tiny_model_dir, document_length=6)
    (vectors,) = model.encode_documents(["the cat sat on the mat in paris"])
    assert vectors.shape == (6, 8)


def test_batch_size_invariance(tiny_model: ColBERT) -> None:
    queries = ["cat", "what is the capital of france", "the river seine in paris " * 3]
    for texts, encode in (
        (DOCS, tiny_model.encode_documents),
        (queries, tiny_model.encode_queries),
    ):
        one = encode(texts, batch_size=1)
        many = encode(texts, batch_size=64)
        for a, b in zip(one, many, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_token_budget_batches_give_same_vectors(
    tiny_model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = ColBERT.from_pretrained(tiny_model_dir, max_batch_tokens=16, query_length=4)
    big = ColBERT.from_pretrained(tiny_model_dir, query_length=4)
    for a, b in zip(small.encode_documents(DOCS), big.encode_documents(DOCS), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    queries = ["cat", "the river seine in paris " * 3, "capital of france", "sat"]
    shapes: list[tuple[int, ...]] = []
    run = small._run
    monkeypatch.setattr(small, "_run", lambda ids, mask: shapes.append(ids.shape) or run(ids, mask))
    for a, b in zip(small.encode_queries(queries), big.encode_queries(queries), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The long query goes alone; the short ones share batches within the 16-token budget.
    assert all(rows == 1 or rows * width <= 16 for rows, width in shapes), shapes
    assert sum(rows for rows, _ in shapes) == len(queries) and len(shapes) < len(queries)


def test_score_is_maxsim_of_vectors(tiny_model: ColBERT) -> None:
    query = "the capital of france"
    scores = tiny_model.score(query, DOCS)
    q = tiny_model.encode_queries([query])[0]
    expected = [maxsim(q, d) for d in tiny_model.encode_documents(DOCS)]
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_normalize_scores_divides_by_query_vectors(tiny_model_dir: pathlib.Path) -> None:
    raw = ColBERT.from_pretrained(tiny_model_dir, query_length=8)
    norm = ColBERT.from_pretrained(tiny_model_dir, query_length=8, normalize_scores=True)
    np.testing.assert_allclose(norm.score("cat", DOCS), raw.score("cat", DOCS) / 8, atol=1e-6)
    assert np.all(np.abs(norm.score("cat", DOCS)) <= 1.0 + 1e-6)


def test_rerank_orders_best_first_with_results(tiny_model: ColBERT) -> None:
    results = tiny_model.rerank("paris france", DOCS)
    scores = tiny_model.score("paris france", DOCS)
    assert sorted(r.index for r in results) == list(range(len(DOCS)))
    assert [r.score for r in results] == sorted(scores.tolist(), reverse=True)
    assert all(isinstance(r, RerankResult) and r.document == DOCS[r.index] for r in results)
    assert len(tiny_model.rerank("paris france", DOCS, top_n=2)) == 2
    assert len(tiny_model.rerank("paris france", DOCS, top_n=99)) == len(DOCS)


def test_rerank_ties_keep_input_order(tiny_model: ColBERT) -> None:
    docs = ["the cat", "a dog", "the cat", "the cat"]
    results = tiny_model.rerank("cat", docs)
    tied = [r.index for r in results if r.document == "the cat"]
    assert tied == [0, 2, 3]


def test_empty_document_list(tiny_model: ColBERT) -> None:
    assert tiny_model.rerank("cat", []) == []
    assert tiny_model.score("cat", []).shape == (0,)
    assert tiny_model.encode_documents([]) == []
    assert tiny_model.encode_queries([]) == []


def test_odd_texts_work(tiny_model: ColBERT) -> None:
    texts = ["", "   ", "emoji 😀🎉 text", "control\x00\x07\u200b chars", "x" * 100_000, "é" * 50]
    out = tiny_model.encode_documents(texts)
    assert_unit_rows(out)
    assert all(np.isfinite(a).all() for a in out)
    assert out[4].shape[0] <= tiny_model.config.document_length
    assert np.isfinite(tiny_model.score("😀", texts)).all()


def test_callers_lists_are_not_modified(tiny_model: ColBERT) -> None:
    docs = list(DOCS)
    before = copy.deepcopy(docs)
    tiny_model.rerank("cat", docs, top_n=1)
    tiny_model.encode_documents(docs)
    assert docs == before


def test_accepts_tuples_and_generators(tiny_model: ColBERT) -> None:
    a = tiny_model.encode_documents(tuple(DOCS))
    b = tiny_model.encode_documents(d for d in DOCS)
    assert len(a) == len(b) == len(DOCS)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m.encode_documents("a single string"),
            InvalidArgumentTypeError,
            "not a single str",
        ),
        (
            lambda m: m.encode_documents(["ok", None]),
            InvalidArgumentTypeError,
            r"texts\[1\] must be a str",
        ),
        (lambda m: m.encode_queries([3]), InvalidArgumentTypeError, r"texts\[0\]"),
        (lambda m: m.encode_documents(None), InvalidArgumentTypeError, "texts must be a list"),
        (lambda m: m.rerank(None, ["a"]), InvalidArgumentTypeError, "query must be a str"),
        (lambda m: m.rerank("q", ["a"], top_n=-1), InvalidArgumentError, "top_n must be >= 1"),
        (lambda m: m.rerank("q", ["a"], top_n=0), InvalidArgumentError, "top_n"),
        (lambda m: m.rerank("q", ["a"], top_n="3"), InvalidArgumentTypeError, "top_n"),
        (lambda m: m.score("q", "abc"), InvalidArgumentTypeError, "documents must be a list"),
        (lambda m: m.encode_documents(["a"], batch_size=0), InvalidArgumentError, "batch_size"),
    ],
)
def test_bad_arguments(tiny_model: ColBERT, call, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message) as info:
        call(tiny_model)
    assert isinstance(info.value, ColBERTError)


def test_unknown_override_is_a_type_error(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="query_lenght"):
        ColBERT.from_pretrained(tiny_model_dir, query_lenght=16)


@pytest.mark.parametrize("with_token_type_ids", [True, False])
def test_token_type_ids_fed_only_when_declared(
    tmp_path: pathlib.Path, with_token_type_ids: bool
) -> None:
    model = ColBERT.from_pretrained(
        build_model_dir(tmp_path, with_token_type_ids=with_token_type_ids)
    )
    assert model.encoder.uses_token_type_ids is with_token_type_ids
    assert_unit_rows(model.encode_documents(["the cat sat"]))


def test_normalizing_graph_gives_same_ranking(tmp_path: pathlib.Path) -> None:
    plain = ColBERT.from_pretrained(build_model_dir(tmp_path / "a"))
    normed = ColBERT.from_pretrained(build_model_dir(tmp_path / "b", normalize_output=True))
    np.testing.assert_allclose(plain.score("cat", DOCS), normed.score("cat", DOCS), atol=1e-5)


def test_nan_output_is_reported(
    tiny_model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colbert_plugins.onnx_encoder import OnnxEncoder

    model = ColBERT.from_pretrained(tiny_model_dir)
    real = OnnxEncoder.__call__

    def poisoned(self: OnnxEncoder, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = real(self, ids, mask)
        out[0, 0, 0] = np.nan
        return out

    monkeypatch.setattr(OnnxEncoder, "__call__", poisoned)
    with pytest.raises(ModelOutputError, match="NaN"):
        model.encode_documents(["cat"])
