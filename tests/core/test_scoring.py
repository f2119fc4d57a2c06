"""MaxSim against a plain-loop reference, and -inf masking of padding."""

from __future__ import annotations

import numpy as np
import pytest

from colbert_plugins.scoring import (
    l2_normalize,
    maxsim,
    maxsim_padded,
    maxsim_scores,
    pad_vectors,
)


def loop_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    total = 0.0
    for q in query:
        total += max(float(np.dot(q, d)) for d in doc)
    return total


@pytest.fixture
def data() -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(7)
    query = l2_normalize(rng.standard_normal((5, 16)).astype(np.float32))
    docs = [l2_normalize(rng.standard_normal((n, 16)).astype(np.float32)) for n in (1, 7, 3, 12)]
    return query, docs


def test_all_implementations_match_the_loop(data: tuple[np.ndarray, list[np.ndarray]]) -> None:
    query, docs = data
    expected = [loop_maxsim(query, d) for d in docs]
    assert [maxsim(query, d) for d in docs] == pytest.approx(expected, abs=1e-5)
    assert maxsim_scores(query, docs).tolist() == pytest.approx(expected, abs=1e-5)
    tensor, mask = pad_vectors(docs)
    assert maxsim_padded(query, tensor, mask).tolist() == pytest.approx(expected, abs=1e-5)


def test_padding_never_wins_when_every_similarity_is_negative() -> None:
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    short = np.array([[-1.0, 0.0]], dtype=np.float32)
    long = np.array([[-0.6, 0.8], [-0.8, 0.6]], dtype=np.float32)
    tensor, mask = pad_vectors([short, long])
    # zero-filled padding would give 0.0 for the short document
    assert maxsim_padded(query, tensor, mask).tolist() == pytest.approx([-1.0, -0.6])
    assert maxsim_scores(query, [short, long]).tolist() == pytest.approx([-1.0, -0.6])


def test_blocks_give_the_same_scores(
    data: tuple[np.ndarray, list[np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    query, docs = data
    whole = maxsim_scores(query, docs)
    import colbert_plugins.scoring as scoring

    monkeypatch.setattr(scoring, "_BLOCK_ELEMENTS", 1)  # one document per block
    assert maxsim_scores(query, docs).tolist() == pytest.approx(whole.tolist(), abs=1e-6)


def test_empty_inputs() -> None:
    query = np.ones((2, 4), dtype=np.float32)
    assert maxsim_scores(query, []).shape == (0,)
    assert maxsim_scores(query, [np.zeros((0, 4), np.float32)]).tolist() == [float("-inf")]


def test_l2_normalize_rows_unit_and_zero_safe() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [1e-20, 0.0]], dtype=np.float32)
    out = l2_normalize(vectors)
    assert np.isfinite(out).all()
    assert np.linalg.norm(out[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(l2_normalize(out[:2]), out[:2], rtol=1e-6)  # idempotent
