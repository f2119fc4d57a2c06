"""Graph preparation: transformer fusions and int8 dynamic quantization, made once and cached.

ONNX Runtime's own session optimizations do not fuse the attention of many exported BERT
graphs. ONNX Runtime's offline transformer optimizer does (Attention, SkipLayerNormalization,
BiasGelu, EmbedLayerNormalization), which roughly doubles CPU throughput. It needs the
``onnx`` and ``sympy`` packages (the ``optimize`` extra), so it is applied when they are
installed and skipped otherwise. Each prepared graph is checked against the original on a
probe batch before it is used; a fused graph that disagrees is discarded.

Prepared graphs live in ``$COLBERT_PLUGINS_CACHE`` (default ``~/.cache/colbert-plugins``),
keyed by a fingerprint of the source graph, and are written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import InvalidArgumentError, MissingDependencyError, ModelLoadError

__all__ = ["cache_root", "graph_fingerprint", "prepare_graph"]

logger = logging.getLogger(__name__)

Optimize = bool | Literal["auto"]
Quantize = Literal["int8"] | None

#: Model types whose graphs the BERT fusion understands.
_BERT_FAMILY = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert"}
#: Largest absolute difference allowed between fused and original unit vectors.
FUSED_TOLERANCE = 1e-3
_FINGERPRINT_BYTES = 1 << 20


def cache_root() -> Path:
    """Where prepared graphs are stored."""
    explicit = os.environ.get("COLBERT_PLUGINS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "colbert-plugins"


def graph_fingerprint(path: Path) -> str:
    """A cheap content fingerprint of a graph and its external-data files (sizes, head, tail)."""
    digest = hashlib.sha256()
    for part in [path, *sorted(path.parent.glob(path.name + "*data"))]:
        size = part.stat().st_size
        digest.update(f"{part.name}:{size}".encode())
        with part.open("rb") as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            fh.seek(max(0, size - _FINGERPRINT_BYTES))
            digest.update(fh.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()


def prepare_graph(
    source: Path,
    model_config: Mapping[str, Any],
    *,
    optimize: Optimize = "auto",
    quantize: Quantize = None,
    directory: Path | None = None,
) -> Path:
    """The graph to run: the source, its fused version, or its int8 version (cached)."""
    if optimize not in (True, False, "auto"):
        raise InvalidArgumentError(f"optimize must be True, False or 'auto', got {optimize!r}")
    if quantize not in (None, "int8"):
        raise InvalidArgumentError(f"quantize must be None or 'int8', got {quantize!r}")
    if quantize == "int8":
        _require("onnx", "quantize='int8'")
        # Quantize the fused graph when there is one: fused attention stays float32 and the
        # dense MatMuls become int8 (measured 1.4x the fused float32 graph on 2 AVX2 cores).
        base = prepare_graph(source, model_config, optimize=optimize, directory=directory)
        return _cached(base, "int8", _quantize, directory, check=None)
    if optimize is False:
        return source
    fusable = str(model_config.get("model_type", "")).lower() in _BERT_FAMILY
    available = all(importlib.util.find_spec(m) is not None for m in ("onnx", "sympy"))
    if optimize == "auto" and not (fusable and available):
        logger.debug("graph fusion skipped (BERT family: %s, onnx+sympy: %s)", fusable, available)
        return source
    if not available:
        _require("onnx", "optimize=True")
        _require("sympy", "optimize=True")
    heads, hidden = _heads_and_hidden(model_config)

    def fuse(src: Path, dst: Path) -> None:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(
            str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
        )
        fused.save_model_to_file(str(dst), use_external_data_format=_has_external_data(src))
        logger.info("fused graph: %s", fused.get_fused_operator_statistics())

    try:
        return _cached(source, "fused", fuse, directory, check=FUSED_TOLERANCE)
    except _FusedGraphMismatchError as exc:
        logger.warning("not using the fused graph of %s: %s", source, exc)
        return source
    except ModelLoadError as exc:
        if optimize is True:
            raise
        logger.warning("graph fusion failed, running the original graph: %s", exc)
        return source


class _FusedGraphMismatchError(Exception):
    pass


def _require(module: str, feature: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package: pip install \"colbert-plugins[optimize]\""
        )


def _heads_and_hidden(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """Both from the config, or (0, 0) to let the optimizer detect them."""
    heads = cfg.get("num_attention_heads", cfg.get("n_heads"))
    hidden = cfg.get("hidden_size", cfg.get("dim"))
    if isinstance(heads, int) and isinstance(hidden, int) and heads > 0 and hidden % heads == 0:
        return heads, hidden
    return 0, 0


def _has_external_data(path: Path) -> bool:
    return any(path.parent.glob(path.name + "*data"))


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        use_external_data_format=_has_external_data(src),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _cached(
    source: Path,
    variant: str,
    build: Any,
    directory: Path | None,
    *,
    check: float | None,
) -> Path:
    target_dir = (directory or cache_root()) / graph_fingerprint(source)[:24]
    target = target_dir / f"{variant}.onnx"
    if target.is_file():
        logger.debug("using cached %s graph %s", variant, target)
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=f".{variant}-") as tmp:
        staged = Path(tmp) / target.name
        try:
            build(source, staged)
        except Exception as exc:
            raise ModelLoadError(
                f"could not prepare the {variant} graph of {source}: {exc}"
            ) from exc
        try:
            worst = _compare(source, staged)
        except Exception as exc:
            raise ModelLoadError(
                f"the {variant} graph of {source} failed on a probe batch: {exc}"
            ) from exc
        logger.info("%s graph of %s: max |diff| of unit vectors %.2e", variant, source.name, worst)
        if check is not None and not worst <= check:
            raise _FusedGraphMismatchError(f"max |diff| {worst:.2e} > {check:.0e}")
        # External-data files first, the graph last: a graph present means a complete set.
        for part in sorted(Path(tmp).iterdir()):
            if part.name != target.name:
                os.replace(part, target_dir / part.name)
        os.replace(staged, target)
    return target


def _compare(reference: Path, candidate: Path) -> float:
    """Largest difference between the unit vectors of two graphs on a probe batch."""
    import onnxruntime as ort

    outputs = []
    for path in (reference, candidate):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        rng = np.random.default_rng(0)
        ids = rng.integers(5, 100, size=(2, 16), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1, 10:] = 0
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        out = np.asarray(session.run(None, feed)[0], dtype=np.float32)
        if out.shape[:2] != ids.shape:  # not token vectors: the loader reports it
            return float("inf")
        out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        outputs.append(out[mask.astype(bool)])
    return float(np.abs(outputs[0] - outputs[1]).max())
