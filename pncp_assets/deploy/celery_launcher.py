"""The cluster profile's run launcher: Dagster's `CeleryRunLauncher`, which also notices a lost worker.

Run monitoring asks the launcher, every `poll_interval_seconds`, whether a run's worker is healthy.
dagster-celery answers from the task state stored in Celery's result backend alone. When a worker's pool
process dies, Celery records the task as failed and the run is failed at once. When the whole worker goes
(its machine, or its main process), nobody records anything: the task stays STARTED for ever, and the run
held its pool slots (`pncp_api`: every sweep of the instance) until `max_runtime_seconds`.

This launcher asks the worker itself. A STARTED task's state names the worker executing it; that worker is
pinged (one broadcast serves every run of a poll), and once it has not answered for
`worker_lost_after_seconds` the run is reported failed: run monitoring fails it, frees its pool slots after
`free_slots_after_run_end_seconds`, and run retries launch it again on a worker that answers. A broker that
cannot be reached proves nothing about a worker, so it never counts as silence. Should the lost worker's
task ever be delivered again (it was acknowledged late), Dagster ignores a run worker for a finished run.

Configured in `deploy/cluster/dagster.yaml` (module `pncp_assets.deploy.celery_launcher`); needs the `cluster` extra.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dagster import Field
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

log = logging.getLogger(__name__)


class PingingCeleryRunLauncher(CeleryRunLauncher):
    """`CeleryRunLauncher` whose health check also pings the worker a run's task is STARTED on."""

    def __init__(self, *args: Any, worker_lost_after_seconds: float = 60.0, ping_timeout_seconds: float = 2.0,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.worker_lost_after_seconds = worker_lost_after_seconds
        self.ping_timeout_seconds = ping_timeout_seconds
        self._silent_since: dict[str, float] = {}  # worker -> when it first missed a ping, in a row
        self._answered: tuple[float, set[str] | None] = (float("-inf"), None)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **CeleryRunLauncher.config_type(),
            "worker_lost_after_seconds": Field(float, is_required=False, default_value=60.0, description=(
                "A run whose worker has not answered a ping for this long is failed (then retried).")),
            "ping_timeout_seconds": Field(float, is_required=False, default_value=2.0, description=(
                "How long one ping waits for the workers' answers.")),
        }

    def _answering_workers(self) -> set[str] | None:
        """The workers that answer a ping now (asked at most every few seconds); None when the broker
        cannot be asked."""
        asked_at, workers = self._answered
        if time.monotonic() - asked_at < 3:
            return workers
        try:
            replies = self.celery.control.ping(timeout=self.ping_timeout_seconds)
            workers = {name for reply in replies for name in reply}
        except Exception as exc:  # the broker is unreachable: this says nothing about any worker
            log.warning(f"Could not ping the Celery workers ({type(exc).__name__}); not judging them this time")
            workers = None
        self._answered = (time.monotonic(), workers)
        return workers

    def _worker_of(self, run: DagsterRun) -> str | None:
        """The worker a STARTED task runs on, as its stored state names it."""
        info = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG]).info
        return info.get("hostname") if isinstance(info, dict) else None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        health = super().check_run_worker_health(run)
        if health.status != WorkerStatus.RUNNING:
            return health
        worker = self._worker_of(run)
        answering = self._answering_workers()
        if worker is None or answering is None:
            return health
        if worker in answering:
            self._silent_since.pop(worker, None)
            return health
        silent = time.monotonic() - self._silent_since.setdefault(worker, time.monotonic())
        if silent < self.worker_lost_after_seconds:
            return health
        return CheckRunHealthResult(WorkerStatus.FAILED, (
            f"Celery worker {worker} has not answered a ping for {silent:.0f} s: the worker is lost (its machine "
            f"or its main process), and this run with it"))
