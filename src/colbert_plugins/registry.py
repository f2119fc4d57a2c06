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
    """A model whose ONNX file and ColBERT settings are known in advance."""

    repo_id: str
    model_file: str
    dim: int
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    additional_files: tuple[str, ...] = ()
    license: str = ""


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
