#!/usr/bin/env bash
# Quickstart 1: set up the virtualenv, then run the demo on the embedded defaults (local storage
# under ./data, no credentials, no network beyond loopback). `bash scripts/demo.sh ui` then opens the
# Dagster UI on the same data with the same simulated PNCP behind it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
export STORAGE_TYPE=local PNCP_DATA_DIR="${PNCP_DATA_DIR:-./data}"
if [ "${1:-}" = "ui" ]; then
  shift
  exec python -m pncp_assets.cli ui "$@"
fi
exec python -m pncp_assets.cli demo "$@"
