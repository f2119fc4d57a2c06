#!/usr/bin/env bash
# Install colbert-plugins (with everything the examples need) into .venv and rerank real
# passages with a ColBERT ONNX model.
# Usage: bash scripts/demo.sh [MODEL] [example options]
#   MODEL defaults to ../shared/models/colbert-minilm-proxy when the checkout has ../shared
#   beside it, else to the default hub model (colbert_plugins.registry.DEFAULT_MODEL).
# Afterwards every example runs in the same environment, e.g.
#   .venv/bin/python examples/langchain_two_stage.py MODEL
source "$(dirname "$0")/_venv.sh" examples
if [ $# -ge 1 ]; then
  MODEL=$1
  shift
elif [ -d ../shared/models/colbert-minilm-proxy ]; then
  MODEL=../shared/models/colbert-minilm-proxy
  echo "demo: using the proxy model $MODEL (untrained: plumbing and speed only, not quality)" >&2
else
  MODEL=$(.venv/bin/python -c "from colbert_plugins.registry import DEFAULT_MODEL; print(DEFAULT_MODEL)")
  echo "demo: no ../shared beside this checkout; using the default hub model $MODEL" >&2
fi
echo "demo: .venv/bin/python examples/rerank.py $MODEL $*" >&2
exec .venv/bin/python examples/rerank.py "$MODEL" "$@"
