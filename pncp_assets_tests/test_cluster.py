"""Beyond one machine, on real parts: `scripts/cluster.sh up` (PostgreSQL instance storage, Redis, two
Celery run workers, webserver, daemon), Bronze on SeaweedFS, the simulator as the API. A two-day
backfill is launched through GraphQL as the UI launches it, and the whole worker executing one of its runs
(its main process and its pool, as when its machine goes) is SIGKILLed mid-run. Nobody tells Celery: the
launcher's pings notice the silence, run monitoring fails the run within minutes (not at
`max_runtime_seconds`), gives its `pncp_api` slot back, run retries launch it again on the surviving
worker, and both days end with every record exactly once, the two workers never talking to PNCP at once.
The cluster's Prometheus, scraping its Pushgateway, then answers every query of the Grafana dashboard.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from pncp_assets_tests.support.cluster import ClusterStack
from pncp_assets_tests.support.dagster_stack import s3_pipeline_env

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]
PARTITIONS = [f"{d:%Y-%m-%d}-{h:02d}:00" for d in DAYS for h in range(24)]
ASSETS = ["pncp_raw_pages", "pncp_new_records", "pncp_daily_state"]
INTERVAL_S = 0.25
DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "pncp_assets.json"

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


@pytest.fixture
def cluster(tmp_path, seaweed, s3_bucket):
    env = s3_pipeline_env(seaweed, s3_bucket, INTERVAL_S)
    with ClusterStack(tmp_path, env, ["--seed", "21", "--volume", "1000"]) as c:
        yield c


CONCURRENCY = """query($pool: String!) { instance { concurrencyLimit(concurrencyKey: $pool) {
    slotCount claimedSlots { runId stepKey } } } }"""


def test_a_backfill_on_the_cluster_survives_a_lost_worker_exactly_once(cluster, seaweed, s3_bucket):
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import S3ObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline

    status = cluster.cluster("status", timeout_s=60)
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("postgres", "redis", "worker1", "worker2", "webserver", "daemon", "pushgateway", "prometheus"):
        assert re.search(rf"^{name} +pid \d+ +running", status.stdout, re.M), status.stdout
    assert re.search(rf"^prometheus +{cluster.prometheus_url} ", status.stdout, re.M), status.stdout

    backfill_id = cluster.launch_asset_backfill(ASSETS, PARTITIONS)

    # Wait until a worker is executing a run that is talking to the API, then kill that whole worker.
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline:
        started = [r["runId"] for r in cluster.backfill_runs(backfill_id) if r["status"] == "STARTED"]
        for name in ("worker1", "worker2"):
            log = cluster.log(name)
            if any(f"{run_id} - " in log and "pncp_raw_pages - STEP_START" in log for run_id in started) \
                    and len(cluster.simulator_log()) > 3:
                victim = name
        time.sleep(0.5)
    assert victim, f"no run started on a worker in time\n{cluster.tail()}"
    os.killpg(cluster.pids[victim], signal.SIGKILL)  # its own session: the main process and its pool
    killed_at = time.time()

    status = cluster.wait_backfill(backfill_id, timeout_s=600)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {status}\n{cluster.tail()}"
    runs = cluster.backfill_runs(backfill_id)
    tags = [{t["key"]: t["value"] for t in r["tags"]} for r in runs]
    assert all("dagster-celery/task_id" in t for t in tags), "every run went through Celery"
    assert Counter(r["status"] for r in runs) == {"SUCCESS": 2, "FAILURE": 1}, [(r["status"], t) for r, t in
                                                                                zip(runs, tags, strict=True)]
    [lost] = [r for r in runs if r["status"] == "FAILURE"]
    assert lost["endTime"] - killed_at < 300, f"failed {lost['endTime'] - killed_at:.0f} s after the kill"
    retried = [t for t in tags if "dagster/parent_run_id" in t]
    assert len(retried) == 1 and retried[0]["dagster/parent_run_id"] == lost["runId"], "retried as a new run"
    reason = cluster.graphql(LOST_REASON, {"id": lost["runId"]})["logsForRun"]["events"]
    assert any("has not answered a ping" in (e.get("message") or "") for e in reason), reason
    survivor = next(w for w in ("worker1", "worker2") if w != victim)
    assert "Task execute_job[" in cluster.log(survivor) and _running(cluster.pids[survivor])

    # The lost run's pncp_api slot was given back: no run holds a slot of either pool any more.
    for pool in ("pncp_api", "pncp_state"):
        limit = cluster.graphql(CONCURRENCY, {"pool": pool})["instance"]["concurrencyLimit"]
        assert limit["slotCount"] == 1 and limit["claimedSlots"] == [], (pool, limit)

    # Every record exactly once, state equal to Bronze, on both days.
    store = S3ObjectStore(seaweed.client(), s3_bucket)
    sim = PncpSimulator(SimulatorConfig(seed=21, volume=1000))
    for day in DAYS:
        ids = {r["numeroControlePNCP"] for r in sim.all_records(day) if r["modalidadeId"] in (6, 8, 9)}
        Pipeline(None, store, None).assert_invariants(day, ids)  # type: ignore[arg-type]

    # Every run pushed its figures to the cluster's Pushgateway: each panel of the dashboard answers, and the
    # day's state size is its records.
    from pncp_assets_tests.support.prometheus import scraped, wait_for

    scraped(cluster.pushgateway_url, cluster.prometheus_url)
    day = DAYS[0].isoformat()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            wait_for(cluster.prometheus_url, target["expr"].replace("$layer", ".*").replace("$day", day))
    truth = {r["numeroControlePNCP"] for r in sim.all_records(DAYS[0]) if r["modalidadeId"] in (6, 8, 9)}
    [state_ids] = wait_for(cluster.prometheus_url, f'pncp_day_state_ids{{layer="pncp",day="{day}"}}')
    assert float(state_ids["value"][1]) == len(truth)

    # One API budget across the two workers (pool pncp_api in Postgres): no two requests closer than
    # the pacing allows (half of it, for loopback jitter).
    arrivals = sorted(e["at"] for e in cluster.simulator_log())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= INTERVAL_S / 2, f"{sum(g < INTERVAL_S / 2 for g in gaps)} requests overlapped"

    # `down` stops exactly the processes `up` recorded, PostgreSQL included.
    recorded = {name: pid for name, pid in cluster.pids.items() if name != victim}
    assert cluster.cluster("down", timeout_s=120).returncode == 0
    assert not [name for name, pid in recorded.items() if _running(pid)], "processes left after down"
    assert cluster.cluster("status", timeout_s=60).returncode == 3  # nothing recorded any more


LOST_REASON = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
    __typename ... on MessageEvent { message } } } } }"""


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie has exited
    except (OSError, IndexError):
        return False
