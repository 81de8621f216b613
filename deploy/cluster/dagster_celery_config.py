"""Celery settings of the run workers (`celery -A dagster_celery.app worker` imports this module by
name when it is on PYTHONPATH). Addresses come from the environment, as in `dagster.yaml`."""

import os

broker_url = os.environ["PNCP_CELERY_BROKER_URL"]
result_backend = os.environ.get("PNCP_CELERY_BACKEND_URL", broker_url)
# One run at a time per worker process, taken only when the worker is free: acknowledged late, a run
# is not reserved by a busy worker while another worker sits idle.
worker_prefetch_multiplier = 1
task_acks_late = True
