"""ColBERT late-interaction (MaxSim) reranking and retrieval on ONNX Runtime.

>>> from colbert_plugins import ColBERT  # doctest: +SKIP
>>> model = ColBERT.from_pretrained("answerdotai/answerai-colbert-small-v1")  # doctest: +SKIP
>>> model.rerank("what is late interaction?", ["...", "..."], top_n=1)  # doctest: +SKIP

Importing this package loads no model, imports no framework and touches no network.
"""

from __future__ import annotations

from . import errors
from .config import ColBERTConfig
from .errors import ColBERTError
from .model import ColBERT, RerankResult

__all__ = ["ColBERT", "ColBERTConfig", "ColBERTError", "RerankResult", "__version__", "errors"]

__version__ = "0.1.0"
