"""The Dagster code location: `dagster dev -m pncp_assets.definitions` or workspace.yaml."""

from __future__ import annotations

import dagster as dg

from pncp_assets import arrow_runtime
from pncp_assets.defs.alerts import alert_sensors, freshness_checks, freshness_sensor
from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.defs.environment import (
    SETTINGS,
    alert_webhook,
    bronze_storage,
    metrics_gateway,
    pncp_api,
    retention,
)
from pncp_assets.defs.io_manager import BronzeParquetIOManager
from pncp_assets.defs.partitions import hourly_partitions
from pncp_assets.defs.retention import pncp_retention, pncp_retention_schedule
from pncp_assets.defs.schedules import day_close_schedule, hourly_schedule, resweep_schedule

bronze_assets = [asset for graph in LAYER_GRAPHS for asset in graph.assets]  # first-seen records, versions
bronze_checks = [graph.check for graph in LAYER_GRAPHS]  # bronze_consistent, for each layer
daily_figures = [graph.figures for graph in LAYER_GRAPHS]  # the daily view, recorded by the state assets

pncp_hourly_ingestion = dg.define_asset_job(
    "pncp_hourly_ingestion",
    selection=dg.AssetSelection.assets(*bronze_assets),
    description="Sweep day(H) for publications and for changes, file H's new records and new versions in "
    "Bronze, confirm the days' states.",
)


def checks_job(checks: list[dg.AssetChecksDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """The job `pncp_checks`: only these consistency checks over Bronze that already exists, for CI against
    production storage."""
    return dg.define_asset_job(
        "pncp_checks",
        selection=dg.AssetSelection.checks(*checks),
        # Needed here (deprecated for asset jobs): a checks-only selection has no asset to infer it from.
        partitions_def=hourly_partitions,
    )


pncp_checks = checks_job(bronze_checks)

pncp_hourly_schedule = hourly_schedule(pncp_hourly_ingestion)

pncp_day_close_schedule = day_close_schedule(pncp_hourly_ingestion, hour=SETTINGS.day_close_hour)
pncp_resweep_schedule = resweep_schedule(pncp_hourly_ingestion, hour=SETTINGS.day_close_hour)

# Every process that loads the code location (webserver, daemon, each run): pyarrow without the pandas it
# would load unused, on the system allocator.
arrow_runtime.skip_pandas_probe()
if not SETTINGS.arrow_memory_pool:
    arrow_runtime.use_system_allocator()

storage = bronze_storage()  # the environment is read here, through environment.py, and nowhere else
webhook = alert_webhook()

defs = dg.Definitions(
    assets=[*bronze_assets, *daily_figures],
    asset_checks=[*bronze_checks, *freshness_checks],
    jobs=[pncp_hourly_ingestion, pncp_checks, pncp_retention],
    schedules=[pncp_hourly_schedule, pncp_day_close_schedule, pncp_resweep_schedule, pncp_retention_schedule],
    sensors=[freshness_sensor, *alert_sensors(enabled=webhook.url is not None)],
    resources={
        "bronze_storage": storage,
        "pncp_api": pncp_api(),
        "bronze_io_manager": BronzeParquetIOManager(storage=storage),
        "alert_webhook": webhook,
        "metrics_gateway": metrics_gateway(),
        "retention": retention(),
    },
    executor=dg.in_process_executor,
)
