"""Every script in examples/ runs end to end with the real model on a few documents.

Each example runs in a subprocess with this interpreter (the environment ``scripts/demo.sh``
and ``scripts/test.sh`` make), the model of ``COLBERT_PLUGINS_TEST_MODEL`` and the data sets
in ``../shared/data``. A new example must be added to ``SMOKE_ARGS``: the test fails otherwise.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DATA = REPO.parent / "shared" / "data"

#: Per example: arguments after MODEL (few documents, to stay quick), and a line the output
#: must contain.
SMOKE_ARGS: dict[str, tuple[list[str], str]] = {
    "rerank.py": (["--top-n", "3"], "reranked 6 passages"),
    "langchain_two_stage.py": (
        [
            *("--data", str(DATA / "scifact"), "--docs", "20", "--queries", "2"),
            *("--k-first", "8", "--k", "3"),
        ],
        "stage 1 + ColBERT MaxSim rerank",
    ),
    "llama_index_rerank.py": (
        ["--data", str(DATA / "cranfield"), "--docs", "12"],
        "document-embedding cache",
    ),
    "rerank_server.py": ([], "POST /rerank (TEI)"),
    "qdrant_hybrid.py": (
        ["--data", str(DATA / "cranfield"), "--docs", "30", "--queries", "3"],
        "hybrid   nDCG@10",
    ),
}


def test_every_example_has_smoke_arguments() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(SMOKE_ARGS), "add new examples to SMOKE_ARGS"


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE_ARGS))
def test_example_runs(script: str, real_model_dir: pathlib.Path) -> None:
    args, expected = SMOKE_ARGS[script]
    if "--data" in args and not pathlib.Path(args[args.index("--data") + 1]).is_dir():
        pytest.skip(f"no data set beside the repository ({DATA})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(real_model_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    assert expected in result.stdout, result.stdout
