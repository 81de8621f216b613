"""End to end with real processes: dagster-webserver and dagster-daemon on loopback, a temporary
DAGSTER_HOME migrated before they start, the simulator as its own process, Bronze on the SeaweedFS S3
server, an asset backfill of two finished days launched through GraphQL exactly as the UI's
*Materialize -> pick partitions* launches it, what the UI then shows (GraphQL and a real browser), and the
daemon's sensors posting alerts to a webhook (a local HTTP server).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from pncp_assets.defs.assets import AssetNames
from pncp_assets.layers import FIRST_SEEN, LAYERS
from pncp_assets_tests.support.dagster_stack import REPO, DagsterStack, s3_pipeline_env

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]
PARTITIONS = [f"{d:%Y-%m-%d}-{h:02d}:00" for d in DAYS for h in range(24)]
NAMES = [AssetNames.of(layer) for layer in LAYERS]  # the registry's names, by the naming rule
ASSETS = [name for names in NAMES for name in (names.raw, names.deltas, names.state)]
DELTAS = sorted(names.deltas for names in NAMES)
LINKED = [AssetNames.of(layer).deltas for layer in LAYERS if layer.link_field]
CHECKS = ["no_duplicates", "bronze_consistent"]
INTERVAL_S = 0.15  # the pacing the test checks across runs (the real API needs 2 s)
HOOK = "/hooks/pncp-e2e"

pytestmark = pytest.mark.e2e

CHECK_STATUSES = """
query($asset: [String!]!) {
  assetNodeOrError(assetKey: {path: $asset}) {
    ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name
      partitionStatuses { __typename ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } }
    } } } }
  }
}"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
DAY_FIGURES = """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
    assetMaterializations { partition timestamp metadataEntries { label ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue } } } } } }"""
RUN_STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


@pytest.fixture
def webhook(httpserver) -> Webhook:
    return Webhook(httpserver)


@pytest.fixture
def stack(tmp_path, seaweed, s3_bucket, webhook):
    env = {**s3_pipeline_env(seaweed, s3_bucket, INTERVAL_S), "PNCP_ALERT_WEBHOOK_URL": webhook.url}
    with DagsterStack(tmp_path, env, ["--seed", "21", "--volume", "500"]) as running:
        yield running


def _statuses(stack: DagsterStack, asset: str) -> dict[str, dict[str, str]]:
    """Check -> hour -> the status GraphQL `partitionStatuses` gives (what the check's Partitions tab draws)."""
    node = stack.graphql(CHECK_STATUSES, {"asset": [asset]})["assetNodeOrError"]
    shown: dict[str, dict[str, str]] = {}
    for check in node["assetChecksOrError"]["checks"]:
        hours = shown.setdefault(check["name"], {})
        for r in (check["partitionStatuses"] or {}).get("ranges", []):
            start, end = (dt.datetime.strptime(k, "%Y-%m-%d-%H:%M") for k in (r["startKey"], r["endKey"]))
            while start <= end:
                hours[start.strftime("%Y-%m-%d-%H:%M")] = r["status"]
                start += dt.timedelta(hours=1)
    return shown


def _run_job(stack: DagsterStack, job: str, partition: str, timeout_s: float = 240) -> tuple[str, str]:
    """Launch `job` for one hour as a schedule tick does (tag dagster/partition); wait for its end."""
    repo = stack.graphql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
    [node] = repo["repositoriesOrError"]["nodes"]
    params = {"selector": {"repositoryLocationName": node["location"]["name"], "repositoryName": node["name"],
                           "jobName": job},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}
    launched = stack.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = stack.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return run_id, status
        time.sleep(1)
    raise AssertionError(f"run {run_id} of {job} did not end in {timeout_s} s\n{stack.tail()}")


class Webhook:
    """The alerts' webhook: a local HTTP server (pytest-httpserver) keeping each message with its arrival time."""

    def __init__(self, server):
        from werkzeug import Response

        self.url = server.url_for(HOOK)
        self.received: list[tuple[float, dict]] = []

        def take(request):
            self.received.append((time.time(), json.loads(request.get_data())))
            return Response("ok")

        server.expect_request(HOOK, method="POST").respond_with_handler(take)

    def messages(self, event: str) -> list[dict]:
        return [m for _, m in self.received if m["event"] == event]

    def wait(self, enough, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not enough() and time.monotonic() < deadline:
            time.sleep(1)
        assert enough(), f"webhook messages so far: {self.received}"


def test_a_ui_asset_backfill_of_two_days_runs_one_run_per_day_with_one_api_budget(stack, seaweed, s3_bucket,
                                                                                  webhook, tmp_path):
    import dagster as dg

    from pncp_assets import bronze, layout
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.state import StateManager
    from pncp_assets.storage import S3ObjectStore
    from pncp_assets_tests.support.browser import dagster_ui
    from pncp_assets_tests.support.feeds import assert_layer_exact, feeds_truth
    from pncp_assets_tests.support.pipeline import Pipeline, hour_of

    backfill_id = stack.launch_asset_backfill(ASSETS, PARTITIONS)
    status = stack.wait_backfill(backfill_id, timeout_s=480)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), f"backfill {status}\n{stack.tail()}"
    runs = stack.backfill_runs(backfill_id)
    assert len(runs) == 2, [r["tags"] for r in runs]  # one run per day, all fifteen assets in it

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

    # The UI shows both layers' assets, each delta asset with its blocking checks and its freshness check.
    nodes = stack.graphql("""{ assetNodes { assetKey { path } groupName
        assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")["assetNodes"]
    checks = {n["assetKey"]["path"][-1]: {(c["name"], c["blocking"]) for c in n["assetChecksOrError"]["checks"]}
              for n in nodes}
    assert set(checks) == set(ASSETS) | {names.figures for names in NAMES}  # with the daily view
    for asset in DELTAS:
        assert checks[asset] == {("no_duplicates", True), ("bronze_consistent", True), ("freshness_check", False),
                                 ("completeness", False),
                                 *([("contratacao_links", False)] if asset in LINKED else [])}, asset

    # Every record of every feed exactly once, each in its publication (or change) hour; the states agree.
    store = S3ObjectStore(seaweed.client(), s3_bucket)
    sim = PncpSimulator(SimulatorConfig(seed=21, volume=500))
    for day in DAYS:
        records = [r for r in sim.all_records(day) if r["modalidadeId"] in (6, 8, 9)]
        deltas = Pipeline(None, store, None).assert_invariants(day, {r["numeroControlePNCP"] for r in records})  # type: ignore[arg-type]
        filed = {x: int(pk[11:13]) for pk, ids in deltas.items() for x in ids}
        assert all(filed[r["numeroControlePNCP"]] == hour_of(r) for r in records)
        for layer, expected in feeds_truth(sim, day).items():
            assert_layer_exact(store, layer, day, expected)

    # One sweep per day and endpoint, and the two runs never talked to PNCP at the same time (pool
    # pncp_api): no two requests closer than the pacing allows (half of it, for loopback jitter).
    log = stack.simulator_log()
    per_day = Counter(e["params"]["dataInicial"] for e in log)
    pages = Counter((e["path"], e["params"]["dataInicial"], e["params"].get("codigoModalidadeContratacao"),
                     e["params"]["pagina"]) for e in log)
    assert set(per_day) == {f"{d:%Y%m%d}" for d in DAYS} and len(log) <= 1.1 * len(pages), per_day
    assert {e["path"] for e in log} == {"/v1/contratacoes/publicacao", "/v1/contratacoes/atualizacao", "/v1/contratos",
                                         "/v1/contratos/atualizacao", "/v1/atas/atualizacao"}  # every feed
    arrivals = sorted(e["at"] for e in log)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= INTERVAL_S / 2, f"{sum(g < INTERVAL_S / 2 for g in gaps)} requests overlapped"

    # Per-hour verdicts reach the UI: every check of both delta assets passed for each of the 48 hours.
    for asset in DELTAS:
        shown = _statuses(stack, asset)
        for check in CHECKS:
            assert shown[check] == dict.fromkeys(PARTITIONS, "SUCCEEDED"), (asset, check, shown[check])
    # The links check reports, per hour, the contratos and atas whose contratação Bronze does not hold (those of
    # contratações published long before the backfilled days): a warning, the records in Bronze all the same.
    for asset in LINKED:
        assert set(_statuses(stack, asset)["contratacao_links"]) == set(PARTITIONS)
    # ... also for an hour run again the way the hourly schedule runs it (one hour, the job).
    again = "2025-10-23-05:00"
    assert _run_job(stack, "pncp_hourly_ingestion", again)[1] == "SUCCESS"
    assert _statuses(stack, "pncp_new_records")["no_duplicates"] == dict.fromkeys(PARTITIONS, "SUCCEEDED")

    # A duplicate planted across two hours, then the checks job (CI's) on one of them: it fails, the UI
    # shows that hour failed and the rest still passed, and the failed run is announced.
    first, second = sorted(Pipeline(None, store, None).delta_ids(DAYS[0]))[:2]  # type: ignore[arg-type]
    rows = bronze.read_parquet(store.get(layout.delta_key("pncp", first)).data).slice(0, 1)
    held = bronze.read_parquet(store.get(layout.delta_key("pncp", second)).data)
    both = bronze.concat_tables([held, rows], FIRST_SEEN.schema)
    store.put(layout.delta_key("pncp", second), bronze.table_to_parquet(both))
    failed_run, status = _run_job(stack, "pncp_checks", second)
    assert status == "FAILURE"
    shown = _statuses(stack, "pncp_new_records")["bronze_consistent"]
    assert {h for h, s in shown.items() if s == "FAILED"} == {second}
    assert {h for h, s in shown.items() if s == "SUCCEEDED"} == set(PARTITIONS) - {second}

    # The daily view: each layer's `<layer>_daily_figures` is materialised per day, its latest figures as the
    # day's state holds them.
    for layer, names in zip(LAYERS, NAMES, strict=True):
        recorded = stack.graphql(DAY_FIGURES, {"path": [names.figures]})["assetOrError"]["assetMaterializations"]
        latest: dict[str, dict] = {}
        for event in sorted(recorded, key=lambda e: float(e["timestamp"])):
            latest[event["partition"]] = {m["label"]: m.get("intValue", m.get("floatValue"))
                                          for m in event["metadataEntries"]}
        assert set(latest) == {d.isoformat() for d in DAYS}, (names.figures, latest)
        for day in DAYS:
            state = StateManager(store).load_fresh(layer, day).state
            shown = latest[day.isoformat()]
            assert (shown["executions"], shown["state_ids"]) == (len(state.executions), len(state.processed_ids))
            assert shown["complete_pct"] == 100, (names.figures, day, shown)  # each backfilled day closed complete

    # What a person sees on the check's page, in a real browser: every hour passed but the one that failed.
    # (One page: each load of the UI costs seconds of a loaded machine's CPU; GraphQL covers every check and
    # layer. The daily view's plots are looked at in the demo's test, whose day is recent.)
    with dagster_ui(stack.url) as ui:
        shown = ui.check_partitions("pncp_new_records", "bronze_consistent", hour=second)
        assert (shown["Passed"], shown["Failed"], shown["hour"]) == (47, 1, "Failed"), shown
        ui.page.screenshot(path=str(tmp_path / "bronze_consistent.png"))

    # The daemon's sensors: one message for the failed run, each stale delta asset named once (nothing of the
    # present day is ingested; those gone stale at one tick share a message), and no repeat while they stay
    # stale (the stale-asset sensor ticks every 30 s, and has ticked since).
    def stale_named() -> list[str]:
        return [asset for m in webhook.messages("stale_asset") for asset in m["assets"]]

    webhook.wait(lambda: webhook.messages("run_failure") and len(stale_named()) >= len(DELTAS))
    first_stale = min(t for t, m in webhook.received if m["event"] == "stale_asset")
    time.sleep(max(0.0, first_stale + 35 - time.time()))
    failures = webhook.messages("run_failure")
    assert [m["run_id"] for m in failures] == [failed_run], failures
    assert failures[0]["job"] == "pncp_checks"
    assert f"run {failed_run} of job pncp_checks ({second}) failed" in failures[0]["text"]
    assert sorted(stale_named()) == DELTAS, webhook.received
    assert all(m["text"].startswith(f"pncp_assets: {', '.join(m['assets'])} ")
               and " stale: a due hour is missing" in m["text"] for m in webhook.messages("stale_asset"))


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
    assert re.search(r"^ +\d+\.\ds sweeping: pncp_raw_pages \.\.\.$", result.stdout, flags=re.M)  # progress as it goes
    # The demo's instance starts its partitions on the demo's day (the UI shows its range filled, not 0 %).
    assert json.loads((tmp_path / "home" / "pncp_demo.json").read_text()) == {"first_day": yesterday.isoformat()}

    # The printed command: the UI on the same instance, with the same simulated PNCP behind it.
    port = free_port()

    def as_a_background_job() -> None:  # what `cmd &` in a script or a CI step starts with
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    ui = subprocess.Popen(["bash", str(demo), *command.split()[2:], "--port", str(port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=as_a_background_job)
    output: list[str] = []
    try:
        first = ui.stdout.readline()  # type: ignore[union-attr]
        sim_url = re.search(r"simulator on (http://127\.0\.0\.1:\d+)", first).group(1)  # type: ignore[union-attr]
        threading.Thread(target=lambda: output.extend(ui.stdout), daemon=True).start()  # type: ignore[arg-type]
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
        # Its partitions start on the demo's day: the UI's "filled" counts the demo's hours among a day or two.
        query = '{ assetNodes(assetKeys: [{path: ["pncp_new_records"]}]) { partitionKeys } }'
        nodes = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30).json()
        keys = nodes["data"]["assetNodes"][0]["partitionKeys"]
        assert keys[0] == f"{yesterday:%Y-%m-%d}-00:00" and len(keys) <= 48, (keys[:2], len(keys))
        # The daily view as a person sees it: the day's figures plotted by day (the demo's day is recent).
        from pncp_assets_tests.support.browser import dagster_ui

        with dagster_ui(f"http://127.0.0.1:{port}") as browser:
            browser.plots("pncp_daily_figures", ["executions", "filter_rate", "state_ids", "complete_pct"])
            browser.page.screenshot(path=str(tmp_path / "pncp_daily_figures.png"))

        # Quiet: once the daemon has loaded the code location and ticked its sensors, no warning about an
        # ignored dagster.yaml and none of the framework's notices for the APIs the project chose.
        deadline = time.monotonic() + 120
        while not any("Checking for new runs for sensor: pncp_" in line for line in output):
            assert time.monotonic() < deadline, "the daemon never ticked the sensors:\n" + "".join(output)[-3000:]
            time.sleep(1)
        noise = [line for line in output if re.search(r"dagster\.yaml|BetaWarning|PreviewWarning|SupersessionWarning|"
                                                      r"DeprecationWarning", line)]
        assert not noise, "".join(noise)[:3000]
        # A process manager's stop: SIGTERM to the command alone. It ends within seconds, leaving nothing behind
        # (dagster dev, its webserver, its daemon, their code servers).
        started = _descendants(ui.pid)
        assert len(started) >= 3, started  # dagster dev, the webserver and the daemon at least
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=40) is not None
        deadline = time.monotonic() + 10
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(started), f"left behind: {_alive(started)}"
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2)
    finally:
        for pid in [ui.pid, *_alive(_descendants(ui.pid))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ui.wait(timeout=30)


def _parents() -> dict[int, int]:
    """Every live process (not a zombie) and its parent, from Linux's /proc."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                out[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def _descendants(pid: int) -> dict[int, str]:
    """The live processes below `pid`, with their command lines."""
    parents, found, todo = _parents(), {}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                with contextlib.suppress(OSError):
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
                    todo.append(child)
    return found


def _alive(processes: dict[int, str]) -> dict[int, str]:
    parents = _parents()
    return {pid: cmd for pid, cmd in processes.items() if pid in parents}
