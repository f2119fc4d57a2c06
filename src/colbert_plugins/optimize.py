"""Graph preparation: transformer fusions and int8 dynamic quantization, made once and cached.

ONNX Runtime's offline transformer optimizer fuses BERT graphs into Attention,
SkipLayerNormalization, BiasGelu and EmbedLayerNormalization nodes. Its session-level
optimizations do much of this too for cleanly exported graphs (on the proxy model with ONNX
Runtime 1.32, the offline fusion measured within noise of the plain graph: 19.7 vs 18.7
docs/s, ``benchmarks/bench.py --unfused``), but not for every export; and the int8 graph is
made from the fused one, so its attention projections become one QAttention. It needs the
``onnx`` and ``sympy`` packages (the ``optimize`` extra), so it is applied when they are
installed and skipped otherwise. Each prepared graph is checked against the original on a
probe batch before it is used; a fused graph that disagrees is discarded.

Graphs written by torch's dynamo exporter (``torch.onnx.export`` on torch >= 2.9, which
``pylate-onnx-export`` uses) express attention as scaled-dot-product attention with
``IsNaN``/``Where`` masking, a pattern ONNX Runtime's optimizer does not recognise: it fuses
no Attention there. When it fused none and ``onnxscript`` (in the ``optimize`` extra) is
installed, its ONNX Runtime fusions (``onnxscript.rewriter.ort_fusions``) are used instead,
which fuse those graphs' attention into Attention nodes: on the trained MiniLM ColBERT
(pylate-onnx-export, torch 2.13), forward passes 1.10-1.13x faster on 2 threads (raw ONNX
Runtime on the same batches, two runs), vectors within 4e-7 of the original graph. Its int8
graph keeps these Attention nodes in float32 (ONNX Runtime's quantizer makes no QAttention
from an Attention with ``qkv_hidden_sizes``, nor could QAttention take its additive mask), and
still ran 1.10x faster than the int8 graph of ONNX Runtime's fusion (Q, K, V products in int8).

Prepared graphs live in ``$COLBERT_PLUGINS_CACHE`` (default ``~/.cache/colbert-plugins``),
keyed by a fingerprint of the source graph, and are written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .checks import require
from .errors import InvalidArgumentError, ModelLoadError

__all__ = ["cache_root", "gelu_fed_matmuls", "graph_fingerprint", "prepare_graph"]

logger = logging.getLogger(__name__)

Optimize = bool | Literal["auto"]
Quantize = Literal["int8"] | None

#: Model types whose graphs the BERT fusion understands.
_BERT_FAMILY = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert"}
#: Largest absolute difference allowed between fused and original unit vectors.
FUSED_TOLERANCE = 1e-3
_FINGERPRINT_BYTES = 1 << 20
#: Name of the int8 graph in the cache; a new quantization recipe gets a new name, so that
#: graphs cached by an earlier version are not reused.
_INT8_RECIPE = "int8-v2"
#: Name of the fused graph in the cache, changed with the fusion recipe likewise (v2: attention
#: of dynamo-exported graphs fused by onnxscript).
_FUSED_RECIPE = "fused-v2"
#: Fused node types that stand for a whole attention block.
_ATTENTION_OPS = {"Attention", "MultiHeadAttention"}


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
        require("onnx", extra="optimize", feature="quantize='int8'")
        # Quantize the fused graph when there is one (its Attention nodes become QAttention).
        base = prepare_graph(source, model_config, optimize=optimize, directory=directory)
        return _cached(base, _INT8_RECIPE, _quantize, directory, check=None)
    if optimize is False:
        return source
    fusable = str(model_config.get("model_type", "")).lower() in _BERT_FAMILY
    available = all(importlib.util.find_spec(m) is not None for m in ("onnx", "sympy"))
    if optimize == "auto" and not (fusable and available):
        logger.debug("graph fusion skipped (BERT family: %s, onnx+sympy: %s)", fusable, available)
        return source
    if not available:
        require("onnx", "sympy", extra="optimize", feature="optimize=True")
    heads, hidden = _heads_and_hidden(model_config)

    def fuse(src: Path, dst: Path) -> None:
        from onnxruntime.transformers.optimizer import optimize_model

        # The optimizer prints to stdout (e.g. "failed in shape inference"), which would mix
        # with a command's --json output: keep it for the debug log instead.
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            fused = optimize_model(
                str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
            )
        if printed.getvalue().strip():
            logger.debug("graph optimizer output: %s", printed.getvalue().strip())
        statistics = fused.get_fused_operator_statistics()
        if not any(statistics.get(op) for op in _ATTENTION_OPS) and _fuse_with_onnxscript(src, dst):
            return
        fused.save_model_to_file(str(dst), use_external_data_format=_has_external_data(src))
        logger.info("fused graph: %s", statistics)

    try:
        return _cached(source, _FUSED_RECIPE, fuse, directory, check=FUSED_TOLERANCE)
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


def _fuse_with_onnxscript(src: Path, dst: Path) -> bool:
    """Write onnxscript's ONNX Runtime fusion of ``src`` to ``dst`` if it fuses attention.

    False (nothing written) when onnxscript is not installed, fails, fuses no attention, or
    its graph disagrees with the original on the probe batch: the caller then keeps ONNX
    Runtime's own fusion.
    """
    if importlib.util.find_spec("onnxscript") is None:
        logger.debug("onnxscript not installed: attention of %s stays unfused", src.name)
        return False
    try:
        import onnx_ir as ir
        from onnxscript.rewriter.ort_fusions import optimize_for_ort

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            model, counts = optimize_for_ort(ir.load(str(src)))
        if printed.getvalue().strip():
            logger.debug("onnxscript output: %s", printed.getvalue().strip())
        attention = sum(counts.get(k, 0) for k in ("attention", "mha1", "mha2", "sdpa_via_mha"))
        if not attention:
            logger.debug("onnxscript fused no attention in %s: %s", src.name, counts)
            return False
        external = dst.name + ".data" if _has_external_data(src) else None
        ir.save(model, str(dst), external_data=external)
        worst = _compare(src, dst)
    except Exception as exc:  # onnxscript is young: any failure means "not this way"
        logger.warning("onnxscript could not fuse %s, keeping ONNX Runtime's fusion: %s", src, exc)
        for part in dst.parent.glob(dst.name + "*"):
            part.unlink()
        return False
    if not worst <= FUSED_TOLERANCE:
        logger.warning(
            "onnxscript's fusion of %s disagrees (max |diff| %.2e), keeping ONNX Runtime's",
            src.name,
            worst,
        )
        for part in dst.parent.glob(dst.name + "*"):
            part.unlink()
        return False
    logger.info("fused graph (onnxscript ort_fusions): %s", {k: v for k, v in counts.items() if v})
    return True


def _ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)


def _heads_and_hidden(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """Both from the config, or (0, 0) to let the optimizer detect them."""
    heads = cfg.get("num_attention_heads", cfg.get("n_heads"))
    hidden = cfg.get("hidden_size", cfg.get("dim"))
    if isinstance(heads, int) and isinstance(hidden, int) and heads > 0 and hidden % heads == 0:
        return heads, hidden
    return 0, 0


def _has_external_data(path: Path) -> bool:
    return any(path.parent.glob(path.name + "*data"))


def _quantize(
    src: Path, dst: Path, *, reduce_range: bool = True, keep_gelu_float: bool = True
) -> None:
    """Dynamic int8: weights per output channel, activations per tensor at run time.

    The defaults are the shipped recipe; ``benchmarks/int8_variants.py`` compares it with
    full-range weights and with every product quantized.

    Weights use the reduced range -63..63: on CPUs without AVX-VNNI the int8 kernels multiply
    with ``vpmaddubsw``, whose int16 sums saturate with full-range weights (rare but large
    errors: 3-8x the worst error of the reduced range, at the same speed, measured by
    ``benchmarks/int8_gemm.py``). The matrix products fed by GELU stay float32: their inputs
    have a few very large values, so one scale per tensor leaves the rest with a handful of
    levels. Keeping them float32 raised the top-10 agreement with float32 from 0.86 to 0.91
    on the proxy model (``benchmarks/quantization_agreement.py``).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    found = (
        gelu_fed_matmuls(onnx.load(str(src), load_external_data=False)) if keep_gelu_float else []
    )
    # Nodes are excluded by name; an unnamed one cannot be singled out, so it is quantized.
    excluded = [name for name in found if name]
    if len(excluded) < len(found):
        logger.warning(
            "int8: %d GELU-fed MatMul nodes have no name and are quantized too",
            len(found) - len(excluded),
        )
    logger.debug("int8: keeping %d GELU-fed MatMuls in float32", len(excluded))
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
        use_external_data_format=_has_external_data(src),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


_FUSED_GELU = {"Gelu", "BiasGelu", "FastGelu", "QuickGelu"}
_GELU_PARTS = {"Erf", "Tanh"}  # of an unfused GELU, x * 0.5 * (1 + erf(x / sqrt(2)))


def gelu_fed_matmuls(model: Any, depth: int = 4) -> list[str]:
    """Names of the MatMul nodes whose input is a GELU's output, fused or as a subgraph.

    A fused GELU op up to ``depth`` nodes up the input counts; an ``Erf`` or ``Tanh`` counts
    when the MatMul's input is a ``Mul`` (the last step of an unfused GELU). The search never
    passes another MatMul.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[0] not in producer:
            continue
        ends_in_mul = producer[node.input[0]].op_type == "Mul"
        wanted = _FUSED_GELU | (_GELU_PARTS if ends_in_mul else set())
        frontier = [node.input[0]]
        for _ in range(depth):
            parents = [producer[name] for name in frontier if name in producer]
            if any(p.op_type in wanted for p in parents):
                found.append(node.name)
                break
            frontier = [i for p in parents if p.op_type != "MatMul" for i in p.input]
    return found


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
    # A graph that failed its check is remembered (per ONNX Runtime version, which makes
    # it), so that every later load does not rebuild and reject it again.
    rejected = target_dir / f"{variant}.rejected"
    stamp = f"onnxruntime {_ort_version()}: "
    with contextlib.suppress(OSError):
        reason = rejected.read_text(encoding="utf-8")
        if reason.startswith(stamp):
            raise _FusedGraphMismatchError(reason[len(stamp) :] + f" (remembered in {rejected})")
    target_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=target_dir, prefix=f".{variant}-") as tmp,
        tempfile.TemporaryDirectory(dir=target_dir, prefix=".source-") as linked,
    ):
        staged = Path(tmp) / target.name
        try:
            build(_without_symlinks(source, Path(linked)), staged)
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
            reason = f"max |diff| {worst:.2e} > {check:.0e}"
            with contextlib.suppress(OSError):
                rejected.write_text(stamp + reason, encoding="utf-8")
            raise _FusedGraphMismatchError(reason)
        # External-data files first, the graph last: a graph present means a complete set.
        for part in sorted(Path(tmp).iterdir()):
            if part.name != target.name:
                os.replace(part, target_dir / part.name)
        os.replace(staged, target)
    return target


def _without_symlinks(source: Path, workdir: Path) -> Path:
    """``source``, or, when its external-data files are symbolic links (a Hugging Face cache
    links them to its blobs, and ``onnx`` refuses to read external data through symbolic or
    hard links), a copy of the graph and its data in ``workdir`` (removed once the prepared
    graph is written)."""
    parts = [source, *sorted(source.parent.glob(source.name + "*data"))]
    if not any(p.is_symlink() for p in parts[1:]):
        return source
    for part in parts:
        shutil.copyfile(part.resolve(), workdir / part.name)
    return workdir / source.name


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
