"""PyLate checkpoint to ONNX directory: the export steps and their check against PyLate."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ColBERTError, InvalidArgumentError, MissingDependencyError
from ..files import replace_directory, sibling_directory
from .parity import DEFAULT_ATOL, ParityReport, ReferenceOutputs, check_parity

__all__ = [
    "CHECK_DOCUMENTS",
    "CHECK_QUERIES",
    "ExportError",
    "ExportResult",
    "ExportVerificationError",
    "export_model",
    "pylate_reference",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'colbert-plugins[export]'"

#: Queries the check encodes: short, empty, blank, longer than query_length (up to ~100
#: tokens), mixed case and punctuation, non-ASCII with padding spaces.
CHECK_QUERIES = (
    "what is late interaction?",
    "",
    "   ",
    (
        "How do Boundary Layers behave at HIGH Mach numbers in hypersonic flow over a blunt "
        "body, and which similarity laws govern heat transfer to the surface of the model? Which "
        "experiments in the wind tunnel measured pressure, temperature and skin friction? "
    )
    * 2,
    "C++ vs. Rust: which one's faster?!",
    "  Ünïcödé QUERIES \u2013 naïve café résumé, 東京 ☃  ",
)
#: Documents the check encodes: punctuation-heavy (every ASCII punctuation character),
#: mixed case, longer than document_length (~900 tokens), non-ASCII, empty, one word, and
#: text containing marker tokens.
CHECK_DOCUMENTS = (
    "Hello, world! (This) is -- a test; with: punctuation... [and] {brackets} @#$%^&* `x` a\\b "
    "<tag> \"quoted\" 'single' ~tilde_ +plus= |pipe ?",
    "The BOUNDARY layer on a flat plate in supersonic flow was measured with a Pitot probe.",
    " ".join(["Experimental investigation of the aerodynamics of a wing in a slipstream."] * 75),
    "Straße, Ærø, 東京, naïve café — non-ASCII text; ¿qué tal? ½ ≈ 0.5 ☃",
    "",
    "short",
    "Markers such as [Q] and [D] or [unused0] inside a text.",
)

#: PyLate's configuration files copied into the export (those the model has).
PYLATE_FILES = (
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)

_TWO_GB = 2**31 - 1


class ExportError(ColBERTError):
    """The model could not be exported (unreadable checkpoint, exporter failure, ...)."""


class ExportVerificationError(ExportError):
    """The exported model does not reproduce PyLate; the output was not kept."""

    def __init__(self, message: str, report: ParityReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how it checked out."""

    directory: Path
    exporter: str  # "pylate-onnx-export" or "torch.onnx"
    report: ParityReport | None
    files: list[str]


def export_model(
    model: str,
    out: str | os.PathLike[str],
    *,
    int8: bool = False,
    force: bool = False,
    check: bool = True,
    atol: float = DEFAULT_ATOL,
    queries: Sequence[str] = CHECK_QUERIES,
    documents: Sequence[str] = CHECK_DOCUMENTS,
) -> ExportResult:
    """Export a PyLate checkpoint (directory or hub id) to ONNX in ``out`` and verify it.

    Args:
        model: what ``pylate.models.ColBERT`` loads: a PyLate model directory or hub repo id,
            or a Stanford colbert-ai checkpoint.
        out: the directory to write; it must not exist or be empty unless ``force``.
        int8: also write ``model_int8.onnx`` (int8 dynamic quantization).
        force: replace ``out`` if it exists.
        check: compare the result, loaded with our core, with PyLate and refuse it when it
            differs (default). The graph alone is always checked on PyLate's token ids.
        atol: largest absolute difference allowed between vectors.
        queries, documents: the texts of the check.

    Raises:
        MissingDependencyError: torch or pylate is not installed.
        ExportVerificationError: the exported model differs from PyLate (``out`` untouched).
        ExportError: the export itself failed.
    """
    torch, pylate_models = _require()
    target = Path(out).absolute()
    _check_target(target, force)
    colbert = _load_pylate(pylate_models, model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_directory(target)
    try:
        exporter = _write_graph(torch, colbert, model, tmp)
        _write_tokenizer(colbert, tmp)
        _write_pylate_files(colbert, tmp)
        _write_onnx_config(colbert, model, tmp)
        if int8:
            _quantize(tmp)
        _check_graph(torch, colbert, tmp / "model.onnx", queries, documents, atol)
        report = None
        if check:
            reference = pylate_reference(colbert, list(queries), list(documents))
            report = _verify(tmp, reference, atol)
        _write_report(tmp, model, exporter, report)
        files = sorted(p.name for p in tmp.iterdir())
        _check_target(target, force)  # again: something may have appeared meanwhile
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s to %s with %s", model, target, exporter)
    return ExportResult(target, exporter, report, files)


def pylate_reference(
    colbert: Any, queries: Sequence[str], documents: Sequence[str]
) -> ReferenceOutputs:
    """PyLate's tokenization (each text alone) and vectors (one ``encode`` batch per side).

    Both as ``encode(texts, is_query=...)`` sees them: with the default prompt, when the model
    sets ``default_prompt_name``.
    """

    # encode() puts the default prompt (if any) before every text, queries and documents.
    prompt = colbert.prompts.get(colbert.default_prompt_name) or ""

    def tokenized(texts: Sequence[str], is_query: bool) -> tuple[list[list[int]], list[list[int]]]:
        ids, masks = [], []
        for text in texts:
            features = colbert.tokenize([prompt + text], is_query=is_query)
            ids.append([int(x) for x in features["input_ids"][0].tolist()])
            masks.append([int(x) for x in features["attention_mask"][0].tolist()])
        return ids, masks

    query_ids, query_masks = tokenized(queries, True)
    document_ids, document_masks = tokenized(documents, False)
    query_vectors = colbert.encode(list(queries), is_query=True, show_progress_bar=False)
    document_vectors = colbert.encode(list(documents), is_query=False, show_progress_bar=False)
    return ReferenceOutputs(
        queries=list(queries),
        documents=list(documents),
        query_input_ids=query_ids,
        query_attention_mask=query_masks,
        document_input_ids=document_ids,
        document_attention_mask=document_masks,
        query_vectors=[np.asarray(v, dtype=np.float32) for v in query_vectors],
        document_vectors=[np.asarray(v, dtype=np.float32) for v in document_vectors],
    )


def pylate_settings(colbert: Any) -> dict[str, Any]:
    """The settings a loaded PyLate ColBERT runs with (what ``onnx_config.json`` records)."""
    tokenizer = colbert.tokenizer
    auto_model = colbert[0].auto_model
    return {
        "model_type": "ColBERT",
        "model_class": type(auto_model).__name__,
        "uses_token_type_ids": _uses_token_type_ids(colbert),
        "query_prefix": colbert.query_prefix,
        "document_prefix": colbert.document_prefix,
        "query_length": int(colbert.query_length),
        "document_length": int(colbert.document_length),
        "do_query_expansion": bool(colbert.do_query_expansion),
        "attend_to_expansion_tokens": bool(colbert.attend_to_expansion_tokens),
        "skiplist_words": list(colbert.skiplist_words),
        "embedding_dim": int(_output_dim(colbert)),
        "mask_token_id": _optional_int(tokenizer.mask_token_id),
        # PyLate pads with this id (its mask token's, when it has one).
        "pad_token_id": _optional_int(tokenizer.pad_token_id),
        "query_prefix_id": _optional_int(colbert.query_prefix_id),
        "document_prefix_id": _optional_int(colbert.document_prefix_id),
        "do_lower_case": bool(getattr(colbert[0], "do_lower_case", False)),
    }


# -- steps ----------------------------------------------------------------------------------


def _require() -> tuple[Any, Any]:
    try:
        import torch
        from pylate import models as pylate_models
    except ImportError as exc:
        raise MissingDependencyError(
            f"colbert-plugins export needs PyTorch and PyLate ({exc}); install them with: "
            f"{INSTALL_HINT}"
        ) from exc
    return torch, pylate_models


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise InvalidArgumentError(f"output {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InvalidArgumentError(
            f"output {target} exists and is not empty; pass force=True (--force) to replace it"
        )


def _load_pylate(pylate_models: Any, model: str) -> Any:
    try:
        return pylate_models.ColBERT(model_name_or_path=model, device="cpu")
    except Exception as exc:  # PyLate/transformers raise many types (OSError, ValueError, ...)
        raise ExportError(f"PyLate cannot load {model!r}: {exc}") from exc


def _write_graph(torch: Any, colbert: Any, model: str, out: Path) -> str:
    """Write model.onnx: pylate-onnx-export when faithful to the model, else torch.onnx."""
    reason = _exporter_unfit(colbert)
    if reason is None:
        try:
            _run_pylate_onnx_export(colbert, model, out)
            exporter = "pylate-onnx-export"
        except ImportError as exc:
            raise MissingDependencyError(
                f"pylate-onnx-export is not installed ({exc}); install it with: {INSTALL_HINT}"
            ) from exc
    else:
        logger.info("pylate-onnx-export would not export this model faithfully: %s", reason)
        _torch_export(torch, colbert, out / "model.onnx")
        exporter = "torch.onnx"
    _finish_graph(out / "model.onnx")
    return exporter


def _exporter_unfit(colbert: Any) -> str | None:
    """Why pylate-onnx-export's graph would differ from PyLate (None: it would not).

    Its graph is transformer -> ``pylate_model[1].linear`` -> normalize: it drops any further
    Dense layer, activation function and residual connection.
    """
    dense = list(colbert)[1:]
    if len(dense) != 1:
        return f"{len(dense)} Dense layers (it keeps only the first)"
    layer = dense[0]
    if not hasattr(layer, "linear"):
        return f"{type(layer).__name__} after the transformer is not a Dense layer"
    if type(layer.activation_function).__name__ != "Identity":
        return f"Dense activation {type(layer.activation_function).__name__} (it drops it)"
    if getattr(layer, "use_residual", False):
        return "a residual Dense layer (it drops the residual)"
    return None


def _run_pylate_onnx_export(colbert: Any, model: str, out: Path) -> None:
    """Run pylate-onnx-export into ``out``, keeping only its graph.

    Its config file (``config_sentence_transformers.json`` in 0.1.0, ``onnx_config.json``
    later) is replaced by :func:`_write_onnx_config`: it loads the model with query expansion
    forced off. Its architecture probe is corrected to feed ``token_type_ids`` exactly when the
    tokenizer produces them (0.1.0 assumes every non-ModernBERT model does, and fails with
    ``KeyError: 'token_type_ids'`` on XLM-RoBERTa).
    """
    from colbert_export import export as poe

    probe = poe.detect_model_architecture
    uses_token_type_ids = _uses_token_type_ids(colbert)

    def detect(pylate_model: Any) -> dict[str, Any]:
        info: dict[str, Any] = probe(pylate_model)
        info["uses_token_type_ids"] = uses_token_type_ids
        return info

    work = out / ".pylate-onnx-export"
    with _patched(poe, "detect_model_architecture", detect), _quiet_prints():
        poe.export_model(model, output_dir=work, quantize=False, verbose=False, force=True)
    for name in os.listdir(work):
        if name == "model.onnx" or name.startswith("model.onnx."):
            os.replace(work / name, out / name)
    shutil.rmtree(work)
    if not (out / "model.onnx").is_file():
        raise ExportError("pylate-onnx-export wrote no model.onnx")


def _torch_export(torch: Any, colbert: Any, path: Path) -> None:
    """torch.onnx.export of PyLate's own modules (transformer, every Dense) + L2 norm."""
    names = ["input_ids", "attention_mask"]
    if _uses_token_type_ids(colbert):
        names.append("token_type_ids")

    class Graph(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.stages = torch.nn.ModuleList(list(colbert))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            for stage in self.stages:
                features = stage(features)
            return torch.nn.functional.normalize(features["token_embeddings"], p=2, dim=-1)

    sample = colbert.tokenize(["[D] an example text for the export", "short"], is_query=False)
    inputs = tuple(sample[name] for name in names)
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in names}
    axes["output"] = {0: "batch_size", 1: "sequence_length"}
    graph = Graph().eval()
    try:
        with torch.no_grad(), _quiet_prints():
            torch.onnx.export(
                graph,
                inputs,
                str(path),
                input_names=names,
                output_names=["output"],
                dynamic_axes=axes,
                opset_version=18,
                do_constant_folding=True,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed: {exc}") from exc


def _finish_graph(path: Path) -> None:
    """Weights inside the graph file (below protobuf's 2 GB), no per-node export metadata.

    torch's dynamo exporter writes external weights (``model.onnx.data``) even for small
    models, and a source stack trace in every node's metadata (a third of a small graph).
    """
    import onnx

    externals = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]
    graph = onnx.load(str(path), load_external_data=True)
    for node in graph.graph.node:
        del node.metadata_props[:]
    too_big = sum(p.stat().st_size for p in [path, *externals]) >= _TWO_GB
    for p in externals:  # their contents are in memory now
        p.unlink()
    if too_big:
        onnx.save(
            graph,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
        )
    else:
        onnx.save(graph, str(path))


def _write_tokenizer(colbert: Any, out: Path) -> None:
    """tokenizer.json: PyLate's fast tokenizer, with no truncation or padding recorded."""
    from tokenizers import Tokenizer

    backend = colbert.tokenizer.backend_tokenizer
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.save(str(out / "tokenizer.json"))


def _write_pylate_files(colbert: Any, out: Path) -> None:
    """PyLate's own configuration files, as ``ColBERT.save`` writes them, with the base
    tokenizer's limits instead of PyLate's run-time state (see :func:`_base_limits`)."""
    with tempfile.TemporaryDirectory() as saved:
        colbert.save(saved, create_model_card=False)
        for name in PYLATE_FILES:
            source = Path(saved) / name
            if source.is_file():
                shutil.copyfile(source, out / name)
    _base_limits(colbert, out)
    if not (out / "special_tokens_map.json").is_file():  # transformers 5 no longer writes it
        tokens = {
            key: str(value)
            for key, value in colbert.tokenizer.special_tokens_map.items()
            if isinstance(value, str)
        }
        (out / "special_tokens_map.json").write_text(json.dumps(tokens, indent=2) + "\n")


#: ``tokenizer_config.json`` keys transformers fills from the tokenizer's truncation and
#: padding state (call-time defaults, not properties of the tokenizer): after PyLate tokenized,
#: its last ``max_length``.
_CALL_STATE_KEYS = ("max_length", "stride", "truncation_strategy", "pad_to_multiple_of")


def _base_limits(colbert: Any, out: Path) -> None:
    """Replace what PyLate's run time leaves in the saved files by the base model's limits.

    PyLate's ``tokenize`` sets the transformer module's ``max_seq_length`` to
    ``query_length``/``document_length`` less the prefix on every call; ``save`` writes it to
    ``sentence_bert_config.json``, sentence-transformers hands a saved one to the tokenizer
    as ``model_max_length`` when it loads the checkpoint, and transformers records the
    tokenizer's last truncation and padding in ``tokenizer_config.json`` (``max_length``, ...).
    PyLate never truncates by any of them, but a reader that trusts ``model_max_length``
    cuts documents one token short. Written instead: ``model_max_length`` and
    ``max_seq_length`` = the saved value when it holds ``query_length`` and
    ``document_length`` and fits the encoder, else the encoder's positions (config.json's
    ``max_position_embeddings``), else nothing; no call-time keys.
    """
    from ..settings import encoder_positions

    config_path = out / "config.json"
    positions = encoder_positions(_read_json(config_path)) if config_path.is_file() else None
    needed = max(int(colbert.query_length), int(colbert.document_length))
    saved = getattr(colbert.tokenizer, "model_max_length", None)
    limit: int | None = None
    if isinstance(saved, int) and needed <= saved <= (positions or saved):
        limit = saved
    elif positions is not None:
        limit = positions
    for name, key, drop in (
        ("tokenizer_config.json", "model_max_length", _CALL_STATE_KEYS),
        ("sentence_bert_config.json", "max_seq_length", ()),
    ):
        path = out / name
        if not path.is_file():
            continue
        data = _read_json(path)
        before = {k: data.get(k) for k in (key, *drop) if k in data}
        for k in drop:
            data.pop(k, None)
        if limit is None:
            data.pop(key, None)
        else:
            data[key] = limit
        after = {k: data.get(k) for k in (key, *drop) if k in data}
        if before != after:
            logger.info("%s: %s written as %s (PyLate's run-time state)", name, before, after)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ExportError(f"{path.name} written by PyLate is not a JSON object")
    return data


def _write_onnx_config(colbert: Any, model: str, out: Path) -> None:
    settings = {"model_name": model, **pylate_settings(colbert)}
    settings = {"model_type": settings.pop("model_type"), **settings}
    (out / "onnx_config.json").write_text(
        json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _quantize(out: Path) -> None:
    try:
        from colbert_export.quantize import quantize_model
    except ImportError as exc:
        raise MissingDependencyError(
            f"int8 export needs pylate-onnx-export ({exc}); install it with: {INSTALL_HINT}"
        ) from exc
    with _quiet_prints():
        quantize_model(out, verbose=False)


def _check_graph(
    torch: Any,
    colbert: Any,
    path: Path,
    queries: Sequence[str],
    documents: Sequence[str],
    atol: float,
) -> None:
    """The graph alone: on PyLate's own token ids, it must give PyLate's vectors.

    Separates a faulty graph from a tokenization difference (which :func:`_verify` reports).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    for texts, is_query in ((queries, True), (documents, False)):
        features = colbert.tokenize(list(texts), is_query=is_query)
        with torch.no_grad():
            expected = colbert(dict(features))["token_embeddings"]
            expected = torch.nn.functional.normalize(expected, p=2, dim=-1).numpy()
        feed = {k: v.numpy().astype(np.int64) for k, v in features.items() if k in names}
        missing = names - set(feed)
        if missing:
            raise ExportError(f"the graph needs {sorted(missing)}, which PyLate does not produce")
        got = session.run([session.get_outputs()[0].name], feed)[0]
        # Queries keep every position (expansion tokens too); documents their real tokens.
        keep = features["attention_mask"].numpy() > 0
        if is_query and colbert.do_query_expansion:
            keep[:] = True
        diff = float(np.abs(got - expected)[keep].max()) if keep.any() else 0.0
        if got.shape != expected.shape or diff > atol:
            side = "queries" if is_query else "documents"
            raise ExportError(
                f"the exported graph does not reproduce PyLate's forward pass on {side}: "
                f"output {got.shape} vs {expected.shape}, max |diff| {diff:.2e} > {atol:g}"
            )


def _verify(directory: Path, reference: ReferenceOutputs, atol: float) -> ParityReport:
    from ..model import ColBERT

    with _quiet_prints():  # onnxruntime's graph optimizer prints to stdout
        ours = ColBERT.from_pretrained(directory, cache=False, local_files_only=True)
        report = check_parity(ours, reference, atol=atol)
    if not report.ok:
        details = "\n  ".join(report.failures()[:12])
        raise ExportVerificationError(
            "the exported model does not reproduce PyLate, so it was not kept: "
            f"{report.summary()}\n  {details}",
            report,
        )
    logger.info("export check passed: %s", report.summary())
    return report


def _write_report(directory: Path, model: str, exporter: str, report: ParityReport | None) -> None:
    versions: dict[str, str | None] = {}
    for package in ("colbert-plugins", "pylate", "pylate-onnx-export", "torch", "transformers"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    record = {
        "model": model,
        "exporter": exporter,
        "versions": versions,
        "check": None if report is None else report.to_dict(),
    }
    (directory / "export_report.json").write_text(json.dumps(record, indent=2) + "\n")


# -- helpers --------------------------------------------------------------------------------


def _uses_token_type_ids(colbert: Any) -> bool:
    """Whether PyLate feeds token_type_ids: its tokenizer produces them."""
    return "token_type_ids" in colbert.tokenizer.model_input_names


def _output_dim(colbert: Any) -> int:
    last = list(colbert)[-1]
    out = getattr(last, "out_features", None)
    if out is None:
        out = colbert[0].get_word_embedding_dimension()
    return int(out)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def _quiet_prints() -> Iterator[None]:
    """Keep the exporters' chatter out of the user's terminal; it goes to the debug log.

    They print progress to stdout, and torch's dynamo exporter logs warnings and a traceback
    when it cannot down-convert the graph to the opset asked for (it keeps the graph as is).
    """
    import io
    import warnings

    buffer = io.StringIO()
    noisy = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [log.level for log in noisy]
    for log in noisy:
        log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(noisy, levels, strict=True):
            log.setLevel(level)
    if buffer.getvalue().strip():
        logger.debug("exporter output:\n%s", buffer.getvalue())


_NOISY_LOGGERS = ("onnxscript", "torch.onnx", "torch.export", "torch._dynamo", "root")
