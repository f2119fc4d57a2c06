"""Which ColBERT settings a model's files give, and which file gave each one.

Two families of rules (see :attr:`ColBERTConfig.family`):

- ``"fastembed"``: fastembed's registry models, and directories with no PyLate settings. The
  markers, lengths and tokens come from the registry, ``tokenizer_config.json``,
  ``special_tokens_map.json`` and ``config.json``.
- ``"pylate"``: models configured by PyLate. Where a directory has PyLate's own
  ``config_sentence_transformers.json``, it is what PyLate runs, so it wins: its fields, PyLate's
  defaults for those it lacks, and ``sentence_bert_config.json``'s ``do_lower_case``. A directory
  with only ``onnx_config.json`` (written by ``pylate-onnx-export``) is obeyed as written,
  field by field, token ids included.

Keyword arguments given to :meth:`~colbert_plugins.ColBERT.from_pretrained` win over both;
``family=`` switches a model's family (e.g. ``family="pylate"`` for a registry model whose
repository also carries a PyLate config).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenizers import Tokenizer

from .config import ColBERTConfig
from .errors import ModelFilesError, ModelLoadError
from .hub import ModelFiles

__all__ = [
    "EXPORTER_KEYS",
    "ONNX_CONFIG",
    "PYLATE_KEYS",
    "SBERT_CONFIG",
    "ST_CONFIG",
    "ModelSettings",
    "encoder_positions",
    "infer_config",
    "resolve_settings",
]

ST_CONFIG = "config_sentence_transformers.json"
ONNX_CONFIG = "onnx_config.json"
SBERT_CONFIG = "sentence_bert_config.json"

#: Keys of a PyLate ``config_sentence_transformers.json`` that make a model PyLate-configured.
PYLATE_KEYS = (
    "query_prefix",
    "document_prefix",
    "query_length",
    "document_length",
    "do_query_expansion",
    "attend_to_expansion_tokens",
    "skiplist_words",
)
#: Keys ``pylate-onnx-export`` writes and PyLate's own ``save`` never does: a
#: ``config_sentence_transformers.json`` holding them was written by the exporter (0.1.0
#: named its ``onnx_config.json`` so).
EXPORTER_KEYS = ("uses_token_type_ids", "query_prefix_id", "document_prefix_id", "mask_token_id")

#: PyLate's defaults for settings its config does not carry (``pylate.models.ColBERT``).
_PYLATE_DEFAULTS: Mapping[str, Any] = {
    "query_marker": "[Q] ",
    "document_marker": "[D] ",
    "query_length": 32,
    "document_length": 180,
    "query_expansion": True,
    "attend_to_mask_tokens": False,
    "skiplist": tuple(string.punctuation),
}

_SOURCE_DEFAULT = "default"
_SOURCE_ARGUMENT = "argument"


@dataclass(frozen=True)
class ModelSettings:
    """A model's ColBERT settings and where each came from.

    Attributes:
        config: the settings in force.
        sources: for each config field set by something other than the defaults, where it
            came from: ``"<file>: <key>"``, ``"registry"``, ``"PyLate default"`` or
            ``"argument"`` (a keyword argument).
        warnings: things about the files a user should know (e.g. a known exporter defect).
        prompts: the sentence-transformers prompts the model's config defines.
        uses_token_type_ids: what the model's files say about ``token_type_ids`` (``None``:
            nothing); the graph's declared inputs decide what is fed.
    """

    config: ColBERTConfig
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    prompts: Mapping[str, str] = field(default_factory=dict)
    uses_token_type_ids: bool | None = None

    def source(self, name: str) -> str:
        """Where field ``name`` came from (``"default"`` when nothing set it)."""
        return self.sources.get(name, _SOURCE_DEFAULT)


def infer_config(
    files: ModelFiles, overrides: Mapping[str, Any], tokenizer: Tokenizer | None = None
) -> ColBERTConfig:
    """Combine defaults, the registry, the model's own files and keyword overrides."""
    return resolve_settings(files, overrides, tokenizer).config


def resolve_settings(
    files: ModelFiles, overrides: Mapping[str, Any], tokenizer: Tokenizer | None = None
) -> ModelSettings:
    """The model's settings with their sources (see the module docstring for the rules).

    With ``tokenizer``, PyLate prefixes are matched against its vocabulary: the exact text
    (PyLate's ``"[Q] "`` keeps its trailing space), else the text stripped; a prefix that is
    neither raises :class:`~colbert_plugins.errors.ModelLoadError` naming the file and field.
    """
    values = _Values()
    _read_special_tokens(files, values)
    st = files.json(ST_CONFIG)
    exporter_st = bool(st) and any(key in st for key in EXPORTER_KEYS)
    own_st = bool(st) and not exporter_st and _is_pylate(st)
    onnx_name, onnx = (
        (ONNX_CONFIG, files.json(ONNX_CONFIG))
        if files.json(ONNX_CONFIG)
        else (ST_CONFIG, st)
        if exporter_st
        else (ONNX_CONFIG, {})
    )
    has_pylate = own_st or bool(onnx)
    fastembed_model = files.known is not None and files.known.family == "fastembed"
    family = overrides.get("family")
    if family is None:
        family = "fastembed" if fastembed_model or not has_pylate else "pylate"
        if has_pylate and fastembed_model and files.known is not None:
            values.warnings.append(
                f"{files.known.repo_id} is fastembed's registry model: its PyLate config is "
                "not applied (fastembed's rules, as fastembed runs it); pass family='pylate' "
                "to follow PyLate instead"
            )
    origin = _family_source(family, own_st, onnx_name, files)
    values.set("family", family, _SOURCE_ARGUMENT if "family" in overrides else origin)
    limits = _SequenceLimits.read(files)
    found = limits.max_length(family)
    if found is not None:
        length, source = found
        values.set("max_length", length, source)
        values.set("document_length", length, source)
    prompts: dict[str, str] = {}
    uses_token_type_ids = None
    if family == "pylate":
        for name, value in _PYLATE_DEFAULTS.items():
            values.set(name, value, "PyLate default")
        if own_st:
            _read_pylate(ST_CONFIG, st, values, ids=False)
            _read_lower_case(SBERT_CONFIG, files.json(SBERT_CONFIG), values)
            prompts = _read_prompts(st, values)
        elif onnx:
            _read_lower_case(SBERT_CONFIG, files.json(SBERT_CONFIG), values)
            _read_pylate(onnx_name, onnx, values, ids=True)
            _read_lower_case(onnx_name, onnx, values)
        if exporter_st:
            values.warnings.append(
                f"{ST_CONFIG} was written by pylate-onnx-export 0.1.0, which loads every model "
                "with query expansion forced off: its do_query_expansion=false and "
                "attend_to_expansion_tokens=false may not be what the model was trained with, "
                "and it records no lower-casing. Check the original model's config and pass "
                "query_expansion=True (or lowercase=True) if it says so, or export the model "
                "again with `colbert-plugins export`."
            )
        if onnx:
            _read_embedding_dim(onnx_name, onnx, values)
            flag = onnx.get("uses_token_type_ids")
            uses_token_type_ids = _typed(
                onnx_name, "uses_token_type_ids", flag, bool, "true or false"
            )
        # PyLate pads with the mask token (it sets the tokenizer's pad id to the mask id).
        values.set("pad_token", values.values["mask_token"], values.source("mask_token"))
    elif files.known is not None:
        for name, value in files.known.config.items():
            values.set(name, value, "registry")
    if files.known is not None and files.known.dim and "embedding_dim" not in values.values:
        values.set("embedding_dim", files.known.dim, "registry (model card)")
    for name, value in overrides.items():
        values.set(name, value, _SOURCE_ARGUMENT)
    _fit_lengths(values, overrides)
    if family == "pylate":
        _note_ignored_limit(limits, values)
    if tokenizer is not None:
        _match_prefixes(values, tokenizer)
    return ModelSettings(
        config=ColBERTConfig().replace(**values.values),
        sources=dict(values.sources),
        warnings=tuple(values.warnings),
        prompts=prompts,
        uses_token_type_ids=uses_token_type_ids,
    )


# -- collecting values ------------------------------------------------------------------------


class _Values:
    """Config values being collected, each with its source."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.prefix_keys: dict[str, str] = {}  # marker field -> "file: key" of a prefix text
        self.warnings: list[str] = []

    def set(self, name: str, value: Any, source: str) -> None:
        self.values[name] = value
        self.sources[name] = source
        self.prefix_keys.pop(name, None)

    def source(self, name: str) -> str:
        return self.sources.get(name, _SOURCE_DEFAULT)


def _family_source(family: str, own_st: bool, onnx_name: str, files: ModelFiles) -> str:
    if files.known is not None and files.known.family == family:
        return "registry"
    if family == "pylate":
        return f"{ST_CONFIG} (PyLate's own)" if own_st else onnx_name
    return _SOURCE_DEFAULT


def _is_pylate(st: Mapping[str, Any]) -> bool:
    return st.get("model_type") == "ColBERT" or any(key in st for key in PYLATE_KEYS)


def _read_special_tokens(files: ModelFiles, values: _Values) -> None:
    for key in ("mask_token", "pad_token"):
        for filename in ("tokenizer_config.json", "special_tokens_map.json"):
            token = _token_text(files.json(filename).get(key))
            if token:
                values.set(key, token, f"{filename}: {key}")
                break


@dataclass(frozen=True)
class _SequenceLimits:
    """The sequence limits a model's files declare: the tokenizer's and the encoder's.

    ``tokenizer``: ``tokenizer_config.json``'s ``model_max_length``. ``positions``: what the
    encoder physically accepts, ``config.json``'s ``max_position_embeddings`` (less the two
    positions RoBERTa-style models reserve for the padding offset).
    """

    tokenizer: int | None
    positions: int | None

    TOKENIZER_SOURCE = "tokenizer_config.json: model_max_length"
    POSITIONS_SOURCE = "config.json: max_position_embeddings"

    @classmethod
    def read(cls, files: ModelFiles) -> _SequenceLimits:
        positions = encoder_positions(files.json("config.json"))
        return cls(
            _sane_length(files.json("tokenizer_config.json").get("model_max_length")), positions
        )

    def max_length(self, family: str) -> tuple[int, str] | None:
        """The longest sequence the family's reference feeds the encoder, and its source.

        fastembed (and colbert-ai) truncate at the smallest limit the files declare. PyLate
        never truncates by the tokenizer's ``model_max_length``: its ``tokenize`` sets the first
        module's ``max_seq_length`` to ``query_length``/``document_length`` less the prefix,
        and sentence-transformers passes that as ``max_length`` to every tokenizer call. What
        it leaves behind is saved with the checkpoint: ``max_seq_length`` in
        ``sentence_bert_config.json`` (which sentence-transformers hands to the tokenizer as
        ``model_max_length`` when it loads the checkpoint again), the tokenizer's fixed padding
        and truncation in ``tokenizer.json`` (and ``max_length`` in ``tokenizer_config.json``),
        typically ``document_length - 1``. Only the encoder's positions bound PyLate's lengths
        (a longer sequence fails in its position embeddings).
        """
        found: list[tuple[int, str]] = []
        if self.tokenizer is not None and family != "pylate":
            found.append((self.tokenizer, self.TOKENIZER_SOURCE))
        if self.positions is not None:
            found.append((self.positions, self.POSITIONS_SOURCE))
        return min(found, key=lambda item: item[0]) if found else None


def encoder_positions(model_cfg: Mapping[str, Any]) -> int | None:
    """The longest sequence the encoder physically accepts, from ``config.json``'s
    ``max_position_embeddings`` (RoBERTa-style models reserve two positions for the padding
    offset); ``None`` when it declares none."""
    positions = _sane_length(model_cfg.get("max_position_embeddings"))
    if positions is not None and model_cfg.get("model_type") in {"roberta", "xlm-roberta"}:
        positions -= 2
    return positions


def _sane_length(value: Any) -> int | None:
    """A plausible sequence limit, or None (tokenizers write 1e30 for "no limit")."""
    if isinstance(value, int) and not isinstance(value, bool) and 3 <= value <= 1_000_000:
        return value
    return None


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


# -- PyLate files -------------------------------------------------------------------------------


def _typed(filename: str, key: str, value: Any, kind: type, expected: str) -> Any:
    """``value`` when it has the expected JSON type (or is absent), else ModelFilesError."""
    ok = value is None or (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    )
    if not ok:
        raise ModelFilesError(
            f"{filename}: {key} must be {expected}, got {value!r}; fix the file or pass the "
            "setting as a keyword argument to from_pretrained"
        )
    return value


def _read_pylate(filename: str, cfg: Mapping[str, Any], values: _Values, *, ids: bool) -> None:
    """Settings from a PyLate config (``ids``: also the token ids ``onnx_config.json`` holds)."""

    def read(key: str, kind: type, expected: str, name: str, convert: Callable[[Any], Any]) -> None:
        value = _typed(filename, key, cfg.get(key), kind, expected)
        if value is not None:
            values.set(name, convert(value), f"{filename}: {key}")

    for key, name in (("query_prefix", "query_marker"), ("document_prefix", "document_marker")):
        read(key, str, "a string", name, lambda text: text or None)  # "": no prefix
        if isinstance(cfg.get(key), str) and cfg[key]:
            values.prefix_keys[name] = f"{filename}: {key}"
    read("query_length", int, "an integer", "query_length", int)
    read("document_length", int, "an integer", "document_length", int)
    read("do_query_expansion", bool, "true or false", "query_expansion", bool)
    read("attend_to_expansion_tokens", bool, "true or false", "attend_to_mask_tokens", bool)
    words = _typed(filename, "skiplist_words", cfg.get("skiplist_words"), list, "a list of strings")
    if words is not None:
        if not all(isinstance(w, str) for w in words):
            raise ModelFilesError(f"{filename}: skiplist_words must be a list of strings")
        values.set("skiplist", tuple(words), f"{filename}: skiplist_words")
    if not ids:
        return
    read("query_prefix_id", int, "a token id", "query_marker", int)
    read("document_prefix_id", int, "a token id", "document_marker", int)
    read("mask_token_id", int, "a token id", "mask_token", int)


def _read_lower_case(filename: str, cfg: Mapping[str, Any], values: _Values) -> None:
    flag = _typed(filename, "do_lower_case", cfg.get("do_lower_case"), bool, "true or false")
    if flag is not None:
        values.set("lowercase", flag, f"{filename}: do_lower_case")


def _read_embedding_dim(filename: str, cfg: Mapping[str, Any], values: _Values) -> None:
    dim = _typed(filename, "embedding_dim", cfg.get("embedding_dim"), int, "an integer")
    if dim is not None:
        values.set("embedding_dim", dim, f"{filename}: embedding_dim")


def _read_prompts(st: Mapping[str, Any], values: _Values) -> dict[str, str]:
    prompts = _typed(ST_CONFIG, "prompts", st.get("prompts"), dict, "an object of strings")
    prompts = dict(prompts or {})
    if not all(isinstance(p, str) for p in prompts.values()):
        raise ModelFilesError(f"{ST_CONFIG}: prompts must map names to strings")
    default = _typed(
        ST_CONFIG, "default_prompt_name", st.get("default_prompt_name"), str, "a string"
    )
    if default:
        if default not in prompts:
            raise ModelFilesError(
                f"{ST_CONFIG}: default_prompt_name {default!r} is not one of the prompts "
                f"({', '.join(map(repr, prompts)) or 'none defined'})"
            )
        # sentence-transformers puts the default prompt before every text, queries and
        # documents alike.
        for name in ("query_prompt", "document_prompt"):
            values.set(name, prompts[default], f"{ST_CONFIG}: default_prompt_name")
    return prompts


# -- final checks --------------------------------------------------------------------------------


def _fit_lengths(values: _Values, overrides: Mapping[str, Any]) -> None:
    """Lengths read from files never exceed what the encoder accepts (an explicit override
    that does is reported by ColBERTConfig's validation). A model whose files declare no
    sequence limit (``onnx_config.json`` alone) gets room for the lengths they declare."""
    lengths = [
        value
        for name in ("query_length", "document_length")
        if isinstance(value := values.values.get(name), int)
    ]
    if "max_length" not in values.values and lengths:
        values.set("max_length", max([ColBERTConfig.max_length, *lengths]), _SOURCE_DEFAULT)
    limit = values.values.get("max_length", ColBERTConfig.max_length)
    for name in ("query_length", "document_length"):
        value = values.values.get(name)
        if name not in overrides and isinstance(value, int) and value > limit:
            values.set(name, limit, values.source(name) + f" (capped at max_length {limit})")


def _note_ignored_limit(limits: _SequenceLimits, values: _Values) -> None:
    """Say so when a PyLate model's tokenizer declares a limit below the lengths in force."""
    if limits.tokenizer is None:
        return
    below = [
        f"{name} {value}"
        for name in ("query_length", "document_length")
        if isinstance(value := values.values.get(name), int) and value > limits.tokenizer
    ]
    if below:
        values.warnings.append(
            f"{limits.TOKENIZER_SOURCE} is {limits.tokenizer}, below {' and '.join(below)}: "
            "ignored, as PyLate ignores it (it truncates at query_length/document_length; a "
            "checkpoint saved after PyLate tokenized carries document_length - 1 there)"
        )


def _match_prefixes(values: _Values, tokenizer: Tokenizer) -> None:
    """Resolve prefix texts read from PyLate files to tokens of the vocabulary."""
    for name, origin in list(values.prefix_keys.items()):
        text = values.values[name]
        if tokenizer.token_to_id(text) is not None:
            continue
        stripped = text.strip()
        if stripped and tokenizer.token_to_id(stripped) is not None:
            values.values[name] = stripped
            continue
        raise ModelLoadError(
            f"{origin} is {text!r}, which is not a token of the model's tokenizer.json (PyLate "
            "adds its prefixes to the vocabulary when it saves a model: save the tokenizer "
            f"with the model, or pass {name}=<token id or token string> to from_pretrained)"
        )
