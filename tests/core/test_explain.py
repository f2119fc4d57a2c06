"""Match explanations: which document token each query vector matched, spans, rendering."""

from __future__ import annotations

import dataclasses
import html
import json
import pathlib
import re
import string
import unicodedata

import pytest

from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError
from colbert_plugins.explain import (
    Explanation,
    explain,
    render_html,
    render_terminal,
    top_spans,
)

DOCS = [
    "Paris is the capital of France; the Seine flows through it.",
    "The quick brown fox jumps over the lazy dog!",
    "",
    'Café <b>cats</b> & dogs: "hello" world',
    "london, england. " * 20,  # longer than the windowed model's document_length
]
QUERIES = ["capital of france", "what is the capital of france where the river seine is", "cat"]


@pytest.fixture(scope="module")
def windowed(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, document_length=12, long_documents="windows", cache=False
    )


@pytest.fixture(scope="module")
def normalized(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, normalize_scores=True, cache=False
    )


def plain(token: str) -> str:
    """A WordPiece token as the text it covers (lower-cased, accents stripped)."""
    return token.removeprefix("##")


def normal(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@pytest.mark.parametrize("model_name", ["tiny_model", "windowed"])
def test_matches_sum_to_the_score(model_name: str, request: pytest.FixtureRequest) -> None:
    model: ColBERT = request.getfixturevalue(model_name)
    for query in QUERIES:
        scores = model.score(query, DOCS)
        (q,) = model.encode_queries([query])
        for doc, score in zip(DOCS, scores, strict=True):
            e = explain(model, query, doc)
            assert len(e.matches_all) == q.shape[0]  # one per query vector, masks included
            assert abs(sum(m.similarity for m in e.matches_all) - float(score)) < 1e-4
            assert abs(sum(m.contribution for m in e.matches_all) - float(score)) < 1e-4
            assert abs(e.score - float(score)) < 1e-4


def test_each_match_is_the_best_document_vector(tiny_model: ColBERT) -> None:
    doc = DOCS[0]
    e = tiny_model.explain("capital of france", doc)
    (q,) = tiny_model.encode_queries(["capital of france"])
    (d,) = tiny_model.encode_documents([doc])
    sims = q @ d.T
    for m in e.matches_all:
        assert m.query_index == e.matches_all.index(m)
        assert m.document_index == int(sims[m.query_index].argmax())
        assert m.similarity == pytest.approx(float(sims[m.query_index].max()), abs=1e-6)


def test_views_and_token_kinds(tiny_model: ColBERT) -> None:
    e = tiny_model.explain("capital of france", DOCS[0])
    assert [m.query_token for m in e.matches] == ["capital", "of", "france"]
    assert {m.kind for m in e.matches} == {"token"}
    kinds = [m.kind for m in e.matches_all]
    # [CLS] [Q] capital of france [SEP] [MASK] [MASK]  (query_length 8)
    assert [m.query_token for m in e.matches_all][:2] == ["[CLS]", "[Q]"]
    assert kinds == ["special"] * 2 + ["token"] * 3 + ["special"] + ["expansion"] * 2
    wide = tiny_model.explain("capital of france", DOCS[0], include_expansion=True)
    assert [m.query_token for m in wide.matches] == ["capital", "of", "france", "[MASK]", "[MASK]"]


@pytest.mark.parametrize("model_name", ["tiny_model", "windowed"])
def test_spans_point_into_the_original_text(
    model_name: str, request: pytest.FixtureRequest
) -> None:
    model: ColBERT = request.getfixturevalue(model_name)
    for doc in DOCS:
        e = model.explain(QUERIES[1], doc, include_expansion=True)
        for m in e.matches_all:
            if m.start is None:
                assert m.end is None
                assert m.document_token in {"[CLS]", "[SEP]", "[D]"}
                continue
            assert m.end is not None and 0 <= m.start < m.end <= len(doc)
            assert normal(doc[m.start : m.end]) == plain(m.document_token)
            assert m.document_token not in string.punctuation  # skiplist vectors are dropped
            assert e.span_text(m) == doc[m.start : m.end]


def test_windowed_explanations_cover_the_whole_document_once(windowed: ColBERT) -> None:
    from colbert_plugins.explain import _document_tokens

    doc = DOCS[4]
    tokens = _document_tokens(windowed, doc)
    (vectors,) = windowed.encode_documents([doc])
    assert len(tokens) == vectors.shape[0]
    starts = [t.start for t in tokens if t.start is not None]
    assert starts == sorted(set(starts))  # document order, each token once
    words = [
        i for i in range(len(doc)) if doc[i].isalpha() and (i == 0 or not doc[i - 1].isalpha())
    ]
    assert starts[0] == 0 and starts[-1] == words[-1]  # reaches past document_length=12
    specials = [t.token for t in tokens if t.start is None]
    n_windows = len(windowed.tokenizer.document_windows([doc])[0].rows)
    assert n_windows > 3 and len(specials) == 3 * n_windows


def test_normalized_scores_split_into_contributions(normalized: ColBERT) -> None:
    score = float(normalized.score("capital of france", [DOCS[0]])[0])
    e = normalized.explain("capital of france", DOCS[0])
    n = len(e.matches_all)
    assert -1.0 <= e.score <= 1.0
    assert sum(m.contribution for m in e.matches_all) == pytest.approx(score, abs=1e-4)
    assert sum(m.similarity for m in e.matches_all) == pytest.approx(score * n, abs=1e-3)


def test_top_spans_are_json_and_ranked(tiny_model: ColBERT) -> None:
    doc = DOCS[0]
    e = tiny_model.explain(QUERIES[1], doc)
    spans = top_spans(e, n=3)
    assert 1 <= len(spans) <= 3
    assert json.loads(json.dumps(spans)) == spans
    for s in spans:
        assert set(s) == {"start", "end", "text", "similarity", "query_token"}
        assert s["text"] == doc[s["start"] : s["end"]]
        assert s["query_token"] in [m.query_token for m in e.matches]
    sims = [s["similarity"] for s in spans]
    assert sims == sorted(sims, reverse=True)
    everything = top_spans(e, n=100)
    assert len({(s["start"], s["end"]) for s in everything}) == len(everything)
    assert everything[:3] == spans
    with pytest.raises(InvalidArgumentError):
        top_spans(e, n=0)


def test_render_html_escapes_and_marks(tiny_model: ColBERT) -> None:
    doc = DOCS[3]
    e = tiny_model.explain("hello cats and dogs", doc)
    out = render_html(e)
    assert out.startswith('<div class="colbert-explanation"') and out.endswith("</div>")
    assert "<b>" not in out and "&lt;b&gt;" in out and "&amp;" in out and "&quot;" in out
    marks = out.count("<mark ")
    assert marks == len(top_spans(e, n=100)) > 0
    assert 'title="' in out and "data-similarity" in out
    # removing the markup gives back the escaped text exactly
    stripped = re.sub(r"<mark [^>]*>|</mark>|<div [^>]*>|</div>", "", out)
    assert html.unescape(stripped) == doc


def test_render_terminal(tiny_model: ColBERT) -> None:
    e = tiny_model.explain("capital of france", DOCS[0])
    coloured = render_terminal(e)
    assert "\x1b[1;" in coloured and "\x1b[0m" in coloured
    assert coloured.splitlines()[0] == f"score {e.score:.4f}"
    bare = render_terminal(e, color=False)
    assert "\x1b" not in bare
    first = top_spans(e, n=1)[0]
    assert f"[{first['text']}]" in bare
    assert len(bare.splitlines()) == 2 + len(e.matches)


def test_bad_arguments(tiny_model: ColBERT) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        explain(tiny_model, 1, "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError):
        tiny_model.explain("x", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError):
        tiny_model.explain("x", "y", include_expansion="yes")  # type: ignore[arg-type]


def test_explanation_is_a_plain_dataclass(tiny_model: ColBERT) -> None:
    e = tiny_model.explain("cat", "the cat sat")
    assert isinstance(e, Explanation)
    assert e.query == "cat" and e.document == "the cat sat"
    assert dataclasses.is_dataclass(e) and dataclasses.is_dataclass(e.matches[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.matches[0].similarity = 2.0  # type: ignore[misc]
