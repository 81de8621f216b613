"""An afternoon without PNCP, driven by the hourly schedule's own ticks with the clock moving: the run that meets
the outage waits it out up to its bound and fails saying since when; the ticks meanwhile launch nothing (each asks
PNCP once); the first tick after PNCP answers runs every hour missed; every record lands once. The failed runs of
one outage are announced once."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import dagster as dg
import pytest

from pncp_assets.brasilia import TZ
from pncp_assets.defs import outage
from pncp_assets.defs.alerts import alert_sensors
from pncp_assets.defs.resources import AlertWebhook
from pncp_assets.layout import day_hours
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets_tests.support.pipeline import Pipeline, storage_resource, visible_before
from pncp_assets_tests.support.schedules import run_request, set_clocks, tick_times

warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = dt.date(2025, 10, 22)
DOWN = (dt.datetime.combine(DAY, dt.time(11), tzinfo=TZ), dt.datetime.combine(DAY, dt.time(15), tzinfo=TZ))
HOOK = "/hooks/outage"


@pytest.fixture
def afternoon(local_store):
    with dg.instance_for_test() as instance, RunningSimulator(SimulatorConfig(seed=21, volume=600)) as sim:
        # A bound of 1.2 s stands for the 30 min shipped: the run gives up within the outage either way.
        yield Pipeline(sim, local_store, storage_resource(local_store), instance=instance, outage_bound_minutes=0.02)


def test_an_outage_pauses_the_hourly_schedule_and_the_hours_missed_are_run_once_pncp_answers(afternoon, monkeypatch,
                                                                                              httpserver):
    from pncp_assets.definitions import defs

    p = afternoon
    schedule = defs.resolve_schedule_def("pncp_hourly_schedule")
    start, end = (dt.datetime.combine(DAY, dt.time(h, 5), tzinfo=TZ) for h in (8, 17))
    seen: list[tuple[str, str, list[str], list[bool]]] = []  # tick, skip message, hours asked, runs' success
    failed: list[dg.DagsterRun] = []
    for tick in tick_times(schedule, start, end):
        set_clocks(p, monkeypatch, tick)
        p.sim.sim.configure(outages=[(0, 10**9)] if DOWN[0] <= tick < DOWN[1] else [])
        with dg.build_schedule_context(scheduled_execution_time=tick, instance=p.instance,
                                       repository_def=defs.get_repository_def(),
                                       resources={"pncp_api": p.resources()["pncp_api"]}) as context:
            result = schedule.evaluate_tick(context)
        hours, outcomes = [], []
        for request in result.run_requests:
            r = request.partition_key_range
            hours += [request.partition_key] if r is None else day_hours(DAY)[int(r.start[11:13]):int(r.end[11:13]) + 1]
            run = run_request(p, request, raise_on_error=False)
            outcomes.append(run.success)
            if not run.success:
                failed.append(run.dagster_run)
        seen.append((f"{tick:%H:%M}", result.skip_message or "", hours, outcomes))

    by_tick = {t: (skip, hours, ok) for t, skip, hours, ok in seen}
    assert by_tick["10:05"] == ("", ["2025-10-22-09:00"], [True])
    # 11:05: PNCP is down; the run waits its bound and fails, declaring the outage.
    assert by_tick["11:05"] == ("", ["2025-10-22-10:00"], [False])
    [run] = failed
    tags = p.instance.get_run_by_id(run.run_id).tags
    declared = dt.datetime.fromisoformat(tags[outage.UNAVAILABLE_TAG])
    assert DOWN[0] <= declared <= DOWN[0] + dt.timedelta(minutes=6)  # on the pipeline's clock: the tick's
    assert tags[outage.OUTAGE_TAG].startswith("waiting: PNCP unavailable since")
    errors = [e.dagster_event.event_specific_data.error.cause.message for e in p.instance.all_logs(run.run_id)
              if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert errors and "PncpUnavailable: PNCP unavailable since" in errors[0] and "HTTP 503" in errors[0], errors
    # 12:05 to 14:05: nothing launched, and the tick says why.
    for t in ("12:05", "13:05", "14:05"):
        skip, hours, _ = by_tick[t]
        assert hours == [] and skip.startswith("PNCP unavailable since") and "503" in skip, (t, skip)
    # 15:05: PNCP answers; one run for the hours missed since 10:00, then one hour a tick again.
    assert by_tick["15:05"] == ("", day_hours(DAY)[10:15], [True])
    assert by_tick["16:05"] == ("", ["2025-10-22-15:00"], [True])
    assert outage.declared(p.instance) is None

    filed = p.instance.get_materialized_partitions(dg.AssetKey("pncp_new_records"))
    assert set(day_hours(DAY)[7:17]) <= filed  # no hour left behind
    deltas = p.assert_invariants(DAY)  # every record once, the state equal to Bronze
    assert visible_before(p.sim.sim, DAY, 16) <= {x for ids in deltas.values() for x in ids}

    # The alert: the outage's failed runs announced once (a second run failing in it posts nothing).
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    set_clocks(p, monkeypatch, dt.datetime.combine(DAY, dt.time(18, 5), tzinfo=TZ))
    p.sim.sim.configure(outages=[(0, 10**9)])
    again = p.run("2025-10-22-17:00", raise_on_error=False)
    assert not again.success and outage.declared(p.instance) is not None
    failure_alert = alert_sensors(enabled=True)[0]
    for dagster_run in (run, again.dagster_run):
        failure = next(e for e in p.instance.all_logs(dagster_run.run_id)
                       if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="pncp_run_failure_alert", dagster_instance=p.instance,
            dagster_run=p.instance.get_run_by_id(dagster_run.run_id), dagster_event=failure.dagster_event,
            resources={"alert_webhook": AlertWebhook(url=httpserver.url_for(HOOK))}).for_run_failure()
        failure_alert(context)
    [sent] = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert sent["event"] == "pncp_unavailable" and sent["text"].startswith("pncp_assets: PNCP unavailable since")
