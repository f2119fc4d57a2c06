"""ColBERT tokenization: markers, query augmentation, truncation and the punctuation skiplist.

:class:`ColBERTTokenizer` wraps a Hugging Face ``tokenizers.Tokenizer``. It keeps private
copies, one configured for queries, one for (truncated) documents and, with
``long_documents="windows"``, one that never truncates, each configured once at construction
and never changed afterwards, so one instance is safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from .config import ColBERTConfig
from .errors import InvalidArgumentError, ModelFilesError, ModelLoadError

__all__ = [
    "ColBERTTokenizer",
    "DocumentWindows",
    "TokenIds",
    "TokenizedQueries",
    "load_tokenizer",
]

IdArray = npt.NDArray[np.int64]

_SURROGATES = re.compile("[\ud800-\udfff]")
BoolArray = npt.NDArray[np.bool_]

#: ``DocumentWindows.token_index`` value of the inserted marker (it has no source token).
MARKER_INDEX = -1


@dataclass(frozen=True)
class TokenIds:
    """The special token ids a ColBERT model needs, resolved against its vocabulary."""

    query_marker: int | None  # None: the model has no query marker
    document_marker: int | None
    mask: int
    pad: int
    skiplist: frozenset[int]


@dataclass(frozen=True)
class TokenizedQueries:
    """Queries ready for the encoder: ``[batch, length]`` arrays plus each query's own length.

    Rows are padded to the longest query of the batch; positions past ``lengths[i]`` are
    batch padding (attention 0) whose vectors are discarded.
    """

    input_ids: IdArray
    attention_mask: IdArray
    lengths: list[int]


@dataclass(frozen=True)
class DocumentWindows:
    """One document cut into overlapping windows, ready for the encoder.

    Attributes:
        encoding: the whole document's encoding (special tokens added, never truncated):
            ``token_index`` points into its ``ids``, ``tokens`` and ``offsets``.
        rows: encoder input of each window, ``[CLS] [D] tokens [SEP]``, at most
            ``document_length`` ids; consecutive windows overlap.
        owned: per row, True where the position's vector represents the document: every
            window's own ``[CLS]``, marker and ``[SEP]``, and each text token in exactly one
            window, the one where it lies closest to the window's centre (ties: the earlier
            window). The skiplist is applied on top of this (see ``document_keep_mask``).
        token_index: per row, the position of each id in ``encoding`` (``-1`` for the marker).
    """

    encoding: Encoding
    rows: list[IdArray]
    owned: list[BoolArray]
    token_index: list[IdArray]


class ColBERTTokenizer:
    """Turns texts into ColBERT encoder inputs.

    Queries: ``[CLS] [Q] tokens [SEP]`` padded with the mask token up to ``query_length``
    (attention 0 on the padding unless ``attend_to_mask_tokens``). Documents:
    ``[CLS] [D] tokens [SEP]`` truncated to ``document_length`` tokens.
    """

    def __init__(self, tokenizer: Tokenizer, config: ColBERTConfig) -> None:
        self.config = config
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        serialized = tokenizer.to_str()  # once: the fingerprint and every private copy
        # Every tokenizer this class runs is a private copy with its own padding and
        # truncation: those a tokenizer.json carries (e.g. the fixed padding and truncation
        # PyLate leaves in a checkpoint saved after tokenizing) never apply.
        skiplist = (
            _vocabulary_ids(tokenizer, serialized, config.skiplist)
            if config.family == "pylate"
            else _first_ids(_configured_copy(serialized, max_length=None), config.skiplist)
        )
        self.ids = TokenIds(
            query_marker=self._marker(tokenizer, config.query_marker, "query_marker"),
            document_marker=self._marker(tokenizer, config.document_marker, "document_marker"),
            mask=self._resolve(tokenizer, config.mask_token, "mask_token"),
            pad=self._resolve(tokenizer, config.pad_token, "pad_token"),
            skiplist=frozenset(skiplist),
        )
        self._skip = np.array(sorted(self.ids.skiplist), dtype=np.int64)
        # Room for the marker, which the tokenizer does not know about.
        query_limit = config.query_length if config.truncate_queries else config.max_length
        self.fingerprint = hashlib.sha256(serialized.encode("utf-8")).hexdigest()
        self._query = _configured_copy(
            serialized, max_length=query_limit - _room(self.ids.query_marker)
        )
        self._document_limit = config.document_length - _room(self.ids.document_marker)
        self._document = _configured_copy(serialized, max_length=self._document_limit)
        self._document_full: Tokenizer | None = None
        self.window_length = 0
        self.window_stride = 0
        if config.long_documents == "windows":
            self._setup_windows(serialized)

    @classmethod
    def from_file(cls, path: str | Path, config: ColBERTConfig) -> ColBERTTokenizer:
        """Load ``tokenizer.json``; a missing or unreadable file raises ModelFilesError."""
        return cls(load_tokenizer(path), config)

    def _marker(self, tokenizer: Tokenizer, token: int | str | None, name: str) -> int | None:
        return None if token is None else self._resolve(tokenizer, token, name)

    def _resolve(self, tokenizer: Tokenizer, token: int | str, name: str) -> int:
        if isinstance(token, int):
            if token >= self.vocab_size:
                raise ModelLoadError(
                    f"{name} id {token} is outside the tokenizer's vocabulary of "
                    f"{self.vocab_size} tokens; pass {name}=<a valid id or token string>"
                )
            return token
        token_id = tokenizer.token_to_id(token)
        if token_id is None:
            raise ModelLoadError(
                f"{name} {token!r} is not in the tokenizer's vocabulary; pass "
                f"{name}=<token id or token string> to from_pretrained"
            )
        return int(token_id)

    # -- queries -----------------------------------------------------------------------------

    def query_encodings(self, texts: Sequence[str]) -> list[Encoding]:
        """Raw tokenizer encodings of queries (before the marker), for offsets.

        Offsets point into each query as prepared (:meth:`prepare_queries`)."""
        return self._query.encode_batch(self.prepare_queries(texts))

    def prepare_queries(self, texts: Sequence[str]) -> list[str]:
        """The query texts the tokenizer sees: prompt added, stripped (PyLate family),
        lower-cased (``lowercase``), lone surrogates replaced."""
        return self._prepare(texts, self.config.query_prompt)

    def prepare_documents(self, texts: Sequence[str]) -> list[str]:
        """The document texts the tokenizer sees (see :meth:`prepare_queries`)."""
        return self._prepare(texts, self.config.document_prompt)

    def _prepare(self, texts: Sequence[str], prompt: str) -> list[str]:
        cfg = self.config
        if prompt:
            texts = [prompt + t for t in texts]
        if cfg.family == "pylate":  # sentence-transformers strips every text
            texts = [t.strip() for t in texts]
        if cfg.lowercase:
            texts = [t.lower() for t in texts]
        return _utf8_safe(texts)

    def document_span(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        """Where a token's offsets in the prepared document (:meth:`prepare_documents`) lie in
        the caller's ``text``; ``None`` for a token of the prompt."""
        prompted = self.config.document_prompt + text
        shift = len(self.config.document_prompt)
        if self.config.family == "pylate":
            shift -= len(prompted) - len(prompted.lstrip())
        if end <= shift:
            return None
        return max(0, start - shift), min(len(text), end - shift)

    def tokenize_queries(self, texts: Sequence[str]) -> TokenizedQueries:
        """Tokenize queries into one padded batch (see :class:`TokenizedQueries`)."""
        return self.pad_queries(self.query_rows(texts))

    def query_rows(self, texts: Sequence[str]) -> list[IdArray]:
        """Token ids of each query with its marker, unpadded (no [MASK] yet)."""
        return [
            self._with_marker(e.ids, self.ids.query_marker) for e in self.query_encodings(texts)
        ]

    def query_width(self, row: IdArray) -> int:
        """Vectors a query row gives: its tokens, padded with [MASK] up to ``query_length``
        when ``query_expansion``."""
        if self.config.query_expansion:
            return max(self.config.query_length, len(row))
        return len(row)

    def pad_queries(self, rows: Sequence[IdArray]) -> TokenizedQueries:
        """Query rows (from :meth:`query_rows`) padded with [MASK] into one batch."""
        cfg = self.config
        lengths = [self.query_width(r) for r in rows]
        width = max(lengths, default=cfg.query_length)
        input_ids = np.full((len(rows), width), self.ids.pad, dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        mask_attention = 1 if cfg.attend_to_mask_tokens else 0
        for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
            input_ids[i, : len(row)] = row
            input_ids[i, len(row) : length] = self.ids.mask
            attention[i, : len(row)] = 1
            attention[i, len(row) : length] = mask_attention
        return TokenizedQueries(input_ids, attention, lengths)

    # -- documents ---------------------------------------------------------------------------

    def document_encodings(self, texts: Sequence[str]) -> list[Encoding]:
        """Raw tokenizer encodings of documents (before the marker), truncated, for offsets.

        A text much longer than the token limit is tokenized from a prefix (a few thousand
        characters) rather than whole: a 5.7 MB document took 10 s to tokenize only to keep
        its first 511 tokens. The prefix's encoding is used only when it is provably the
        whole text's: it filled the limit and a space lies between its last kept token and
        the cut, so no kept token's word was cut. Otherwise the whole text is tokenized.
        """
        texts = self.prepare_documents(texts)
        limit = self._document_limit
        cut = _PREFIX_CHARS_PER_TOKEN * limit
        long_ones = [i for i, t in enumerate(texts) if len(t) > cut]
        if not long_ones:
            return self._document.encode_batch(texts)
        prefixes = [t[:cut] if len(t) > cut else t for t in texts]
        encodings = self._document.encode_batch(prefixes)
        redo = [i for i in long_ones if not _prefix_suffices(encodings[i], prefixes[i], limit)]
        if redo:
            whole = self._document.encode_batch([texts[i] for i in redo])
            for i, encoding in zip(redo, whole, strict=True):
                encodings[i] = encoding
        return encodings

    def tokenize_documents(self, texts: Sequence[str]) -> list[IdArray]:
        """Token ids of each document, marker inserted, truncated, unpadded."""
        return [
            self._with_marker(e.ids, self.ids.document_marker)
            for e in self.document_encodings(texts)
        ]

    def document_keep_mask(
        self, input_ids: IdArray, attention_mask: IdArray
    ) -> npt.NDArray[np.bool_]:
        """Which document positions keep their vector: real tokens not in the skiplist."""
        keep = attention_mask.astype(bool)
        if self._skip.size:
            keep &= ~np.isin(input_ids, self._skip)
        return keep

    # -- long documents ----------------------------------------------------------------------

    def _setup_windows(self, serialized: str) -> None:
        full = _configured_copy(serialized, max_length=None)
        # How many special tokens the post-processor puts before and after the text.
        probe = "a"
        bare = full.encode(probe, add_special_tokens=False).ids
        wrapped = full.encode(probe).ids
        prefix = next(
            (i for i in range(len(wrapped)) if wrapped[i : i + len(bare)] == bare), len(wrapped)
        )
        self._prefix = prefix
        self._suffix = max(0, len(wrapped) - prefix - len(bare))
        # Same room as truncation leaves: document_length - marker - specials.
        self.window_length = self._document_limit - self._prefix - self._suffix
        if self.window_length < 1:
            raise InvalidArgumentError(
                f"document_length={self.config.document_length} leaves no room for text in a "
                f"window next to the marker and {self._prefix + self._suffix} special tokens"
            )
        stride = self.config.window_stride
        if stride is None:
            stride = max(1, self.window_length * 3 // 4)
        elif stride > self.window_length:
            raise InvalidArgumentError(
                f"window_stride={stride} exceeds the {self.window_length} text tokens of a "
                "window; tokens between windows would be skipped"
            )
        self.window_stride = stride
        self._document_full = full

    def window_starts(self, n_tokens: int) -> list[int]:
        """Start of each window over a document of ``n_tokens`` text tokens.

        Windows start every ``window_stride`` tokens; the last one is aligned to the end of
        the document so every window is full (a document that fits gets one window).
        """
        length, stride = self.window_length, self.window_stride
        if length < 1:
            raise InvalidArgumentError("windows need long_documents='windows' in the config")
        if n_tokens <= length:
            return [0]
        return [*range(0, n_tokens - length, stride), n_tokens - length]

    def document_windows(self, texts: Sequence[str]) -> list[DocumentWindows]:
        """Cut each document into overlapping windows (``long_documents="windows"``).

        A document that fits in ``document_length`` gives exactly the ids the truncating
        path gives. Each text token's vector is taken from the window where the token is
        most central, so it has the most context on both sides; the union over windows has
        one vector per text token plus each window's ``[CLS]``, marker and ``[SEP]``.
        """
        if self._document_full is None:
            raise InvalidArgumentError("windows need long_documents='windows' in the config")
        marker = self.ids.document_marker
        out: list[DocumentWindows] = []
        for enc in self._document_full.encode_batch(self.prepare_documents(texts)):
            ids = np.asarray(enc.ids, dtype=np.int64)
            stop = len(ids) - self._suffix
            n = max(0, stop - self._prefix)
            head = np.arange(self._prefix, dtype=np.int64)
            tail = np.arange(stop, len(ids), dtype=np.int64)
            starts = self.window_starts(n)
            # Owner of each text token: the window whose centre is nearest (ties: earlier).
            best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
            owner = np.zeros(n, dtype=np.int64)
            spans = [(s, min(n, s + self.window_length)) for s in starts]
            for k, (a, b) in enumerate(spans):
                distance = np.abs(2 * np.arange(a, b) - (a + b - 1))  # 2 x distance to centre
                closer = distance < best[a:b]
                best[a:b][closer] = distance[closer]
                owner[a:b][closer] = k
            rows: list[IdArray] = []
            owned: list[BoolArray] = []
            index: list[IdArray] = []
            for k, (a, b) in enumerate(spans):
                positions = np.concatenate([head, np.arange(a, b) + self._prefix, tail])
                mine = np.concatenate(
                    [np.ones(len(head), bool), owner[a:b] == k, np.ones(len(tail), bool)]
                )
                if marker is None:
                    rows.append(ids[positions])
                    owned.append(mine)
                    index.append(positions)
                    continue
                at = min(1, positions.size)  # the marker goes right after the first token
                rows.append(np.insert(ids[positions], at, marker))
                owned.append(np.insert(mine, at, True))
                index.append(np.insert(positions, at, MARKER_INDEX))
            out.append(DocumentWindows(enc, rows, owned, index))
        return out

    def token_text(self, token_id: int) -> str | None:
        """The vocabulary string of a token id (None when out of range)."""
        token = self._document.id_to_token(int(token_id))
        return None if token is None else str(token)

    @staticmethod
    def _with_marker(ids: Sequence[int], marker: int | None) -> IdArray:
        """Insert the marker right after the first token (``[CLS]``), when there is one."""
        row = np.asarray(ids, dtype=np.int64)
        return row if marker is None else np.insert(row, min(1, row.size), marker)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a Hugging Face ``tokenizer.json``; a missing or unreadable file raises
    ModelFilesError."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise ModelFilesError(
            f"could not read the tokenizer {path}: {exc}. A ColBERT model directory needs "
            "a Hugging Face fast-tokenizer file named tokenizer.json."
        ) from exc


def _utf8_safe(texts: Sequence[str]) -> list[str]:
    """Texts with lone surrogates (not encodable as UTF-8) replaced by U+FFFD, one for one,
    so character offsets stay valid."""
    return [_SURROGATES.sub("\ufffd", t) if _SURROGATES.search(t) else t for t in texts]


#: Characters per token of the prefix a long document is tokenized from (English averages
#: about 4.5; a prefix that turns out too short is simply redone on the whole text).
_PREFIX_CHARS_PER_TOKEN = 20


def _prefix_suffices(encoding: Encoding, prefix: str, limit: int) -> bool:
    """Whether tokenizing ``prefix`` gave the same truncated tokens as the whole text would."""
    if len(encoding.ids) < limit:
        return False  # the prefix ran out of tokens before the limit
    ends = [
        end
        for (_, end), special in zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
        if not special
    ]
    # A plain space separates words in every pre-tokenizer (WordPiece, Metaspace, byte-level
    # BPE) and no normalizer removes it; other whitespace-like characters may be dropped.
    return bool(ends) and prefix.find(" ", max(ends)) != -1


def _configured_copy(serialized: str, *, max_length: int | None) -> Tokenizer:
    """A private copy of the tokenizer: no padding, and truncation (right, longest first) at
    ``max_length`` or none; whatever padding and truncation ``serialized`` records is gone."""
    copy = Tokenizer.from_str(serialized)
    copy.no_padding()
    if max_length is None:
        copy.no_truncation()
    else:
        copy.enable_truncation(
            max_length=max_length, stride=0, strategy="longest_first", direction="right"
        )
    return copy


def _room(marker: int | None) -> int:
    """Positions the marker takes in a sequence (none without a marker)."""
    return 0 if marker is None else 1


def _vocabulary_ids(tokenizer: Tokenizer, serialized: str, words: Sequence[str]) -> list[int]:
    """Each word's own vocabulary id, as PyLate maps its skiplist (``convert_tokens_to_ids``):
    a word that is not a token maps to the unknown token, when the tokenizer has one."""
    unknown = _unknown_id(tokenizer, serialized)
    found: set[int] = set()
    for word in words:
        token_id = tokenizer.token_to_id(word)
        if token_id is None:
            token_id = unknown
        if token_id is not None:
            found.add(int(token_id))
    return sorted(found)


def _unknown_id(tokenizer: Tokenizer, serialized: str) -> int | None:
    model = json.loads(serialized).get("model", {})
    if isinstance(model.get("unk_id"), int):  # Unigram (SentencePiece)
        return int(model["unk_id"])
    token = model.get("unk_token")
    found = tokenizer.token_to_id(token) if isinstance(token, str) else None
    return None if found is None else int(found)


def _first_ids(tokenizer: Tokenizer, words: Sequence[str]) -> list[int]:
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False).ids
        if pieces:
            ids.append(int(pieces[0]))
    return ids
