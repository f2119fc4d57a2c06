#!/usr/bin/env bash
# A separate environment, .venv-pylate, for everything that needs PyTorch and PyLate:
#   - `colbert-plugins export MODEL OUT` (the `export` extra: torch, pylate, pylate-onnx-export);
#   - scripts/make_pylate_fixtures.py, which builds the small PyLate models under
#     tests/fixtures/pylate/ and PyLate's reference outputs for them;
#   - tests/export/test_export.py (skipped in .venv, where torch is absent).
# torch never enters .venv, the project's own environment.
#
# torch: TORCH_SPEC (default torch==2.13.0, a CPU build that pip finds on this machine's disk;
# plain `torch` would pull a multi-GB CUDA build). Set TORCH_INDEX_URL to take it from an
# index instead, e.g. https://download.pytorch.org/whl/cpu.
# Then:
#   .venv-pylate/bin/python scripts/make_pylate_fixtures.py
#   .venv-pylate/bin/colbert-plugins export PYLATE_MODEL_DIR OUT_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL-}
if [ ! -x .venv-pylate/bin/python ]; then
  "$PYTHON" -m venv .venv-pylate
fi
pip=(.venv-pylate/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# torch first and alone, so that nothing below asks for another build of it.
if [ -n "$TORCH_INDEX_URL" ]; then
  "${pip[@]}" "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL"
else
  "${pip[@]}" "$TORCH_SPEC"
fi
# PyLate without fast-plaid: every fast-plaid release pins one exact torch (pylate 1.6.0 ->
# fast-plaid 1.4.6.x -> torch==2.9/2.10/2.11), so with the CPU torch above pip's resolver
# backtracks for many minutes to pylate 1.0 instead. fast-plaid only backs PyLate's PLAID
# index (imported lazily there), never ColBERT.encode, so install PyLate's other requirements
# and PyLate itself with --no-deps. A user who runs `pip install 'colbert-plugins[export]'`
# without a preinstalled torch gets fast-plaid and a matching torch from pip as usual.
PYLATE_SPEC=${PYLATE_SPEC:-pylate==1.6.0}
EXPORTER_SPEC=${EXPORTER_SPEC:-pylate-onnx-export==0.1.0}
"${pip[@]}" "$TORCH_SPEC" "sentence-transformers==5.3.0" "transformers>=4.41,<=5.3.0" \
  "datasets>=2.20" "accelerate>=0.31" "pandas>=2.2.1" "ujson" "ninja" "fastkmeans==0.5.0" \
  "safetensors>=0.4" "onnx>=1.15,<2" "onnxscript>=0.2,<1" "onnxruntime>=1.17,<2"
"${pip[@]}" --no-deps "$PYLATE_SPEC" "$EXPORTER_SPEC"
# This project with its test tools; the `export` extra's packages are all in place above
# (installed by hand for the reason given), so it is not named here.
"${pip[@]}" -e ".[test]" "$TORCH_SPEC"
.venv-pylate/bin/python - <<'PY'
import importlib.metadata as md
for name in ("torch", "pylate", "pylate-onnx-export", "onnx", "onnxscript", "transformers",
             "sentence-transformers", "onnxruntime", "tokenizers"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: not installed")
PY
echo "ready: .venv-pylate/bin/python scripts/make_pylate_fixtures.py"
