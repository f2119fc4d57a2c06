"""Write into a model directory what PyLate's tokenizer holds after it tokenized.

PyLate's ``tokenize`` sets the transformer module's ``max_seq_length`` to ``document_length - 1``
(or ``query_length - 1``); sentence-transformers passes it as ``max_length`` to the tokenizer,
whose fixed padding and truncation follow. A checkpoint saved afterwards carries all of it, as
``../shared/models/colbert-minilm-trained/pylate`` does (127 for a document_length of 128).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def add_residue(directory: Path, length: int, *, side: str = "Right") -> None:
    """Write into ``directory`` what PyLate's tokenizer holds after a call with max_length
    ``length`` (as transformers 5 and sentence-transformers 5 save it)."""
    tokenizer_json = read_json(directory / "tokenizer.json")
    onnx_config = read_json(directory / "onnx_config.json")
    pad_id = int(onnx_config.get("pad_token_id") or 0)
    pad_token = Tokenizer.from_file(str(directory / "tokenizer.json")).id_to_token(pad_id)
    tokenizer_json["truncation"] = {
        "direction": side,
        "max_length": length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tokenizer_json["padding"] = {
        "strategy": {"Fixed": length},
        "direction": side,
        "pad_to_multiple_of": None,
        "pad_id": pad_id,
        "pad_type_id": 0,
        "pad_token": pad_token,
    }
    write_json(directory / "tokenizer.json", tokenizer_json)
    tokenizer_config = read_json(directory / "tokenizer_config.json")
    tokenizer_config.update(
        model_max_length=length,
        max_length=length,
        stride=0,
        truncation_strategy="longest_first",
        truncation_side=side.lower(),
        padding_side=side.lower(),
        pad_to_multiple_of=None,
        pad_token_type_id=0,
    )
    write_json(directory / "tokenizer_config.json", tokenizer_config)
    sbert = directory / "sentence_bert_config.json"
    write_json(sbert, {**(read_json(sbert) if sbert.is_file() else {}), "max_seq_length": length})
