"""End to end with real processes: dagster-webserver and dagster-daemon on loopback, a temporary
DAGSTER_HOME, the simulator as its own process, Bronze on the SeaweedFS S3 server, and a backfill of
one day's 24 partitions of the job `pncp_hourly_ingestion` launched through the GraphQL API.

(A job backfill launches every hour at once, so the runs race and the commit protocol keeps them
apart. An asset-graph backfill runs the hours in order instead, but Dagster's daemon sleeps 30 s
between the hours of a self-dependent asset (dagster-io/dagster#11649): 12 minutes for a day.)"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pncp_assets_tests.seaweed import free_port

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2025, 10, 22)
PARTITIONS = [f"{DAY:%Y-%m-%d}-{h:02d}:00" for h in range(24)]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e

REPOSITORIES = """
query { repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""
LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}"""
STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}"""
ASSET = """
query { assetOrError(assetKey: {path: ["pncp_new_records"]}) { __typename } }"""


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def _wait_http(url: str, procs: list[subprocess.Popen], logs: list[Path], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited early:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout_s}s:\n" + "\n".join(p.read_text()[-2000:] for p in logs))


@pytest.fixture
def stack(tmp_path, seaweed, s3_bucket):
    import yaml

    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config.setdefault("concurrency", {})["runs"] = {"max_concurrent_runs": 3}  # 2 cores: 3 runs at a time
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    sim_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "STORAGE_TYPE": "s3", "S3_ENDPOINT_URL": seaweed.endpoint, "BRONZE_BUCKET": s3_bucket,
        "AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_REGION": "us-east-1",
        "PNCP_API_BASE_URL": f"http://127.0.0.1:{sim_port}", "PNCP_REQUEST_INTERVAL_S": "0",
        "PNCP_MODALIDADES": "6,8,9", "PNCP_STEP_RETRY_DELAY_S": "1",
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("simulator", "webserver", "daemon")}
    procs = {
        "simulator": _start([sys.executable, "-m", "pncp_assets.pncp.simulator", "--port", str(sim_port),
                             "--seed", "21", "--volume", "500"], env, logs["simulator"]),
        "webserver": _start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                             "-p", str(web_port)], env, logs["webserver"]),
        "daemon": _start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs["daemon"]),
    }
    try:
        _wait_http(f"http://127.0.0.1:{web_port}/server_info", list(procs.values()), list(logs.values()))
        yield {"url": f"http://127.0.0.1:{web_port}", "home": home, "env": env, "logs": logs,
               "sim_url": env["PNCP_API_BASE_URL"], "bucket": s3_bucket}
    finally:
        for proc in procs.values():
            _stop(proc)


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    from dagster_graphql import DagsterGraphQLClient

    host, port = url.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port), timeout=60)
    return client._execute(query, variables or {})


def test_a_daemon_backfill_of_one_day_through_graphql(stack, seaweed):
    import dagster as dg

    from pncp_assets import bronze
    from pncp_assets.storage import S3ObjectStore
    from pncp_assets_tests.pipeline import Pipeline

    repo = _graphql(stack["url"], REPOSITORIES)["repositoriesOrError"]["nodes"][0]
    params = {"partitionNames": PARTITIONS, "selector": {
        "partitionSetName": "pncp_hourly_ingestion_partition_set",
        "repositorySelector": {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}}}
    launched = _graphql(stack["url"], LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + 420
    status = None
    while time.monotonic() < deadline:
        status = _graphql(stack["url"], STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            break
        time.sleep(2)
    daemon_log = stack["logs"]["daemon"].read_text()[-3000:]
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {status}\n{daemon_log}"

    os.environ["DAGSTER_HOME"] = str(stack["home"])
    try:
        instance = dg.DagsterInstance.get()
        for name in ("pncp_raw_pages", "pncp_new_records", "pncp_daily_state"):
            assert instance.get_materialized_partitions(dg.AssetKey(name)) == set(PARTITIONS), name
        check_key = dg.AssetCheckKey(dg.AssetKey("pncp_new_records"), "no_duplicates")
        history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=100)
        assert len(history) >= 24
        evaluations = [r.event.dagster_event.event_specific_data for r in history if r.event and r.event.dagster_event]
        assert evaluations and all(e.passed for e in evaluations)
    finally:
        os.environ.pop("DAGSTER_HOME", None)

    store = S3ObjectStore(seaweed.client(), stack["bucket"])
    sim_log = requests.get(f"{stack['sim_url']}/_sim/log", timeout=10).json()
    # Bronze holds every record of the simulated day exactly once, and the state agrees.
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig

    expected = {r["numeroControlePNCP"] for r in PncpSimulator(SimulatorConfig(seed=21, volume=500)).all_records(DAY)
                if r["modalidadeId"] in (6, 8, 9)}
    Pipeline(None, store, None).assert_invariants(DAY, expected)  # type: ignore[arg-type]
    pages = {(e["params"]["codigoModalidadeContratacao"], e["params"]["pagina"]) for e in sim_log}
    sweeps = len([k for k in store.list("pncp/_raw/") if "/sweep_" in k])
    assert sweeps <= 3  # racing runs may each sweep before the first sweep is stored; later ones reuse it
    assert len(sim_log) <= sweeps * 1.2 * len(pages)
    assert bronze.state_key("pncp", DAY) in store.list("pncp/_state/")

    page = requests.get(f"{stack['url']}/assets/pncp_new_records", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert _graphql(stack["url"], ASSET)["assetOrError"]["__typename"] == "Asset"


def test_the_demo_runs_as_the_readme_says(tmp_path):
    env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(tmp_path / "data"),
           "DAGSTER_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "pncp_assets.cli", "demo", "--volume", "400"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[24/24]" in result.stdout
    assert "records in Bronze:  400 in" in result.stdout
    assert "duplicates:         0" in result.stdout
    assert "dagster dev" in result.stdout
