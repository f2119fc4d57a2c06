"""Parity with PyLate on the committed fixtures: token ids, vectors, MaxSim rankings.

Each directory under ``tests/fixtures/pylate/`` (made by scripts/make_pylate_fixtures.py in
the PyLate environment) holds a small random-weight PyLate model exported to ONNX and
PyLate's own outputs for a few queries and documents. This script loads each with our core
(``ColBERT.from_pretrained``; no torch) and prints, per configuration: token-id mismatches for
queries and documents, the largest |diff| between our vectors and PyLate's, and whether the
MaxSim ranking of the documents is the same for every query. Exits 1 when any configuration
differs (ids not identical, |diff| > --atol, or a ranking differs).

    .venv/bin/python benchmarks/parity_pylate.py [--fixtures DIR] [--atol 1e-4] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from colbert_plugins import ColBERT
from colbert_plugins.errors import ColBERTError
from colbert_plugins.parity import DEFAULT_ATOL, ParityReport, ReferenceOutputs, check_parity

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pylate"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="fixtures directory")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="max |diff| allowed")
    parser.add_argument("--verbose", action="store_true", help="list every difference")
    args = parser.parse_args(argv)
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
        worst_q = max((c.max_abs_diff for c in report.queries), default=0.0)
        worst_d = max((c.max_abs_diff for c in report.documents), default=0.0)
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
