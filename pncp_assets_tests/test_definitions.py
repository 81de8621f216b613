"""The code location loads as Dagster would load it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg

from pncp_assets.defs.assets import AssetNames
from pncp_assets.defs.environment import bronze_storage
from pncp_assets.layers import CONTRATOS_VERSIONS, FIRST_SEEN, LAYERS
from pncp_assets.storage import LocalObjectStore, S3ObjectStore


def test_definitions_load():
    from pncp_assets.definitions import defs

    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)


def test_bronze_storage_resource_follows_the_environment(local_env, monkeypatch):
    assert isinstance(bronze_storage().object_store(), LocalObjectStore)


def test_bronze_storage_resource_on_s3(s3_env):
    store = bronze_storage().object_store()
    assert isinstance(store, S3ObjectStore)
    store.put("pncp/x", b"1")
    assert store.get("pncp/x").data == b"1"


def test_graph_names_and_pool():
    import warnings

    warnings.filterwarnings("ignore")
    from pncp_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    names = {layer: AssetNames.of(layer) for layer in LAYERS}  # the registry's, by the naming rule
    assert keys == {name for n in names.values() for name in (n.raw, n.deltas, n.state, n.figures)}
    # The original design's names stay the contratações' first-seen layer's; every other name follows its prefix.
    assert (names[FIRST_SEEN].raw, names[FIRST_SEEN].deltas, names[FIRST_SEEN].state) == (
        "pncp_raw_pages", "pncp_new_records", "pncp_daily_state")
    assert names[CONTRATOS_VERSIONS].deltas == "pncp_contratos_versions_new_records"
    assert len(keys) == 4 * len(LAYERS) == 20
    for key in keys:
        assert graph.get(dg.AssetKey(key)).group_name == "bronze_pncp"
    for n in names.values():  # the daily view: days, observed by the runs, never materialised by a job
        figures = graph.get(dg.AssetKey(n.figures))
        assert not figures.is_materializable and figures.parent_keys == {dg.AssetKey(n.state)}
        assert figures.partitions_def.get_partition_keys_between_indexes(0, 2) == ["2025-01-01", "2025-01-02"]
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    deltas = [n.deltas for n in names.values()]
    links = {(n.deltas, "contratacao_links") for layer, n in names.items() if layer.feed != "contratacoes"}
    assert checks == {(asset, name) for asset in deltas
                      for name in ("no_duplicates", "bronze_consistent", "freshness_check", "completeness")} | links
    # The sensors: freshness evaluated from the start; failures and stale assets announced once a webhook is set
    # (the tests' environment has none: test_alerts.py loads the code location with one).
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert sensors == {"pncp_freshness_checks": dg.DefaultSensorStatus.RUNNING,
                       "pncp_run_failure_alert": dg.DefaultSensorStatus.STOPPED,
                       "pncp_stale_asset_alert": dg.DefaultSensorStatus.STOPPED,
                       "pncp_incomplete_day_alert": dg.DefaultSensorStatus.STOPPED}
    for n in names.values():
        assert defs.resolve_assets_def(n.state).op.pool == "pncp_state"
        assert defs.resolve_assets_def(n.raw).op.pool == "pncp_api"  # the steps that talk to PNCP: one budget
    for delta in deltas:  # launched alone, a delta asset sweeps its hours itself: the same budget
        assert defs.resolve_assets_def(delta).op.pool == "pncp_api"
    job = defs.resolve_job_def("pncp_hourly_ingestion")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == \
        {name for n in names.values() for name in (n.raw, n.deltas, n.state)}


def test_a_backfill_runs_a_day_per_run_with_all_six_assets_together():
    import warnings
    from pathlib import Path

    import yaml

    warnings.filterwarnings("ignore")
    from pncp_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        name, node = key.to_user_string(), graph.get(key)
        assert node.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=24), name
        # No self-dependency: Dagster would then refuse to put the assets in one run.
        assert dg.AssetKey(name) not in node.parent_keys, name
    assert defs.resolve_job_def("pncp_hourly_ingestion").backfill_policy.max_partitions_per_run == 24
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "dagster.yaml").read_text())
    assert shipped["concurrency"]["pools"]["default_limit"] == 1  # pncp_api and pncp_state: one at a time
    assert defs.resolve_job_def("pncp_hourly_ingestion") is not None
    assert defs.resolve_job_def("pncp_checks") is not None


def test_schedule_asks_for_the_hour_just_finished():
    import datetime as dt
    import warnings
    from zoneinfo import ZoneInfo

    warnings.filterwarnings("ignore")
    from pncp_assets.definitions import defs
    from pncp_assets.defs.resources import PncpApi

    schedule = defs.resolve_schedule_def("pncp_hourly_schedule")
    assert schedule.cron_schedule == "5 * * * *"
    assert schedule.execution_timezone == "America/Sao_Paulo"
    tick = dt.datetime(2025, 10, 23, 0, 5, tzinfo=ZoneInfo("America/Sao_Paulo"))  # 00:05 on the 23rd
    with dg.instance_for_test() as instance, dg.build_schedule_context(
            scheduled_execution_time=tick, repository_def=defs.get_repository_def(), instance=instance,
            resources={"pncp_api": PncpApi(base_url="http://127.0.0.1:9")}) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2025-10-22-23:00"]
    assert schedule.job_name == "pncp_hourly_ingestion"


def _python(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """The script's output, run in a fresh interpreter: what a process loads from its start is the point."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


RUN_WITHOUT_PANDAS = """
import datetime as dt, json, os, sys
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

with RunningSimulator(SimulatorConfig(volume=600, now=dt.datetime(2025, 10, 22, 12, 5))) as sim:
    os.environ.update(PNCP_API_BASE_URL=sim.base_url, PNCP_REQUEST_INTERVAL_S="0", PNCP_DATA_DIR=sys.argv[1],
                      PNCP_START_DATE="2025-10-01", STORAGE_TYPE="local")
    from pncp_assets.definitions import defs
    result = defs.resolve_job_def("pncp_hourly_ingestion").execute_in_process(partition_key="2025-10-22-11:00")
loaded_by_the_run = "pandas" in sys.modules
compute_loaded = "pyarrow.compute" in sys.modules  # only a run that holds records back needs it
import pyarrow as pa
pool = pa.default_memory_pool().backend_name
from pathlib import Path
from pncp_assets import bronze
table = bronze.read_parquet(next(Path(sys.argv[1], "bronze", "pncp").rglob("*.parquet")).read_bytes())
frame = table.to_pandas()  # pyarrow imports pandas once asked for it
import pandas as pd
print(json.dumps({"success": result.success, "pandas_loaded_by_the_run": loaded_by_the_run,
                  "compute_loaded_by_the_run": compute_loaded, "pool": pool,
                  "rows": table.num_rows, "frame_rows": len(frame),
                  "nan_to_null": pa.Table.from_pandas(pd.DataFrame({"v": [1.0, float("nan")]})).column(0).null_count}))
"""


def test_a_run_of_the_code_location_never_loads_pandas_and_pandas_still_converts(tmp_path):
    """pyarrow would import pandas (30 MB) at a run's first conversion only to ask whether values are pandas
    objects; the code location settles that question at load (`arrow_runtime.skip_pandas_probe`)."""
    seen = json.loads(_python(RUN_WITHOUT_PANDAS, str(tmp_path), timeout=300).splitlines()[-1])
    assert seen["success"] and seen["rows"] > 0
    assert seen["pandas_loaded_by_the_run"] is False and seen["compute_loaded_by_the_run"] is False
    assert seen["frame_rows"] == seen["rows"] and seen["nan_to_null"] == 1
    assert seen["pool"] == "system"  # `arrow_runtime.use_system_allocator`, ARROW_DEFAULT_MEMORY_POOL unset


def test_arrow_default_memory_pool_still_chooses_the_allocator():
    script = "import pncp_assets.definitions, pyarrow as pa\nprint(pa.default_memory_pool().backend_name)"
    assert _python(script, env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) == "jemalloc"


def test_skipping_the_pandas_probe_changes_nothing_once_pandas_is_loaded():
    script = ("import pandas as pd, pyarrow as pa\nfrom pncp_assets import arrow_runtime\n"
              "arrow_runtime.skip_pandas_probe()\nprint(pa.array(pd.Series([1.0, float('nan')])).null_count)")
    assert _python(script) == "1"  # a pandas Series still converts as pandas: NaN is null


def test_the_s3_settings_and_client_configuration_are_dagster_aws_own():
    from dagster_aws.s3 import S3Resource

    from pncp_assets.defs.resources import BronzeStorage
    from pncp_assets.defs.s3_storage import S3BronzeStorage

    assert issubclass(S3BronzeStorage, S3Resource) and issubclass(S3BronzeStorage, BronzeStorage)
    for name, field in S3Resource.model_fields.items():  # inherited, not copied: the same field objects' values
        assert S3BronzeStorage.model_fields[name].description == field.description, name
    assert not set(S3Resource.model_fields) & set(BronzeStorage.model_fields)  # the local store declares none
    client = S3BronzeStorage(endpoint_url="http://127.0.0.1:9", max_attempts=7, read_timeout_s=12).get_client()
    assert client.meta.config.retries == {"total_max_attempts": 7, "mode": "standard"}  # the first try counted
    assert (client.meta.config.read_timeout, client.meta.config.s3["addressing_style"]) == (12, "path")


def test_only_s3_storage_loads_boto3_and_dagster_aws():
    """Their import is 0.3 s of CPU and 13 MB in every process: a local code location never pays it."""
    script = ("import sys, pncp_assets.definitions as d\n"
              "print(type(d.storage).__name__, sorted({'boto3', 'botocore', 'dagster_aws'} & set(sys.modules)))")
    local = {k: v for k, v in os.environ.items() if k != "STORAGE_TYPE"}
    assert _python(script, env=local) == "BronzeStorage []"
    s3 = {**os.environ, "STORAGE_TYPE": "s3", "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert _python(script, env=s3) == "S3BronzeStorage ['boto3', 'botocore', 'dagster_aws']"
