"""Graph preparation: fused and int8 graphs, cached once, verified against the original."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

import colbert_plugins.optimize as optimize
from colbert_plugins import ColBERT
from colbert_plugins.errors import InvalidArgumentError, MissingDependencyError
from colbert_plugins.optimize import prepare_graph
from tiny_model import build_model_dir

DOCS = ["the cat sat on the mat", "paris is the capital of france", "hello world"]
BERT = {"model_type": "bert", "num_attention_heads": 1, "hidden_size": 16}
FUSED = f"{optimize._FUSED_RECIPE}.onnx"
#: A PyLate model exported by torch's dynamo exporter (attention as SDPA with IsNaN masking).
DYNAMO_FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "pylate" / "bert-qd"


def test_optimized_graph_is_cached_and_gives_same_vectors(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    source = tiny_model_dir / "model.onnx"
    prepared = prepare_graph(source, BERT, optimize=True, directory=tmp_path)
    assert prepared != source and prepared.name == FUSED
    mtime = prepared.stat().st_mtime_ns
    assert prepare_graph(source, BERT, optimize=True, directory=tmp_path) == prepared
    assert prepared.stat().st_mtime_ns == mtime  # reused, not rebuilt
    plain = ColBERT.from_pretrained(tiny_model_dir, optimize=False, cache=False)
    fused = ColBERT.from_pretrained(tiny_model_dir, optimize=True, cache=False)
    assert plain.encoder.path == source and fused.encoder.path.name == FUSED
    for a, b in zip(plain.encode_documents(DOCS), fused.encode_documents(DOCS), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_auto_skips_graphs_that_are_not_bert(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    source = tiny_model_dir / "model.onnx"
    assert prepare_graph(source, {"model_type": "t5"}, directory=tmp_path) == source
    assert prepare_graph(source, {}, directory=tmp_path) == source
    assert not any(tmp_path.iterdir())


def test_mismatching_fused_graph_is_discarded(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(optimize, "_compare", lambda reference, candidate: 0.5)
    source = tiny_model_dir / "model.onnx"
    assert prepare_graph(source, BERT, optimize=True, directory=tmp_path) == source
    assert not list(tmp_path.rglob(FUSED))
    (marker,) = tmp_path.rglob(f"{optimize._FUSED_RECIPE}.rejected")
    assert "max |diff| 5.00e-01" in marker.read_text()

    # Remembered: the next load neither rebuilds nor re-checks the graph.
    def must_not_build(*args: object) -> None:
        raise AssertionError("rebuilt a graph that was rejected before")

    monkeypatch.setattr(optimize, "_compare", must_not_build)
    monkeypatch.setattr(optimize.tempfile, "TemporaryDirectory", must_not_build)
    assert prepare_graph(source, BERT, optimize=True, directory=tmp_path) == source
    # ... until ONNX Runtime changes, since the fusion comes from it.
    marker.write_text("onnxruntime 0.0.1: max |diff| 5.00e-01")
    monkeypatch.undo()  # the real check again
    assert prepare_graph(source, BERT, optimize=True, directory=tmp_path).name == FUSED


def test_int8_graph_is_close_and_ranks_alike(tiny_model_dir: pathlib.Path) -> None:
    full = ColBERT.from_pretrained(tiny_model_dir, optimize=False, cache=False)
    int8 = ColBERT.from_pretrained(tiny_model_dir, quantize="int8", cache=False)
    assert int8.encoder.path.name == "int8-v2.onnx"
    a, b = full.score("the cat", DOCS), int8.score("the cat", DOCS)
    assert np.isfinite(b).all()
    np.testing.assert_allclose(a, b, rtol=0.1)


def test_external_data_graph_is_optimized(tmp_path: pathlib.Path) -> None:
    root = build_model_dir(tmp_path / "m", onnx_name="onnx/model.onnx", external_data=True)
    prepared = prepare_graph(
        root / "onnx/model.onnx", BERT, optimize=True, directory=tmp_path / "c"
    )
    model = ColBERT.from_pretrained(root, optimize=False, cache=False)
    from colbert_plugins.onnx_encoder import OnnxEncoder

    encoder = OnnxEncoder(prepared)
    ids = np.array([[4, 1, 39, 76, 5]], dtype=np.int64)
    np.testing.assert_allclose(
        encoder(ids, np.ones_like(ids)), model.encoder(ids, np.ones_like(ids)), atol=1e-5
    )


def test_symlinked_external_data_is_optimized(tmp_path: pathlib.Path) -> None:
    """A Hugging Face cache links a snapshot's files to its blobs; onnx refuses to read
    external data through a link, so the graph is fused from a linked-free copy."""
    root = build_model_dir(tmp_path / "m", onnx_name="onnx/model.onnx", external_data=True)
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for part in (root / "onnx").iterdir():
        (snapshot / part.name).symlink_to(part)
    prepared = prepare_graph(snapshot / "model.onnx", BERT, optimize=True, directory=tmp_path / "c")
    assert prepared != snapshot / "model.onnx" and prepared.name.startswith("fused")
    assert [p.name for p in (tmp_path / "c").rglob(".source-*")] == []  # cleaned up


def test_bad_values_and_missing_dependency(
    tiny_model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tiny_model_dir / "model.onnx"
    with pytest.raises(InvalidArgumentError, match="optimize must be"):
        prepare_graph(source, BERT, optimize="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="quantize must be"):
        prepare_graph(source, BERT, quantize="int4")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "sympy", None)
    real_find_spec = optimize.importlib.util.find_spec
    monkeypatch.setattr(
        optimize.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sympy" else real_find_spec(name, *a),
    )
    assert prepare_graph(source, BERT) == source  # auto: silently skipped
    with pytest.raises(MissingDependencyError, match=r"colbert-plugins\[optimize\]"):
        prepare_graph(source, BERT, optimize=True)


def test_gelu_fed_matmuls_are_found() -> None:
    from onnx import helper

    n = helper.make_node
    nodes = [
        n("BiasGelu", ["a", "b"], ["g"], domain="com.microsoft"),
        n("MatMul", ["g", "w1"], ["y1"], name="after_fused_gelu"),
        # x * 0.5 * (1 + erf(x / sqrt 2)), unfused
        n("Div", ["y1", "c"], ["d"]),
        n("Erf", ["d"], ["e"]),
        n("Add", ["e", "one"], ["e1"]),
        n("Mul", ["y1", "e1"], ["m"]),
        n("Mul", ["m", "half"], ["m2"]),
        n("MatMul", ["m2", "w2"], ["y2"], name="after_erf_gelu"),
        n("Tanh", ["y2"], ["t"]),
        n("MatMul", ["t", "w3"], ["y3"], name="after_plain_tanh"),
        n("Add", ["y3", "bias"], ["z"]),
        n("MatMul", ["z", "w4"], ["y4"], name="behind_another_matmul"),
        n("MatMul", ["input", "w5"], ["y5"], name="on_a_graph_input"),
    ]
    graph = helper.make_graph(nodes, "g", [], [])
    found = optimize.gelu_fed_matmuls(helper.make_model(graph))
    assert found == ["after_fused_gelu", "after_erf_gelu"]


def test_the_optimizer_prints_nothing_to_stdout(
    tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """onnxruntime's optimizer prints "failed in shape inference" on this exported graph;
    that must not reach stdout, where it would corrupt ``--json`` output."""
    fixture = pathlib.Path(__file__).parents[1] / "fixtures" / "pylate" / "bert-qd"
    model = ColBERT.from_pretrained(fixture, optimize=True, cache=False)
    assert model.encoder.path.name == FUSED
    assert capfd.readouterr().out == ""


def _op_types(graph: pathlib.Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node}


def _dynamo_config() -> dict[str, object]:
    import json

    return dict(json.loads((DYNAMO_FIXTURE / "config.json").read_text()))


def _same_vectors(graph: pathlib.Path, atol: float = 1e-5) -> None:
    from colbert_plugins.onnx_encoder import OnnxEncoder

    plain = OnnxEncoder(DYNAMO_FIXTURE / "model.onnx")
    fused = OnnxEncoder(graph)
    ids = np.array([[101, 2, 7, 9, 30, 102, 0, 0], [101, 2, 44, 45, 46, 47, 48, 102]])
    mask = (np.arange(8) < np.array([[6], [8]])).astype(np.int64)
    a, b = plain(ids, mask), fused(ids, mask)
    np.testing.assert_allclose(a[mask.astype(bool)], b[mask.astype(bool)], atol=atol)


def test_dynamo_exported_attention_is_fused(tmp_path: pathlib.Path) -> None:
    """ONNX Runtime's optimizer fuses no attention in a dynamo export; onnxscript's does."""
    pytest.importorskip("onnxscript")
    source = DYNAMO_FIXTURE / "model.onnx"
    assert "Attention" not in _op_types(source) and "IsNaN" in _op_types(source)
    prepared = prepare_graph(source, _dynamo_config(), optimize=True, directory=tmp_path)
    assert prepared.name == FUSED
    assert "Attention" in _op_types(prepared) and "IsNaN" not in _op_types(prepared)
    _same_vectors(prepared)


def test_without_onnxscript_ort_fusion_is_kept(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = optimize.importlib.util.find_spec
    monkeypatch.setattr(
        optimize.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a),
    )
    source = DYNAMO_FIXTURE / "model.onnx"
    prepared = prepare_graph(source, _dynamo_config(), optimize=True, directory=tmp_path)
    assert prepared.name == FUSED
    ops = _op_types(prepared)
    assert "Attention" not in ops and "BiasGelu" in ops  # ONNX Runtime's fusion, no attention
    _same_vectors(prepared)


def test_disagreeing_onnxscript_fusion_is_not_used(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("onnxscript")
    real_compare = optimize._compare
    calls: list[pathlib.Path] = []

    def compare(reference: pathlib.Path, candidate: pathlib.Path) -> float:
        calls.append(candidate)  # the first check is onnxscript's graph: make it disagree
        return 0.5 if len(calls) == 1 else real_compare(reference, candidate)

    monkeypatch.setattr(optimize, "_compare", compare)
    source = DYNAMO_FIXTURE / "model.onnx"
    with caplog.at_level("WARNING", logger="colbert_plugins.optimize"):
        prepared = prepare_graph(source, _dynamo_config(), optimize=True, directory=tmp_path)
    assert len(calls) == 2 and "disagrees" in caplog.text
    assert prepared.name == FUSED and "Attention" not in _op_types(prepared)
    _same_vectors(prepared)
