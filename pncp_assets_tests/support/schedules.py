"""Drive the shipped schedules tick by tick with the clock moving: each tick evaluated at its own time
(tick times from the schedules' cron strings, as the daemon computes them), the simulator's clock and the
pipeline's both set to the tick."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pytest

from pncp_assets import sweeps
from pncp_assets.brasilia import TZ
from pncp_assets_tests.support.pipeline import Pipeline

SCHEDULES = ("pncp_hourly_schedule", "pncp_day_close_schedule", "pncp_resweep_schedule")


def tick_times(schedule: dg.ScheduleDefinition, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The schedule's ticks in [start, end], computed from its cron string as the daemon does."""
    from dagster._utils.schedules import schedule_execution_time_iterator  # the daemon's own tick iterator

    ticks = []
    for tick in schedule_execution_time_iterator(start.timestamp(), schedule.cron_schedule,
                                                 schedule.execution_timezone):
        if tick > end:
            return ticks
        ticks.append(tick)
    return ticks


def set_clocks(p: Pipeline, monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    """The simulator's clock and the pipeline's (when a sweep starts) both at `moment`."""
    p.sim.sim.configure(now=moment.astimezone(TZ).replace(tzinfo=None))
    monkeypatch.setattr(sweeps, "utc_now", lambda: moment.astimezone(dt.UTC))


def scheduled_runs(p: Pipeline, monkeypatch: pytest.MonkeyPatch, start: dt.datetime, end: dt.datetime,
                   names: tuple[str, ...] = SCHEDULES) -> Iterator[tuple[dt.datetime, str, dg.RunRequest]]:
    """Every run the schedules request in [start, end], in time order, as (tick, schedule, request),
    with the clocks at the tick; the caller materialises it."""
    from pncp_assets.definitions import defs

    repo = defs.get_repository_def()
    schedules = [defs.resolve_schedule_def(n) for n in names]
    ticks = sorted(((t, s) for s in schedules for t in tick_times(s, start, end)), key=lambda ts: ts[0])
    with contextlib.ExitStack() as stack:
        # A schedule reads its instance (is PNCP declared down? which days were filed?), and an ephemeral one
        # cannot be handed to it: for runs on an ephemeral instance (faster: the versions week), the ticks get
        # a persisted stand-in, which holds no outage and no materialisation.
        instance = p.instance if not p.instance.is_ephemeral else stack.enter_context(dg.instance_for_test())
        for tick, schedule in ticks:
            set_clocks(p, monkeypatch, tick)
            with dg.build_schedule_context(scheduled_execution_time=tick, instance=instance, repository_def=repo,
                                           resources={"bronze_storage": p.storage,
                                                      "pncp_api": p.resources()["pncp_api"]}) as context:
                requests = schedule.evaluate_tick(context).run_requests
            for request in requests:
                yield tick, schedule.name, request


def run_request(p: Pipeline, request: dg.RunRequest, **kwargs) -> dg.ExecuteInProcessResult:
    """Materialise what a schedule asked for, with its own tags: an hour, or a range of hours (a catch-up)."""
    tags = {k: v for k, v in request.tags.items() if not k.startswith("dagster/")}
    if request.partition_key_range is not None:
        return p.run_range(request.partition_key_range.start, request.partition_key_range.end, tags=tags, **kwargs)
    return p.run(request.partition_key, tags=tags, **kwargs)


def run_the_schedules(p: Pipeline, monkeypatch: pytest.MonkeyPatch, start: dt.datetime, end: dt.datetime,
                      names: tuple[str, ...] = SCHEDULES) -> list[tuple[dt.datetime, str, str]]:
    """Every tick of the schedules in [start, end], each run materialised and required to succeed;
    returns (tick, schedule, partition)."""
    done = []
    for tick, name, request in scheduled_runs(p, monkeypatch, start, end, names):
        assert run_request(p, request).success, (tick, request.partition_key)
        done.append((tick, name, request.partition_key))
    return done
