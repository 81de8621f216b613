"""The cluster launcher's judgement of a worker (`celery_launcher.py`), with Celery's answers faked: the
whole path, a real worker killed on the real cluster, is `test_cluster.py`."""

from __future__ import annotations

import pytest
from dagster._core.launcher.base import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

from pncp_assets.deploy import celery_launcher
from pncp_assets.deploy.celery_launcher import PingingCeleryRunLauncher


class FakeResult:
    def __init__(self, state: str, info: object):
        self.state, self.info = state, info


@pytest.fixture
def world(monkeypatch):
    """A launcher on an in-memory broker whose clock, task states and ping answers the test sets."""
    launcher = PingingCeleryRunLauncher(default_queue="dagster", broker="memory://", backend="cache+memory://",
                                        worker_lost_after_seconds=60)
    world = {"now": 1000.0, "answering": ["worker1@host"], "task": FakeResult("STARTED", {"hostname": "worker1@host",
                                                                                          "pid": 7})}

    def ping(timeout: float) -> list[dict]:
        if isinstance(world["answering"], Exception):
            raise world["answering"]
        return [{name: {"ok": "pong"}} for name in world["answering"]]

    monkeypatch.setattr(celery_launcher.time, "monotonic", lambda: world["now"])
    monkeypatch.setattr(launcher.celery.control, "ping", ping)
    monkeypatch.setattr(launcher.celery, "AsyncResult", lambda task_id: world["task"])
    world["launcher"] = launcher
    return world


RUN = DagsterRun(job_name="pncp_hourly_ingestion", run_id="r1", tags={"dagster-celery/task_id": "t1"})


def status(world: dict, after_s: float) -> WorkerStatus:
    world["now"] += after_s
    return world["launcher"].check_run_worker_health(RUN).status


def test_a_worker_that_answers_keeps_its_run(world):
    assert [status(world, 10) for _ in range(20)] == [WorkerStatus.RUNNING] * 20


def test_a_silent_worker_fails_its_run_after_the_threshold_and_an_answer_resets_it(world):
    world["answering"] = ["worker2@host"]  # worker1 is gone, worker2 still answers
    assert status(world, 0) == WorkerStatus.RUNNING  # silence starts now
    assert status(world, 30) == WorkerStatus.RUNNING
    world["answering"] = ["worker1@host"]  # it answers again: silence forgotten
    assert status(world, 29) == WorkerStatus.RUNNING
    world["answering"] = []
    assert status(world, 5) == WorkerStatus.RUNNING
    assert status(world, 59) == WorkerStatus.RUNNING
    health = world["launcher"].check_run_worker_health(RUN)
    assert health.status == WorkerStatus.RUNNING  # the answers are cached a few seconds: no new ping
    world["now"] += 1
    failed = world["launcher"].check_run_worker_health(RUN)
    assert failed.status == WorkerStatus.FAILED and "worker1@host has not answered a ping for 60 s" in failed.msg


def test_an_unreachable_broker_never_counts_as_silence(world):
    world["answering"] = ConnectionError("broker down")
    assert [status(world, 30) for _ in range(10)] == [WorkerStatus.RUNNING] * 10


def test_what_celery_itself_knows_comes_first(world):
    world["answering"] = []
    world["task"] = FakeResult("FAILURE", None)  # the pool process died: Celery recorded it
    assert status(world, 0) == WorkerStatus.FAILED
    world["task"] = FakeResult("SUCCESS", None)
    assert status(world, 100) == WorkerStatus.SUCCESS
