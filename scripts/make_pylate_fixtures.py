"""Build the PyLate parity fixtures under tests/fixtures/pylate/ (run in .venv-pylate).

For each configuration in CONFIGS this script
1. trains a small tokenizer of the model family with the ``tokenizers`` library on text from
   ../shared/data (no model hub is reachable): BERT WordPiece, ModernBERT-style byte-level BPE,
   XLM-RoBERTa-style Unigram with Metaspace, each with its family's special tokens and ids;
2. builds a tiny random-weight transformer of that family (2 layers, seeded) and wraps it in a
   PyLate ``ColBERT`` with the configuration's settings, saved with PyLate's own ``save``;
3. exports the saved model with ``colbert-plugins export`` (colbert_plugins.export), which
   also checks our core against PyLate;
4. writes PyLate's reference outputs beside the export: ``reference.json`` (versions,
   settings, texts and PyLate's own tokenization of each text alone) and ``reference.npz``
   (``query_{i}`` / ``document_{i}``: ``ColBERT.encode(texts, is_query=...)`` on one batch).

benchmarks/parity_pylate.py and tests/export/test_pylate_parity.py read them without torch.

    bash scripts/pylate_env.sh
    .venv-pylate/bin/python scripts/make_pylate_fixtures.py [--out tests/fixtures/pylate]
        [--only NAME ...] [--keep-pylate DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata as md
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colbert_plugins.export import CHECK_DOCUMENTS, CHECK_QUERIES

# The tokenizer trainers are not fully deterministic (ties are broken in hash order, even on
# one thread), so regenerating may change a fixture's vocabulary and bytes; each fixture's
# reference outputs come from the same run as its model, so they always agree.
os.environ["RAYON_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")

# -- texts ----------------------------------------------------------------------------------

# The texts `colbert-plugins export` checks with: the fixtures record PyLate's outputs for them.
QUERIES = list(CHECK_QUERIES)
DOCUMENTS = list(CHECK_DOCUMENTS)

# -- configurations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One fixture: a model family and the PyLate settings it is saved with."""

    name: str
    family: str  # "bert", "bert-cased", "modernbert", "xlmr"
    description: str
    pylate: dict[str, Any] = field(default_factory=dict)
    do_lower_case: bool = False
    dims: tuple[int, ...] = (32,)  # output sizes of the Dense layers after the transformer
    dense_bias: bool = False
    int8: bool = False
    seed: int = 0


CONFIGS = [
    Config(
        name="bert-unused",
        family="bert",
        description="BERT (token_type_ids) with stanford-style [unused0]/[unused1] prefixes",
        pylate={
            "query_prefix": "[unused0]",
            "document_prefix": "[unused1]",
            "query_length": 32,
            "document_length": 64,
        },
        dims=(24,),
        seed=1,
    ),
    Config(
        name="bert-qd",
        family="bert-cased",
        description='BERT (cased) with PyLate\'s default "[Q] "/"[D] " added tokens',
        pylate={"query_length": 24, "document_length": 48},
        dims=(16,),
        int8=True,
        seed=2,
    ),
    Config(
        name="bert-prompts",
        family="bert",
        description=(
            "BERT with sentence-transformers prompts and a default_prompt_name (PyLate's encode "
            "puts that prompt before queries and documents alike)"
        ),
        pylate={
            "query_length": 32,
            "document_length": 48,
            "prompts": {"query": "search_query: ", "document": "search_document: "},
            "default_prompt_name": "query",
        },
        dims=(16,),
        seed=6,
    ),
    Config(
        name="modernbert-expansion",
        family="modernbert",
        description="ModernBERT with query expansion (GTE-ModernColBERT style)",
        pylate={"query_length": 32, "document_length": 64, "do_query_expansion": True},
        dims=(32,),
        seed=3,
    ),
    Config(
        name="modernbert-noexp",
        family="modernbert",
        description=(
            "ModernBERT without expansion, query_length 48, lower-casing, two Dense layers "
            "(mxbai-edge style)"
        ),
        pylate={"query_length": 48, "document_length": 64, "do_query_expansion": False},
        do_lower_case=True,
        dims=(48, 16),
        dense_bias=True,
        seed=4,
    ),
    Config(
        name="xlmr-attend",
        family="xlmr",
        description="XLM-RoBERTa with attended expansion tokens (jina style)",
        pylate={
            "query_length": 32,
            "document_length": 64,
            "do_query_expansion": True,
            "attend_to_expansion_tokens": True,
        },
        dims=(32,),
        seed=5,
    ),
]

# -- tokenizers -----------------------------------------------------------------------------


def corpus_lines(limit: int = 6000) -> Iterator[str]:
    """Titles and texts of the shared BEIR collections, plus the fixture texts themselves."""
    count = 0
    for name in ("scifact", "cranfield", "cisi"):
        path = DATA / name / "corpus.jsonl"
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                for key in ("title", "text"):
                    text = str(record.get(key) or "").strip()
                    if text:
                        yield text
                        count += 1
                if count >= limit:
                    return
    if count == 0:
        raise SystemExit(f"no corpus text found under {DATA}")


def training_text() -> list[str]:
    # Not the fixture texts themselves: some of their characters stay out of the vocabularies,
    # so unknown tokens (and PyLate's mapping of absent skiplist words to the unk id) are
    # exercised.
    return list(corpus_lines())


def bert_tokenizer(lowercase: bool) -> Any:
    """WordPiece like bert-base: [PAD]=0, [unused0]=1, [unused1]=2, then [UNK] [CLS] [SEP] [MASK].

    As in bert-base-uncased, [unused0]/[unused1] are plain vocabulary entries (not added
    tokens) and only [PAD] [UNK] [CLS] [SEP] [MASK] are special added tokens.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer

    head = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    trained = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    trained.normalizer = normalizer
    trained.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trained.train_from_iterator(
        training_text(),
        trainer=WordPieceTrainer(vocab_size=2000, special_tokens=["[UNK]"], min_frequency=2),
    )
    vocab = {token: i for i, token in enumerate(head)}
    for token in sorted(trained.get_vocab()):  # sorted: the trainer's order varies
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    for i, token in enumerate(head):
        assert tok.token_to_id(token) == i, token
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def modernbert_tokenizer() -> Any:
    """Byte-level BPE like ModernBERT (OLMo vocabulary layout, scaled down).

    ModernBERT-base: <|padding|>=1, <|endoftext|>=50279 and, after the BPE vocabulary,
    [UNK]=50280, [CLS]=50281, [SEP]=50282, [PAD]=50283, [MASK]=50284 (lstrip); template
    "[CLS] $A [SEP]". Here the same order after a 1,500-token vocabulary.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=1500,
        special_tokens=["|||IP_ADDRESS|||", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
    )
    tok.train_from_iterator(training_text(), trainer=trainer)
    tok.add_special_tokens(["<|endoftext|>"])
    tok.add_special_tokens(
        [
            AddedToken("[UNK]", special=True),
            AddedToken("[CLS]", special=True),
            AddedToken("[SEP]", special=True),
            AddedToken("[PAD]", special=True),
            AddedToken("[MASK]", lstrip=True, special=True),
        ]
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def xlmr_tokenizer() -> Any:
    """Unigram + Metaspace like XLM-RoBERTa: <s>=0, <pad>=1, </s>=2, <unk>=3, <mask> last."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers.trainers import UnigramTrainer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = UnigramTrainer(
        vocab_size=2000, special_tokens=specials, unk_token="<unk>", shrinking_factor=0.75
    )
    tok.train_from_iterator(training_text(), trainer=trainer)
    for i, token in enumerate(specials):
        assert tok.token_to_id(token) == i, token
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0 </s>:0",
        pair="<s>:0 $A:0 </s>:0 </s>:0 $B:0 </s>:0",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tok


#: Special tokens each family names, and the inputs its tokenizer produces.
_BRACKETED = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
FAMILY_TOKENS: dict[str, dict[str, str]] = {
    "bert": _BRACKETED,
    "modernbert": _BRACKETED,
    "xlmr": {
        "bos": "<s>",
        "eos": "</s>",
        "unk": "<unk>",
        "sep": "</s>",
        "cls": "<s>",
        "pad": "<pad>",
        "mask": "<mask>",
    },
}


def hf_tokenizer(family: str) -> Any:
    """The family's tokenizer as a transformers fast tokenizer with its special tokens named."""
    from transformers import PreTrainedTokenizerFast

    base = "bert" if family.startswith("bert") else family
    build = {
        "bert": lambda: bert_tokenizer(lowercase=family == "bert"),
        "modernbert": modernbert_tokenizer,
        "xlmr": xlmr_tokenizer,
    }[base]
    inputs = ["input_ids", "attention_mask"]
    if base == "bert":  # BERT's tokenizer also returns token_type_ids
        inputs.insert(1, "token_type_ids")
    return PreTrainedTokenizerFast(
        tokenizer_object=build(),
        **{f"{key}_token": token for key, token in FAMILY_TOKENS[base].items()},
        model_max_length=8192 if base == "modernbert" else 512,
        model_input_names=inputs,
    )


# -- models ---------------------------------------------------------------------------------


def hf_model(family: str, vocab_size: int, tokenizer: Any, seed: int) -> Any:
    """A tiny random-weight transformer of the family (2 layers, hidden 32)."""
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        ModernBertConfig,
        ModernBertModel,
        XLMRobertaConfig,
        XLMRobertaModel,
    )

    torch.manual_seed(seed)
    size = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    if family in ("bert", "bert-cased"):
        bert = BertConfig(**size, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
        return BertModel(bert, add_pooling_layer=False)
    if family == "modernbert":
        modern = ModernBertConfig(
            **size,
            max_position_embeddings=512,
            global_attn_every_n_layers=2,
            local_attention=128,  # ModernBERT's own window
            pad_token_id=tokenizer.pad_token_id,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
        return ModernBertModel(modern)
    if family == "xlmr":
        xlmr = XLMRobertaConfig(
            **size,
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        return XLMRobertaModel(xlmr, add_pooling_layer=False)
    raise ValueError(family)


def build_pylate_model(cfg: Config, directory: Path) -> Path:
    """Save a base transformer, wrap it with PyLate, save the PyLate model; returns its path."""
    import torch
    from pylate import models
    from torch import nn

    base = directory / "base"
    tokenizer = hf_tokenizer(cfg.family)
    model = hf_model(cfg.family, len(tokenizer), tokenizer, cfg.seed)
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)

    torch.manual_seed(cfg.seed + 100)
    colbert = models.ColBERT(str(base), device="cpu", embedding_size=cfg.dims[0], **cfg.pylate)
    # Replace the Dense PyLate appended by the configured chain (seeded weights, optional bias).
    while len(colbert) > 1:
        del colbert[len(colbert) - 1]
    width = colbert[0].get_word_embedding_dimension()
    for out in cfg.dims:
        dense = models.Dense(in_features=width, out_features=out, bias=cfg.dense_bias)
        nn.init.normal_(dense.linear.weight, std=0.2)
        if cfg.dense_bias:
            nn.init.normal_(dense.linear.bias, std=0.05)
        colbert.append(dense)
        width = out
    colbert[0].do_lower_case = cfg.do_lower_case
    saved = directory / "pylate"
    colbert.save(str(saved))
    return saved


# -- fixtures -------------------------------------------------------------------------------


def reference_for(saved: Path) -> tuple[Any, dict[str, Any]]:
    """PyLate's outputs for the fixture texts, from the saved model loaded afresh."""
    from pylate import models

    from colbert_plugins.export import pylate_reference, pylate_settings

    colbert = models.ColBERT(str(saved), device="cpu")
    reference = pylate_reference(colbert, QUERIES, DOCUMENTS)
    return reference, pylate_settings(colbert)


def make_fixture(cfg: Config, out: Path, work: Path, check: bool) -> None:
    from colbert_plugins.export import export_model

    saved = build_pylate_model(cfg, work / cfg.name)
    result = export_model(str(saved), out, int8=cfg.int8, force=True, check=check)
    (out / "onnx_config.json").write_text(
        (out / "onnx_config.json").read_text().replace(str(saved), cfg.name)
    )
    report = json.loads((out / "export_report.json").read_text())
    report["model"] = cfg.name
    (out / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    reference, settings = reference_for(saved)
    metadata = {
        "name": cfg.name,
        "description": cfg.description,
        "made_by": "scripts/make_pylate_fixtures.py",
        "exporter": result.exporter,
        "versions": {
            p: _version(p)
            for p in (
                "pylate",
                "torch",
                "transformers",
                "sentence-transformers",
                "pylate-onnx-export",
                "tokenizers",
            )
        },
        "settings": settings,
        "dense_layers": list(cfg.dims),
    }
    dataclasses.replace(reference, metadata=metadata).save(out)
    status = result.report.summary() if result.report else "core check skipped (--no-check)"
    print(f"{cfg.name}: {result.exporter}; {status}")


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "pylate")
    parser.add_argument("--only", nargs="*", help="configuration names (default: all)")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="do not refuse an export that our core does not yet reproduce (the fixtures "
        "then record PyLate's outputs all the same)",
    )
    parser.add_argument("--keep-pylate", type=Path, help="keep the saved PyLate models here")
    args = parser.parse_args(argv)
    chosen = [c for c in CONFIGS if not args.only or c.name in args.only]
    unknown = set(args.only or ()) - {c.name for c in CONFIGS}
    if unknown:
        parser.error(
            f"unknown configuration(s) {sorted(unknown)}; known: {[c.name for c in CONFIGS]}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep_pylate or Path(tmp)
        for cfg in chosen:
            target = work / cfg.name
            if target.exists():
                shutil.rmtree(target)
            make_fixture(cfg, args.out / cfg.name, work, check=not args.no_check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
