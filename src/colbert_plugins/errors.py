"""Exception types raised by colbert-plugins.

Every error the library raises on purpose derives from :class:`ColBERTError`, so callers can
catch one type. Argument errors also derive from the builtin they refine (``TypeError`` or
``ValueError``), so code written against the usual Python conventions keeps working.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ColBERTError",
    "EmptyQueryError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "MissingDependencyError",
    "ModelFilesError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelOutputError",
    "ProviderUnavailableError",
]


class ColBERTError(Exception):
    """Base class of every error raised by colbert-plugins."""


class InvalidArgumentError(ColBERTError, ValueError):
    """An argument has the right type but an invalid value (e.g. ``top_n=-1``)."""


class EmptyQueryError(InvalidArgumentError):
    """A query to rank or search by is empty or only whitespace. One rule everywhere: the
    Python API, the adapters, the indexes, the command line and the server (HTTP 422)."""


class InvalidArgumentTypeError(ColBERTError, TypeError):
    """An argument has the wrong type (e.g. ``None`` in a list of texts)."""


class ModelNotFoundError(ColBERTError):
    """The model could not be found: not a local directory, and not in the Hugging Face cache
    or not reachable on the hub."""


class ModelFilesError(ColBERTError):
    """The model was found but a file it needs is missing or unreadable (ONNX graph, tokenizer,
    configuration)."""


class ModelLoadError(ColBERTError):
    """The model files exist but do not make a usable ColBERT model (corrupt graph, markers
    missing from the vocabulary, ...)."""


class ModelOutputError(ColBERTError):
    """The ONNX graph produced something that is not ``[batch, sequence, dim]`` token vectors,
    or produced non-finite values."""


class CacheError(ColBERTError):
    """The persistent embedding cache cannot be opened (e.g. its path is a directory or is
    not writable). A damaged cache file is not an error: it is moved aside and rebuilt."""


class MissingDependencyError(ColBERTError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ProviderUnavailableError(ColBERTError):
    """An ONNX Runtime execution provider that was asked for (e.g. ``CUDAExecutionProvider``)
    is not in the installed ONNX Runtime, or could not be initialised; nothing silently runs
    on the CPU instead unless ``cpu_fallback=True``."""
