"""What the LangChain and LlamaIndex adapters are built on, written once for both.

Both frameworks are pydantic, so the adapters share pydantic pieces:

- :class:`Lazy`, a value built on first use for one set of settings (thread-safe), shared by
  copies of a component while those settings stay the same: the ColBERT model
  (:class:`ModelSlot`) and the pooled-vector encoder;
- :class:`ColBERTComponent`, a mixin for a class that holds a ColBERT model: its ``model``
  argument (a name, a path or a :class:`~colbert_plugins.ColBERT`), ``model_kwargs`` (also
  given as plain keywords), the lazily loaded :attr:`~ColBERTComponent.colbert`, and copies
  (``model_copy(update=...)``, ``copy.deepcopy``) that use their own settings;
- :class:`PooledFields`, the pooled-vector settings of the two embedding classes;
- field types whose validators call :mod:`colbert_plugins.checks` (:data:`PositiveInt`, ...)
  and :class:`Checked`, which turns a pydantic ``ValidationError`` from a constructor
  (``from_dict`` included) into this library's own exception types.

Imported only by the adapters: it needs pydantic, which either framework installs.
"""

from __future__ import annotations

import inspect
import os
import reprlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from typing_extensions import Self

from .checks import check_int, check_number, check_optional_int, check_text
from .config import ColBERTConfig
from .errors import ColBERTError, InvalidArgumentError, InvalidArgumentTypeError
from .model import ColBERT
from .pooled import POOLINGS, PooledEmbedder, Pooling
from .pooling import DEFAULT_D_PROJ, DEFAULT_K_SIM, DEFAULT_R_REPS, DEFAULT_SEED, MAX_K_SIM
from .registry import DEFAULT_MODEL

__all__ = [
    "LOAD_KWARGS",
    "Checked",
    "ColBERTComponent",
    "Lazy",
    "ModelSlot",
    "NonNegativeInt",
    "OptionalNumber",
    "OptionalPositiveInt",
    "PooledComponent",
    "PositiveInt",
    "model_field",
    "split_model",
]

T = TypeVar("T")

#: Keywords ``ColBERT.from_pretrained`` accepts besides the model: loading options and every
#: ColBERTConfig field.
LOAD_KWARGS = frozenset(
    name
    for name, param in inspect.signature(ColBERT.from_pretrained).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
) | frozenset(ColBERTConfig.field_names())

_SWAP_LOCK = threading.Lock()


class Lazy(Generic[T]):
    """A value built on first use, exactly once (thread-safe), for the settings ``key``.

    Copies of a component (``copy.deepcopy``, pydantic's ``model_copy``) share it: building
    is expensive and the value immutable. A copy whose settings differ builds its own (see
    :meth:`for_key`). Pickling drops the value: an unpickled component builds it again.
    """

    def __init__(self, key: Any = None, value: T | None = None) -> None:
        self.key = key
        self._value = value
        self._lock = threading.Lock()

    def get(self, build: Callable[[], T]) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = build()
                    self._value = value
        return value

    @staticmethod
    def for_key(owner: Any, attr: str, key: Any, build: Callable[[], T]) -> T:
        """The value of ``owner``'s :class:`Lazy` ``attr`` for ``key``; a new one (built on
        first use) replaces it on ``owner`` when it was made for other settings."""
        holder: Lazy[T] = getattr(owner, attr)
        if holder.key != key:
            with _SWAP_LOCK:
                holder = getattr(owner, attr)
                if holder.key != key:
                    holder = Lazy(key)
                    setattr(owner, attr, holder)
        return holder.get(build)

    def __deepcopy__(self, memo: dict[int, Any]) -> Lazy[T]:
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {}  # ONNX Runtime sessions cannot be pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


#: The ColBERT model of a component: given, or loaded on first use.
ModelSlot = Lazy[ColBERT]


def split_model(
    model: Any, load_kwargs: Mapping[str, Any], owner: str
) -> tuple[str, ColBERT | None, dict[str, Any]]:
    """Validate a ``model`` argument: (name, instance or None, validated load keywords).

    >>> split_model("colbert-ir/colbertv2.0", {"threads": 2}, "Reranker")
    ('colbert-ir/colbertv2.0', None, {'threads': 2})
    """
    if isinstance(model, ColBERT):
        if load_kwargs:
            raise InvalidArgumentError(
                "model keyword arguments (" + ", ".join(sorted(load_kwargs)) + ") only apply "
                "when the model is loaded from a name or path, not to a ColBERT instance"
            )
        return model.name, model, {}
    if isinstance(model, str | os.PathLike):
        name = os.fspath(model)
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("model must be a non-empty model name or path")
    else:
        raise InvalidArgumentTypeError(
            "model must be a model name, a directory or a ColBERT instance, got "
            f"{type(model).__name__}"
        )
    unknown = sorted(set(load_kwargs) - LOAD_KWARGS)
    if unknown:
        raise InvalidArgumentTypeError(
            f"{owner}() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"model keywords are: {', '.join(sorted(LOAD_KWARGS))}"
        )
    return name, None, dict(load_kwargs)


# -- field types: pydantic constraints whose validators call colbert_plugins.checks -----------


def _positive_int(value: Any, info: ValidationInfo) -> int:
    return check_int(value, info.field_name or "value")


def _non_negative_int(value: Any, info: ValidationInfo) -> int:
    return check_int(value, info.field_name or "value", minimum=0)


def _optional_positive_int(value: Any, info: ValidationInfo) -> int | None:
    return check_optional_int(value, info.field_name or "value")


def _optional_number(value: Any, info: ValidationInfo) -> float | None:
    return None if value is None else check_number(value, info.field_name or "value")


#: An integer >= 1 (not a bool): :func:`~colbert_plugins.checks.check_int`.
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
#: An integer >= 0 (not a bool).
NonNegativeInt = Annotated[int, BeforeValidator(_non_negative_int)]
#: ``None`` or an integer >= 1.
OptionalPositiveInt = Annotated[int | None, BeforeValidator(_optional_positive_int)]
#: ``None`` or a real number (not a bool, not NaN), as a float.
OptionalNumber = Annotated[float | None, BeforeValidator(_optional_number)]

#: pydantic error types that mean "wrong kind of value" (the rest: a wrong value).
_TYPE_ERRORS = frozenset(
    {"is_instance_of", "is_subclass_of", "literal_error", "missing", "extra_forbidden"}
)


@contextmanager
def _our_errors(owner: str) -> Iterator[None]:
    """Raise a pydantic ``ValidationError`` as this library's exception: the one a validator
    raised, or one made from pydantic's first error."""
    try:
        yield
    except ValidationError as exc:
        errors = exc.errors()
        for error in errors:
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, ColBERTError):
                raise cause from None
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or owner
        message = f"{owner}: {where}: {first['msg']} (got {reprlib.repr(first.get('input'))})"
        kind = first["type"]
        wrong_type = kind in _TYPE_ERRORS or kind.endswith(("_type", "_parsing"))
        raise (InvalidArgumentTypeError if wrong_type else InvalidArgumentError)(message) from exc


class Checked(BaseModel):
    """Mixin: constructing (``__init__``, ``model_validate``, LlamaIndex's ``from_dict``) raises
    this library's exception types.

    A validator that raises :class:`~colbert_plugins.errors.InvalidArgumentError` (a
    ``ValueError``) reaches the caller as that error, not wrapped in pydantic's
    ``ValidationError``; pydantic's own constraint errors become
    :class:`~colbert_plugins.errors.InvalidArgumentError` or
    :class:`~colbert_plugins.errors.InvalidArgumentTypeError` naming the field. On assignment
    (``validate_assignment``) a wrong value raises pydantic's ``ValidationError`` (a
    ``ValueError``) with the same message, a wrong type our ``InvalidArgumentTypeError``.
    """

    def __init__(self, **data: Any) -> None:
        with _our_errors(type(self).__name__):
            super().__init__(**data)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        with _our_errors(cls.__name__):
            return super().model_validate(obj, **kwargs)

    def _shared_by_copies(self) -> Iterable[object]:
        """What ``copy.deepcopy`` shares instead of copying (resources: an index, a cache)."""
        return ()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        for shared in self._shared_by_copies():
            memo[id(shared)] = shared
        return super().__deepcopy__(memo)


# -- the ColBERT model of a component -----------------------------------------------------------


def model_field() -> Any:
    """The ``model`` field: the model's name or directory (for an instance, its name)."""
    return Field(
        default=DEFAULT_MODEL,
        description="ColBERT model: a Hugging Face repo id or a local directory "
        "(for a ColBERT instance given directly, its name).",
        frozen=True,
    )


class ColBERTComponent(Checked):
    """Mixin for a pydantic class that holds a ColBERT model.

    The field named by :attr:`colbert_field` (``model`` unless a framework names it
    otherwise) takes a name, a directory or a :class:`~colbert_plugins.ColBERT` (used as is,
    never modified, and shared); it stores the name. Keywords that are not fields but
    ``ColBERT.from_pretrained`` options join ``model_kwargs``. :attr:`colbert` loads the model
    on first use, once; ``model_copy(update=...)`` and ``copy.deepcopy`` share it while the
    model and ``model_kwargs`` stay the same, and load their own when they change.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        protected_namespaces=(),
        validate_assignment=True,
    )

    #: The field that names the model.
    colbert_field: ClassVar[str] = "model"

    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for ColBERT.from_pretrained (threads, "
        "document_length, ...).",
        frozen=True,
    )

    _slot: ModelSlot = PrivateAttr(default_factory=Lazy)

    @model_validator(mode="wrap")
    @classmethod
    def _take_model(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, Mapping):
            return handler(data)
        data = dict(data)
        field = cls.colbert_field
        extra = {name: data.pop(name) for name in list(data) if name not in cls.model_fields}
        given = data.get("model_kwargs") or {}
        if not isinstance(given, Mapping):
            raise InvalidArgumentTypeError(
                f"model_kwargs must be a dict, got {type(given).__name__}"
            )
        model = data.get(field, cls.model_fields[field].default)
        name, instance, load_kwargs = split_model(model, {**given, **extra}, cls.__name__)
        data[field] = name
        data["model_kwargs"] = load_kwargs
        component = handler(data)
        component._slot = Lazy(component._model_key(), instance)
        return component

    def _shared_by_copies(self) -> Iterable[object]:
        return self.model_kwargs.values()  # loading options: an EmbeddingCache, providers...

    def _model_key(self) -> tuple[str, dict[str, Any]]:
        return getattr(self, self.colbert_field), dict(self.model_kwargs)

    @property
    def colbert(self) -> ColBERT:
        """The ColBERT model, loaded on first access (once, even with concurrent callers)."""
        name, kwargs = key = self._model_key()
        return Lazy.for_key(self, "_slot", key, lambda: ColBERT.from_pretrained(name, **kwargs))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied (pydantic's, unvalidated); a ColBERT instance given
        as the model is used by the copy (and its name stored)."""
        changes = dict(update or {})
        instance = changes.get(self.colbert_field)
        if isinstance(instance, ColBERT):
            changes[self.colbert_field] = instance.name
            changes["model_kwargs"] = {}
        copied = super().model_copy(update=changes, deep=deep)
        if isinstance(instance, ColBERT):
            copied._slot = Lazy(copied._model_key(), instance)
        return copied


# -- pooled vectors (the embedding classes) -----------------------------------------------------


def _check_pooling(value: Any) -> Any:
    if value not in POOLINGS:
        raise InvalidArgumentError(f'pooling must be "mean" or "muvera", got {value!r}')
    return value


class PooledComponent(ColBERTComponent):
    """Mixin: a :class:`ColBERTComponent` that pools token vectors into one vector per text
    (the embedding classes): the pooling settings and the pooled vectors."""

    pooling: Annotated[Pooling, BeforeValidator(_check_pooling)] = Field(
        default="mean",
        description='How token vectors become one vector: "mean" (L2-normalized mean) or '
        '"muvera" (fixed-dimensional encodings approximating MaxSim).',
    )
    k_sim: NonNegativeInt = Field(
        default=DEFAULT_K_SIM,
        le=MAX_K_SIM,
        description="MUVERA: SimHash hyperplanes (2**k_sim buckets).",
    )
    d_proj: OptionalPositiveInt = Field(
        default=DEFAULT_D_PROJ, description="MUVERA: per-bucket projection size (None: none)."
    )
    r_reps: PositiveInt = Field(default=DEFAULT_R_REPS, description="MUVERA: repetitions.")
    seed: NonNegativeInt = Field(default=DEFAULT_SEED, description="MUVERA: random seed.")

    _pooler: Lazy[PooledEmbedder] = PrivateAttr(default_factory=Lazy)

    @property
    def pooler(self) -> PooledEmbedder:
        """The pooled-vector encoder for the current settings."""
        key = pooling, k_sim, d_proj, r_reps, seed = (
            self.pooling,
            self.k_sim,
            self.d_proj,
            self.r_reps,
            self.seed,
        )
        return Lazy.for_key(
            self,
            "_pooler",
            key,
            lambda: PooledEmbedder(pooling, k_sim=k_sim, d_proj=d_proj, r_reps=r_reps, seed=seed),
        )

    @property
    def dimension(self) -> int:
        """Length of every pooled vector."""
        return self.pooler.dimension(self.colbert)

    def _pool_documents(self, texts: Any, batch_size: int) -> list[list[float]]:
        return self.pooler.documents(self.colbert, texts, batch_size)

    def _pool_query(self, text: Any, name: str = "text") -> list[float]:
        return self.pooler.queries(self.colbert, [check_text(text, name)])[0]
