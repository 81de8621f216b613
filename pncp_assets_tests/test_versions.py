"""Record versions over five simulated days, ticked hour by hour with the clock moving.

Both schedules tick from 00:05 of the first day to 06:05 of the sixth, each run materialised with the
simulator's clock and the pipeline's at the tick. A share of the records change after publication (up to
three times, within four days). Along the way one run dies while publishing its versions (a torn delta
is left), some hours are run again, and at the end two days are backfilled out of order. Then:
- every version the API showed at a sweep is in `pncp_versions/` exactly once, and each day's state
  equals its Bronze files;
- the current view (first-seen records plus versions, latest `dataAtualizacaoGlobal` wins) equals the
  simulator's truth at the last tick, and the README's snippets compute the same view;
- the re-runs, the backfills and the crash changed nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from pncp_assets import faults, layout
from pncp_assets.brasilia import TZ
from pncp_assets.commit import DeltaCommitter
from pncp_assets.consistency import check_range
from pncp_assets.current import current_view
from pncp_assets.defs.assets import LAYER_GRAPHS, AssetNames
from pncp_assets.layers import FIRST_SEEN, VERSIONS
from pncp_assets.pncp.records import version_key
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.pncp.synthetic import generate_day
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, metadata_by_hour, storage_resource
from pncp_assets_tests.support.readme import readme_snippets
from pncp_assets_tests.support.schedules import SCHEDULES, run_request, scheduled_runs, set_clocks

FIRST = dt.date(2025, 10, 20)
DAYS = 5  # changes come within 4 days of publication: five days see the first day's records change and settle
LAST = FIRST + dt.timedelta(days=DAYS)  # its first hours are swept too: the span ends at 06:05 on it
WORLD = {"seed": 41, "volume": 60, "update_fraction": 0.6, "update_max_days": 4.0, "updates_max": 3}
MODALIDADES = (6, 8)
CRASH_AT = (FIRST + dt.timedelta(days=3), 14)  # the run of this hour dies while publishing its versions


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def shown(sim, day: dt.date) -> set[str]:
    """The version keys `/atualizacao` shows now for `day`, in the swept modalidades."""
    return {version_key(r) for r in sim.updated_records(day) if r["modalidadeId"] in MODALIDADES}


def bronze_files(store: LocalObjectStore) -> dict[str, bytes]:
    return {k: store.get(k).data for k in store.list("pncp") if layout.is_delta_key(k)}


class DyingPublish:
    """The versions delta of one hour is torn half-way and the run dies there (a crash mid-commit)."""

    def __init__(self, hour: str):
        self.hour, self.died = hour, False
        self.publish = DeltaCommitter.publish

    def __call__(self, committer: DeltaCommitter, output):
        if committer.source == "pncp_versions" and output.partition_key == self.hour and not self.died:
            self.died = True
            with faults.injected("mid_delta_write"):
                return self.publish(committer, output)
        return self.publish(committer, output)


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    store = LocalObjectStore(tmp_path_factory.mktemp("versions") / "bronze")
    crash_hour = f"{CRASH_AT[0]:%Y-%m-%d}-{CRASH_AT[1]:02d}:00"
    dying = DyingPublish(crash_hour)
    monkeypatch.setattr(DeltaCommitter, "publish", lambda self, output: dying(self, output))
    out: dict = {"store": store, "seen": set(), "reruns": 0, "crashed": None}
    try:
        with RunningSimulator(SimulatorConfig(**WORLD)) as sim:
            p = Pipeline(sim, store, storage_resource(store), modalidades=",".join(map(str, MODALIDADES)),
                         sweep_max_age_minutes=60, graphs=LAYER_GRAPHS[:2])  # the contratações: both layers
            start = dt.datetime.combine(FIRST, dt.time(0, 5), tzinfo=TZ)
            end = dt.datetime.combine(LAST, dt.time(6, 5), tzinfo=TZ)
            out["instance"] = p.instance
            done: list[str] = []
            # The hourly and day-close ticks (the re-sweeps of finished days: test_schedules.py).
            for tick, _, request in scheduled_runs(p, monkeypatch, start, end, names=SCHEDULES[:2]):
                pk = request.partition_key
                if pk == crash_hour and out["crashed"] is None:
                    with pytest.raises(faults.InjectedCrash):
                        run_request(p, request)
                    torn = store.get(layout.delta_key("pncp_versions", pk)).data
                    out["crashed"] = {"hour": pk, "torn_bytes": len(torn)}
                else:
                    result = run_request(p, request)
                    assert result.success, (tick, pk)
                    out["last_run"] = result
                out["seen"] |= shown(sim.sim, layout.parse_partition_key(pk).date())
                if len(done) % 23 == 17:  # an hour of a few ticks ago, run again on the clock of now
                    assert p.run(done[-4]).success
                    out["reruns"] += 1
                done.append(pk)
            out["final_now"] = end
            out["truth"] = truth(end.replace(tzinfo=None))
            out["before_backfills"] = bronze_files(store)
            set_clocks(p, monkeypatch, end)
            for day in (FIRST + dt.timedelta(days=4), FIRST + dt.timedelta(days=2)):  # out of order
                hours = layout.day_hours(day)
                assert p.run_range(hours[0], hours[-1]).success
            out["after_backfills"] = bronze_files(store)
        yield out
    finally:
        monkeypatch.undo()


def truth(now: dt.datetime) -> dict[str, dict]:
    """Each contratação of the week (published or changed in it, in the swept modalidades) as the API
    shows it at `now`."""
    out = {}
    lookback = dt.timedelta(days=int(WORLD["update_max_days"]) + 1)
    for day in days(FIRST - lookback, LAST):
        for r in generate_day(day, WORLD["seed"], WORLD["volume"], update_fraction=WORLD["update_fraction"],
                              update_max_days=WORLD["update_max_days"], updates_max=WORLD["updates_max"]):
            if r.record["modalidadeId"] not in MODALIDADES or r.visible_from > now:
                continue
            version = r.version_at(now)
            # In the view when first seen in the range, or changed last (hence seen last) in it.
            days_of = (version["dataPublicacaoPncp"][:10], version["dataAtualizacaoGlobal"][:10])
            if any(FIRST.isoformat() <= d <= LAST.isoformat() for d in days_of):
                out[version["numeroControlePNCP"]] = version
    return out


def versions_in_bronze(store: LocalObjectStore) -> Counter:
    from pncp_assets import bronze

    return Counter(x for k, data in bronze_files(store).items() if k.startswith("pncp_versions/")
                   for x in bronze.parquet_ids(data, "_version_key"))


def test_every_version_shown_at_a_sweep_is_in_bronze_exactly_once(week):
    store = week["store"]
    counts = versions_in_bronze(store)
    assert not [x for x, n in counts.items() if n > 1], "a version filed twice"
    missing, extra = week["seen"] - set(counts), set(counts) - week["seen"]
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    ids = Counter(x.split("@")[0] for x in counts)
    assert sum(1 for n in ids.values() if n > 1) > 50  # the week did change records, several times
    end = dt.datetime.combine(LAST, dt.time(6, 5), tzinfo=TZ)  # the week's last tick
    for layer in (FIRST_SEEN, VERSIONS):  # the CI command's rules, every hour of the week, at its end
        report = check_range(store, FIRST, LAST, layer, now=end)
        assert report.passed and report.partitions == 24 * (DAYS + 1), (layer.source, report.failures[:2])
        assert report.not_due == 19  # 05:00 of the last day onwards: due after the week's end


def test_the_current_view_is_the_simulators_truth(week):
    view = current_view(str(week["store"].root), FIRST, LAST)
    rows = {r["numeroControlePNCP"]: r for r in view.select(["numeroControlePNCP", "_raw"]).to_pylist()}
    truth = week["truth"]
    assert set(rows) == set(truth), (sorted(set(truth) - set(rows))[:5], sorted(set(rows) - set(truth))[:5])
    wrong = [x for x, version in truth.items() if json.loads(rows[x]["_raw"]) != version]
    assert not wrong, wrong[:5]
    homologated = [x for x, v in truth.items() if v["valorTotalHomologado"] is not None]
    assert len(homologated) > 100  # the question analysts ask has answers to check


def test_reruns_backfills_and_a_crash_mid_commit_changed_nothing(week):
    assert week["reruns"] >= 5
    crash = week["crashed"]
    assert crash is not None and crash["torn_bytes"] > 0  # the run died leaving half a delta behind
    assert week["after_backfills"] == week["before_backfills"]
    store = week["store"]
    state = StateManager(store).load_state("pncp_versions", CRASH_AT[0])
    assert state["partitions"][crash["hour"]]["staged"] is None  # rolled forward and finalized since


def test_versions_metadata_and_log_line(week):
    result = week["last_run"]
    (metadata,) = metadata_by_hour(result, AssetNames.of(VERSIONS).deltas).values()
    assert {"versions_fetched", "new", "records_changed", "filed_earlier", "late"} <= set(metadata)
    assert metadata["versions_fetched"] >= metadata["new"] >= metadata["records_changed"]
    logs = week["instance"].all_logs(result.run_id)
    lines = [e.user_message for e in logs if "Version filtering:" in e.user_message]
    assert lines and f"-> {metadata['new']} new versions" in lines[-1] and "records changed" in lines[-1]


def test_the_readme_shows_the_current_view_for_every_reader():
    assert set(readme_snippets("current")) == {"pyarrow", "pandas", "polars", "duckdb"}


def id_and_raw(frame) -> dict[str, str]:
    """numeroControlePNCP -> _raw of a pyarrow, polars or pandas frame."""
    if hasattr(frame, "column_names"):  # pyarrow
        ids, raws = frame.column("numeroControlePNCP").to_pylist(), frame.column("_raw").to_pylist()
    else:  # polars and pandas both index columns by name
        ids, raws = list(frame["numeroControlePNCP"]), list(frame["_raw"])
    assert len(ids) == len(set(ids)), "an ID twice in the current view"
    return dict(zip(ids, raws, strict=True))


@pytest.mark.parametrize("reader", ["pyarrow", "pandas", "polars", "duckdb"])
def test_the_readmes_current_view_snippets_agree_with_current_view(week, reader):
    root = str(week["store"].root)
    scope = {"bronze_root": root, "first": FIRST, "last": LAST}
    exec(readme_snippets("current")[reader], scope)  # the README's own snippet, as an analyst would paste it
    assert id_and_raw(scope["df"]) == id_and_raw(current_view(root, FIRST, LAST))


def test_a_downstream_asset_reads_an_hours_versions_through_the_io_manager(week):
    import dagster as dg

    from pncp_assets import bronze
    from pncp_assets.defs.assets import versions
    from pncp_assets.defs.io_manager import BronzeParquetIOManager
    from pncp_assets.defs.partitions import hourly_partitions
    from pncp_assets.defs.resources import MetricsGateway, PncpApi

    hour = f"{CRASH_AT[0]:%Y-%m-%d}-{CRASH_AT[1]:02d}:00"
    seen: list = []

    @dg.asset(partitions_def=hourly_partitions, ins={"versions": dg.AssetIn(versions.deltas.key)})
    def homologations(versions) -> None:
        seen.append(versions)

    store = week["store"]
    storage = storage_resource(store)
    resources = {"bronze_storage": storage, "pncp_api": PncpApi(), "bronze_io_manager": BronzeParquetIOManager(
        storage=storage), "metrics_gateway": MetricsGateway()}  # no API call: only the downstream asset runs
    assert dg.materialize([*versions.assets, homologations], selection=[homologations], partition_key=hour,
                          resources=resources).success
    [table] = seen
    filed = bronze.read_parquet(store.get(layout.delta_key("pncp_versions", hour)).data)
    assert table.schema.names == VERSIONS.schema.names  # read from pncp_versions/, not pncp/
    assert sorted(table.column("_version_key").to_pylist()) == sorted(filed.column("_version_key").to_pylist())
