#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, then the suite twice -- compiled kernels, then the
# pure-Python twins (STOREEDGE_PURE=1).  Extra arguments go to pytest.
# The pure pass runs only the tests that the native pass recorded as reaching a native kernel
# (in the test, a fixture, its module's import or a child process); the others run the same
# code in both passes.  STOREEDGE_PURE_ALL=1 runs every test in the pure pass too.
# See "The pure pass" in docs/DEVELOPING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
MARKS="not slow and not image"
RECORD="$(mktemp /tmp/storeedge-kernel-use.XXXXXX)"
trap 'rm -f "$RECORD"' EXIT
echo "=== test run 1/2: native kernels"
.venv/bin/python -m pytest -m "$MARKS" --kernel-use-record="$RECORD" "$@"
echo "=== test run 2/2: pure-Python twins (STOREEDGE_PURE=1)"
if [ "${STOREEDGE_PURE_ALL:-}" = 1 ]; then
    STOREEDGE_PURE=1 .venv/bin/python -m pytest -m "$MARKS" "$@"
else
    STOREEDGE_PURE=1 .venv/bin/python -m pytest -m "$MARKS" --kernel-use-select="$RECORD" "$@"
fi
