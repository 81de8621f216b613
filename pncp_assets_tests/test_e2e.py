"""End to end with real processes: dagster-webserver and dagster-daemon on loopback, a temporary
DAGSTER_HOME migrated before they start, the simulator as its own process, Bronze on the SeaweedFS S3
server, and an asset backfill of two finished days launched through GraphQL exactly as the UI's
*Materialize -> pick partitions* launches it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from pncp_assets_tests.support.dagster_stack import REPO, DagsterStack, s3_pipeline_env

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]
PARTITIONS = [f"{d:%Y-%m-%d}-{h:02d}:00" for d in DAYS for h in range(24)]
ASSETS = ["pncp_raw_pages", "pncp_new_records", "pncp_daily_state"]
INTERVAL_S = 0.25  # the pacing the test checks across runs (the real API needs 2 s)

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path, seaweed, s3_bucket):
    env = s3_pipeline_env(seaweed, s3_bucket, INTERVAL_S)
    with DagsterStack(tmp_path, env, ["--seed", "21", "--volume", "1000"]) as running:
        yield running


def test_a_ui_asset_backfill_of_two_days_runs_one_run_per_day_with_one_api_budget(stack, seaweed, s3_bucket):
    import dagster as dg

    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import S3ObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline, hour_of

    backfill_id = stack.launch_asset_backfill(ASSETS, PARTITIONS)
    status = stack.wait_backfill(backfill_id, timeout_s=480)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {status}\n{stack.tail()}"
    runs = stack.backfill_runs(backfill_id)
    assert len(runs) == 2, [r["tags"] for r in runs]  # one run per day, all three assets in it

    # Every hour has its own materialisation of each asset and its own check verdict.
    os.environ["DAGSTER_HOME"] = str(stack.home)
    try:
        instance = dg.DagsterInstance.get()
        for name in ASSETS:
            assert instance.get_materialized_partitions(dg.AssetKey(name)) == set(PARTITIONS), name
        check_key = dg.AssetCheckKey(dg.AssetKey("pncp_new_records"), "no_duplicates")
        history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=200)
        verdicts = {r.partition: r.event.dagster_event.event_specific_data.passed for r in history if r.event}
        assert verdicts == dict.fromkeys(PARTITIONS, True)
    finally:
        os.environ.pop("DAGSTER_HOME", None)

    # The UI shows both layers' assets, each delta asset with its blocking check.
    nodes = stack.graphql("""{ assetNodes { assetKey { path } groupName
        assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")["assetNodes"]
    checks = {n["assetKey"]["path"][-1]: {(c["name"], c["blocking"]) for c in n["assetChecksOrError"]["checks"]}
              for n in nodes}
    assert set(checks) == {*ASSETS, "pncp_update_pages", "pncp_new_versions", "pncp_versions_state"}
    assert checks["pncp_new_versions"] == checks["pncp_new_records"] == {("no_duplicates", True),
                                                                         ("bronze_consistent", True)}

    # Every record exactly once, each in its publication hour; the state agrees.
    store = S3ObjectStore(seaweed.client(), s3_bucket)
    sim = PncpSimulator(SimulatorConfig(seed=21, volume=1000))
    for day in DAYS:
        records = [r for r in sim.all_records(day) if r["modalidadeId"] in (6, 8, 9)]
        deltas = Pipeline(None, store, None).assert_invariants(day, {r["numeroControlePNCP"] for r in records})  # type: ignore[arg-type]
        filed = {x: int(pk[11:13]) for pk, ids in deltas.items() for x in ids}
        assert all(filed[r["numeroControlePNCP"]] == hour_of(r) for r in records)

    # One sweep per day, and the two runs never talked to PNCP at the same time (pool pncp_api):
    # no two requests closer than the pacing allows (half of it, for loopback jitter).
    log = stack.simulator_log()
    per_day = Counter(e["params"]["dataInicial"] for e in log)
    pages = Counter((e["params"]["dataInicial"], e["params"]["codigoModalidadeContratacao"], e["params"]["pagina"])
                    for e in log)
    assert set(per_day) == {f"{d:%Y%m%d}" for d in DAYS} and len(log) <= 1.1 * len(pages), per_day
    arrivals = sorted(e["at"] for e in log)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= INTERVAL_S / 2, f"{sum(g < INTERVAL_S / 2 for g in gaps)} requests overlapped"


def test_the_demo_runs_as_the_readme_says_and_its_ui_continues_the_same_world(tmp_path):
    import re

    import requests

    from pncp_assets.brasilia import TZ, utc_now
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline
    from pncp_assets_tests.support.seaweed import free_port

    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "home")}
    demo = REPO / "scripts" / "demo.sh"
    result = subprocess.run(["bash", str(demo), "--volume", "400"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    yesterday = utc_now().astimezone(TZ).date() - dt.timedelta(days=1)
    assert f"backfilling {yesterday}" in result.stdout  # the UI's default partition views show it
    assert "[24/24]" in result.stdout and "FAILED" not in result.stdout
    assert "records in Bronze:  400 in" in result.stdout
    assert "duplicates:         0" in result.stdout
    changed = re.search(r"versions: +(\d+) of (\d+) contratações changed on .*\((\d+) published on earlier days",
                        result.stdout)
    assert changed and int(changed.group(1)) > 0 and int(changed.group(3)) > 0  # a day with updates
    assert re.search(r"current view: +\d+ contratações", result.stdout)
    command = result.stdout.strip().splitlines()[-1].strip()
    assert command == "bash scripts/demo.sh ui --seed 1 --volume 400"

    # The printed command: the UI on the same instance, with the same simulated PNCP behind it.
    port = free_port()
    ui = subprocess.Popen(["bash", str(demo), *command.split()[2:], "--port", str(port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = ui.stdout.readline()  # type: ignore[union-attr]
        sim_url = re.search(r"simulator on (http://127\.0\.0\.1:\d+)", first).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert ui.poll() is None, "the UI command exited early"
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise AssertionError("the UI did not come up")
        page = requests.get(f"{sim_url}/v1/contratacoes/publicacao", timeout=10, params={
            "dataInicial": f"{yesterday:%Y%m%d}", "dataFinal": f"{yesterday:%Y%m%d}",
            "codigoModalidadeContratacao": 8, "pagina": 1, "tamanhoPagina": 50}).json()
        store = LocalObjectStore(tmp_path / "data" / "bronze")
        in_bronze = {x for ids in Pipeline(None, store, None).delta_ids(yesterday).values() for x in ids}  # type: ignore[arg-type]
        served = {r["numeroControlePNCP"] for r in page["data"]}
        assert served and served <= in_bronze  # the same seed, the same day: the demo's records
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
