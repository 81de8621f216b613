"""The asset graph run for real with `materialize`, against the simulator, on both storage backends."""

from __future__ import annotations

import datetime as dt
import random

import dagster as dg
import pytest

from pncp_assets import bronze, layout
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.pncp.synthetic import generate_day
from pncp_assets.state import StateManager
from pncp_assets_tests.support.pipeline import (
    Pipeline,
    check_status_by_hour,
    end_of_hour,
    hour_of,
    metadata,
    metadata_by_hour,
    partition,
    storage_resource,
    visible_before,
)

DAY = dt.date(2025, 10, 22)
MODALIDADES = (6, 8, 9)


def _pipelines(request: pytest.FixtureRequest, store, monkeypatch: pytest.MonkeyPatch):
    running: list[RunningSimulator] = []
    seaweed = None
    if not hasattr(store, "root"):  # S3: credentials come from the environment, as in production
        seaweed = request.getfixturevalue("seaweed")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)

    def make(config: SimulatorConfig, **kwargs) -> Pipeline:
        sim = RunningSimulator(config).start()
        running.append(sim)
        return Pipeline(sim, store, storage_resource(store, seaweed), **kwargs)

    yield make
    for sim in running:
        sim.stop()


@pytest.fixture
def make_pipeline(request, store, monkeypatch):
    """Pipelines on each backend (the test runs once on local storage, once on S3)."""
    yield from _pipelines(request, store, monkeypatch)


@pytest.fixture
def make_local_pipeline(request, local_store, monkeypatch):
    """Pipelines on local storage only: for the longest tests of filing rules that do not depend on the backend
    (each of them takes about three times as long on S3; the S3 variants of the others cover the backend)."""
    yield from _pipelines(request, local_store, monkeypatch)


def day_ids(p: Pipeline) -> set[str]:
    return {r["numeroControlePNCP"] for r in p.sim.sim.all_records(DAY) if r["modalidadeId"] in MODALIDADES}


def _seed_with_three_then_five() -> tuple[int, list]:
    """A simulated day of 5 records whose 3rd and 5th records fall in different hours before 23:00,
    so the seed's three executions map onto three distinct partitions."""
    for seed in range(200):
        recs = sorted(generate_day(DAY, seed, 5), key=lambda r: r.published)
        if recs[2].published < recs[3].published and recs[2].published.hour < recs[4].published.hour < 23:
            return seed, recs
    raise AssertionError("no suitable seed")


def test_the_seeds_three_executions(make_pipeline):
    seed, recs = _seed_with_three_then_five()
    p = make_pipeline(SimulatorConfig(seed=seed, volume=5),
                      modalidades=",".join(sorted({str(r.record["modalidadeId"]) for r in recs})))
    first = p.run(partition(DAY, recs[2].published.hour), now=recs[2].published)
    md = metadata(first, "pncp_new_records")
    assert (md["new"], md["filed_earlier"], md["filter_rate"]) == (3, 0, 0.0)

    second = p.run(partition(DAY, recs[4].published.hour), now=recs[4].published)
    md = metadata(second, "pncp_new_records")
    # The hour's own records are all new: a clean run reads 0 %, whatever the earlier hours hold.
    assert (md["new"], md["filed_earlier"], md["filter_rate"]) == (2, 3, 0.0)
    assert md["late"] == sum(r.published.hour < recs[4].published.hour for r in recs[3:5])

    third = p.run(partition(DAY, 23), now=end_of_hour(DAY, 23))
    md = metadata(third, "pncp_new_records")
    assert (md["new"], md["filed_earlier"], md["filter_rate"]) == (0, 5, 0.0)
    assert md["status"] == "no_data" and md["no_data_reason"] == "all_duplicates"
    assert not p.store.exists(layout.delta_key("pncp", partition(DAY, 23)))  # no file
    assert all(r.success for r in (first, second, third))
    again = metadata(p.run(partition(DAY, recs[4].published.hour)), "pncp_new_records")
    assert again["filter_rate"] == 100.0  # running an hour again: every one of its records already there
    state_md = metadata(third, "pncp_daily_state")
    assert state_md["day_total_processed"] == 5
    # The state keeps the seed's execution figures: duplicates over everything swept so far.
    # Every hour run is on record, records or not (the document's "Execution count: ~24 per day").
    state = StateManager(p.store).load_state("pncp", DAY)
    executions = state["executions"]
    assert [(e["new_records"], e["duplicates_filtered"], e["filter_rate"]) for e in executions] == [
        (3, 0, 0.0), (2, 3, 60.0), (0, 5, 100.0), (0, 5, 100.0)]
    assert [e["partition"] for e in executions] == [partition(DAY, recs[2].published.hour),
                                                    partition(DAY, recs[4].published.hour), partition(DAY, 23),
                                                    partition(DAY, recs[4].published.hour)]
    assert state["last_execution"] == executions[-1]["timestamp"]
    assert StateManager(p.store).get_state_summary("pncp", DAY)["total_executions"] == 4
    p.assert_invariants(DAY, {r.record["numeroControlePNCP"] for r in recs})


def test_an_empty_api_day_is_no_data_from_api(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=1, volume=50), modalidades="19")
    result = p.run(partition(DAY, 10), now=end_of_hour(DAY, 10))
    md = metadata(result, "pncp_new_records")
    assert md["no_data_reason"] == "no_data_from_api" and md["new"] == 0
    assert p.delta_ids(DAY) == {}


def test_an_hour_that_files_nothing_says_why(make_pipeline):
    """Records only of later hours, and records that the ID rules all reject, are not "no data" nor
    "all duplicates": each has its own reason, and the run's log says it in the document's words."""
    p = make_pipeline(SimulatorConfig(seed=12, volume=60))
    first = min(hour_of(r) for r in p.sim.sim.all_records(DAY))
    assert first > 0  # the seed's day starts after midnight
    result = p.run(partition(DAY, first - 1), now=end_of_hour(DAY, 23))
    early = metadata(result, "pncp_new_records")
    assert (early["no_data_reason"], early["new"]) == ("only_later_hours", 0)
    lines = [e.user_message for e in p.instance.all_logs(result.run_id)]
    assert any(line.endswith("No new records to process (the API returned records of later hours only)")
               for line in lines), lines
    assert "Validation passed: 0 NEW records ingested" in lines

    broken = make_pipeline(SimulatorConfig(seed=13, volume=4, bad_ids=4), modalidades="1..19")
    md = metadata(broken.run(partition(DAY, 23), now=end_of_hour(DAY, 23)), "pncp_new_records")
    assert (md["no_data_reason"], md["rejected"], md["new"]) == ("all_rejected", 4, 0)
    executions = StateManager(broken.store).load_state("pncp", DAY)["executions"]
    # Both runs on record all the same (they share the store), each with nothing new.
    assert [(e["partition"], e["new_records"]) for e in executions] == [(partition(DAY, first - 1), 0),
                                                                       (partition(DAY, 23), 0)]


def test_a_whole_day_hour_by_hour_files_each_record_in_its_publication_hour(make_local_pipeline):
    p = make_local_pipeline(SimulatorConfig(seed=3, volume=400))
    for hour in range(24):
        result = p.run(partition(DAY, hour), now=end_of_hour(DAY, hour))
        assert result.success
        checks = result.get_asset_check_evaluations()
        # The day as a whole is judged on its last hour (the completeness ledger); every hour, its own delta.
        assert [(c.check_name, c.passed) for c in checks] == [("no_duplicates", True)] + (
            [("completeness", True)] if hour == 23 else [])
    deltas = p.assert_invariants(DAY, day_ids(p))
    records = {r["numeroControlePNCP"]: r for r in p.sim.sim.all_records(DAY)}
    for key, ids in deltas.items():
        assert all(hour_of(records[x]) == int(key[11:13]) for x in ids)


def test_an_out_of_order_backfill_of_a_finished_day_sweeps_it_once(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=4, volume=400), sweep_max_age_minutes=60)
    p.sim.sim.configure(now=None)  # the day is over: everything is visible
    hours = list(range(24))
    random.Random(1).shuffle(hours)
    for hour in hours:
        assert p.run(partition(DAY, hour)).success
    p.assert_invariants(DAY, day_ids(p))
    sweeps = [k for k in p.store.list("pncp/_raw/") if "/sweep_" in k]
    assert len(sweeps) == 1  # one sweep served all 24 hours
    pages = {(e.params["codigoModalidadeContratacao"], e.params["pagina"]) for e in p.sim.sim.log}
    assert len(p.sim.sim.log) <= 1.2 * len(pages)


def test_re_materializing_an_old_hour_never_shrinks_or_duplicates_it(make_local_pipeline):
    p = make_local_pipeline(SimulatorConfig(seed=5, volume=300))
    for hour in range(24):
        p.run(partition(DAY, hour), now=end_of_hour(DAY, hour))
    before = p.delta_ids(DAY)
    old = partition(DAY, 14)
    result = p.run(old, now=end_of_hour(DAY, 23))
    assert result.success
    md = metadata(result, "pncp_new_records")
    assert md["status"] == "unchanged" and md["new"] == 0 and md["dagster/row_count"] == len(before[old])
    assert p.delta_ids(DAY) == before
    p.assert_invariants(DAY, day_ids(p))


def test_late_records_land_in_a_later_hour_exactly_once(make_local_pipeline):
    p = make_local_pipeline(SimulatorConfig(seed=6, volume=400, late_fraction=0.2, late_hours=2))
    for hour in range(24):
        assert p.run(partition(DAY, hour), now=end_of_hour(DAY, hour)).success
    p.sim.sim.configure(now=dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(2, 5)))
    assert p.run(partition(DAY, 23)).success  # the late ones of the last hours arrive after midnight
    deltas = p.assert_invariants(DAY, day_ids(p))
    records = {r["numeroControlePNCP"]: r for r in p.sim.sim.all_records(DAY)}
    late_filed = [(x, key) for key, ids in deltas.items() for x in ids if hour_of(records[x]) != int(key[11:13])]
    assert late_filed, "late records exist and were filed after their publication hour"
    assert all(int(key[11:13]) > hour_of(records[x]) for x, key in late_filed)


def test_the_check_fails_when_a_duplicate_is_planted_in_another_delta_file(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=7, volume=300))
    for hour in range(12):
        p.run(partition(DAY, hour), now=end_of_hour(DAY, hour))
    deltas = p.delta_ids(DAY)
    victim_hour, other_hour = sorted(deltas)[0], sorted(deltas)[1]
    planted = deltas[victim_hour][0]
    # Copy one record of the first hour into the second hour's file, as a buggy writer would.
    victim = bronze.read_parquet(p.store.get(layout.delta_key("pncp", victim_hour)).data)
    other = bronze.read_parquet(p.store.get(layout.delta_key("pncp", other_hour)).data)
    row = victim.slice(0, 1)
    doctored = bronze.concat_tables([other, row], FIRST_SEEN.schema)
    p.store.put(layout.delta_key("pncp", other_hour), bronze.table_to_parquet(doctored))

    result = p.run(victim_hour, now=end_of_hour(DAY, 12), raise_on_error=False)
    assert not result.success  # blocking: the run fails, pncp_daily_state does not run
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "no_duplicates" and not check.passed
    offending = check.metadata["offending_ids"].value
    assert {"id": planted, "files": sorted([layout.delta_key("pncp", victim_hour),
                                             layout.delta_key("pncp", other_hour)])} in offending
    assert len(offending) <= 20
    assert not any(e.asset_key.path[-1] == "pncp_daily_state" for e in result.get_asset_materialization_events())

    only_check = p.run_check_only(other_hour)
    [standalone] = only_check.get_asset_check_evaluations()
    assert standalone.check_name == "bronze_consistent" and not standalone.passed
    assert not only_check.success  # blocking: the checks job fails, so CI goes red
    assert not only_check.get_asset_materialization_events()  # checks only: nothing ingested


def test_checks_job_passes_on_consistent_bronze_without_ingesting(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=8, volume=200))
    p.run(partition(DAY, 12), now=end_of_hour(DAY, 12))
    requests_before = len(p.sim.sim.log)
    result = p.run_check_only(partition(DAY, 12))
    assert result.success
    assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [("bronze_consistent", True)]
    assert len(p.sim.sim.log) == requests_before  # the checks job never calls the API


def test_midnight_partition_22h_is_day_22_everywhere(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=9, volume=400))
    late_partition = "2025-10-22-22:00"  # 01:00 UTC on the 23rd
    result = p.run(late_partition, now=end_of_hour(DAY, 22))
    assert result.success
    assert {e.params["dataInicial"] for e in p.sim.sim.log} == {"20251022"}
    assert p.store.exists("pncp/year=2025/month=10/day=22/pncp_20251022_220000.parquet")
    assert p.store.exists("pncp/_state/year=2025/month=10/day=22/state_20251022.zst")
    assert not p.store.list("pncp/year=2025/month=10/day=23/")
    assert not p.store.list("pncp/_state/year=2025/month=10/day=23/")


def test_materialization_metadata_tells_the_pipelines_health(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=10, volume=400))
    result = p.run(partition(DAY, 15), now=end_of_hour(DAY, 15))
    md = metadata(result, "pncp_new_records")
    for name in ("new", "late", "filed_earlier", "rejected", "filter_rate", "bronze_key", "bytes",
                 "dagster/row_count", "preview", "status"):
        assert name in md, name
    assert not {"requests", "pages", "fetched"} & set(md)  # sweep figures live on pncp_raw_pages
    assert md["dagster/row_count"] == md["new"] > 0
    assert md["bytes"] == len(p.store.get(layout.delta_key("pncp", partition(DAY, 15))).data)
    assert md["preview"].startswith("| numeroControlePNCP |")
    raw = metadata(result, "pncp_raw_pages")
    for name in ("requests", "pages", "retries", "short_pages", "shortfall", "totalRegistros", "distinct"):
        assert name in raw, name
    assert raw["requests"] >= raw["pages"] > 0 and raw["sweep_reused"] is False
    state = metadata(result, "pncp_daily_state")
    assert state["day_total_processed"] == state["hour_ids"] == md["new"] and state["executions"] == 1


def test_one_run_over_a_day_sweeps_once_and_reports_every_hour_on_its_own(make_pipeline):
    """The shape of a UI backfill (BackfillPolicy: a range of hours in one run)."""
    p = make_pipeline(SimulatorConfig(seed=12, volume=500))
    hours = [partition(DAY, h) for h in range(24)]
    result = p.run_range(hours[0], hours[-1], now=end_of_hour(DAY, 23))
    assert result.success
    requests_made = len(p.sim.sim.log)

    raw = metadata_by_hour(result, "pncp_raw_pages")
    assert sorted(raw) == hours
    assert raw[hours[0]]["requests"] == requests_made > 0 and not raw[hours[0]]["sweep_reused"]
    assert all(raw[h]["requests"] == 0 and raw[h]["sweep_reused"] for h in hours[1:])  # the same sweep, reused
    new = metadata_by_hour(result, "pncp_new_records")
    deltas = p.assert_invariants(DAY, day_ids(p))
    for h in hours:
        assert new[h]["new"] == new[h]["dagster/row_count"] == len(deltas.get(h, []))
        assert new[h]["late"] == 0 and new[h]["filter_rate"] == 0.0
    records = {r["numeroControlePNCP"]: r for r in p.sim.sim.all_records(DAY)}
    assert all(hour_of(records[x]) == int(key[11:13]) for key, ids in deltas.items() for x in ids)
    state = metadata_by_hour(result, "pncp_daily_state")
    assert {h: state[h]["hour_ids"] for h in hours} == {h: len(deltas.get(h, [])) for h in hours}
    verdicts = {(c.check_name, c.partition): c.passed for c in result.get_asset_check_evaluations()}
    assert verdicts == {**{(name, h): True for name in ("no_duplicates", "bronze_consistent") for h in hours},
                        ("completeness", hours[-1]): True}  # the day, on its last hour


def test_a_failed_check_in_a_range_run_names_its_hour_and_stops_the_state(make_pipeline):
    p = make_pipeline(SimulatorConfig(seed=13, volume=300))
    hours = [partition(DAY, h) for h in range(24)]
    assert p.run_range(hours[0], hours[11], now=end_of_hour(DAY, 23)).success
    deltas = p.delta_ids(DAY)
    first, second = sorted(deltas)[:2]
    # Plant one of `first`'s records in `second`'s file too: a duplicate across two hours.
    rows = bronze.read_parquet(p.store.get(layout.delta_key("pncp", first)).data).slice(0, 1)
    held = bronze.read_parquet(p.store.get(layout.delta_key("pncp", second)).data)
    both = bronze.concat_tables([held, rows], FIRST_SEEN.schema)
    p.store.put(layout.delta_key("pncp", second), bronze.table_to_parquet(both))
    result = p.run_range(hours[0], hours[23], raise_on_error=False)
    assert not result.success
    failed = {(c.check_name, c.partition) for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {("no_duplicates", first), ("no_duplicates", second)}  # the two hours, by name
    assert not metadata_by_hour(result, "pncp_daily_state")  # blocking: the state step did not run


def test_each_hours_verdict_counts_for_that_hour_in_the_ui_after_an_hourly_run_and_a_range_run(make_pipeline):
    """Dagster counts an hour's check as passed or failed (Partitions tab, `partitionStatuses`) only when the
    verdict targets that hour's latest materialisation."""
    p = make_pipeline(SimulatorConfig(seed=16, volume=300))
    hours = [partition(DAY, h) for h in range(24)]
    import dagster as dg

    p.sim.sim.configure(now=end_of_hour(DAY, 5))  # the schedule's shape: one hour, the job's checks with it
    assert dg.materialize([*p.assets, *p.checks], partition_key=hours[5], resources=p.resources(),
                          instance=p.instance).success
    for check in ("no_duplicates", "bronze_consistent"):
        assert check_status_by_hour(p.instance, "pncp_new_records", check) == {hours[5]: "SUCCEEDED"}, check

    assert p.run_range(hours[0], hours[23], now=end_of_hour(DAY, 23)).success  # a backfill's shape
    for check in ("no_duplicates", "bronze_consistent"):
        assert check_status_by_hour(p.instance, "pncp_new_records", check) == dict.fromkeys(hours, "SUCCEEDED")

    # A duplicate planted across two hours: those two hours show failed, the rest still passed.
    first, second = sorted(p.delta_ids(DAY))[:2]
    rows = bronze.read_parquet(p.store.get(layout.delta_key("pncp", first)).data).slice(0, 1)
    held = bronze.read_parquet(p.store.get(layout.delta_key("pncp", second)).data)
    both = bronze.concat_tables([held, rows], FIRST_SEEN.schema)
    p.store.put(layout.delta_key("pncp", second), bronze.table_to_parquet(both))
    assert not p.run_range(hours[0], hours[23], raise_on_error=False).success
    shown = check_status_by_hour(p.instance, "pncp_new_records", "no_duplicates")
    assert {h for h, s in shown.items() if s == "FAILED"} == {first, second}
    assert {h for h, s in shown.items() if s == "SUCCEEDED"} == set(hours) - {first, second}


def test_the_io_manager_publishes_each_hour_and_reports_it(make_pipeline):
    """The delta asset returns its hours' claimed deltas; the Bronze IO manager publishes each at its key
    and reports path, rows and bytes on that hour's materialisation, for one hour and for a range."""
    p = make_pipeline(SimulatorConfig(seed=14, volume=200))
    hours = [partition(DAY, h) for h in range(24)]
    single = p.run(hours[9], now=end_of_hour(DAY, 9))
    ranged = p.run_range(hours[10], hours[23], now=end_of_hour(DAY, 23))
    assert single.success and ranged.success
    reported = {**metadata_by_hour(single, "pncp_new_records"), **metadata_by_hour(ranged, "pncp_new_records")}
    deltas = p.assert_invariants(DAY)
    for hour in hours[9:]:
        md = reported[hour]
        if hour in deltas:
            data = p.store.get(layout.delta_key("pncp", hour)).data
            assert (md["published"], md["bronze_key"], md["bytes"], md["dagster/row_count"]) == (
                "written", layout.delta_key("pncp", hour), len(data), len(deltas[hour])), hour
        else:
            assert "published" not in md and md["dagster/row_count"] == 0, hour  # nothing new: nothing to publish
    # The log: a line for the one hour; for the range one line in all (each line is an event-log write).
    def published_lines(result) -> list[str]:
        return [e.user_message for e in p.instance.all_logs(result.run_id) if "Bronze delta" in e.user_message]

    assert published_lines(single) == [f"Bronze delta {layout.delta_key('pncp', hours[9])}: written "
                                       f"({len(deltas[hours[9]])} rows, {reported[hours[9]]['bytes']} bytes)"]
    filed = [h for h in hours[10:] if h in deltas]
    assert published_lines(ranged) == [
        f"Bronze deltas of {len(filed)} hours (pncp): {len(filed)} written "
        f"({sum(len(deltas[h]) for h in filed)} rows, {sum(reported[h]['bytes'] for h in filed)} bytes)"]


def test_a_failed_publish_fails_that_hours_check_not_only_the_step(make_pipeline, monkeypatch):
    from pncp_assets.commit import DeltaCommitter

    p = make_pipeline(SimulatorConfig(seed=17, volume=200))
    hours = [partition(DAY, h) for h in range(24)]
    publish = DeltaCommitter.publish
    refused: list[str] = []

    def flaky(self, output):
        if not refused:  # the first hour with something to publish: the store refuses it
            refused.append(output.partition_key)
            raise OSError("SlowDown, and no retry left")
        return publish(self, output)

    monkeypatch.setattr(DeltaCommitter, "publish", flaky)
    result = p.run_range(hours[0], hours[23], now=end_of_hour(DAY, 23), raise_on_error=False)
    assert not result.success
    verdicts = {c.partition: c for c in result.get_asset_check_evaluations() if c.check_name == "no_duplicates"}
    assert {h for h, c in verdicts.items() if not c.passed} == set(refused)
    assert "its delta was not published" in verdicts[refused[0]].description
    monkeypatch.setattr(DeltaCommitter, "publish", publish)
    assert p.run(hours[23], now=end_of_hour(DAY, 23)).success  # the next run rolls it forward
    p.assert_invariants(DAY, day_ids(p))


@pytest.mark.parametrize("swap", ["in_memory", "raising"])
def test_another_io_manager_cannot_break_exactly_once(make_pipeline, swap):
    """With the Bronze IO manager swapped out, the run publishes nothing and says so (it fails); the claims
    are rolled forward from their staged files by the state asset (in-memory) or by the next run (raising),
    and every record lands exactly once."""
    import dagster as dg

    class Refusing(dg.IOManager):
        def handle_output(self, context, obj):
            raise OSError("the disk is full")

        def load_input(self, context):
            raise NotImplementedError

    p = make_pipeline(SimulatorConfig(seed=14, volume=200))
    hours = [partition(DAY, h) for h in range(12)]
    other = dg.InMemoryIOManager() if swap == "in_memory" else dg.IOManagerDefinition.hardcoded_io_manager(Refusing())
    swapped = {**p.resources(), "bronze_io_manager": other}
    p.sim.sim.configure(now=end_of_hour(DAY, 11))
    tags = {"dagster/asset_partition_range_start": hours[0], "dagster/asset_partition_range_end": hours[-1]}
    result = dg.materialize(p.assets, resources=swapped, instance=p.instance, tags=tags, raise_on_error=False)
    assert not result.success  # loudly
    assert not [k for k in p.store.list("pncp") if layout.is_delta_key(k)]  # the run wrote no Bronze Parquet
    state = StateManager(p.store).load_state("pncp", DAY)
    assert state["total_processed"] > 0 and all(c["staged"] for c in state["partitions"].values())  # claimed
    if swap == "in_memory":
        failed = {c.partition for c in result.get_asset_check_evaluations() if not c.passed}
        assert failed == set(state["partitions"])  # the check judged Bronze: every hour it filed, unpublished
        # The state asset alone rolls the claims forward from their staged files.
        assert dg.materialize([p.assets[2]], resources=p.resources(), instance=p.instance, tags=tags,
                              selection=[p.assets[2]]).success
    else:
        assert "the disk is full" in str(next(e for e in result.all_events if e.is_step_failure)
                                          .step_failure_data.error.to_string())
        assert p.run(partition(DAY, 12), now=end_of_hour(DAY, 12)).success  # the next run recovers them
    visible = {r["numeroControlePNCP"] for r in p.sim.sim.all_records(DAY) if r["modalidadeId"] in MODALIDADES
               and r["dataPublicacaoPncp"] < f"{DAY}T{13 if swap == 'raising' else 12:02d}:00:00"}
    p.assert_invariants(DAY, visible)


def test_a_sweep_that_keeps_failing_is_retried_by_dagster_with_the_resources_delays(make_pipeline):
    import dagster as dg

    p = make_pipeline(SimulatorConfig(seed=15, volume=50, error_5xx_rate=1.0))
    from pncp_assets.defs.resources import PncpApi

    api = PncpApi(base_url=p.sim.base_url, request_interval_s=0, modalidades="6,8,9", max_attempts=1,
                  step_retries=2, step_retry_delay_s=0.05, max_in_flight=1, start_in_flight=1,
                  outage_bound_minutes=0)  # trouble that is not an outage: the step retries take it
    result = dg.materialize(p.assets, partition_key=partition(DAY, 9), instance=p.instance,
                            resources={**p.resources(), "pncp_api": api}, raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 2  # PncpApi.step_retries, in any kind of run (no RetryPolicy on the asset)
    assert len(p.sim.sim.log) == 3  # one request per attempt: the client gave up at once (max_attempts=1)


def test_the_delta_asset_launched_alone_sweeps_its_hours_itself(make_pipeline):
    """The UI's first click, Materialize on pncp_new_records alone: no failed run for want of a sweep. It gets
    the sweep as pncp_raw_pages would (in the pncp_api pool, which it holds too) and files every record once."""
    p = make_pipeline(SimulatorConfig(seed=14, volume=200))
    hour = partition(DAY, 23)
    result = dg.materialize(p.assets, partition_key=hour, resources=p.resources(), instance=p.instance,
                            selection=["pncp_new_records"], raise_on_error=False)
    assert result.success
    md = metadata(result, "pncp_new_records")
    assert md["new"] > 0 and md["status"] == "written"
    # no_duplicates, on Bronze; completeness, the day judged on its last hour
    assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [
        ("no_duplicates", True), ("completeness", True)]
    lines = [e.user_message for e in p.instance.all_logs(result.run_id)]
    assert "pncp_raw_pages did not run for 1 of the hours in this run: pncp_new_records gets their sweeps itself" \
        in lines
    assert p.store.list("pncp/_raw/")  # the sweep is stored as the sweep asset stores it
    assert p.run(hour, now=end_of_hour(DAY, 23)).success  # then the whole layer: nothing twice
    p.assert_invariants(DAY, visible_before(p.sim.sim, DAY, 24))
