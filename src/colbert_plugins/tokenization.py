"""ColBERT tokenization: markers, query augmentation, truncation and the punctuation skiplist.

:class:`ColBERTTokenizer` wraps a Hugging Face ``tokenizers.Tokenizer``. It keeps two private
copies, one configured for queries and one for documents, each configured once at
construction and never changed afterwards, so one instance is safe to share between threads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from .config import ColBERTConfig
from .errors import ModelFilesError, ModelLoadError

__all__ = ["ColBERTTokenizer", "TokenIds", "TokenizedQueries"]

IdArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TokenIds:
    """The special token ids a ColBERT model needs, resolved against its vocabulary."""

    query_marker: int
    document_marker: int
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


class ColBERTTokenizer:
    """Turns texts into ColBERT encoder inputs.

    Queries: ``[CLS] [Q] tokens [SEP]`` padded with the mask token up to ``query_length``
    (attention 0 on the padding unless ``attend_to_mask_tokens``). Documents:
    ``[CLS] [D] tokens [SEP]`` truncated to ``document_length`` tokens.
    """

    def __init__(self, tokenizer: Tokenizer, config: ColBERTConfig) -> None:
        self.config = config
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.ids = TokenIds(
            query_marker=self._resolve(tokenizer, config.query_marker, "query_marker"),
            document_marker=self._resolve(tokenizer, config.document_marker, "document_marker"),
            mask=self._resolve(tokenizer, config.mask_token, "mask_token"),
            pad=self._resolve(tokenizer, config.pad_token, "pad_token"),
            skiplist=frozenset(_first_ids(tokenizer, config.skiplist)),
        )
        self._skip = np.array(sorted(self.ids.skiplist), dtype=np.int64)
        # Room for the marker, which the tokenizer does not know about.
        query_limit = config.query_length if config.truncate_queries else config.max_length
        self.fingerprint = hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()
        self._query = _configured_copy(tokenizer, max_length=query_limit - 1)
        self._document = _configured_copy(tokenizer, max_length=config.document_length - 1)

    @classmethod
    def from_file(cls, path: str | Path, config: ColBERTConfig) -> ColBERTTokenizer:
        """Load ``tokenizer.json``; a missing or unreadable file raises ModelFilesError."""
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelFilesError(
                f"could not read the tokenizer {path}: {exc}. A ColBERT model directory needs "
                "a Hugging Face fast-tokenizer file named tokenizer.json."
            ) from exc
        return cls(tokenizer, config)

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
        """Raw tokenizer encodings of queries (before the marker), for offsets."""
        return self._query.encode_batch(list(texts))

    def tokenize_queries(self, texts: Sequence[str]) -> TokenizedQueries:
        """Tokenize queries into one padded batch (see :class:`TokenizedQueries`)."""
        cfg = self.config
        rows = [
            self._with_marker(e.ids, self.ids.query_marker) for e in self.query_encodings(texts)
        ]
        lengths = [max(cfg.query_length, len(r)) for r in rows]
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
        """Raw tokenizer encodings of documents (before the marker), for offsets."""
        return self._document.encode_batch(list(texts))

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

    @staticmethod
    def _with_marker(ids: Sequence[int], marker: int) -> IdArray:
        """Insert the marker right after the first token (``[CLS]``)."""
        row = np.asarray(ids, dtype=np.int64)
        return np.insert(row, min(1, row.size), marker)


def _configured_copy(tokenizer: Tokenizer, *, max_length: int) -> Tokenizer:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length=max_length)
    return copy


def _first_ids(tokenizer: Tokenizer, words: Sequence[str]) -> list[int]:
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False).ids
        if pieces:
            ids.append(int(pieces[0]))
    return ids
