"""Hostile and odd input: any Unicode text, broken or mismatched model files, odd adapter input.

Property-based tests (hypothesis) run on the tiny model. In CI they are derandomized (the same
examples every run, never flaky) with a modest number of examples; set
``COLBERT_PLUGINS_HYPOTHESIS_PROFILE=thorough`` to draw many more random examples locally.

Documented behaviour checked here:

- any ``str`` encodes without error: empty, whitespace-only, control and zero-width
  characters, special-token strings such as ``"[CLS]"``, mixed scripts, very long texts;
  every output row is finite and of unit norm, every score is finite, ``rerank`` returns a
  permutation of the input, and results do not depend on ``batch_size``;
- lone surrogates (code points U+D800-U+DFFF, which have no UTF-8 encoding) are read as
  U+FFFD, one for one, so character offsets are unchanged;
- a model whose files do not fit together fails with a ``ColBERTError`` subclass at load or
  on first use, never with a silent wrong score.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from onnx import TensorProto, helper, numpy_helper

from colbert_plugins import ColBERT
from colbert_plugins.errors import ColBERTError, ModelLoadError, ModelOutputError
from colbert_plugins.langchain import ColBERTRerank as LangChainRerank
from colbert_plugins.llama_index import ColBERTRerank as LlamaIndexRerank
from tiny_model import VOCAB, build_model_dir

# -- hypothesis settings -------------------------------------------------------------------

THOROUGH = os.environ.get("COLBERT_PLUGINS_HYPOTHESIS_PROFILE", "ci") == "thorough"
PROPERTY = settings(
    max_examples=1000 if THOROUGH else 50,
    deadline=None,  # shared CI cores: timing is not a property
    derandomize=not THOROUGH,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- text strategies -----------------------------------------------------------------------

FRAGMENTS = [
    "",
    " ",
    "\t\n\r\x0b\x0c",
    "\x00",
    "\x07\x08",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\xa0",
    "\u200b",
    "\u200c\u200d",
    "\u2028\u2029",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\ufffd",
    "\ufff9",
    "\U000e0001",
    "\u0301\u0301\u0301",
    "e\u0301",
    "\ufb01",
    "\u216b",
    "ß",
    "İ",
    "\U0001d518\U0001d52b\U0001d526",  # Fraktur letters
    "😀",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "中文字符",
    "日本語のテキスト",
    "한국어",
    "العربية",
    "עברית",
    "हिन्दी",
    "ไทย",
    "Ελληνικά",
    "кириллица",
    "[CLS]",
    "[SEP]",
    "[PAD]",
    "[MASK]",
    "[UNK]",
    "[unused0]",
    "[unused1]",
    "##",
    "##a",
    "the cat sat",
    "paris",
    "!!!???...",
    "'\"`",
    "\\",
    "%s%n{0}",
    "<script>alert(1)</script>",
    "\U0010ffff",
    "\ue000",
]

#: Any character Python and UTF-8 both allow (surrogates are tested on their own below).
ANY_CHAR = st.characters(exclude_categories=["Cs"])
SURROGATE = st.characters(categories=["Cs"])

any_text = st.one_of(
    st.text(ANY_CHAR, max_size=80),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(ANY_CHAR, max_size=8), max_size=12).map("".join),
    # Very long texts: a fragment repeated to 1,000-20,000 characters (far past truncation).
    st.builds(
        lambda fragment, n: (fragment * (n // len(fragment) + 1))[:n],
        st.sampled_from([f for f in FRAGMENTS if f]),
        st.integers(1_000, 20_000),
    ),
)
text_lists = st.lists(any_text, min_size=1, max_size=6)


def assert_unit_rows(arrays: Sequence[np.ndarray], dim: int) -> None:
    for a in arrays:
        assert a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == dim
        assert np.isfinite(a).all()
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


# -- properties of encoding and ranking ----------------------------------------------------


@PROPERTY
@given(texts=text_lists)
def test_documents_are_finite_unit_vectors(tiny_model: ColBERT, texts: list[str]) -> None:
    out = tiny_model.encode_documents(texts)
    assert len(out) == len(texts)
    assert_unit_rows(out, tiny_model.dim)
    # [CLS], the marker and [SEP] are always kept; nothing beyond document_length.
    assert all(3 <= a.shape[0] <= tiny_model.config.document_length for a in out)


@PROPERTY
@given(texts=text_lists)
def test_queries_are_finite_unit_vectors(tiny_model: ColBERT, texts: list[str]) -> None:
    out = tiny_model.encode_queries(texts)
    assert len(out) == len(texts)
    assert_unit_rows(out, tiny_model.dim)
    assert all(a.shape[0] >= tiny_model.config.query_length for a in out)


@PROPERTY
@given(query=any_text.filter(str.strip), documents=st.lists(any_text, max_size=8))
def test_rerank_is_a_permutation_with_finite_scores(
    tiny_model: ColBERT, query: str, documents: list[str]
) -> None:
    results = tiny_model.rerank(query, documents)
    assert sorted(r.index for r in results) == list(range(len(documents)))
    assert all(r.document == documents[r.index] for r in results)
    scores = [r.score for r in results]
    assert all(math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True)
    bound = tiny_model.encode_queries([query])[0].shape[0] + 1e-3  # |MaxSim| <= n query rows
    assert all(abs(s) <= bound for s in scores)
    direct = tiny_model.score(query, documents)
    assert [r.score for r in results] == pytest.approx([float(direct[r.index]) for r in results])


@PROPERTY
@given(texts=st.lists(any_text, min_size=1, max_size=12))
def test_batch_size_does_not_change_vectors(tiny_model: ColBERT, texts: list[str]) -> None:
    for encode in (tiny_model.encode_documents, tiny_model.encode_queries):
        one = encode(texts, batch_size=1)
        many = encode(texts, batch_size=16)
        for a, b in zip(one, many, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)


# -- lone surrogates -------------------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")


@PROPERTY
@given(
    parts=st.lists(
        st.tuples(st.text(ANY_CHAR, max_size=10), st.text(SURROGATE, min_size=1, max_size=3)),
        min_size=1,
        max_size=4,
    )
)
def test_lone_surrogates_read_as_replacement_characters(
    tiny_model: ColBERT, parts: list[tuple[str, str]]
) -> None:
    text = "".join(a + b for a, b in parts)
    clean = _SURROGATES.sub("\ufffd", text)
    for encode in (tiny_model.encode_documents, tiny_model.encode_queries):
        (got,) = encode([text])
        (expected,) = encode([clean])
        np.testing.assert_array_equal(got, expected)
    assert len(tiny_model.rerank(text, [text, clean, "paris"])) == 3


def test_lone_surrogates_in_windows_and_explanations(tiny_model_dir: pathlib.Path) -> None:
    model = ColBERT.from_pretrained(
        tiny_model_dir, query_length=8, cache=False, long_documents="windows"
    )
    text = "the cat\ud800 sat " * 40 + "\udfff"
    (got,) = model.encode_documents([text])
    np.testing.assert_array_equal(got, model.encode_documents([_SURROGATES.sub("\ufffd", text)])[0])
    explanation = model.explain("cat\udc80", text)
    assert explanation is not None


# -- model files that do not fit together ----------------------------------------------------

_n = helper.make_node


def graph_model_dir(
    root: pathlib.Path,
    tail: list[onnx.NodeProto],
    out_shape: Sequence[str | int] | None,
    *,
    constants: dict[str, np.ndarray] | None = None,
    out_type: int = TensorProto.FLOAT,
    check: bool = True,
    use_attention_mask: bool = True,
) -> pathlib.Path:
    """A tiny model directory whose graph is ``Gather(embeddings, input_ids) [* mask]``
    followed by ``tail`` (which must produce ``out``)."""
    directory = build_model_dir(root, with_token_type_ids=False)
    rng = np.random.default_rng(0)
    inits: dict[str, np.ndarray] = {
        "emb": rng.standard_normal((len(VOCAB), 8)).astype(np.float32),
        "axis2": np.array([2], np.int64),
        **(constants or {}),
    }
    nodes = [_n("Gather", ["emb", "input_ids"], ["x0"])]
    if use_attention_mask:
        nodes += [
            _n("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            _n("Unsqueeze", ["mask_f", "axis2"], ["mask_3d"]),
            _n("Mul", ["x0", "mask_3d"], ["x"]),
        ]
    else:
        nodes.append(_n("Identity", ["x0"], ["x"]))
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask")
    ]
    output = helper.make_tensor_value_info("out", out_type, out_shape)
    graph = helper.make_graph(
        nodes + tail,
        "hostile",
        inputs,
        [output],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    return directory


SEQ3: list[str | int] = ["batch", "sequence", 8]
F32 = np.float32


@pytest.mark.parametrize(
    ("tail", "constants"),
    [
        ([_n("Log", ["minus_one"], ["nan"]), _n("Mul", ["x", "nan"], ["out"])], {"minus_one": -1}),
        ([_n("Div", ["x", "zero"], ["out"])], {"zero": 0}),  # 0/0 = NaN at padding, inf elsewhere
        ([_n("Mul", ["x", "big"], ["y"]), _n("Mul", ["y", "big"], ["out"])], {"big": 3e38}),
    ],
    ids=["log-of-minus-one", "divide-by-zero", "overflow-to-inf"],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_graph_output_is_an_error_never_a_score(
    tmp_path: pathlib.Path, tail: list[onnx.NodeProto], constants: dict[str, float]
) -> None:
    model_dir = graph_model_dir(
        tmp_path, tail, SEQ3, constants={k: np.array(v, F32) for k, v in constants.items()}
    )
    model = ColBERT.from_pretrained(model_dir, cache=False)
    for call in (
        lambda: model.encode_documents(["the cat sat"]),
        lambda: model.encode_queries(["cat"]),
        lambda: model.rerank("cat", ["the cat sat", "dog"]),
        lambda: LangChainRerank(model).compress_documents([Document("cat")], "cat"),
    ):
        with pytest.raises(ModelOutputError, match="NaN or infinite"):
            call()


@pytest.mark.parametrize(
    ("tail", "out_shape", "constants", "at_load"),
    [
        ([_n("Unsqueeze", ["x", "one"], ["out"])], ["b", 1, "s", 8], {"one": [1]}, True),
        ([_n("ReduceMean", ["x"], ["out"], axes=[1], keepdims=0)], ["b", 8], {}, True),
        # Shapes declared as 3-D but the tensors are not [batch, sequence, dim].
        ([_n("Unsqueeze", ["x", "one"], ["out"])], ["a", "b", "c"], {"one": [1]}, False),
        ([_n("ReduceMean", ["x"], ["out"], axes=[1], keepdims=0)], ["a", "b", "c"], {}, False),
        ([_n("Transpose", ["x"], ["out"], perm=[1, 0, 2])], ["a", "b", 8], {}, False),
    ],
    ids=["rank4", "pooled", "rank4-declared-3d", "pooled-declared-3d", "transposed"],
)
def test_wrong_output_dims_are_reported(
    tmp_path: pathlib.Path,
    tail: list[onnx.NodeProto],
    out_shape: list[str | int],
    constants: dict[str, list[int]],
    at_load: bool,
) -> None:
    model_dir = graph_model_dir(
        tmp_path,
        tail,
        out_shape,
        constants={k: np.array(v, np.int64) for k, v in constants.items()},
        check=at_load,
    )
    if at_load:
        with pytest.raises(ModelOutputError, match=r"\[batch, sequence, dim\]"):
            ColBERT.from_pretrained(model_dir, cache=False)
        return
    model = ColBERT.from_pretrained(model_dir, cache=False)
    with pytest.raises(ModelOutputError, match=r"returned shape"):
        model.encode_documents(["the cat sat", "dog"])


def test_integer_output_is_refused(tmp_path: pathlib.Path) -> None:
    model_dir = graph_model_dir(
        tmp_path, [_n("Cast", ["x"], ["out"], to=TensorProto.INT64)], SEQ3, out_type=7
    )
    model = ColBERT.from_pretrained(model_dir, cache=False)
    with pytest.raises(ModelOutputError, match="int64 values"):
        model.score("cat", ["cat"])


def test_zero_size_vectors_are_refused(tmp_path: pathlib.Path) -> None:
    starts = {"s0": [0], "s1": [0], "s2": [2]}
    model_dir = graph_model_dir(
        tmp_path,
        [_n("Slice", ["x", "s0", "s1", "s2"], ["out"])],
        ["batch", "sequence", 0],
        constants={k: np.array(v, np.int64) for k, v in starts.items()},
    )
    with pytest.raises(ModelOutputError, match="size 0"):
        ColBERT.from_pretrained(model_dir, cache=False, optimize=False)


def test_graph_that_ignores_attention_mask_loads_with_default_optimize(
    tmp_path: pathlib.Path,
) -> None:
    # The transformer optimizer prunes the unused attention_mask input from the fused graph.
    model_dir = graph_model_dir(
        tmp_path, [_n("Identity", ["x"], ["out"])], SEQ3, use_attention_mask=False
    )
    model = ColBERT.from_pretrained(model_dir, cache=False)
    assert_unit_rows(model.encode_documents(["the cat sat"]), 8)


def test_zero_size_vectors_are_refused_with_default_optimize(tmp_path: pathlib.Path) -> None:
    starts = {"s0": [0], "s1": [0], "s2": [2]}
    model_dir = graph_model_dir(
        tmp_path,
        [_n("Slice", ["x", "s0", "s1", "s2"], ["out"])],
        ["batch", "sequence", 0],
        constants={k: np.array(v, np.int64) for k, v in starts.items()},
    )
    with pytest.raises(ColBERTError):
        ColBERT.from_pretrained(model_dir, cache=False)


def test_all_zero_vectors_are_an_error_not_a_zero_score(tmp_path: pathlib.Path) -> None:
    model_dir = graph_model_dir(
        tmp_path, [_n("Mul", ["x", "zero"], ["out"])], SEQ3, constants={"zero": np.array(0, F32)}
    )
    model = ColBERT.from_pretrained(model_dir, cache=False)
    with pytest.raises(ModelOutputError):
        model.score("cat", ["the cat sat", "dog"])


@pytest.mark.parametrize("damage", ["empty", "zeros", "junk", "truncated-tail", "truncated-head"])
def test_damaged_graph_file_is_a_load_error(tmp_path: pathlib.Path, damage: str) -> None:
    model_dir = build_model_dir(tmp_path)
    graph = model_dir / "model.onnx"
    data = graph.read_bytes()
    graph.write_bytes(
        {
            "empty": b"",
            "zeros": bytes(len(data)),
            "junk": np.random.default_rng(1).bytes(len(data)),
            "truncated-tail": data[: len(data) * 9 // 10],
            "truncated-head": data[len(data) // 10 :],
        }[damage]
    )
    with pytest.raises(ModelLoadError, match="could not load"):
        ColBERT.from_pretrained(model_dir, cache=False)


def test_missing_external_data_is_a_load_error(tmp_path: pathlib.Path) -> None:
    model_dir = build_model_dir(tmp_path, external_data=True)
    data = model_dir / "model.onnx_data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ColBERTError):
        ColBERT.from_pretrained(model_dir, cache=False).encode_documents(["cat"])


def _grow_vocabulary(model_dir: pathlib.Path, extra_words: int, extra_special: str) -> int:
    """Add words and a special token beyond the graph's embedding table; return its id."""
    path = model_dir / "tokenizer.json"
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    first = len(vocab)
    for i in range(extra_words):
        vocab[f"zzextra{i}"] = first + i
    special_id = first + extra_words
    tokenizer["added_tokens"].append(
        {
            "id": special_id,
            "content": extra_special,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    path.write_text(json.dumps(tokenizer), encoding="utf-8")
    return special_id


@pytest.mark.parametrize("where", ["document-word", "query-word", "query-marker", "doc-marker"])
def test_vocabulary_larger_than_the_embedding_table(tmp_path: pathlib.Path, where: str) -> None:
    model_dir = build_model_dir(tmp_path)
    special_id = _grow_vocabulary(model_dir, 20, "[QX]")
    by_case: dict[str, dict[str, Any]] = {
        "query-marker": {"query_marker": "[QX]"},
        "doc-marker": {"document_marker": special_id},
    }
    overrides = by_case.get(where, {})
    with pytest.raises((ModelLoadError, ModelOutputError), match="embedding table"):
        model = ColBERT.from_pretrained(model_dir, cache=False, **overrides)
        if where.startswith("query"):
            model.rerank("zzextra7 cat", ["the cat sat"])
        else:
            model.rerank("cat", ["the zzextra19 sat"])


def test_text_inside_the_table_still_works_with_a_larger_vocabulary(
    tmp_path: pathlib.Path,
) -> None:
    plain = ColBERT.from_pretrained(build_model_dir(tmp_path / "plain"), cache=False)
    grown_dir = build_model_dir(tmp_path / "grown")
    _grow_vocabulary(grown_dir, 20, "[QX]")
    try:
        grown = ColBERT.from_pretrained(grown_dir, cache=False)
    except ModelLoadError:  # a loader that checks the vocabulary up front is fine too
        return
    docs = ["the cat sat", "paris is the capital of france"]
    np.testing.assert_array_equal(grown.score("cat", docs), plain.score("cat", docs))


@pytest.mark.parametrize(
    ("files", "match"),
    [
        (
            {"config_sentence_transformers.json": {"query_prefix": "[Q] "}},
            r"config_sentence_transformers.json: query_prefix is '\[Q\] ', which is not a token",
        ),
        (
            {"config_sentence_transformers.json": {"document_prefix": "[D] "}},
            r"config_sentence_transformers.json: document_prefix is '\[D\] ', which is not a token",
        ),
        ({"special_tokens_map.json": {"mask_token": "<mask>"}}, "mask_token '<mask>'"),
        ({"tokenizer_config.json": {"pad_token": "<pad>"}}, "pad_token '<pad>'"),
    ],
    ids=["query-marker", "document-marker", "mask", "pad"],
)
def test_special_tokens_missing_from_the_vocabulary(
    tmp_path: pathlib.Path, files: dict[str, dict[str, str]], match: str
) -> None:
    model_dir = build_model_dir(tmp_path)
    for name, values in files.items():
        path = model_dir / name
        current = json.loads(path.read_text()) if path.is_file() else {}
        if name != "special_tokens_map.json":
            current.update(values)
        else:  # both files name the mask token; change both
            current.update(values)
            config = json.loads((model_dir / "tokenizer_config.json").read_text())
            config.update(values)
            (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
        path.write_text(json.dumps(current))
    with pytest.raises(ModelLoadError, match=match):
        ColBERT.from_pretrained(model_dir, cache=False)


# -- adapters: odd documents and nodes --------------------------------------------------------


class Unfriendly:
    """A metadata value that refuses to be copied, pickled, compared or hashed."""

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> Unfriendly:
        raise RuntimeError("no deepcopy")

    def __copy__(self) -> Unfriendly:
        raise RuntimeError("no copy")

    def __reduce__(self) -> Any:
        raise RuntimeError("no pickle")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparison")


def odd_metadata() -> dict[str, Any]:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    return {
        "lock": threading.Lock(),
        "generator": (i for i in range(3)),
        "lambda": lambda: None,
        "module": np,
        "cyclic": cyclic,
        "unfriendly": Unfriendly(),
        "nan": float("nan"),
        "bytes": b"\x00\xff",
        "text": "\ud800 lone surrogate in metadata",
    }


def test_langchain_odd_metadata_duplicates_and_empty_texts(tiny_model: ColBERT) -> None:
    metadata = odd_metadata()
    docs = [
        Document(page_content="", id="empty"),
        Document(page_content="   \n\t", id="blank"),
        Document(page_content="paris is the capital of france", id="dup", metadata=metadata),
        Document(page_content="paris is the capital of france", id="dup"),  # same id and text
        Document(page_content="paris is the capital of france"),  # same text, no id
        Document(page_content="the cat sat", id="dup"),  # same id, other text
    ]
    reranker = LangChainRerank(tiny_model, top_n=None)
    out = reranker.compress_documents(docs, "capital of france")
    # Every input is returned once (no de-duplication by id or text), as a new Document.
    assert sorted((o.page_content, str(o.id)) for o in out) == sorted(
        (d.page_content, str(d.id)) for d in docs
    )
    assert not any(o is d for o in out for d in docs)
    # Identical texts score identically and keep their input order.
    paris = [o for o in out if o.page_content.startswith("paris")]
    assert len({o.metadata["relevance_score"] for o in paris}) == 1
    assert [o.metadata.get("lock") is metadata["lock"] for o in paris] == [True, False, False]
    assert [o.id for o in paris] == ["dup", "dup", None]
    scores = [o.metadata["relevance_score"] for o in out]
    assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)
    # The odd values are passed through as the same objects, and the input is untouched.
    first = paris[0].metadata
    assert all(first[k] is v for k, v in metadata.items())
    assert "relevance_score" not in metadata and set(metadata) == set(odd_metadata())


async def test_langchain_async_with_odd_documents(tiny_model: ColBERT) -> None:
    docs = [Document(page_content=t, metadata=odd_metadata()) for t in ("", "cat", "cat", "x")]
    reranker = LangChainRerank(tiny_model, top_n=None)
    sync = reranker.compress_documents(docs, "cat")
    got = await reranker.acompress_documents(docs, "cat")
    assert [(d.page_content, d.metadata["relevance_score"]) for d in got] == [
        (d.page_content, d.metadata["relevance_score"]) for d in sync
    ]


@pytest.mark.parametrize("mode", [MetadataMode.NONE, MetadataMode.EMBED])
def test_llama_index_odd_nodes(tiny_model: ColBERT, mode: MetadataMode) -> None:
    metadata = {"lock": threading.Lock(), "nan": float("nan"), "list": [1, [2]], "none": None}
    shared = TextNode(text="paris is the capital of france", id_="same", metadata=metadata)
    nodes = [
        NodeWithScore(node=TextNode(text="", id_="empty"), score=None),
        NodeWithScore(node=TextNode(text=" \u200b\n", id_="blank"), score=0.5),
        NodeWithScore(node=shared, score=1.0),
        NodeWithScore(node=shared, score=2.0),  # the very same node twice
        NodeWithScore(node=TextNode(text=shared.text, id_="same"), score=3.0),  # same id
        NodeWithScore(node=TextNode(text="the cat sat", id_="same"), score=None),
    ]
    reranker = LlamaIndexRerank(
        model=tiny_model, top_n=len(nodes), keep_retrieval_score=True, metadata_mode=mode
    )
    out = reranker.postprocess_nodes(nodes, QueryBundle("capital of france"))
    assert len(out) == len(nodes)
    assert all(o.score is not None and math.isfinite(o.score) for o in out)
    assert sorted(o.node.metadata["retrieval_score"] or 0 for o in out) == sorted(
        n.score or 0 for n in nodes
    )
    # Duplicates are not merged; the same node object twice gives two results.
    assert sum(o.node.node_id == "same" for o in out) == 4
    # Callers' nodes are not modified; odd metadata values are passed through as is.
    assert "retrieval_score" not in shared.metadata
    lock_holders = [o for o in out if "lock" in o.node.metadata]
    assert len(lock_holders) == 2 and all(
        o.node.metadata["lock"] is metadata["lock"] for o in lock_holders
    )
    if mode is MetadataMode.NONE:
        by_text: dict[str, set[float | None]] = {}
        for o in out:
            by_text.setdefault(o.node.get_content(MetadataMode.NONE), set()).add(o.score)
        assert all(len(s) == 1 for s in by_text.values())  # same text, same score


@pytest.mark.parametrize("query", ["", " ", "\t\n"])
def test_every_entry_point_refuses_an_empty_query(tiny_model: ColBERT, query: str) -> None:
    """One rule: ranking or searching by an empty or whitespace-only query is an error."""
    from colbert_plugins.errors import EmptyQueryError
    from colbert_plugins.index import InMemoryIndex

    docs = [Document(page_content=t) for t in ("the cat sat", "paris")]
    nodes = [NodeWithScore(node=TextNode(text=d.page_content)) for d in docs]
    index = InMemoryIndex(tiny_model)
    index.add(["the cat sat", "paris"])
    calls = [
        lambda: tiny_model.rerank(query, ["a", "b"]),
        lambda: tiny_model.score(query, ["a"]),
        lambda: tiny_model.score(query, []),
        lambda: tiny_model.explain(query, "a"),
        lambda: LangChainRerank(tiny_model).compress_documents(docs, query),
        lambda: LangChainRerank(tiny_model).compress_documents([], query),
        lambda: LlamaIndexRerank(model=tiny_model).postprocess_nodes(nodes, query_str=query),
        lambda: index.search(query),
        lambda: index.search_batch(["paris", query]),
    ]
    for call in calls:
        with pytest.raises(EmptyQueryError, match=r"is (an empty string|only whitespace)"):
            call()
    # Encoding is not ranking: an empty text still has vectors.
    assert tiny_model.encode_queries([query])[0].shape[0] == tiny_model.config.query_length


@pytest.mark.parametrize("query", ["\x00", "\u200b", "[MASK]" * 40, "😀" * 1000])
def test_adapters_accept_odd_queries(tiny_model: ColBERT, query: str) -> None:
    docs = [Document(page_content=t) for t in ("the cat sat", "", "paris")]
    out = LangChainRerank(tiny_model, top_n=None).compress_documents(docs, query)
    assert sorted(d.page_content for d in out) == sorted(d.page_content for d in docs)
    nodes = [NodeWithScore(node=TextNode(text=d.page_content)) for d in docs]
    got = LlamaIndexRerank(model=tiny_model, top_n=3).postprocess_nodes(nodes, query_str=query)
    assert len(got) == 3 and all(math.isfinite(n.score or 0.0) for n in got)
