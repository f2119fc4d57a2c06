"""Long documents: overlapping windows instead of truncation (``long_documents="windows"``)."""

from __future__ import annotations

import pathlib
import time

import numpy as np
import pytest

from colbert_plugins import ColBERT, ColBERTConfig
from colbert_plugins.cache import EmbeddingCache
from colbert_plugins.errors import InvalidArgumentError, InvalidArgumentTypeError

LONG = (
    "the cat sat on the mat in paris, the capital of france. london is in england and "
    "berlin in germany; the quick brown fox jumps over the lazy dog"
)
SHORT = ["the cat sat", "", "paris is the capital of france!"]


@pytest.fixture(scope="module")
def truncating(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(tiny_model_dir, document_length=10, threads=1, cache=False)


@pytest.fixture(scope="module")
def windowed(tiny_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(
        tiny_model_dir, document_length=10, long_documents="windows", threads=1, cache=False
    )


def text_tokens(model: ColBERT, text: str) -> int:
    (windows,) = model.tokenizer.document_windows([text])
    return len(windows.encoding.ids) - 2  # minus [CLS] and [SEP]


# -- configuration --------------------------------------------------------------------------


def test_config_defaults_and_validation() -> None:
    cfg = ColBERTConfig()
    assert cfg.long_documents == "truncate" and cfg.window_stride is None
    assert ColBERTConfig(long_documents="windows", window_stride=5).window_stride == 5
    with pytest.raises(InvalidArgumentError, match="long_documents must be one of"):
        ColBERTConfig(long_documents="split")
    with pytest.raises(InvalidArgumentError, match="window_stride must be between 1 and 7"):
        ColBERTConfig(document_length=10, window_stride=8)
    with pytest.raises(InvalidArgumentError, match="window_stride"):
        ColBERTConfig(window_stride=0)
    with pytest.raises(InvalidArgumentTypeError):
        ColBERTConfig(window_stride=True)
    with pytest.raises(InvalidArgumentTypeError):
        ColBERTConfig(window_stride=2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="document_length >= 4"):
        ColBERTConfig(document_length=3, long_documents="windows")
    assert ColBERTConfig.from_dict(cfg.replace(long_documents="windows").to_dict()).long_documents


def test_from_pretrained_accepts_and_checks_the_fields(tiny_model_dir: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match="long_documents"):
        ColBERT.from_pretrained(tiny_model_dir, long_documents="chunks", cache=False)
    model = ColBERT.from_pretrained(
        tiny_model_dir, document_length=20, long_documents="windows", window_stride=4, cache=False
    )
    assert (model.tokenizer.window_length, model.tokenizer.window_stride) == (17, 4)


def test_default_stride_is_three_quarters_of_the_window(windowed: ColBERT) -> None:
    assert windowed.tokenizer.window_length == 7  # 10 - [CLS] - [D] - [SEP]
    assert windowed.tokenizer.window_stride == 5


# -- window layout --------------------------------------------------------------------------


def test_window_starts_cover_every_token(windowed: ColBERT) -> None:
    tok = windowed.tokenizer
    assert tok.window_starts(0) == [0]
    assert tok.window_starts(7) == [0]
    assert tok.window_starts(8) == [0, 1]
    assert tok.window_starts(22) == [0, 5, 10, 15]
    for n in range(8, 60):
        starts = tok.window_starts(n)
        assert starts[-1] + tok.window_length == n  # the last window ends the document
        gaps = np.diff(starts)
        assert ((gaps >= 1) & (gaps <= tok.window_stride)).all()


@pytest.mark.parametrize("stride", [1, 3, 5, 7])
def test_each_token_is_owned_once_by_its_most_central_window(
    tiny_model_dir: pathlib.Path, stride: int
) -> None:
    model = ColBERT.from_pretrained(
        tiny_model_dir,
        document_length=10,
        long_documents="windows",
        window_stride=stride,
        cache=False,
    )
    (doc,) = model.tokenizer.document_windows([LONG])
    n = len(doc.encoding.ids) - 2
    owners: dict[int, int] = {}
    for k, (row, owned, index) in enumerate(zip(doc.rows, doc.owned, doc.token_index, strict=True)):
        assert len(row) == len(owned) == len(index) == 10
        assert row[1] == model.tokenizer.ids.document_marker and index[1] == -1
        assert list(row) == [doc.encoding.ids[i] if i >= 0 else row[1] for i in index]
        assert owned[0] and owned[1] and owned[-1]  # every window keeps its specials
        for pos in index[2:-1][owned[2:-1]]:
            assert int(pos) not in owners
            owners[int(pos)] = k
    assert sorted(owners) == list(range(1, n + 1))  # every text token, once
    starts = model.tokenizer.window_starts(n)
    for pos, k in owners.items():  # brute force: nearest centre, earlier window on ties
        t = pos - 1
        covering = [j for j, s in enumerate(starts) if s <= t < s + 7]
        distance = [abs(2 * t - (2 * starts[j] + 6)) for j in covering]
        assert k == covering[int(np.argmin(distance))]


# -- encoding -------------------------------------------------------------------------------


def test_documents_that_fit_are_identical_to_truncation(
    truncating: ColBERT, windowed: ColBERT
) -> None:
    for a, b in zip(
        truncating.encode_documents(SHORT), windowed.encode_documents(SHORT), strict=True
    ):
        assert a.shape == b.shape
        assert np.array_equal(a, b)


def test_long_document_shapes_and_dedup(truncating: ColBERT, windowed: ColBERT) -> None:
    (cut,) = truncating.encode_documents([LONG])
    (whole,) = windowed.encode_documents([LONG])
    n = text_tokens(windowed, LONG)
    n_windows = len(windowed.tokenizer.window_starts(n))
    punctuation = sum(
        t in ",.;" for t in windowed.tokenizer.document_windows([LONG])[0].encoding.tokens
    )
    assert n == 32 and n_windows == -(-(n - 7) // 5) + 1 == 6
    assert cut.shape == (10, 8)  # [CLS] [D] 'the cat sat on the mat in' [SEP]
    # each text token once (dedup), punctuation dropped, [CLS] [D] [SEP] per window
    assert whole.shape == (n - punctuation + 3 * n_windows, 8)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)


def test_first_window_is_the_truncated_document(truncating: ColBERT, windowed: ColBERT) -> None:
    (cut,) = truncating.encode_documents([LONG])
    (whole,) = windowed.encode_documents([LONG])
    (doc,) = windowed.tokenizer.document_windows([LONG])
    keep = windowed.tokenizer.document_keep_mask(doc.rows[0][None], np.ones((1, 10), np.int64))[0]
    owned_first = int((keep & doc.owned[0])[:-1].sum())  # [CLS] [D] and the tokens it owns
    np.testing.assert_allclose(whole[:owned_first], cut[:owned_first], atol=1e-5)
    np.testing.assert_allclose(whole[owned_first], cut[-1], atol=1e-5)  # its [SEP]


def test_order_batch_and_budget_invariance(tiny_model_dir: pathlib.Path, windowed: ColBERT) -> None:
    texts = [LONG, *SHORT, LONG.upper() + " hello world", "paris " * 30]
    reference = windowed.encode_documents(texts, batch_size=64)
    small = ColBERT.from_pretrained(
        tiny_model_dir,
        document_length=10,
        long_documents="windows",
        max_batch_tokens=20,
        cache=False,
    )
    for other in (
        windowed.encode_documents(texts, batch_size=1),
        small.encode_documents(texts),
        windowed.encode_documents(texts[::-1])[::-1],
    ):
        for a, b in zip(reference, other, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_score_and_rerank_use_the_windows(windowed: ColBERT) -> None:
    from colbert_plugins.scoring import maxsim

    (query,) = windowed.encode_queries(["capital of germany"])
    docs = windowed.encode_documents([LONG, SHORT[0]])
    scores = windowed.score("capital of germany", [LONG, SHORT[0]])
    np.testing.assert_allclose(scores, [maxsim(query, d) for d in docs], rtol=1e-5)
    ranked = windowed.rerank("capital of germany", [SHORT[0], LONG])
    assert {r.index for r in ranked} == {0, 1}
    assert ranked[0].score >= ranked[1].score


def test_rerank_shows_the_windows_progress_when_asked(
    windowed: ColBERT, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [" ".join(["cat dog"] * 30), "paris", " ".join(["the river seine"] * 20)]
    quiet = windowed.rerank("cat", docs)
    assert "Encoding" not in capsys.readouterr().err
    shown = windowed.rerank("cat", docs, show_progress=True)
    err = capsys.readouterr().err
    assert "Encoding windows" in err  # progress counts windows, the unit of work here
    assert [(r.index, r.score) for r in shown] == [(r.index, r.score) for r in quiet]


def test_cache_keys_separate_the_modes(tiny_model_dir: pathlib.Path) -> None:
    shared = EmbeddingCache()

    def load(**kw: object) -> ColBERT:
        return ColBERT.from_pretrained(tiny_model_dir, document_length=10, cache=shared, **kw)

    cut, cut_strided = load(), load(window_stride=3)
    win, win3, win3_again = (
        load(long_documents="windows"),
        load(long_documents="windows", window_stride=3),
        load(long_documents="windows", window_stride=3),
    )
    assert cut.model_key == cut_strided.model_key  # the stride does not matter when cutting
    assert len({cut.model_key, win.model_key, win3.model_key}) == 3
    assert win3.model_key == win3_again.model_key
    (short,) = cut.encode_documents([LONG])
    (long,) = win.encode_documents([LONG])  # not served the truncated entry
    assert long.shape[0] > short.shape[0]
    assert shared.stats().misses == 2
    (again,) = win.encode_documents([LONG])
    assert np.array_equal(again, long) and shared.stats().hits == 1


def test_windows_cost_on_the_tiny_model(truncating: ColBERT, windowed: ColBERT) -> None:
    """Windows re-encode the overlap: more work than truncation, but bounded by the stride."""
    text = " ".join(["paris is the capital of france"] * 20)
    n = text_tokens(windowed, text)
    windows = windowed.tokenizer.window_starts(n)
    encoded = len(windows) * 10
    assert n / 7 <= len(windows) <= n / 5 + 1  # about n / stride windows
    assert encoded < 2 * (n + 3)  # under twice the tokens with the default 3/4 stride
    started = time.perf_counter()
    windowed.encode_documents([text])
    assert time.perf_counter() - started < 5


# -- real model -----------------------------------------------------------------------------

NEEDLE = "Liquid nitrogen boils at minus 196 degrees Celsius under atmospheric pressure."
NEEDLE_QUERY = "at what temperature does liquid nitrogen boil"


@pytest.fixture(scope="module")
def real_windowed(real_model_dir: pathlib.Path) -> ColBERT:
    return ColBERT.from_pretrained(real_model_dir, threads=2, cache=False, long_documents="windows")


def filler_words(model: ColBERT, n_tokens: int) -> str:
    """Aerodynamics filler text of at least ``n_tokens`` tokens (no nitrogen, no boiling)."""
    from colbert_plugins.cli.input import generated_documents

    words: list[str] = []
    for doc in generated_documents(30, seed=1):
        words += doc.split()
        text = " ".join(words)
        (enc,) = model.tokenizer.document_windows([text])
        if len(enc.encoding.ids) - 2 >= n_tokens:
            return text
    raise AssertionError("not enough filler")


@pytest.mark.integration
def test_needle_after_token_600_is_found_with_windows_only(
    real_model: ColBERT, real_windowed: ColBERT
) -> None:
    head = filler_words(real_windowed, 620)
    tail = " The tunnel results agree with the approximate theory for slender bodies."
    with_needle = f"{head} {NEEDLE}{tail}"
    distractor = f"{head}{tail}"  # the same long document without the relevant sentence
    cut = real_model.score(NEEDLE_QUERY, [with_needle, distractor])
    # truncation never sees the sentence: both documents score the same
    assert real_model.config.document_length <= 512
    assert abs(float(cut[0]) - float(cut[1])) < 1e-4
    whole = real_windowed.score(NEEDLE_QUERY, [with_needle, distractor])
    assert whole[0] > whole[1] + 0.5, whole
    explanation = real_windowed.explain(NEEDLE_QUERY, with_needle)
    start = with_needle.index(NEEDLE)
    hits = {m.query_token: m for m in explanation.matches}
    assert hits["nitrogen"].start is not None and hits["nitrogen"].start >= start
    assert with_needle[hits["nitrogen"].start : hits["nitrogen"].end].lower() == "nitrogen"
