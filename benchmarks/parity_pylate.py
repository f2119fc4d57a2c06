"""Parity with PyLate: token ids, vectors, MaxSim rankings (fixtures, or the trained model).

Fixtures (default). Each directory under ``tests/fixtures/pylate/`` (made by
scripts/make_pylate_fixtures.py in the PyLate environment) holds a small random-weight PyLate
model exported to ONNX and PyLate's own outputs for a few queries and documents. This script
loads each with our core (``ColBERT.from_pretrained``; no torch) and prints, per configuration:
token-id mismatches for queries and documents, the largest |diff| between our vectors and
PyLate's, and whether the MaxSim ranking of the documents is the same for every query. Exits 1
when any configuration differs (ids not identical, |diff| > --atol, or a ranking differs).

    .venv/bin/python benchmarks/parity_pylate.py [--fixtures DIR] [--atol 1e-4] [--verbose]

Trained model (``--trained``; needs torch and PyLate: run it in .venv-pylate). PyLate's
``encode`` on the checkpoint in ``colbert-minilm-trained/pylate`` against our core on (i) the
directory ``colbert-plugins export`` writes from that checkpoint (made now in a temporary
directory, or ``--exported DIR``) and (ii) the shipped top-level directory, on real texts from
../shared/data: SciFact and Cranfield documents (title + text; many longer than
document_length) and queries, half from each collection.

    PYTHONPATH=src .venv-pylate/bin/python benchmarks/parity_pylate.py --trained \
        [../shared/models/colbert-minilm-trained] [--data ../shared/data] [--documents 240] \
        [--queries 40] [--exported DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colbert_plugins import ColBERT
from colbert_plugins.errors import ColBERTError
from colbert_plugins.export.parity import DEFAULT_ATOL, ParityReport, ReferenceOutputs, check_parity
from colbert_plugins.files import sha256

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pylate"
SHARED = Path(__file__).resolve().parents[2] / "shared"
TRAINED = SHARED / "models" / "colbert-minilm-trained"
DATA = SHARED / "data"
#: The collections the trained-model texts come from, in this order (half from each).
COLLECTIONS = ("scifact", "cranfield")


@dataclass(frozen=True)
class FixtureResult:
    """One configuration's outcome: a report, or the error that stopped the comparison."""

    name: str
    report: ParityReport | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok


def fixture_dirs(root: Path = FIXTURES) -> list[Path]:
    """The fixture directories (those holding reference.json), sorted by name."""
    return sorted(p.parent for p in root.glob("*/reference.json"))


def run_fixture(directory: Path, atol: float = DEFAULT_ATOL, **load: object) -> FixtureResult:
    """Load one fixture with our core and compare it with PyLate's stored outputs."""
    try:
        reference = ReferenceOutputs.load(directory)
        model = ColBERT.from_pretrained(directory, cache=False, local_files_only=True, **load)
        return FixtureResult(directory.name, check_parity(model, reference, atol=atol))
    except ColBERTError as exc:
        return FixtureResult(directory.name, None, f"{type(exc).__name__}: {exc}")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def trained_texts(data: Path, n_queries: int, n_documents: int) -> tuple[list[str], list[str]]:
    """Queries and documents for the trained-model parity: the first ones of each collection
    in :data:`COLLECTIONS` (half from each; documents as title + text), in file order."""
    queries: list[str] = []
    documents: list[str] = []
    for i, name in enumerate(COLLECTIONS):
        share_q = n_queries // len(COLLECTIONS) + (i < n_queries % len(COLLECTIONS))
        share_d = n_documents // len(COLLECTIONS) + (i < n_documents % len(COLLECTIONS))
        queries += [q["text"] for q in _jsonl(data / name / "queries.jsonl")[:share_q]]
        documents += [
            f"{d.get('title', '')} {d.get('text', '')}".strip()
            for d in _jsonl(data / name / "corpus.jsonl")[:share_d]
        ]
    return queries, documents


def full_lengths(model: ColBERT, documents: list[str]) -> list[int]:
    """Each document's ids untruncated (specials and marker included), by our tokenizer."""
    from tokenizers import Tokenizer

    assert model.files is not None
    whole = Tokenizer.from_file(str(model.files.tokenizer_path))
    whole.no_truncation()
    whole.no_padding()
    prepared = model.tokenizer.prepare_documents(documents)
    marker = 0 if model.tokenizer.ids.document_marker is None else 1
    return [len(e.ids) + marker for e in whole.encode_batch(prepared)]


def load_pylate(checkpoint: Path, threads: int) -> Any:
    """PyLate's ColBERT on the checkpoint (CPU, ``threads`` torch threads)."""
    import torch
    from pylate import models

    torch.set_num_threads(threads)
    return models.ColBERT(model_name_or_path=str(checkpoint), device="cpu")


def run_trained(args: argparse.Namespace) -> int:
    """The trained-model parity (see the module docstring)."""
    try:
        from colbert_plugins.export import export_model, pylate_reference
    except ImportError as exc:  # pragma: no cover - depends on the environment
        print(f"--trained needs the export extra: {exc}", file=sys.stderr)
        return 2
    trained: Path = args.trained
    checkpoint = trained / "pylate"
    if not checkpoint.is_dir():
        print(f"no PyLate checkpoint at {checkpoint}; pass --trained DIR", file=sys.stderr)
        return 2
    queries, documents = trained_texts(args.data, args.queries, args.documents)
    try:
        colbert = load_pylate(checkpoint, args.threads)
    except ImportError as exc:
        print(f"--trained needs torch and PyLate (.venv-pylate): {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        exported: Path = args.exported
        if exported is None:
            exported = Path(tmp) / "export"
            start = time.perf_counter()
            result = export_model(str(checkpoint), exported)
            seconds = time.perf_counter() - start
            assert result.report is not None
            print(f"export of {checkpoint}: {seconds:.1f} s; its check: {result.report.summary()}")
        start = time.perf_counter()
        reference = pylate_reference(colbert, queries, documents)
        print(
            f"PyLate reference ({len(queries)} queries, {len(documents)} documents): "
            f"{time.perf_counter() - start:.1f} s"
        )
        rows = [("exported (colbert-plugins export)", exported), ("shipped top-level", trained)]
        failed = 0
        lengths: list[int] = []
        print()
        print(
            "| directory | query ids differing | document ids differing | max abs diff queries "
            "| max abs diff documents | rankings identical | result |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, directory in rows:
            model = ColBERT.from_pretrained(
                directory, cache=False, local_files_only=True, threads=args.threads
            )
            report = check_parity(model, reference, atol=args.atol)
            lengths = lengths or full_lengths(model, documents)
            worst_q, worst_d = report.worst_query_diff, report.worst_document_diff
            print(
                f"| {label}: {directory} | {report.query_id_mismatches}/{len(report.queries)} "
                f"| {report.document_id_mismatches}/{len(report.documents)} | {worst_q:.2e} "
                f"| {worst_d:.2e} | {sum(report.rankings_identical)}/"
                f"{len(report.rankings_identical)} | {'ok' if report.ok else 'FAIL'} |"
            )
            if not report.ok:
                failed += 1
                for line in report.failures()[: None if args.verbose else 5]:
                    print(f"    {line}")
    limit = colbert.document_length
    long_ones = [n for n in lengths if n > limit]
    print()
    print(
        f"{len(documents)} documents ({', '.join(COLLECTIONS)}; {len(long_ones)} longer than "
        f"document_length {limit}, up to {max(lengths)} tokens), {len(queries)} queries; "
        f"model.onnx sha256 {sha256(trained / 'model.onnx')[:12]}; tolerance {args.atol:g}"
    )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="fixtures directory")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="max |diff| allowed")
    parser.add_argument("--verbose", action="store_true", help="list every difference")
    parser.add_argument(
        "--trained",
        type=Path,
        nargs="?",
        const=TRAINED,
        help=f"the trained model directory, with its PyLate checkpoint in pylate/ (default "
        f"{TRAINED}); needs torch and PyLate",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="BEIR collections (--trained)")
    parser.add_argument("--documents", type=int, default=240, help="documents (--trained)")
    parser.add_argument("--queries", type=int, default=40, help="queries (--trained)")
    parser.add_argument(
        "--exported",
        type=Path,
        help="a directory colbert-plugins export wrote from the checkpoint (--trained; "
        "default: export it now into a temporary directory)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads, both sides (--trained)")
    args = parser.parse_args(argv)
    if args.trained is not None:
        return run_trained(args)
    dirs = fixture_dirs(args.fixtures)
    if not dirs:
        print(f"no fixtures (*/reference.json) under {args.fixtures}", file=sys.stderr)
        return 2
    failed = 0
    print(
        f"{'configuration':<22} {'query ids':>10} {'doc ids':>8} {'max|diff| q':>12} "
        f"{'max|diff| d':>12} {'rankings':>9}  result"
    )
    for directory in dirs:
        result = run_fixture(directory, args.atol)
        report = result.report
        if report is None:
            failed += 1
            print(
                f"{result.name:<22} {'-':>10} {'-':>8} {'-':>12} {'-':>12} {'-':>9}  "
                f"ERROR {result.error}"
            )
            continue
        worst_q, worst_d = report.worst_query_diff, report.worst_document_diff
        ranks = f"{sum(report.rankings_identical)}/{len(report.rankings_identical)}"
        print(
            f"{result.name:<22} "
            f"{f'{report.query_id_mismatches}/{len(report.queries)}':>10} "
            f"{f'{report.document_id_mismatches}/{len(report.documents)}':>8} "
            f"{worst_q:>12.2e} {worst_d:>12.2e} {ranks:>9}  {'ok' if report.ok else 'FAIL'}"
        )
        if not report.ok:
            failed += 1
            lines = report.failures()
            for line in lines if args.verbose else lines[:5]:
                print(f"    {line}")
            if not args.verbose and len(lines) > 5:
                print(f"    ... {len(lines) - 5} more (--verbose)")
    print(
        f"{len(dirs) - failed}/{len(dirs)} configurations match PyLate "
        f"(identical token ids, max |diff| <= {args.atol:g}, identical rankings)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
