"""Known ColBERT models and the defaults they need.

Models not listed here are still loaded: their files are inspected (see :mod:`.hub`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["DEFAULT_MODEL", "KNOWN_MODELS", "KnownModel", "known_model"]


@dataclass(frozen=True)
class KnownModel:
    """A model whose ONNX file (and, for fastembed's models, ColBERT settings) is known.

    ``family`` says whose rules the model follows (see :attr:`ColBERTConfig.family`):
    fastembed's three models keep fastembed's settings, given here in ``config``; the
    PyLate-configured models carry their settings in their own files (``onnx_config.json``),
    read at load, so nothing about them is written here beyond what their publishers
    document. ``dim`` is the vector size the model card states (``None``: not stated; the
    graph says at load); a stated size is checked against the graph.
    """

    repo_id: str
    model_file: str
    dim: int | None
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    additional_files: tuple[str, ...] = ()
    license: str = ""
    family: str = "fastembed"


DEFAULT_MODEL = "answerdotai/answerai-colbert-small-v1"

KNOWN_MODELS: Mapping[str, KnownModel] = MappingProxyType(
    {
        m.repo_id.lower(): m
        for m in (
            KnownModel("colbert-ir/colbertv2.0", "model.onnx", 128, license="mit"),
            KnownModel(
                "answerdotai/answerai-colbert-small-v1",
                "vespa_colbert.onnx",
                96,
                license="apache-2.0",
            ),
            KnownModel(
                "jinaai/jina-colbert-v2",
                "onnx/model.onnx",
                128,
                config=MappingProxyType(
                    {
                        "query_marker": 250002,
                        "document_marker": 250003,
                        "mask_token": "<mask>",
                        "pad_token": "<pad>",
                        "attend_to_mask_tokens": True,
                    }
                ),
                additional_files=("onnx/model.onnx_data",),
                license="cc-by-nc-4.0",
            ),
            # PyLate models that NextPlaid publishes ready to run (its README's "Ready-to-use
            # models"): model.onnx, model_int8.onnx, tokenizer.json and onnx_config.json at
            # the repository's root, the layout NextPlaid's loader reads.
            KnownModel("lightonai/GTE-ModernColBERT-v1", "model.onnx", 128, family="pylate"),
            KnownModel("lightonai/LateOn-Code", "model.onnx", None, family="pylate"),
            KnownModel("lightonai/LateOn-Code-edge", "model.onnx", None, family="pylate"),
            KnownModel(
                "lightonai/mxbai-edge-colbert-v0-32m-onnx", "model.onnx", None, family="pylate"
            ),
            KnownModel(
                "lightonai/answerai-colbert-small-v1-onnx", "model.onnx", 96, family="pylate"
            ),
        )
    }
)


def known_model(name: str) -> KnownModel | None:
    """The registry entry for a repo id (case-insensitive), or None.

    >>> known_model("colbert-ir/colbertv2.0").dim
    128
    >>> known_model("someone/else") is None
    True
    """
    return KNOWN_MODELS.get(name.lower())
