#!/usr/bin/env bash
# The GPU distribution as a user gets it, on any machine (no GPU needed): build both
# distributions, install colbert-plugins-gpu into a fresh temporary venv, then show that only
# onnxruntime-gpu is installed, that it offers CUDAExecutionProvider, and what asking for CUDA
# does where it cannot start (ProviderUnavailableError; cpu_fallback=True: a warning, the CPU).
# Downloads onnxruntime-gpu (about 250 MB). Usage: bash scripts/check_gpu_dist.sh [MODEL_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODEL=${1:-../shared/models/colbert-minilm-proxy}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python scripts/build_dists.py --out "$work/dist"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$work"/dist/colbert_plugins_gpu-*.whl
"$work/venv/bin/pip" list 2>/dev/null | grep -i '^onnxruntime'
"$work/venv/bin/python" - "$MODEL" <<'PY'
import sys

import onnxruntime as ort

from colbert_plugins import ColBERT
from colbert_plugins.errors import ProviderUnavailableError

print("providers offered:", ort.get_available_providers())
assert "CUDAExecutionProvider" in ort.get_available_providers(), "the GPU build lacks CUDA"
try:
    model = ColBERT.from_pretrained(sys.argv[1], providers=["CUDAExecutionProvider"])
    print("running on", model.encoder.providers)
except ProviderUnavailableError as exc:
    print("ProviderUnavailableError:", exc)
    model = ColBERT.from_pretrained(
        sys.argv[1], providers=["CUDAExecutionProvider"], cpu_fallback=True
    )
    print("with cpu_fallback=True, running on", model.encoder.providers)
PY
