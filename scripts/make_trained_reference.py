"""PyLate's outputs on the trained model for a few real texts, for CI (run in .venv-pylate).

Writes ``tests/fixtures/trained/reference.json`` and ``reference.npz`` (the
:class:`colbert_plugins.export.parity.ReferenceOutputs` layout, float32): PyLate's tokenization of
each text alone and its ``encode`` vectors, from the checkpoint in
``../shared/models/colbert-minilm-trained/pylate``, for 5 queries and 16 documents (8 longer
than document_length, 8 not) taken from benchmarks/parity_pylate.py's trained-model texts
(SciFact and Cranfield). tests/export/test_trained_parity.py loads the shipped top-level directory
with our core (no torch) and compares: identical ids, vectors within 1e-4, identical rankings.

    PYTHONPATH=src .venv-pylate/bin/python scripts/make_trained_reference.py \
        [--trained ../shared/models/colbert-minilm-trained] [--data ../shared/data] \
        [--out tests/fixtures/trained]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
QUERIES = 5
DOCUMENTS = 16  # half longer than document_length


def _parity_pylate() -> ModuleType:
    path = ROOT / "benchmarks" / "parity_pylate.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parity = _parity_pylate()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trained", type=Path, default=parity.TRAINED)
    parser.add_argument("--data", type=Path, default=parity.DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "trained")
    args = parser.parse_args(argv)

    from colbert_plugins import ColBERT
    from colbert_plugins.export import pylate_reference

    # The benchmark's texts (its default counts), in its order: queries from both collections.
    queries, candidates = parity.trained_texts(args.data, 40, 240)
    picked_queries = [queries[i] for i in (0, 1, 2, 20, 21)][:QUERIES]
    shipped = ColBERT.from_pretrained(args.trained, cache=False, local_files_only=True)
    limit = shipped.config.document_length
    lengths = parity.full_lengths(shipped, candidates)
    long_ones = [t for t, n in zip(candidates, lengths, strict=True) if n > limit]
    short_ones = [t for t, n in zip(candidates, lengths, strict=True) if n <= limit]
    documents = [*long_ones[: DOCUMENTS // 2], *short_ones[: DOCUMENTS - DOCUMENTS // 2]]

    colbert = parity.load_pylate(args.trained / "pylate", threads=2)
    reference = pylate_reference(colbert, picked_queries, documents)
    reference.metadata.update(
        made_by="scripts/make_trained_reference.py",
        model=str(args.trained.name),
        checkpoint_sha256=parity.sha256(args.trained / "pylate" / "model.safetensors"),
        shipped_model_onnx_sha256=parity.sha256(args.trained / "model.onnx"),
        texts=f"benchmarks/parity_pylate.py trained_texts ({', '.join(parity.COLLECTIONS)})",
        document_length=int(colbert.document_length),
        query_length=int(colbert.query_length),
        long_documents=DOCUMENTS // 2,
        tolerance=1e-4,
        versions={
            p: md.version(p)
            for p in ("pylate", "torch", "transformers", "sentence-transformers", "tokenizers")
        },
    )
    args.out.mkdir(parents=True, exist_ok=True)
    reference.save(args.out)
    sizes = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out}: {len(picked_queries)} queries, {len(documents)} documents, {sizes} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
