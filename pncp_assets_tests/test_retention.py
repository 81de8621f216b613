"""Retention: day states archived (a month in one object, the state file a marker), never treated as empty,
re-run and backfilled without filing anything twice; raw sweeps and rejects expired by their own days; the
schedule (off by default) and the command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from pncp_assets import layout
from pncp_assets.consistency import check_range
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.retention import RetentionPolicy, apply_retention, archive_states
from pncp_assets.state import StateManager
from pncp_assets.state.archive import archive_month, parse_marker
from pncp_assets.storage import ObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

DAY = dt.date(2025, 10, 22)
LATER = dt.datetime(2025, 12, 31, tzinfo=dt.UTC)


@pytest.fixture
def filled(request, store: ObjectStore, monkeypatch):
    """DAY ingested by the pipeline (every hour, some records with broken IDs) into `store`."""
    seaweed = None
    if not hasattr(store, "root"):
        seaweed = request.getfixturevalue("seaweed")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    sim = RunningSimulator(SimulatorConfig(seed=27, volume=300, bad_ids=2)).start()
    p = Pipeline(sim, store, storage_resource(store, seaweed))
    assert p.run_range(partition(DAY, 0), partition(DAY, 23), now=end_of_hour(DAY, 23)).success
    yield p
    sim.stop()


def deltas(store: ObjectStore) -> dict[str, bytes]:
    return {k: store.get(k).data for k in layout.day_delta_keys(store, "pncp", DAY)}


def test_an_archived_day_loads_reruns_and_backfills_filing_nothing_twice(filled: Pipeline):
    store, manager = filled.store, StateManager(filled.store)
    before_json, before_deltas = manager.load_state("pncp", DAY), deltas(store)
    report = archive_states(store, FIRST_SEEN, DAY + dt.timedelta(days=1))
    assert report.archived == [DAY.isoformat()] and not report.skipped
    assert report.state_bytes_before > 0
    marker = parse_marker(store.get(layout.state_key("pncp", DAY)).data)
    assert marker["archived_in"] == layout.archive_key("pncp", DAY)
    assert marker["archived_in"] == "pncp/_archive/year=2025/month=10/states_202510.zst"

    # Never empty: every reader goes through the archive.
    fresh = StateManager(store)
    assert fresh.load_state("pncp", DAY) == before_json
    summary = fresh.get_state_summary("pncp", DAY)
    assert summary["stored_as"] == "archived" and summary["total_processed"] == before_json["total_processed"]
    assert fresh.rebuild_state("pncp", DAY, dry_run=True)["replaces"] == {"total_processed": summary["total_processed"]}
    assert check_range(store, DAY, DAY, FIRST_SEEN, now=LATER).passed

    # A re-run of one hour files nothing twice and brings the state back live.
    again = filled.run(partition(DAY, 12), now=end_of_hour(DAY, 23) + dt.timedelta(days=60))
    assert again.success and deltas(store) == before_deltas
    live = fresh.load_fresh("pncp", DAY)
    assert live.origin == "stored" and live.state.processed_ids == before_json["processed_ids"]
    assert len(live.state.executions) == len(before_json["executions"]) + 1  # that run is on record

    # Archived again, then the whole day backfilled: still nothing twice, the archive holds the newer state.
    assert archive_states(store, FIRST_SEEN, DAY + dt.timedelta(days=1)).archived == [DAY.isoformat()]
    backfill = filled.run_range(partition(DAY, 0), partition(DAY, 23))
    assert backfill.success and deltas(store) == before_deltas
    filled.assert_invariants(DAY)
    assert check_range(store, DAY, DAY, FIRST_SEEN, now=LATER).passed


def test_archiving_keeps_live_a_state_that_a_run_wrote_meanwhile(filled: Pipeline):
    store, manager = filled.store, StateManager(filled.store)

    def load_then_a_run_writes(source: str, day: dt.date):
        loaded = manager.load_fresh(source, day)
        manager.transact(source, day, lambda s: (s.record_execution("2025-12-01T00:00:00Z", 0, {}), True))
        return loaded

    done = archive_month(store, "pncp", [DAY], load_then_a_run_writes)
    assert done.archived == [] and done.skipped == {DAY.isoformat(): "written by a run while archiving: kept live"}
    loaded = StateManager(store).load_fresh("pncp", DAY)
    assert loaded.origin == "stored" and loaded.state.last_execution == "2025-12-01T00:00:00Z"


def test_a_damaged_archive_is_rebuilt_from_bronze_never_taken_as_empty(filled: Pipeline):
    store = filled.store
    ids = StateManager(store).load_state("pncp", DAY)["processed_ids"]
    archive_states(store, FIRST_SEEN, DAY + dt.timedelta(days=1))
    key = layout.archive_key("pncp", DAY)
    data = bytearray(store.get(key).data)
    data[len(data) // 2] ^= 0xFF  # one flipped byte: zstd's checksum catches it
    store.put(key, bytes(data))
    state = StateManager(store).load_state("pncp", DAY)
    assert state["processed_ids"] == ids and "recovered_from_bronze" in state


def test_retention_expires_each_kind_by_its_own_days_and_never_touches_bronze(filled: Pipeline):
    store = filled.store
    before_deltas = deltas(store)
    assert store.list("pncp/_raw/") and store.list("pncp/_rejected/")
    policy = RetentionPolicy(state_days=45, raw_days=7, rejected_days=90)

    [week] = apply_retention(store, [FIRST_SEEN], DAY + dt.timedelta(days=8), policy)
    assert week.raw_deleted > 0 and not store.list("pncp/_raw/")
    assert week.rejected_deleted == 0 and store.list("pncp/_rejected/")
    assert week.archived == [] and StateManager(store).load_fresh("pncp", DAY).origin == "stored"

    dry = apply_retention(store, [FIRST_SEEN], DAY + dt.timedelta(days=100), policy, dry_run=True)[0]
    assert dry.archived == [DAY.isoformat()] and dry.rejected_deleted > 0
    assert StateManager(store).load_fresh("pncp", DAY).origin == "stored" and store.list("pncp/_rejected/")

    [late] = apply_retention(store, [FIRST_SEEN], DAY + dt.timedelta(days=100), policy)
    assert late.archived == [DAY.isoformat()] and late.rejected_deleted > 0 and not store.list("pncp/_rejected/")
    assert late.state_bytes_before > 0 and store.exists(layout.archive_key("pncp", DAY))
    assert deltas(store) == before_deltas


def test_a_policy_that_would_archive_what_the_links_check_reads_is_refused():
    with pytest.raises(ValueError, match="31 days the links check reads"):
        RetentionPolicy(state_days=20)


def test_the_retention_schedule_is_off_by_default_and_its_tick_archives_through_the_job(filled: Pipeline):
    from pncp_assets.definitions import defs
    from pncp_assets.defs.resources import MetricsGateway, Retention
    from pncp_assets.defs.retention import pncp_retention, pncp_retention_schedule

    schedule = defs.resolve_schedule_def("pncp_retention_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    tick_at = dt.datetime(2025, 12, 10, 3, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    with dg.build_schedule_context(scheduled_execution_time=tick_at) as context:
        [request] = pncp_retention_schedule.evaluate_tick(context).run_requests
    assert request.run_config["ops"]["apply_retention_op"]["config"]["today"] == "2025-12-10"
    result = pncp_retention.execute_in_process(
        run_config=request.run_config,
        resources={"bronze_storage": filled.storage, "retention": Retention(), "metrics_gateway": MetricsGateway()})
    assert result.success
    assert StateManager(filled.store).load_fresh("pncp", DAY).origin == "archive"


def run_state_cli(args: list[str], data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(data_dir)}
    env.pop("BRONZE_BUCKET", None)
    return subprocess.run([sys.executable, "-m", "pncp_assets.state", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_the_archive_command_dry_runs_archives_and_load_still_prints_the_documents_json(filled: Pipeline):
    data_dir = filled.store.root.parent
    before = StateManager(filled.store).load_state("pncp", DAY)
    dry = run_state_cli(["--action", "archive", "--before", "20251023", "--dry-run"], data_dir)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)[0]["archived"] == ["2025-10-22"] and "would: pncp: 1 day states" in dry.stderr
    assert StateManager(filled.store).load_fresh("pncp", DAY).origin == "stored"
    done = run_state_cli(["--source", "all", "--action", "archive", "--before", "2025-10-23"], data_dir)
    assert done.returncode == 0, done.stderr
    assert StateManager(filled.store).load_fresh("pncp", DAY).origin == "archive"
    load = run_state_cli(["--date", "20251022", "--action", "load"], data_dir)
    assert load.returncode == 0 and json.loads(load.stdout) == before
    assert run_state_cli(["--action", "archive"], data_dir).returncode == 2  # no --before
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    recent = run_state_cli(["--action", "archive", "--before", today], data_dir)
    assert recent.returncode == 2 and "may still be ingested" in recent.stderr
    assert run_state_cli(["--source", "all", "--date", "20251022", "--action", "load"], data_dir).returncode == 2
