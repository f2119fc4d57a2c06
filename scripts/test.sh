#!/usr/bin/env bash
# Install colbert-plugins with its test extras into .venv and run the test suite.
# Integration tests use the model in COLBERT_PLUGINS_TEST_MODEL
# (default: ../shared/models/colbert-minilm-proxy when it exists; skipped otherwise).
source "$(dirname "$0")/_venv.sh" dev
if [ -z "${COLBERT_PLUGINS_TEST_MODEL:-}" ] && [ -d ../shared/models/colbert-minilm-proxy ]; then
  export COLBERT_PLUGINS_TEST_MODEL=$(cd ../shared/models/colbert-minilm-proxy && pwd)
fi
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
# Two pytest-xdist workers by default (on CI's 2 cores: 139 s against 169 s serial, medians of 2
# runs each, interleaved; benchmarks/results/test_workers.md); COLBERT_PLUGINS_TEST_WORKERS=0 runs
# in one process (e.g. to debug with -x or pdb).
exec .venv/bin/python -m pytest -n "${COLBERT_PLUGINS_TEST_WORKERS:-2}" "$@"
