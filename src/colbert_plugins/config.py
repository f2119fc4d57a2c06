"""The ColBERT knobs, in one frozen and validated configuration.

Defaults follow Stanford ColBERT (colbert-ai) and fastembed; see docs/models.md, "ColBERT
semantics" section. A model's own files (and the registry of known models) supply values,
and keyword overrides given to :meth:`colbert_plugins.ColBERT.from_pretrained` win over both.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["DEFAULT_SKIPLIST", "FAMILIES", "LONG_DOCUMENT_MODES", "ColBERTConfig"]

#: Characters whose (first) token id is dropped from document vectors, as in colbert-ai.
DEFAULT_SKIPLIST: tuple[str, ...] = tuple(string.punctuation)

#: Values of ``ColBERTConfig.long_documents``.
LONG_DOCUMENT_MODES: tuple[str, ...] = ("truncate", "windows")

#: Values of ``ColBERTConfig.family``: whose rules the model follows where the references differ.
FAMILIES: tuple[str, ...] = ("fastembed", "pylate")

#: Smallest sequence that holds ``[CLS] marker [SEP]``.
_MIN_LENGTH = 3


@dataclass(frozen=True)
class ColBERTConfig:
    """Every knob that changes what a ColBERT model computes.

    Lengths count every token the encoder sees, including ``[CLS]``, the marker and ``[SEP]``.

    Attributes:
        family: whose rules apply where fastembed (and colbert-ai) and PyLate differ:
            ``"fastembed"`` (the default, and fastembed's registry models) or ``"pylate"``
            (models configured by PyLate; set from their files). ``"pylate"`` strips each
            text before tokenizing it, maps each skiplist word to its exact vocabulary id
            (unknown words: the unknown-token id, as PyLate does) rather than to the first
            piece of tokenizing it, and truncates queries at ``query_length`` unless
            ``truncate_queries`` says otherwise.
        query_length: queries shorter than this are padded with the mask token up to it
            (query augmentation, when ``query_expansion``); the padded positions' vectors
            are kept.
        document_length: documents are truncated to this many tokens (default: max_length).
        max_length: the encoder's maximum sequence length (position embeddings); no input
            is ever longer.
        query_marker: the ``[Q]`` marker inserted right after ``[CLS]``, as a token id or a
            token string of the vocabulary (PyLate's ``"[Q] "`` includes its trailing space);
            ``None`` for a model trained without one (nothing is inserted).
        document_marker: the ``[D]`` marker, likewise.
        mask_token: the token that pads queries (id or string).
        pad_token: the token that pads batches (id or string).
        attend_to_mask_tokens: attention mask value of the query padding tokens
            (``False``: colbert-ai and fastembed; ``True``: Jina ColBERT). Always ``False``
            without ``query_expansion`` (as in PyLate).
        query_expansion: pad queries with the mask token up to ``query_length`` and keep
            those vectors (PyLate's ``do_query_expansion``); ``False``: queries keep only
            the vectors of their own tokens.
        truncate_queries: cut queries longer than ``query_length`` (colbert-ai, PyLate)
            instead of keeping all their tokens (fastembed); ``None`` (default): the
            family's rule.
        lowercase: lower-case texts before tokenizing them (sentence-transformers'
            ``do_lower_case``), after prompts are added and texts stripped.
        query_prompt: text put before every query before tokenization (a
            sentence-transformers prompt; ``""``: none).
        document_prompt: likewise for documents.
        embedding_dim: the size of the vectors the model's files declare; checked against the
            graph's output when the model loads (``None``: not declared).
        skiplist: strings whose first token id is dropped from document vectors
            (punctuation by default); queries keep every vector.
        normalize_scores: divide MaxSim by the number of query vectors, giving scores in
            [-1, 1] that are comparable across queries.
        long_documents: what happens to a document longer than ``document_length``:
            ``"truncate"`` (default, as colbert-ai and fastembed) drops its tail;
            ``"windows"`` encodes it as overlapping windows of ``document_length`` tokens
            (each with its own ``[CLS] [D] ... [SEP]``) and keeps the union of their vectors,
            one vector per document token (see :meth:`ColBERTTokenizer.document_windows`).
        window_stride: tokens between the starts of consecutive windows (``None``: three
            quarters of a window's content, i.e. of ``document_length`` minus ``[CLS]``, the
            marker and ``[SEP]``); at most that content length, so no token is skipped.

    >>> ColBERTConfig().query_length
    32
    >>> ColBERTConfig(query_length=0)
    Traceback (most recent call last):
    ...
    colbert_plugins.errors.InvalidArgumentError: query_length must be an integer >= 3 \
(room for [CLS], the marker and [SEP]), got 0
    """

    query_length: int = 32
    document_length: int = None  # type: ignore[assignment]  # None: max_length
    max_length: int = 512
    query_marker: int | str | None = 1
    document_marker: int | str | None = 2
    mask_token: int | str = "[MASK]"
    pad_token: int | str = "[PAD]"
    attend_to_mask_tokens: bool = False
    truncate_queries: bool = None  # type: ignore[assignment]  # None: the family's rule
    skiplist: tuple[str, ...] = field(default=DEFAULT_SKIPLIST)
    normalize_scores: bool = False
    long_documents: str = "truncate"
    window_stride: int | None = None
    family: str = "fastembed"
    query_expansion: bool = True
    lowercase: bool = False
    query_prompt: str = ""
    document_prompt: str = ""
    embedding_dim: int | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InvalidArgumentError(
                f"family must be one of {', '.join(map(repr, FAMILIES))}, got {self.family!r}"
            )
        if self.document_length is None:
            object.__setattr__(self, "document_length", self.max_length)
        if self.truncate_queries is None:
            object.__setattr__(self, "truncate_queries", self.family == "pylate")
        for name in ("query_length", "document_length", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < _MIN_LENGTH:
                raise InvalidArgumentError(
                    f"{name} must be an integer >= {_MIN_LENGTH} (room for [CLS], the marker "
                    f"and [SEP]), got {value!r}"
                )
        for name in ("query_length", "document_length"):
            if getattr(self, name) > self.max_length:
                raise InvalidArgumentError(
                    f"{name}={getattr(self, name)} exceeds the model's max_length="
                    f"{self.max_length}; choose {name} <= {self.max_length}"
                )
        for name in ("query_marker", "document_marker", "mask_token", "pad_token"):
            value = getattr(self, name)
            if value is None and name.endswith("marker"):
                continue  # a model trained without this marker
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidArgumentTypeError(
                    f"{name} must be a token id (int) or a token string"
                    f"{' (or None: no marker)' if name.endswith('marker') else ''}, got "
                    f"{type(value).__name__}"
                )
            if (isinstance(value, int) and value < 0) or (isinstance(value, str) and not value):
                raise InvalidArgumentError(f"{name} must be a non-negative id or a non-empty token")
        for name in (
            "attend_to_mask_tokens",
            "truncate_queries",
            "normalize_scores",
            "query_expansion",
            "lowercase",
        ):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentTypeError(
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        if not self.query_expansion:
            # PyLate: without expansion there are no expansion tokens to attend to.
            object.__setattr__(self, "attend_to_mask_tokens", False)
        for name in ("query_prompt", "document_prompt"):
            if not isinstance(getattr(self, name), str):
                raise InvalidArgumentTypeError(
                    f'{name} must be a string ("" for none), got {getattr(self, name)!r}'
                )
        dim = self.embedding_dim
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise InvalidArgumentError(
                f"embedding_dim must be None or an integer >= 1, got {dim!r}"
            )
        skiplist = self.skiplist
        if isinstance(skiplist, str) or not all(isinstance(s, str) for s in skiplist):
            raise InvalidArgumentTypeError(
                "skiplist must be a sequence of strings (e.g. list(string.punctuation)), got "
                f"{skiplist!r}"
            )
        object.__setattr__(self, "skiplist", tuple(skiplist))
        self._check_long_documents()

    def _check_long_documents(self) -> None:
        if self.long_documents not in LONG_DOCUMENT_MODES:
            raise InvalidArgumentError(
                f"long_documents must be one of {', '.join(map(repr, LONG_DOCUMENT_MODES))}, "
                f"got {self.long_documents!r}"
            )
        content = self.document_length - _MIN_LENGTH  # tokens of text in one window
        if self.long_documents == "windows" and content < 1:
            raise InvalidArgumentError(
                f"long_documents='windows' needs document_length >= {_MIN_LENGTH + 1} (room for "
                f"[CLS], the marker, [SEP] and some text), got {self.document_length}"
            )
        stride = self.window_stride
        if stride is None:
            return
        if isinstance(stride, bool) or not isinstance(stride, int):
            raise InvalidArgumentTypeError(
                f"window_stride must be None or a positive integer, got {stride!r}"
            )
        if not 1 <= stride <= max(1, content):
            raise InvalidArgumentError(
                f"window_stride must be between 1 and {max(1, content)} (document_length minus "
                f"[CLS], the marker and [SEP]) so that windows overlap or touch, got {stride}"
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the fields, i.e. the overrides ``from_pretrained`` accepts."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> ColBERTConfig:
        """A copy with some fields changed (validated again); unknown names raise TypeError."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise InvalidArgumentTypeError(
                f"unknown ColBERTConfig field(s) {', '.join(unknown)}; valid fields are "
                f"{', '.join(self.field_names())}"
            )
        if "family" in changes and "truncate_queries" not in changes:
            changes = {**changes, "truncate_queries": None}  # the new family's rule
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ColBERTConfig:
        """Build from a mapping of field names (as written by :meth:`to_dict`)."""
        return cls().replace(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-serializable values."""
        values = dataclasses.asdict(self)
        values["skiplist"] = list(self.skiplist)
        return values
