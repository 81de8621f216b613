#!/usr/bin/env bash
# Quickstart 2: set up a virtualenv (Python 3.11) with everything, then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m e2e` or `-m "not e2e"`.
# Tests run on PYTEST_WORKERS processes (default 2, pytest-xdist; 0 runs them in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_chromium.sh
source scripts/_prometheus.sh
ruff check pncp_assets pncp_assets_tests bench
set +e
python -m pytest -n "${PYTEST_WORKERS:-2}" --dist worksteal "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
