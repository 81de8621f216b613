"""`python -m pncp_assets.backfill` against a real `dagster-webserver` and `dagster-daemon` on one instance: it
launches an asset backfill the daemon executes as it executes the UI's (one run per day, the same policy,
queue and pools), follows it to its end with its progress, lists and cancels backfills, and refuses bad input
in one line."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest

from pncp_assets_tests.support.dagster_stack import DagsterStack

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("backfill_cli")
    env = {"STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(root / "data"), "PNCP_REQUEST_INTERVAL_S": "0.05",
           "PNCP_MODALIDADES": "6,8,9", "PNCP_STEP_RETRY_DELAY_S": "1"}
    with DagsterStack(root, env, ["--seed", "31", "--volume", "300"]) as running:
        yield running


def backfill(stack: DagsterStack, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pncp_assets.backfill", *args, "--interval", "1"], env=stack.env,
                          capture_output=True, text=True, timeout=timeout_s)


def test_a_backfill_launched_from_the_command_line_runs_a_day_per_run_through_the_daemon(stack):
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline

    done = backfill(stack, "--from", str(DAYS[0]), "--to", str(DAYS[1]), "--feeds", "pncp")
    assert done.returncode == 0, done.stdout + done.stderr + stack.tail()
    backfill_id = re.search(r"(\w+): launched, 48 hours of 2025-10-22 \.\. 2025-10-23: pncp \(2 runs", done.stdout)
    assert backfill_id, done.stdout
    backfill_id = backfill_id.group(1)
    assert re.search(rf"{backfill_id}: [12] of 2 days done", done.stdout), done.stdout  # progress as it goes
    assert done.stdout.strip().splitlines()[-1].endswith(f"{backfill_id}: COMPLETED_SUCCESS: every day succeeded")

    # The daemon executed it as it executes the UI's: one run per day, all three assets in it.
    runs = stack.backfill_runs(backfill_id)
    ranges = sorted(t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/asset_partition_range_start")
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"] and ranges == [f"{d}-00:00" for d in DAYS]
    store = LocalObjectStore(stack.workdir / "data" / "bronze")
    sim = PncpSimulator(SimulatorConfig(seed=31, volume=300))
    for day in DAYS:
        ids = {r["numeroControlePNCP"] for r in sim.all_records(day) if r["modalidadeId"] in (6, 8, 9)}
        Pipeline(None, store, None).assert_invariants(day, ids)  # type: ignore[arg-type]

    listed = backfill(stack, "--list")
    assert listed.returncode == 0 and re.search(rf"^{backfill_id} +completed_success .* 2/2 days done",
                                                listed.stdout, re.M | re.I), listed.stdout
    resumed = backfill(stack, "--resume", backfill_id)  # every hour materialised: nothing to launch
    assert resumed.returncode == 0 and "nothing left to do" in resumed.stdout, resumed.stdout + resumed.stderr


def test_a_detached_backfill_is_canceled_as_the_ui_cancels_it(stack):
    """`--cancel` does what the UI's Cancel does (the backfill marked canceling; the daemon then cancels its runs
    and marks it canceled at its next pass, as after the UI's); a second `--cancel` says where it stands."""
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    launched = backfill(stack, "--from", "2025-10-24", "--to", "2025-10-26", "--feeds", "pncp,pncp_versions",
                        "--detach")
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert launched.stdout.count("\n") == 1  # detached: launched, not followed
    backfill_id = re.search(r"(\w+): launched, 72 hours", launched.stdout).group(1)  # type: ignore[union-attr]
    canceled = backfill(stack, "--cancel", backfill_id)
    assert canceled.returncode == 0 and f"{backfill_id}: canceling" in canceled.stdout, canceled.stdout
    os.environ["DAGSTER_HOME"] = str(stack.home)
    try:
        status = dg.DagsterInstance.get().get_backfill(backfill_id).status
    finally:
        os.environ.pop("DAGSTER_HOME", None)
    assert status in (BulkActionStatus.CANCELING, BulkActionStatus.CANCELED)
    again = backfill(stack, "--cancel", backfill_id)
    assert again.returncode == 0 and f"{backfill_id}: already cancel" in again.stdout.lower(), again.stdout
    listed = backfill(stack, "--list")
    assert re.search(rf"^{backfill_id} +cancel", listed.stdout, re.M | re.I), listed.stdout


@pytest.mark.parametrize("args, said", [
    (["--from", "2025-10-22", "--feeds", "pncp,nope"], "unknown feed nope"),
    (["--from", "2025-10-23", "--to", "2025-10-22"], "--to 2025-10-22 is before --from 2025-10-23"),
    (["--from", "2099-01-01"], "no hour of 2099-01-01 .. 2099-01-01 has ended yet"),
    (["--from", "2025-13-01"], "invalid date"),
    (["--follow", "nosuchbackfill"], "no backfill nosuchbackfill"),
    (["--resume", "nosuchbackfill"], "no backfill nosuchbackfill"),
    (["--list", "--detach"], "--detach with --from or --resume"),
])
def test_bad_input_exits_2_in_one_line(tmp_path, args, said):
    (tmp_path / "dagster.yaml").write_text("")  # an instance, as `dagster instance migrate` leaves one
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "pncp_assets.backfill", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and said in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
        result.stderr


def test_without_dagster_home_it_says_where_the_instance_should_be():
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    result = subprocess.run([sys.executable, "-m", "pncp_assets.backfill", "--list"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "DAGSTER_HOME is not set" in result.stderr


def test_resume_launches_the_hours_a_finished_backfill_left_undone(tmp_path, monkeypatch):
    """What `--resume` adds to the instance (the UI's Re-execute -> From failure): a backfill of the hours not
    materialised, tagged with its parent; a backfill still running is refused."""
    import dagster as dg
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.backfill import BulkActionStatus

    from pncp_assets.backfill import BadInput, _asset_graph, launch, resume
    from pncp_assets.layers import FIRST_SEEN
    from pncp_assets.layout import day_hours

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = launch(instance, [FIRST_SEEN], day_hours(DAYS[0]) + day_hours(DAYS[1]), "two days")
        with pytest.raises(BadInput, match="still requested"):
            resume(instance, first)
        # The first day's run succeeded (the daemon records it in the backfill's data), then it was canceled.
        graph, launched = _asset_graph(), instance.get_backfill(first)
        data = launched.get_asset_backfill_data(graph)
        day_one = AssetGraphSubset.from_asset_partition_set(
            {AssetKeyPartitionKey(key, hour) for key in data.target_subset.asset_keys for hour in day_hours(DAYS[0])},
            graph)
        launched = launched.with_asset_backfill_data(data._replace(materialized_subset=day_one), instance, graph)
        instance.update_backfill(launched.with_status(BulkActionStatus.CANCELED))
        again, hours = resume(instance, first)
        backfill = instance.get_backfill(again)
    assert hours == 24 and backfill.tags["dagster/parent_backfill_id"] == first
    targets = {key.partition_key for key in backfill.get_asset_backfill_data(graph).target_subset
               .iterate_asset_partitions()}
    assert targets == set(day_hours(DAYS[1]))
