"""The shipped schedules, driven tick by tick across midnight with the clock moving.

Each tick of `pncp_hourly_schedule` and `pncp_day_close_schedule` from 00:05 of day D to D's last hourly run
(00:05 of D+1), then the day close at 06:05 of D+1 (the hourly ticks in between run D+1's hours: left out),
is evaluated at its own time (the tick times come from the schedules' cron strings, as the daemon
computes them), and every run it requests is materialised with the simulator's clock and the pipeline's
clock both set to the tick. The simulated days have late records, shown by the API 1-5 h after their
publication time, so some of D's records appear only after D's last hourly run.
"""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg
import pytest

from pncp_assets.brasilia import TZ
from pncp_assets.defs.resources import PncpApi
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.pncp.synthetic import generate_day
from pncp_assets_tests.support.pipeline import Pipeline, storage_resource
from pncp_assets_tests.support.schedules import run_request, run_the_schedules, scheduled_runs

warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = dt.date(2025, 10, 22)
LAST_HOUR = f"{DAY:%Y-%m-%d}-23:00"
MODALIDADES = (6, 8, 9)
# 4 % of the records are shown by the API 1 to 5 hours after their publication time.
LATE_DAY = {"seed": 5, "volume": 1500, "late_fraction": 0.04, "late_hours": 1.0, "late_hours_max": 5.0}


@pytest.fixture
def instance():
    """A persisted instance, as the daemon's: the re-sweep schedule asks it which days were filed."""
    with dg.instance_for_test() as persisted:
        yield persisted


@pytest.fixture
def late_day(local_store, instance):
    config = SimulatorConfig(**LATE_DAY)
    with RunningSimulator(config) as sim:
        # The production reuse window: a stored sweep younger than an hour serves later hours.
        yield Pipeline(sim, local_store, storage_resource(local_store), modalidades="6,8,9",
                       sweep_max_age_minutes=60, instance=instance)


def through_the_day_close(p: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[tuple[dt.datetime, str, str]]:
    """The hourly and day-close ticks from 00:05 of D to D's last hourly run, then D's day close."""
    start = dt.datetime.combine(DAY, dt.time(0, 5), tzinfo=TZ)
    last_hourly = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0, 5), tzinfo=TZ)
    closed = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(6, 5), tzinfo=TZ)
    return (run_the_schedules(p, monkeypatch, start, last_hourly)
            + run_the_schedules(p, monkeypatch, last_hourly + dt.timedelta(minutes=1), closed,
                                names=("pncp_day_close_schedule",)))


def test_late_records_of_a_day_reach_bronze_after_midnight_through_the_schedules_alone(late_day, monkeypatch):
    p = late_day
    runs = through_the_day_close(p, monkeypatch)

    records = [r for r in generate_day(DAY, **LATE_DAY) if r.record["modalidadeId"] in MODALIDADES]
    last_hourly_tick = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0, 5))
    after_midnight = {r.record["numeroControlePNCP"] for r in records if r.visible_from > last_hourly_tick}
    within_six_hours = {r.record["numeroControlePNCP"] for r in records
                        if r.visible_from <= dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(6))}
    # The test means something only if some of D's records appear after D's last hourly run.
    assert len(after_midnight & within_six_hours) >= 3, sorted(after_midnight)

    deltas = p.assert_invariants(DAY)  # no duplicates; the state equals Bronze
    filed = {x: pk for pk, ids in deltas.items() for x in ids}
    assert within_six_hours <= set(filed), f"lost: {sorted(within_six_hours - set(filed))[:5]}"
    published = {r.record["numeroControlePNCP"]: r.published for r in records}
    for x, pk in filed.items():  # never filed in an hour before its publication
        assert dt.datetime.strptime(pk, "%Y-%m-%d-%H:%M") >= published[x].replace(minute=0, second=0), (x, pk)
    # The late ones came in through the day-close run, into D's last hour.
    day_close = [(t, pk) for t, name, pk in runs if name == "pncp_day_close_schedule"]
    assert [pk for t, pk in day_close if t.date() > DAY] == [f"{DAY:%Y-%m-%d}-23:00"]
    assert {filed[x] for x in after_midnight & within_six_hours} == {f"{DAY:%Y-%m-%d}-23:00"}


def test_the_day_close_tick_asks_for_yesterdays_last_hour_at_the_configured_hour(monkeypatch):
    from pncp_assets.definitions import defs, pncp_hourly_ingestion
    from pncp_assets.defs.schedules import day_close_schedule

    schedule = defs.resolve_schedule_def("pncp_day_close_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 6 * * *", "America/Sao_Paulo")
    tick = dt.datetime(2025, 10, 23, 6, 5, tzinfo=TZ)
    with dg.instance_for_test() as instance, dg.build_schedule_context(
            scheduled_execution_time=tick, repository_def=defs.get_repository_def(), instance=instance,
            resources={"pncp_api": PncpApi(base_url="http://127.0.0.1:9")}) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == ["2025-10-22-23:00"]
    assert schedule.job_name == "pncp_hourly_ingestion"
    assert day_close_schedule(pncp_hourly_ingestion, hour=3).cron_schedule == "5 3 * * *"


@pytest.mark.parametrize("value", ["24", "-1", "six"])
def test_a_bad_day_close_hour_is_refused_with_its_name(value):
    from pncp_assets.config import ConfigError
    from pncp_assets.defs.environment import PipelineSettings

    with pytest.raises(ConfigError, match="PNCP_DAY_CLOSE_HOUR"):
        PipelineSettings.from_env({"PNCP_DAY_CLOSE_HOUR": value})


def test_the_start_date_and_day_close_hour_come_from_the_environment():
    from pncp_assets.config import ConfigError
    from pncp_assets.defs.environment import PipelineSettings

    assert PipelineSettings.from_env({}) == PipelineSettings()
    assert PipelineSettings.from_env({"PNCP_START_DATE": "2024-06-01", "PNCP_DAY_CLOSE_HOUR": "3",
                                      "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) == \
        PipelineSettings(start_date="2024-06-01-00:00", day_close_hour=3, arrow_memory_pool="jemalloc")
    with pytest.raises(ConfigError, match="PNCP_START_DATE"):
        PipelineSettings.from_env({"PNCP_START_DATE": "June 2024"})


# Records backdated into their day: 8 % of them shown by the API 30 hours to 20 days after their publication.
BACKDATED = {"seed": 8, "volume": 500, "late_fraction": 0.08, "late_hours": 30.0, "late_hours_max": 480.0}


def test_records_backdated_by_days_reach_their_own_day_once_through_the_resweeps(local_store, instance, monkeypatch):
    """Day D through the hourly and day-close ticks, then the re-sweep schedule's own ticks to D's last re-sweep
    (the hourly ticks of the days after D run other days' partitions, so they are left out here), the clocks
    moving with every tick: every record backdated into D lands in D, once, at the first re-sweep after it
    appears; before the re-sweeps (the pipeline without them) every one of them was missing."""
    with RunningSimulator(SimulatorConfig(**BACKDATED)) as sim:
        p = Pipeline(sim, local_store, storage_resource(local_store), modalidades="6,8,9", sweep_max_age_minutes=60,
                     instance=instance)
        closed = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(6, 5), tzinfo=TZ)
        through_the_day_close(p, monkeypatch)
        at_close = {x for ids in p.delta_ids(DAY).values() for x in ids}
        filed_by: dict[str, set[str]] = {}
        for tick, _, request in scheduled_runs(p, monkeypatch, closed, closed + dt.timedelta(days=30, hours=1),
                                               names=("pncp_resweep_schedule",)):
            assert run_request(p, request).success, (tick, request.partition_key)
            if request.partition_key == LAST_HOUR:
                filed_by[request.tags["pncp/resweep_age"]] = {x for ids in p.delta_ids(DAY).values() for x in ids}

    records = [r for r in generate_day(DAY, **BACKDATED) if r.record["modalidadeId"] in MODALIDADES]
    shown_by = {r.record["numeroControlePNCP"]: r.visible_from.replace(tzinfo=TZ) for r in records}
    backdated = {x for x, t in shown_by.items() if t > closed}
    assert len(backdated) >= 10, "the test means something only if records appear after the day close"
    assert at_close.isdisjoint(backdated) and at_close == set(shown_by) - backdated  # missed without re-sweeps
    # Each re-sweep of D (1, 7 and 30 days after its close, at 06:35) files those shown by then, and no other.
    assert list(filed_by) == ["1", "7", "30"]
    for age, filed in filed_by.items():
        tick = closed + dt.timedelta(days=int(age), minutes=30)
        assert filed == at_close | {x for x in backdated if shown_by[x] <= tick}, age
    assert filed_by["1"] < filed_by["7"] < filed_by["30"], "records appear through the month: each re-sweep counts"
    deltas = p.assert_invariants(DAY, set(shown_by))  # every record of D once; the state equals Bronze
    filed = {x: pk for pk, ids in deltas.items() for x in ids}
    assert {filed[x] for x in backdated} == {LAST_HOUR}  # into their own day, its last hour
    other_days = {x for d in (DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))
                  for ids in p.delta_ids(d).values() for x in ids}
    assert other_days.isdisjoint(shown_by), "no record of D filed into another day"


def test_the_resweep_ticks_ask_only_for_filed_days_at_their_ages(instance, local_store):
    from pncp_assets.definitions import defs
    from pncp_assets.defs.schedules import RESWEEP_AGES

    repo = defs.get_repository_def()
    resources = {"bronze_storage": storage_resource(local_store), "pncp_api": PncpApi(base_url="http://127.0.0.1:9")}

    schedule = defs.resolve_schedule_def("pncp_resweep_schedule")
    assert (schedule.cron_schedule, schedule.default_status) == ("35 6 * * *", dg.DefaultScheduleStatus.RUNNING)
    tick = dt.datetime(2025, 11, 30, 6, 35, tzinfo=TZ)
    with dg.build_schedule_context(scheduled_execution_time=tick, instance=instance, repository_def=repo,
                                   resources=resources) as context:
        nothing = schedule.evaluate_tick(context)
    assert nothing.run_requests == [] and "never filed" in nothing.skip_message  # a day nobody ingested
    days = [tick.date() - dt.timedelta(days=age + 1) for age in RESWEEP_AGES]
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization("pncp_new_records", partition=f"{day}-23:00"))
    with dg.build_schedule_context(scheduled_execution_time=tick, instance=instance, repository_def=repo,
                                   resources=resources) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2025-11-28-23:00", "2025-11-22-23:00", "2025-10-30-23:00"]
    assert {r.tags["pncp/resweep_age"] for r in requests} == {"1", "7", "30"}
