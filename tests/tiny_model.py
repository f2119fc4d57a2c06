"""Build a tiny, deterministic BERT-shaped ColBERT ONNX model directory for unit tests.

Also provides a real WordPiece tokenizer over a small vocabulary and a helper that lays out
an offline Hugging Face hub cache (``models--org--name/{blobs,snapshots,refs,trees}``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import string

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.processors import TemplateProcessing

_SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# fmt: off
_WORDS = [
    "the", "a", "an", "and", "or", "is", "are", "was", "of", "in", "on", "at", "to", "for", "with",
    "what", "which", "who", "where", "when", "how", "this", "that", "it", "be", "not", "city",
    "capital", "paris", "france", "london", "england", "berlin", "germany", "river", "seine",
    "thames", "cat", "dog", "sat", "mat", "quick", "brown", "fox", "jumps", "over", "lazy", "hello",
    "world", "search", "query", "document", "text", "vector", "model", "late", "interaction",
    "colbert", "token", "tokens",
]
# fmt: on
_LETTERS = list(string.ascii_lowercase)
_DIGITS = list(string.digits)
VOCAB: list[str] = list(
    dict.fromkeys(
        _SPECIALS
        + list(string.punctuation)
        + _WORDS
        + _LETTERS
        + ["##" + c for c in _LETTERS]
        + _DIGITS
        + ["##" + d for d in _DIGITS]
    )
)
"""WordPiece vocabulary: specials (ids 0-6), punctuation, words, letters, digits (no duplicates)."""

_SPECIAL_MAP = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_LFS_SUFFIXES = (".onnx", "_data", ".bin", ".safetensors")


def build_tokenizer() -> Tokenizer:
    """Return a BERT-style WordPiece ``tokenizers.Tokenizer`` over :data:`VOCAB`."""
    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in _SPECIALS])
    return tok


def _build_graph(
    rng: np.random.Generator,
    *,
    dim: int,
    hidden: int,
    max_position: int,
    with_token_type_ids: bool,
    output_rank: int,
    normalize_output: bool,
) -> onnx.ModelProto:
    """Build the one-layer, single-head self-attention encoder as an ONNX model."""

    def w(*shape: int) -> np.ndarray:
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)

    inits = {
        "word_emb": w(len(VOCAB), hidden),
        "pos_emb": w(max_position, hidden),
        "type_emb": w(2, hidden),
        "w_q": w(hidden, hidden),
        "w_k": w(hidden, hidden),
        "w_v": w(hidden, hidden),
        "ln_scale": np.ones(hidden, np.float32),
        "ln_bias": np.zeros(hidden, np.float32),
        "w_proj": w(hidden, dim),
    }
    if not with_token_type_ids:
        del inits["type_emb"]
    consts = {  # Constant nodes, not initializers: shape inputs must stay inline with external data
        "i64_0": np.array(0, np.int64),
        "i64_1": np.array(1, np.int64),
        "i64_1d_1": np.array([1], np.int64),
        "i64_1d_2": np.array([2], np.int64),
        "f_1": np.array(1.0, np.float32),
        "f_neg": np.array(-10000.0, np.float32),
        "f_scale": np.array(1.0 / np.sqrt(hidden), np.float32),
    }
    if normalize_output:
        consts["f_eps"] = np.array(1e-12, np.float32)
    n = helper.make_node
    nodes = [n("Constant", [], [k], value=numpy_helper.from_array(v, k)) for k, v in consts.items()]
    nodes += [
        n("Gather", ["word_emb", "input_ids"], ["x_word"]),
        n("Shape", ["input_ids"], ["ids_shape"]),
        n("Slice", ["ids_shape", "i64_1d_1", "i64_1d_2"], ["seq_1d"]),
        n("Squeeze", ["seq_1d"], ["seq"]),
        n("Range", ["i64_0", "seq", "i64_1"], ["pos_ids"]),
        n("Gather", ["pos_emb", "pos_ids"], ["x_pos"]),
        n("Add", ["x_word", "x_pos"], ["x_wp"]),
    ]
    x = "x_wp"
    if with_token_type_ids:
        nodes += [
            n("Gather", ["type_emb", "token_type_ids"], ["x_type"]),
            n("Add", ["x_wp", "x_type"], ["x"]),
        ]
        x = "x"
    nodes += [
        n("MatMul", [x, "w_q"], ["q"]),
        n("MatMul", [x, "w_k"], ["k"]),
        n("MatMul", [x, "w_v"], ["v"]),
        n("Transpose", ["k"], ["k_t"], perm=[0, 2, 1]),
        n("MatMul", ["q", "k_t"], ["qk"]),
        n("Mul", ["qk", "f_scale"], ["scores_raw"]),
        n("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        n("Sub", ["f_1", "mask_f"], ["inv_mask"]),
        n("Mul", ["inv_mask", "f_neg"], ["mask_bias_2d"]),
        n("Unsqueeze", ["mask_bias_2d", "i64_1d_1"], ["mask_bias"]),
        n("Add", ["scores_raw", "mask_bias"], ["scores"]),
        n("Softmax", ["scores"], ["probs"], axis=-1),
        n("MatMul", ["probs", "v"], ["attn"]),
        n("Add", [x, "attn"], ["resid"]),
        n("LayerNormalization", ["resid", "ln_scale", "ln_bias"], ["normed"], axis=-1),
        n("Tanh", ["normed"], ["act"]),
        n("MatMul", ["act", "w_proj"], ["proj"]),
    ]
    out = "proj"
    if normalize_output:
        nodes += [
            n("ReduceL2", ["proj"], ["l2"], axes=[-1], keepdims=1),
            n("Max", ["l2", "f_eps"], ["l2_safe"]),
            n("Div", ["proj", "l2_safe"], ["unit"]),
        ]
        out = "unit"
    if output_rank == 2:
        nodes.append(n("ReduceMean", [out], ["last_hidden_state"], axes=[1], keepdims=0))
        out_shape: list[str | int] = ["batch", dim]
    elif output_rank == 3:
        nodes.append(n("Identity", [out], ["last_hidden_state"]))
        out_shape = ["batch", "sequence", dim]
    else:
        raise ValueError(f"output_rank must be 2 or 3, got {output_rank}")

    input_names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if with_token_type_ids else []
    )
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in input_names
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(
        nodes,
        "tiny_colbert",
        inputs,
        [output],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tiny_model"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_model_dir(
    directory: str | os.PathLike,
    *,
    dim: int = 8,
    hidden: int = 16,
    max_position: int = 64,
    with_token_type_ids: bool = True,
    onnx_name: str = "model.onnx",
    external_data: bool = False,
    output_rank: int = 3,
    normalize_output: bool = False,
    write_tokenizer: bool = True,
    model_max_length: int | None = None,
    tokenizer_config: dict | None = None,
    extra_files: dict[str, str] | None = None,
    seed: int = 0,
) -> pathlib.Path:
    """Write a tiny ColBERT-like ONNX model directory and return its path.

    Files: ``onnx_name`` (plus ``<onnx_name>_data`` if ``external_data``), ``tokenizer.json``
    (if ``write_tokenizer``), ``tokenizer_config.json``, ``special_tokens_map.json``,
    ``config.json`` and any ``extra_files`` (relative path -> text).
    The graph maps ``input_ids``/``attention_mask``[/``token_type_ids``] int64 ``[batch, sequence]``
    to ``last_hidden_state`` float32 ``[batch, sequence, dim]`` (``[batch, dim]`` if
    ``output_rank == 2``). Masked positions never influence unmasked ones.
    """
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    model = _build_graph(
        np.random.default_rng(seed),
        dim=dim,
        hidden=hidden,
        max_position=max_position,
        with_token_type_ids=with_token_type_ids,
        output_rank=output_rank,
        normalize_output=normalize_output,
    )
    onnx_path = root / onnx_name
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        onnx.save_model(
            model,
            str(onnx_path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=onnx_path.name + "_data",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, str(onnx_path))

    if write_tokenizer:
        build_tokenizer().save(str(root / "tokenizer.json"))
    tok_cfg: dict = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "model_max_length": max_position if model_max_length is None else model_max_length,
        **_SPECIAL_MAP,
        **(tokenizer_config or {}),
    }
    config = {
        "model_type": "bert",
        "hidden_size": hidden,
        "max_position_embeddings": max_position,
        "vocab_size": len(VOCAB),
    }
    files = {
        "tokenizer_config.json": json.dumps(tok_cfg, indent=2),
        "special_tokens_map.json": json.dumps(_SPECIAL_MAP, indent=2),
        "config.json": json.dumps(config, indent=2),
        **(extra_files or {}),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _git_blob_sha1(data: bytes) -> str:
    """Git blob id of ``data`` (what the Hub uses as etag/blob id for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def prefill_hf_cache(
    cache_dir: str | os.PathLike,
    repo_id: str,
    source_dir: str | os.PathLike,
    *,
    commit: str = "0123456789abcdef0123456789abcdef01234567",
    files: list[str] | None = None,
    ref: str = "main",
    write_tree: bool = True,
) -> pathlib.Path:
    """Lay out ``source_dir`` as a Hugging Face hub cache entry for model ``repo_id``.

    Creates ``cache_dir/models--org--name/`` with ``blobs/<hash>`` (git sha1 for regular files,
    sha256 for LFS-like weights, as the Hub's etags), ``snapshots/<commit>/<path>`` as relative
    symlinks to the blobs (copies if symlinks fail), ``refs/<ref>`` holding ``commit`` and, if
    ``write_tree``, ``trees/<commit>.json`` (the tree listing ``snapshot_download`` writes).
    ``files`` are '/'-separated paths relative to ``source_dir`` (default: all files).
    Returns the snapshot directory.
    """
    if not _COMMIT_RE.match(commit):
        raise ValueError(f"commit must be 40 lowercase hex chars, got {commit!r}")
    src = pathlib.Path(source_dir)
    if files is None:
        files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    storage = pathlib.Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    tree: dict[str, dict] = {}
    for rel in files:
        data = (src / rel).read_bytes()
        blob_id = _git_blob_sha1(data)
        entry: dict = {"size": len(data), "blob_id": blob_id}
        if rel.endswith(_LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            entry.update(lfs_sha256=sha256, lfs_size=len(data))
            blob_id = sha256
        tree[rel] = entry
        blob = storage / "blobs" / blob_id
        blob.write_bytes(data)
        pointer = snapshot / rel
        pointer.parent.mkdir(parents=True, exist_ok=True)
        if pointer.is_symlink() or pointer.exists():
            pointer.unlink()
        try:
            pointer.symlink_to(os.path.relpath(blob, pointer.parent))
        except OSError:
            shutil.copyfile(blob, pointer)
    snapshot.mkdir(parents=True, exist_ok=True)
    ref_file = storage / "refs" / ref
    ref_file.parent.mkdir(parents=True, exist_ok=True)
    ref_file.write_text(commit)
    if write_tree:
        (storage / "trees").mkdir(exist_ok=True)
        listing = {"format_version": 1, "files": dict(sorted(tree.items()))}
        (storage / "trees" / f"{commit}.json").write_text(json.dumps(listing, indent=1))
    return snapshot
