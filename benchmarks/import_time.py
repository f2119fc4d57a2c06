"""How long ``import colbert_plugins`` takes in a fresh interpreter, beside its own dependencies.

Each row is the median wall time of ``python -c "import X"`` over ``--repeat`` fresh processes,
measured in one run (the machine's noise hits every row alike); ``bare`` is the interpreter
start alone. Also checks that the core import pulls in no framework, engine or ONNX Runtime.

    .venv/bin/python benchmarks/import_time.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

MODULES = ("numpy", "tokenizers", "huggingface_hub", "colbert_plugins")
HEAVY = ("onnxruntime", "langchain_core", "llama_index", "qdrant_client", "faiss", "torch")


def timed(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rows = {"bare": "pass", **{m: f"import {m}" for m in MODULES}}
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeat):  # interleaved, so that load changes hit every row
        for name, code in rows.items():
            times[name].append(timed(code))
    bare = statistics.median(times["bare"])
    print(f"{'import':<18} {'median s':>9} {'minus bare':>11}")
    for name in rows:
        median = statistics.median(times[name])
        print(f"{name:<18} {median:9.3f} {median - bare:11.3f}")
    probe = (
        "import sys, colbert_plugins; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"heavy modules loaded by import colbert_plugins: {loaded}")


if __name__ == "__main__":
    main()
