#!/usr/bin/env bash
# Install colbert-plugins with its test extras into .venv and run the test suite.
# Integration tests use the model in COLBERT_PLUGINS_TEST_MODEL
# (default: ../shared/models/colbert-minilm-proxy when it exists; skipped otherwise).
source "$(dirname "$0")/_venv.sh" dev
if [ -z "${COLBERT_PLUGINS_TEST_MODEL:-}" ] && [ -d ../shared/models/colbert-minilm-proxy ]; then
  export COLBERT_PLUGINS_TEST_MODEL=$(cd ../shared/models/colbert-minilm-proxy && pwd)
fi
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/python -m pytest "$@"
