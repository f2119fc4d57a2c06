"""ONNX Runtime execution: one session, created once, fed exactly what the graph declares."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .checks import check_int
from .errors import (
    InvalidArgumentTypeError,
    ModelLoadError,
    ModelOutputError,
    ProviderUnavailableError,
)

__all__ = ["OnnxEncoder", "check_providers"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_CPU = "CPUExecutionProvider"
_GPU_HINT = (
    "for NVIDIA GPUs install colbert-plugins-gpu instead of colbert-plugins (it depends on "
    "onnxruntime-gpu; uninstall onnxruntime first: both install the same module and the CPU "
    "build may win)"
)


def _provider_name(provider: Any) -> str:
    """The name of a provider given as a name or as ``(name, options)``."""
    name = provider[0] if isinstance(provider, tuple) and provider else provider
    if not isinstance(name, str):
        raise InvalidArgumentTypeError(
            "providers must be a list of provider names or (name, options) tuples, got "
            f"{provider!r}"
        )
    return name


def check_providers(providers: Sequence[Any] | None, *, cpu_fallback: bool = False) -> list[Any]:
    """The providers to create a session with: ``providers`` when the installed ONNX Runtime
    offers each of them (``None``: the CPU). A missing one raises
    :class:`~colbert_plugins.errors.ProviderUnavailableError`, or with ``cpu_fallback`` is
    left out with a warning (the CPU is then always last)."""
    import onnxruntime as ort

    if providers is None:
        return [_CPU]
    if isinstance(providers, str | bytes) or not isinstance(providers, Sequence):
        raise InvalidArgumentTypeError(
            f"providers must be a list such as ['CUDAExecutionProvider'], got {providers!r}"
        )
    chosen = list(providers)
    available = ort.get_available_providers()
    missing = [_provider_name(p) for p in chosen if _provider_name(p) not in available]
    if not missing:
        return chosen
    message = (
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not available in the "
        f"installed ONNX Runtime {ort.__version__} (it offers {', '.join(available)})"
    )
    hint = _GPU_HINT if any(n.startswith(("CUDA", "Tensorrt")) for n in missing) else ""
    if not cpu_fallback:
        raise ProviderUnavailableError(
            f"{message}; {hint + ', ' if hint else ''}or pass cpu_fallback=True to run on the "
            "CPU with a warning"
        )
    logger.warning("%s: running on the CPU (cpu_fallback=True)", message)
    kept = [p for p in chosen if _provider_name(p) in available]
    if _CPU not in [_provider_name(p) for p in kept]:
        kept.append(_CPU)
    return kept


class OnnxEncoder:
    """Runs a BERT-style token encoder graph: ``[batch, seq]`` ids -> ``[batch, seq, dim]``.

    ``token_type_ids`` is fed (zeros) only when the graph declares it. The session is created
    once; ONNX Runtime sessions may be run from several threads at once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        cpu_fallback: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = check_int(threads, "threads")
            options.inter_op_num_threads = 1
        chosen = check_providers(providers, cpu_fallback=cpu_fallback)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelLoadError(
                f"ONNX Runtime could not load {self.path}: {exc}. Check that the file is a "
                "complete ONNX graph (re-download it if it may be truncated) and that its "
                "external-data file, if any, lies next to it."
            ) from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        missing = [n for n in ("input_ids", "attention_mask") if n not in self.input_names]
        unknown = [n for n in self.input_names if n not in _KNOWN_INPUTS]
        if missing or unknown:
            raise ModelLoadError(
                f"{self.path.name} declares inputs {self.input_names}; a ColBERT encoder needs "
                f"input_ids and attention_mask (and optionally token_type_ids)"
            )
        output = self.session.get_outputs()[0]
        self.output_name = output.name
        shape = list(output.shape) if output.shape is not None else []
        if shape and len(shape) != 3:
            raise ModelOutputError(
                f"{self.path.name}'s first output {output.name!r} has shape {shape}; ColBERT "
                "needs per-token vectors [batch, sequence, dim]. Export the graph without "
                "pooling, or pass model_file= to pick the right graph."
            )
        self.dim: int | None = shape[2] if len(shape) == 3 and isinstance(shape[2], int) else None
        if self.dim is not None and self.dim < 1:
            raise ModelOutputError(
                f"{self.path.name}'s first output {output.name!r} has shape {shape}: vectors "
                "of size 0; ColBERT needs [batch, sequence, dim] token vectors with dim >= 1"
            )
        self.providers = self.session.get_providers()
        # ONNX Runtime falls back to the CPU by itself when a provider it offers cannot start
        # (e.g. CUDA libraries missing): say so instead of running on the CPU unannounced.
        lost = [_provider_name(p) for p in chosen if _provider_name(p) not in self.providers]
        if lost and not cpu_fallback:
            raise ProviderUnavailableError(
                f"ONNX Runtime could not initialise {', '.join(lost)} for {self.path.name} "
                f"(the session runs on {', '.join(self.providers)}; see ONNX Runtime's log "
                "above for the cause, e.g. missing CUDA/cuDNN libraries); pass "
                "cpu_fallback=True to accept that"
            )
        if lost:
            logger.warning(
                "%s could not be initialised: running on %s (cpu_fallback=True)",
                ", ".join(lost),
                ", ".join(self.providers),
            )
        logger.debug("loaded %s (inputs %s, dim %s)", self.path, self.input_names, self.dim)

    @property
    def uses_token_type_ids(self) -> bool:
        return "token_type_ids" in self.input_names

    def __call__(self, input_ids: IdArray, attention_mask: IdArray) -> FloatArray:
        """Token vectors ``[batch, seq, dim]`` (float32, as the graph computes them)."""
        feed: dict[str, IdArray] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.uses_token_type_ids:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        try:
            output = self.session.run([self.output_name], feed)[0]
        except Exception as exc:
            largest = int(input_ids.max()) if input_ids.size else 0
            raise ModelOutputError(
                f"ONNX Runtime failed on a batch of shape {input_ids.shape} (largest token id "
                f"{largest}; if the error is about indices out of bounds, the tokenizer's "
                f"vocabulary is larger than the graph's embedding table): {exc}"
            ) from exc
        output = np.asarray(output)
        if output.ndim != 3 or output.shape[:2] != input_ids.shape or output.shape[2] < 1:
            raise ModelOutputError(
                f"{self.path.name} returned shape {output.shape} for inputs of shape "
                f"{input_ids.shape}; ColBERT needs [batch, sequence, dim] token vectors"
            )
        if not np.issubdtype(output.dtype, np.floating):
            raise ModelOutputError(
                f"{self.path.name} returned {output.dtype} values; ColBERT needs float vectors"
            )
        if self.dim is None:
            self.dim = int(output.shape[2])
        elif output.shape[2] != self.dim:
            raise ModelOutputError(
                f"{self.path.name} returned vectors of size {output.shape[2]}, not {self.dim} "
                "as declared or as in earlier batches"
            )
        return output.astype(np.float32, copy=False)
