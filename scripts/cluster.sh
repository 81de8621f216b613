#!/usr/bin/env bash
# A local pncp_assets cluster: PostgreSQL, Redis, Celery run workers, dagster-webserver and dagster-daemon,
# each its own process with its own log. `bash scripts/cluster.sh up|down|status` (deploy/cluster/cluster.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec python deploy/cluster/cluster.py "$@"
