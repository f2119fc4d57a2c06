"""Export a PyLate (or Stanford colbert-ai) checkpoint to a verified ONNX model directory.

``colbert-plugins export MODEL OUT`` / :func:`export_model` needs PyTorch and PyLate, which
the core never depends on: install them with ``pip install 'colbert-plugins[export]'``.

What it writes into ``OUT`` (built in a temporary sibling directory, moved into place only
after it passed the check):

- ``model.onnx``: the transformer, every Dense layer PyLate runs after it, and an L2
  normalization; inputs ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the
  model's tokenizer produces them), output ``[batch, sequence, dim]``. Made by
  ``pylate-onnx-export`` (NextPlaid's exporter) when its graph is faithful to the model (one
  Dense layer without activation or residual), else by ``torch.onnx.export`` of PyLate's own
  modules; weights are kept inside the file (no ``model.onnx.data``) below 2 GB, and the
  exporter's per-node debug metadata is dropped.
- ``model_int8.onnx`` with ``int8=True``: the exporter's int8 dynamic quantization.
- ``tokenizer.json``: PyLate's tokenizer, with its added prefix tokens.
- ``onnx_config.json``: the model's settings as PyLate runs it (the file
  ``pylate-onnx-export`` writes, with the fields its 0.1.0 release gets wrong set right:
  ``do_query_expansion`` and ``attend_to_expansion_tokens`` as configured, not forced off,
  and ``do_lower_case`` recorded).
- PyLate's own configuration files: ``config_sentence_transformers.json``,
  ``sentence_bert_config.json``, ``config.json``, ``tokenizer_config.json``,
  ``special_tokens_map.json``; with the base model's sequence limits, not the ones PyLate
  leaves in its tokenizer and module at run time (``model_max_length: document_length - 1``).
- ``export_report.json``: versions used and the outcome of the check.

The check loads the directory with :class:`colbert_plugins.ColBERT` and compares it with
PyLate's ``encode(..., is_query=True/False)`` on a few queries and documents (identical token
ids, vectors within ``atol``, identical MaxSim rankings); a directory that differs is deleted
and :class:`ExportVerificationError` says what differed.
"""

from __future__ import annotations

from .parity import DEFAULT_ATOL, ParityReport, ReferenceOutputs, TextCheck, check_parity
from .pylate import (
    CHECK_DOCUMENTS,
    CHECK_QUERIES,
    ExportError,
    ExportResult,
    ExportVerificationError,
    export_model,
    pylate_reference,
    pylate_settings,
)

__all__ = [
    "CHECK_DOCUMENTS",
    "CHECK_QUERIES",
    "DEFAULT_ATOL",
    "ExportError",
    "ExportResult",
    "ExportVerificationError",
    "ParityReport",
    "ReferenceOutputs",
    "TextCheck",
    "check_parity",
    "export_model",
    "pylate_reference",
    "pylate_settings",
]
