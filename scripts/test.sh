#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, then the suite twice -- compiled kernels, then the
# pure-Python twins (STOREEDGE_PURE=1).  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MARKS="not slow and not image"
echo "=== test run 1/2: native kernels"
.venv/bin/python -m pytest -m "$MARKS" "$@"
echo "=== test run 2/2: pure-Python twins (STOREEDGE_PURE=1)"
STOREEDGE_PURE=1 .venv/bin/python -m pytest -m "$MARKS" "$@"
