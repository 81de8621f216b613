"""The assets called as plain functions (`build_asset_context`): fast feedback on their wiring, with a
local store and the simulator, no Dagster run around them."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from pncp_assets import layout
from pncp_assets.defs.assets import pncp_daily_state, pncp_new_records, pncp_raw_pages
from pncp_assets.defs.io_manager import BronzeParquetIOManager
from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore

DAY = dt.date(2025, 10, 22)
HOURS = [f"{DAY}-{h:02d}:00" for h in range(24)]


def day_context(metadata: dict[str, dict]) -> dg.AssetExecutionContext:
    """A context over the whole day. Dagster 1.13's direct-invocation context cannot take per-partition
    metadata, so what the asset reports for each hour is collected here."""
    context = dg.build_asset_context(partition_key_range=dg.PartitionKeyRange(HOURS[0], HOURS[-1]))

    def add_asset_metadata(md, asset_key=None, partition_key=None):
        metadata.setdefault(partition_key, {}).update(md)

    context.add_asset_metadata = add_asset_metadata  # type: ignore[method-assign]
    return context


@pytest.fixture
def world(tmp_path):
    with RunningSimulator(SimulatorConfig(seed=51, volume=120)) as sim:
        api = PncpApi(base_url=sim.base_url, request_interval_s=0, modalidades="6,8,9")
        yield sim, api, BronzeStorage(data_dir=str(tmp_path)), LocalObjectStore(tmp_path / "bronze")


def test_raw_pages_sweeps_the_day_once_and_records_which_sweep_served_each_hour(world):
    sim, api, storage, store = world
    metadata: dict[str, dict] = {}
    result = pncp_raw_pages(day_context(metadata), pncp_api=api, bronze_storage=storage,
                            metrics_gateway=MetricsGateway())
    assert isinstance(result, dg.MaterializeResult)
    sweeps = [k for k in store.list("pncp/_raw/") if "/sweep_" in k]
    assert len(sweeps) == 1 and len(sim.sim.log) > 0
    for hour in HOURS:
        assert store.get_json(layout.raw_assignment_key("pncp", hour))["sweep"] == sweeps[0]
    assert metadata[HOURS[0]]["requests"] == len(sim.sim.log)
    assert all(metadata[h]["requests"] == 0 and metadata[h]["sweep_reused"] for h in HOURS[1:])


def test_new_records_then_daily_state_file_every_record_once(world):
    """pncp_new_records yields one check verdict per hour, which direct invocation does not take, and its
    IO manager publishes what it returns: it runs alone in a run of its own here, between two directly
    invoked assets."""
    sim, api, storage, store = world
    pncp_raw_pages(day_context({}), pncp_api=api, bronze_storage=storage, metrics_gateway=MetricsGateway())
    resources = {"bronze_storage": storage, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
                 # Alone in its run, it takes the stored sweep as pncp_raw_pages would.
                 "pncp_api": api, "metrics_gateway": MetricsGateway()}
    result = dg.materialize([pncp_new_records], resources=resources,
                            tags={"dagster/asset_partition_range_start": HOURS[0],
                                  "dagster/asset_partition_range_end": HOURS[-1]})
    verdicts = {e.partition: e.passed for e in result.get_asset_check_evaluations()}
    assert verdicts == dict.fromkeys(HOURS, True)
    filed = {e.partition: e.materialization.metadata["new"].value for e in result.get_asset_materialization_events()}
    confirmed: dict[str, dict] = {}
    pncp_daily_state(day_context(confirmed), bronze_storage=storage, metrics_gateway=MetricsGateway())
    assert {h: confirmed[h]["hour_ids"] for h in HOURS} == filed
    state = StateManager(store).load_state("pncp", DAY)
    expected = {r["numeroControlePNCP"] for r in sim.sim.all_records(DAY) if r["modalidadeId"] in (6, 8, 9)}
    assert set(state["processed_ids"]) == expected
    assert not any(c["staged"] for c in state["partitions"].values())  # every claim retired
