"""Helpers to drive the real asset graph with `materialize` against the simulator and a store."""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from pncp_assets import bronze, layout
from pncp_assets.defs.assets import LayerGraph, first_seen
from pncp_assets.defs.io_manager import BronzeParquetIOManager
from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi
from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets.layers import layer_named
from pncp_assets.pncp.simulator import PncpSimulator, RunningSimulator
from pncp_assets.state import StateManager
from pncp_assets.storage import ObjectStore

warnings.filterwarnings("ignore", category=dg.PreviewWarning)  # partitioned checks are "preview" in 1.13


def storage_resource(store: ObjectStore, seaweed=None) -> BronzeStorage:
    """A BronzeStorage resource pointing at the same place as `store` (local dir or S3 bucket)."""
    root = getattr(store, "root", None)
    if root is not None:
        return BronzeStorage(storage_type="local", data_dir=str(root.parent), bucket=root.name)
    return S3BronzeStorage(bucket=store.bucket, endpoint_url=seaweed.endpoint)


def resources(api_url: str, storage: BronzeStorage, modalidades: str = "6,8,9",
              sweep_max_age_minutes: float = 0.0, count_first: bool = True, pushgateway: str | None = None,
              outage_bound_minutes: float = 0.5) -> dict:
    """The graph's resources against a simulator, with fast retries and a short outage bound (30 s); the rest of
    `PncpApi` as shipped (three requests in flight at most, starting with two)."""
    api = PncpApi(base_url=api_url, request_interval_s=0, modalidades=modalidades, backoff_initial_s=0.001,
                  backoff_max_s=0.01, sweep_max_age_minutes=sweep_max_age_minutes, step_retry_delay_s=0.2,
                  count_first=count_first, outage_bound_minutes=outage_bound_minutes)
    return {"bronze_storage": storage, "pncp_api": api, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
            "metrics_gateway": MetricsGateway(url=pushgateway)}


@dataclass
class Pipeline:
    sim: RunningSimulator
    store: ObjectStore
    storage: BronzeStorage
    modalidades: str = "6,8,9"
    sweep_max_age_minutes: float = 0.0  # the simulator's clock is not the wall clock: no reuse by default
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    # Which layers run. The first-seen layer alone by default: most tests are about it, and the versions
    # layer doubles a run's work. test_versions.py runs both contratações layers; test_feeds.py all five.
    graphs: tuple[LayerGraph, ...] = (first_seen,)
    count_first: bool = True  # PNCP_COUNT_FIRST
    pushgateway: str | None = None  # PNCP_PUSHGATEWAY_URL
    outage_bound_minutes: float = 0.5  # PNCP_OUTAGE_BOUND_MINUTES

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [asset for graph in self.graphs for asset in graph.assets]

    @property
    def checks(self) -> list[dg.AssetChecksDefinition]:
        return [graph.check for graph in self.graphs]

    def resources(self) -> dict:
        return resources(self.sim.base_url, self.storage, self.modalidades, self.sweep_max_age_minutes,
                         self.count_first, self.pushgateway, self.outage_bound_minutes)

    def run(self, partition: str, now: dt.datetime | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        """Materialize the layers' assets (and their inline checks) for one hour, the clock set to `now`."""
        if now is not None:
            self.sim.sim.configure(now=now)
        return dg.materialize(self.assets, partition_key=partition, resources=self.resources(),
                              instance=self.instance, **kwargs)

    def run_range(self, first: str, last: str, now: dt.datetime | None = None,
                  **kwargs) -> dg.ExecuteInProcessResult:
        """One run over the hours first..last, as a backfill launches it (the assets' BackfillPolicy)."""
        if now is not None:
            self.sim.sim.configure(now=now)
        tags = {**kwargs.pop("tags", {}), "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last}
        return dg.materialize([*self.assets, *self.checks], resources=self.resources(),
                              instance=self.instance, tags=tags, **kwargs)

    def run_check_only(self, partition: str) -> dg.ExecuteInProcessResult:
        """The job `pncp_checks` (the standalone checks only) for one hour."""
        from pncp_assets.definitions import checks_job

        defs = dg.Definitions(assets=self.assets, asset_checks=self.checks, jobs=[checks_job(self.checks)],
                              resources=self.resources())
        return defs.resolve_job_def("pncp_checks").execute_in_process(
            tags={"dagster/partition": partition}, instance=self.instance, raise_on_error=False)

    # --- what is in storage ----------------------------------------------------------------------

    def delta_ids(self, day: dt.date, source: str = "pncp") -> dict[str, list[str]]:
        """Partition key -> the keys in its delta file (IDs; version keys for `pncp_versions`)."""
        field = layer_named(source).key.field
        return {layout.partition_of_delta(key): bronze.parquet_ids(self.store.get(key).data, field)
                for key in layout.day_delta_keys(self.store, source, day)}

    def assert_invariants(self, day: dt.date, expected_ids: set[str] | None = None) -> dict[str, list[str]]:
        deltas = self.delta_ids(day)
        counts = Counter(x for ids in deltas.values() for x in ids)
        dupes = [x for x, n in counts.items() if n > 1]
        assert not dupes, f"duplicates across delta files: {dupes[:10]}"
        state = StateManager(self.store).load_state("pncp", day)
        assert state["processed_ids"] == sorted(counts), "state disagrees with Bronze"
        assert state["total_processed"] == len(counts)
        if expected_ids is not None:
            assert set(counts) == expected_ids, (
                f"missing {sorted(expected_ids - set(counts))[:5]}, extra {sorted(set(counts) - expected_ids)[:5]}")
        return deltas


def visible_before(sim: PncpSimulator, day: dt.date, hour: int, modalidades: tuple[int, ...] = (6, 8, 9)) -> set[str]:
    """The IDs the API shows now for `day` (in `modalidades`) published before `hour`:00 of that day."""
    end = dt.datetime.combine(day, dt.time(0)) + dt.timedelta(hours=hour)
    return {r["numeroControlePNCP"] for r in sim.visible_records(day)
            if r["modalidadeId"] in modalidades and dt.datetime.fromisoformat(r["dataPublicacaoPncp"]) < end}


def hour_of(record: dict) -> int:
    return int(record["dataPublicacaoPncp"][11:13])


def partition(day: dt.date, hour: int) -> str:
    return f"{day:%Y-%m-%d}-{hour:02d}:00"


def end_of_hour(day: dt.date, hour: int, minutes_after: int = 5) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour)) + dt.timedelta(hours=1, minutes=minutes_after)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()} if events else {}


def metadata_by_hour(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    """Partition key -> the metadata of that hour's materialisation of `asset`."""
    return {e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset}


def check_status_by_hour(instance: dg.DagsterInstance, asset: str, check: str) -> dict[str, str]:
    """Partition -> the status the UI shows for `check` on `asset` (its Partitions tab and GraphQL
    `partitionStatuses` read this same state): SUCCEEDED, FAILED, ...; an hour without a current verdict is
    absent (the UI's "missing")."""
    from pncp_assets.defs.partitions import hourly_partitions

    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    state = instance.event_log_storage.get_asset_check_state([(key, hourly_partitions)])[key]
    return {pk: status.value for status, subset in state.subsets.items()
            for pk in subset.subset_value.get_partition_keys()}
