"""BM25 sparse vectors for the ``bm25`` named vector, from Qdrant Edge's BM25 embedder (its
tokenizer, English stop words and stemmer), for both engines alike.

A document's vector holds BM25's term-frequency part, ``tf * (k1 + 1) / (tf + k1 * (1 - b +
b * length / avg_len))``; the engine multiplies by each term's IDF at query time
(``Modifier.Idf``). ``avg_len`` is the collection's mean document length in the embedder's
own tokens: measured on the first documents a collection gets (:func:`mean_length`) and kept
in every point's payload, so that later documents are weighted alike. On the trained model's
three BEIR collections it gave BM25 a mean nDCG@10 of 0.461 against 0.441 with Qdrant's
default of 256 (``benchmarks/results/qdrant_hybrid_quality.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...checks import require
from .layout import Sparse

require("qdrant_edge", extra="qdrant", feature="BM25 vectors")

import qdrant_edge as qe  # noqa: E402

__all__ = ["Bm25Encoder", "mean_length"]

_K1 = 1.2


class Bm25Encoder:
    """Document and query BM25 vectors for a collection whose mean length is ``avg_len``."""

    def __init__(self, avg_len: float) -> None:
        self.avg_len = float(avg_len)
        self._embedder = qe.Bm25(qe.Bm25Config(k=_K1, avg_len=self.avg_len))

    def document(self, text: str) -> Sparse:
        v = self._embedder.embed_document(text)
        return Sparse(list(v.indices), list(v.values))

    def query(self, text: str) -> Sparse:
        """Weight 1 for each distinct term of the query (``avg_len`` plays no part)."""
        v = self._embedder.embed_query(text)
        return Sparse(list(v.indices), list(v.values))


def mean_length(texts: Iterable[str]) -> float:
    """The mean length of ``texts`` in the BM25 embedder's tokens (stop words dropped, words
    stemmed), at least 1.

    With ``b=0`` a term's document weight is ``w = tf * (k1 + 1) / (tf + k1)``, which gives
    back ``tf = w * k1 / (k1 + 1 - w)``; a document's length is the sum of its ``tf``.

    >>> mean_length(["the cats are running quickly and the dogs are running", "cats"])
    3.0
    """
    embedder = qe.Bm25(qe.Bm25Config(k=_K1, b=0.0))
    total, count = 0.0, 0
    for text in texts:
        weights = embedder.embed_document(text).values
        total += sum(w * _K1 / (_K1 + 1.0 - w) for w in weights)
        count += 1
    return max(1.0, round(total / count, 2)) if count else 1.0
