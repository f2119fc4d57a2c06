#!/usr/bin/env bash
# Install colbert-plugins into .venv and rerank real passages with a real ColBERT ONNX model.
# Usage: bash scripts/demo.sh [MODEL]   (default: ../shared/models/colbert-minilm-proxy)
source "$(dirname "$0")/_venv.sh" all
MODEL=${1:-../shared/models/colbert-minilm-proxy}
exec .venv/bin/python examples/rerank.py "$MODEL" "${@:2}"
