"""Why a document scored what it scored: the document token each query vector matched.

MaxSim sums, over every query vector, the best similarity with any document vector. An
:class:`Explanation` lists those best matches, one :class:`TokenMatch` per query vector, with
the matched document token's character span in the original text (from the tokenizer's
offsets), so a user interface can highlight what made a document relevant.

Every query vector counts in the score: the real query tokens, but also ``[CLS]``, the
``[Q]`` marker, ``[SEP]`` and the ``[MASK]`` expansion tokens of query augmentation. So
``Explanation.matches_all`` holds one match per query vector and its contributions sum to
the score, while ``Explanation.matches`` (the default view) keeps the real query tokens only
(plus the expansion tokens with ``include_expansion=True``).

>>> from colbert_plugins import ColBERT  # doctest: +SKIP
>>> model = ColBERT.from_pretrained("answerdotai/answerai-colbert-small-v1")  # doctest: +SKIP
>>> e = model.explain("capital of france", "Paris is the capital of France.")  # doctest: +SKIP
>>> print(render_terminal(e))  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding

from .checks import check_int, check_query
from .config import ColBERTConfig
from .errors import InvalidArgumentTypeError, ModelOutputError
from .tokenization import MARKER_INDEX, ColBERTTokenizer

FloatArray = npt.NDArray[np.float32]


class Explainable(Protocol):
    """What :func:`explain` needs of a model (a :class:`~colbert_plugins.ColBERT` has it all);
    a Protocol, so that this module does not import the model module that uses it."""

    tokenizer: ColBERTTokenizer

    @property
    def config(self) -> ColBERTConfig: ...

    def encode_queries(self, texts: Sequence[str], batch_size: int = ...) -> list[FloatArray]: ...

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = ..., show_progress: bool = ...
    ) -> list[FloatArray]: ...

    def score_vectors(
        self, query: FloatArray, documents: Sequence[FloatArray], *, normalize: bool | None = ...
    ) -> FloatArray: ...


__all__ = [
    "Explainable",
    "Explanation",
    "TokenMatch",
    "explain",
    "render_html",
    "render_terminal",
    "top_spans",
]

#: ``TokenMatch.kind`` values: a token of the query text, a ``[MASK]`` expansion token,
#: or ``[CLS]`` / ``[Q]`` / ``[SEP]``.
KINDS = ("token", "expansion", "special")

_QUERY_MARKER = "[Q]"
_DOCUMENT_MARKER = "[D]"


@dataclass(frozen=True)
class TokenMatch:
    """The best document vector of one query vector.

    Attributes:
        query_token: the query token (``[Q]``/``[MASK]``/... for special vectors).
        query_index: row of the query vector in ``model.encode_queries([query])[0]``.
        document_token: the matched document token (``[D]`` for the marker).
        document_index: row of the matched vector in ``model.encode_documents([doc])[0]``.
        start: start of the document token in the original document text (character
            offset), ``None`` for special tokens (``[CLS]``, ``[D]``, ``[SEP]``).
        end: end (exclusive) of that span, ``None`` likewise.
        similarity: dot product (cosine) of the two unit vectors.
        contribution: what this match adds to the score: ``similarity``, divided by the
            number of query vectors when the model has ``normalize_scores``.
        kind: ``"token"``, ``"expansion"`` or ``"special"`` (see :data:`KINDS`).
    """

    query_token: str
    query_index: int
    document_token: str
    document_index: int
    start: int | None
    end: int | None
    similarity: float
    contribution: float
    kind: str


@dataclass(frozen=True)
class Explanation:
    """The MaxSim score of one (query, document) pair, broken down by query vector.

    Attributes:
        query: the query text.
        document: the original document text (spans index into it).
        score: the score ``model.score(query, [document])`` gives.
        matches: the default view: matches of the real query tokens (and of the ``[MASK]``
            expansion tokens when explained with ``include_expansion=True``).
        matches_all: one match per query vector, in query order;
            ``sum(m.contribution for m in matches_all) == score`` (float tolerance), and with
            the default ``normalize_scores=False`` the similarities themselves sum to it.
    """

    query: str
    document: str
    score: float
    matches: list[TokenMatch]
    matches_all: list[TokenMatch]

    def span_text(self, match: TokenMatch) -> str | None:
        """The document text a match points at (None for special tokens)."""
        if match.start is None or match.end is None:
            return None
        return self.document[match.start : match.end]


@dataclass(frozen=True)
class _DocToken:
    token: str
    start: int | None
    end: int | None


def explain(
    model: Explainable, query: str, document: str, include_expansion: bool = False
) -> Explanation:
    """Explain the MaxSim score of ``document`` for ``query``.

    Works with ``long_documents="windows"`` too: the document's vectors are the union of its
    windows', and spans point into the whole original text.

    Args:
        model: a loaded :class:`~colbert_plugins.ColBERT`.
        query: the query text.
        document: the document text.
        include_expansion: also list the ``[MASK]`` expansion tokens in ``matches``.
    """
    query = check_query(query)
    if not isinstance(document, str):
        raise InvalidArgumentTypeError(f"document must be a str, got {type(document).__name__}")
    if not isinstance(include_expansion, bool):
        raise InvalidArgumentTypeError(
            f"include_expansion must be True or False, got {include_expansion!r}"
        )
    query_vectors = model.encode_queries([query])[0]
    doc_vectors = model.encode_documents([document])[0]
    query_tokens = _query_tokens(model, query, query_vectors.shape[0])
    doc_tokens = _document_tokens(model, document)
    if len(doc_tokens) != doc_vectors.shape[0]:
        raise ModelOutputError(
            f"internal error: {doc_vectors.shape[0]} document vectors but {len(doc_tokens)} "
            "kept tokens; please report this with the document text"
        )
    score = float(model.score_vectors(query_vectors, [doc_vectors])[0])
    scale = 1.0 / max(1, query_vectors.shape[0]) if model.config.normalize_scores else 1.0
    matches_all: list[TokenMatch] = []
    if doc_vectors.shape[0]:
        sims = query_vectors @ doc_vectors.T
        best = sims.argmax(axis=1)
        for qi, ((q_token, kind), di) in enumerate(zip(query_tokens, best, strict=True)):
            similarity = float(sims[qi, di])
            doc_token = doc_tokens[int(di)]
            matches_all.append(
                TokenMatch(
                    query_token=q_token,
                    query_index=qi,
                    document_token=doc_token.token,
                    document_index=int(di),
                    start=doc_token.start,
                    end=doc_token.end,
                    similarity=similarity,
                    contribution=similarity * scale,
                    kind=kind,
                )
            )
    shown = {"token", "expansion"} if include_expansion else {"token"}
    matches = [m for m in matches_all if m.kind in shown]
    return Explanation(query, document, score, matches, matches_all)


def _query_tokens(model: Explainable, query: str, n_vectors: int) -> list[tuple[str, str]]:
    """(token, kind) of each query vector: [CLS] [Q] tokens [SEP] then [MASK] padding."""
    (enc,) = model.tokenizer.query_encodings([query])
    has_marker = model.tokenizer.ids.query_marker is not None
    tokens: list[tuple[str, str]] = []
    for i, (token, special) in enumerate(zip(enc.tokens, enc.special_tokens_mask, strict=True)):
        tokens.append((token, "special" if special else "token"))
        if i == 0 and has_marker:
            tokens.append((_QUERY_MARKER, "special"))
    if not enc.tokens and has_marker:
        tokens.append((_QUERY_MARKER, "special"))
    mask = model.tokenizer.token_text(model.tokenizer.ids.mask) or "[MASK]"
    tokens += [(mask, "expansion")] * (n_vectors - len(tokens))
    if len(tokens) != n_vectors:
        raise ModelOutputError(
            f"internal error: {n_vectors} query vectors but {len(tokens)} query tokens"
        )
    return tokens


def _document_tokens(model: Explainable, document: str) -> list[_DocToken]:
    """The token behind each of the document's kept vectors, in the same order."""
    tokenizer = model.tokenizer
    if model.config.long_documents == "windows":
        (windows,) = tokenizer.document_windows([document])
        enc = windows.encoding
        layout = list(zip(windows.rows, windows.owned, windows.token_index, strict=True))
    else:
        (enc,) = tokenizer.document_encodings([document])
        ids = np.asarray(enc.ids, dtype=np.int64)
        row, index = ids, np.arange(ids.size, dtype=np.int64)
        if tokenizer.ids.document_marker is not None:
            at = min(1, ids.size)
            row = np.insert(ids, at, tokenizer.ids.document_marker)
            index = np.insert(index, at, MARKER_INDEX)
        layout = [(row, np.ones(row.size, dtype=bool), index)]
    kept: list[int] = []
    for row, owned, index in layout:
        keep = tokenizer.document_keep_mask(row[None, :], np.ones((1, row.size), np.int64))[0]
        kept += [int(i) for i in index[keep & owned]]
    return [_doc_token(tokenizer, document, enc, i) for i in kept]


def _doc_token(tokenizer: ColBERTTokenizer, document: str, enc: Encoding, i: int) -> _DocToken:
    if i == MARKER_INDEX:
        return _DocToken(_DOCUMENT_MARKER, None, None)
    if enc.special_tokens_mask[i]:
        return _DocToken(enc.tokens[i], None, None)
    span = tokenizer.document_span(document, *enc.offsets[i])
    if span is None:  # a token of the prompt
        return _DocToken(enc.tokens[i], None, None)
    return _DocToken(enc.tokens[i], span[0], span[1])


# -- presentation ---------------------------------------------------------------------------


def top_spans(explanation: Explanation, n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` best-matched document spans, JSON-serializable, best first.

    Each span appears once, with its best match among ``explanation.matches``:
    ``{"start", "end", "text", "similarity", "query_token"}``. Special tokens (no span) are
    left out.
    """
    n = check_int(n, "n")
    best = _best_by_span(explanation.matches)
    ranked = sorted(best.values(), key=lambda m: (-m.similarity, m.start))
    return [
        {
            "start": m.start,
            "end": m.end,
            "text": explanation.document[m.start : m.end],
            "similarity": round(float(m.similarity), 6),
            "query_token": m.query_token,
        }
        for m in ranked[:n]
    ]


def render_terminal(explanation: Explanation, color: bool = True) -> str:
    """The document with matched spans highlighted in ANSI bold colour, then the matches.

    Strong matches (similarity >= 0.75) are green, medium (>= 0.5) yellow, weaker ones
    plain bold. ``color=False`` marks spans with ``[...]`` instead, for plain text.
    """
    spans = _spans(explanation.matches)
    parts: list[str] = []
    pos = 0
    text = explanation.document
    for (start, end), group in spans:
        best = max(m.similarity for m in group)
        parts.append(text[pos:start])
        if color:
            shade = "32" if best >= 0.75 else "33" if best >= 0.5 else "39"
            parts.append(f"\x1b[1;{shade}m{text[start:end]}\x1b[0m")
        else:
            parts.append(f"[{text[start:end]}]")
        pos = end
    parts.append(text[pos:])
    lines = [f"score {explanation.score:.4f}", "".join(parts)]
    for m in explanation.matches:
        where = explanation.span_text(m)
        target = repr(where) if where is not None else m.document_token
        lines.append(f"  {m.query_token:>12} -> {target:<20} {m.similarity:.3f}")
    return "\n".join(lines)


def render_html(explanation: Explanation) -> str:
    """The document as HTML with each matched span in a ``<mark>``.

    The text is HTML-escaped; each mark's ``title`` names the query tokens that matched the
    span with their similarities, ``data-similarity`` holds the best one and the background
    opacity follows it.
    """
    spans = _spans(explanation.matches)
    text = explanation.document
    parts: list[str] = []
    pos = 0
    for (start, end), group in spans:
        best = max(m.similarity for m in group)
        title = ", ".join(
            f"{m.query_token} {m.similarity:.3f}"
            for m in sorted(group, key=lambda m: -m.similarity)
        )
        alpha = min(1.0, max(0.15, best))
        parts.append(html.escape(text[pos:start]))
        parts.append(
            f'<mark title="{html.escape(title, quote=True)}" data-similarity="{best:.4f}" '
            f'style="background-color: rgba(255, 200, 0, {alpha:.2f})">'
            f"{html.escape(text[start:end])}</mark>"
        )
        pos = end
    parts.append(html.escape(text[pos:]))
    return (
        f'<div class="colbert-explanation" data-score="{explanation.score:.4f}">'
        + "".join(parts)
        + "</div>"
    )


def _best_by_span(matches: Sequence[TokenMatch]) -> dict[tuple[int, int], TokenMatch]:
    best: dict[tuple[int, int], TokenMatch] = {}
    for m in matches:
        if m.start is None or m.end is None:
            continue
        key = (m.start, m.end)
        if key not in best or m.similarity > best[key].similarity:
            best[key] = m
    return best


def _spans(matches: Sequence[TokenMatch]) -> list[tuple[tuple[int, int], list[TokenMatch]]]:
    """Matched spans in text order, each with its matches; overlapping spans are skipped."""
    groups: dict[tuple[int, int], list[TokenMatch]] = {}
    for m in matches:
        if m.start is not None and m.end is not None and m.end > m.start:
            groups.setdefault((m.start, m.end), []).append(m)
    out: list[tuple[tuple[int, int], list[TokenMatch]]] = []
    end = 0
    for span in sorted(groups):
        if span[0] >= end:
            out.append((span, groups[span]))
            end = span[1]
    return out
