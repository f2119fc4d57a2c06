"""A model given or loaded on first use: what every framework adapter holds.

Framework-free, so that the LangChain and LlamaIndex adapters share one implementation of
the ``model`` argument (a name, a path or a :class:`~colbert_plugins.ColBERT`) and of lazy,
thread-safe loading.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Mapping
from typing import Any

from .config import ColBERTConfig
from .errors import InvalidArgumentError, InvalidArgumentTypeError
from .model import ColBERT

__all__ = ["LOAD_KWARGS", "ModelSlot", "split_model"]

#: Keywords ``ColBERT.from_pretrained`` accepts besides the model: loading options and every
#: ColBERTConfig field.
LOAD_KWARGS = frozenset(
    name
    for name, param in inspect.signature(ColBERT.from_pretrained).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
) | frozenset(ColBERTConfig.field_names())


class ModelSlot:
    """Holds one ColBERT model: given, or loaded on first use exactly once (thread-safe).

    Copies of a component (``copy.deepcopy``, pydantic's ``model_copy``) share the slot,
    hence the model: loading is expensive and the model is immutable. Pickling keeps only
    the component's fields: an unpickled component loads the model again on first use.
    """

    def __init__(self, instance: ColBERT | None = None) -> None:
        self._model = instance
        self._lock = threading.Lock()

    def get(self, name: str, load_kwargs: Mapping[str, Any]) -> ColBERT:
        model = self._model
        if model is None:
            with self._lock:
                model = self._model
                if model is None:
                    model = ColBERT.from_pretrained(name, **load_kwargs)
                    self._model = model
        return model

    def __deepcopy__(self, memo: dict[int, Any]) -> ModelSlot:
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {}  # ONNX Runtime sessions cannot be pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._model = None
        self._lock = threading.Lock()


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
