"""The schedules: each hour, and sweeping finished days again (the day close, and the re-sweeps days later).

Each hour at :05 the hourly schedule runs the hour just finished. While PNCP is declared down (`outage.py`) every
schedule's tick first asks PNCP once and launches nothing while it fails; the first hourly tick after it answers
runs every hour missed since the outage began.

The hourly schedule runs D's last hour (23:00) at 00:05 of D+1. PNCP shows some records hours after their
`dataPublicacaoPncp`, and some days after (backdated into a finished day), so a record of D that appears
later would never reach Bronze. At `hour`:05 of D+1 (Brasília time) the day close runs D's 23:00 partition
again: it sweeps D anew (the stored sweep is hours old by then) and files every record of D not yet in the
state in D's 23:00 delta, the earliest hour that has not yet been filed, and never one before its
publication. The re-sweeps do the same `RESWEEP_AGES` days after the day close (at `hour`:35), through the
same job, pools and protocol: a record backdated into D reaches D's 23:00 delta at the first re-sweep after
it appears, exactly once, and never another day.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pncp_assets import holes
from pncp_assets.brasilia import TZ
from pncp_assets.day_index import LOOKBACK_DAYS
from pncp_assets.defs import outage
from pncp_assets.defs.assets import AssetNames
from pncp_assets.defs.partitions import TIMEZONE, hourly_partitions
from pncp_assets.defs.resources import BronzeStorage
from pncp_assets.layers import FIRST_SEEN, LAYERS
from pncp_assets.layout import day_hours, parse_partition_key, partition_key_for
from pncp_assets.ledger import RESWEEP_AGES
from pncp_assets.state import StateManager


def hourly_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Each hour at :05 the hour just finished; during a declared outage nothing until PNCP answers, then the
    hours missed (`outage.catch_up_requests`)."""
    first_hour = hourly_partitions.get_first_partition_key()

    @dg.schedule(job=job, cron_schedule="5 * * * *", execution_timezone=TIMEZONE, name="pncp_hourly_schedule",
                 required_resource_keys={"pncp_api"},
                 description="Each hour at :05, for the hour just finished (Brasília time). While PNCP is down, "
                 "nothing (each tick asks PNCP once); then every hour missed.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | list[dg.RunRequest] | dg.SkipReason:
        hour = partition_key_for(context.scheduled_execution_time - dt.timedelta(hours=1))
        if parse_partition_key(hour) < parse_partition_key(first_hour):
            return dg.SkipReason(f"No hour has ended since the partitions' start ({first_hour}, PNCP_START_DATE)")
        down, why = outage.gate(context.instance, context.resources.pncp_api)
        if why is not None:
            return dg.SkipReason(why)
        if down is not None:  # PNCP answers again: the hours missed, and this one
            outage.clear(context.instance)  # launched: the next tick goes back to one hour
            return outage.catch_up_requests(down, hour, hourly_partitions)
        return dg.RunRequest(run_key=hour, partition_key=hour)

    return _schedule


def day_close_schedule(job: dg.UnresolvedAssetJobDefinition, hour: int) -> dg.ScheduleDefinition:
    @dg.schedule(job=job, cron_schedule=f"5 {hour} * * *", execution_timezone=TIMEZONE,
                 name="pncp_day_close_schedule", required_resource_keys={"pncp_api"},
                 description=f"Each day at {hour:02d}:05 (Brasília time), yesterday's 23:00 partition again: "
                 "records that PNCP showed only after midnight still reach Bronze.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        _, why = outage.gate(context.instance, context.resources.pncp_api)
        if why is not None:  # the day's first re-sweep, a day later, closes it instead
            return dg.SkipReason(why)
        day = (context.scheduled_execution_time.astimezone(TZ) - dt.timedelta(days=1)).date()
        return dg.RunRequest(run_key=f"day_close_{day}", partition_key=day_hours(day)[-1],
                             tags={"pncp/day_close": day.isoformat()})

    return _schedule


def resweep_schedule(job: dg.UnresolvedAssetJobDefinition, hour: int,
                     ages: tuple[int, ...] = RESWEEP_AGES) -> dg.ScheduleDefinition:
    """Each day at `hour`:35, the 23:00 partition of each day whose day close was `ages` days ago: the same run
    as the day close, later. Only days the pipeline filed (their 23:00 materialised), so it runs by default
    and never files a day nobody ingested all in its last hour. Also, once per finding, each day of the last
    `LOOKBACK_DAYS` with a hole found since its last closing sweep (`holes.py`): swept again in full."""
    first_day = hourly_partitions.start.astimezone(TZ).date()
    filed = dg.AssetKey(AssetNames.of(FIRST_SEEN).deltas)

    @dg.schedule(job=job, cron_schedule=f"35 {hour} * * *", execution_timezone=TIMEZONE,
                 name="pncp_resweep_schedule", default_status=dg.DefaultScheduleStatus.RUNNING,
                 required_resource_keys={"bronze_storage", "pncp_api"},
                 description=f"Each day at {hour:02d}:35 (Brasília time), the 23:00 partition of the days closed "
                 f"{', '.join(map(str, ages))} days ago, swept again: records PNCP shows days late reach their "
                 "own day, once. Also any day where a record the versions feed shows was missing (a hole).")
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        _, why = outage.gate(context.instance, context.resources.pncp_api)
        if why is not None:  # tomorrow's tick asks for the next age; a later re-sweep covers this one
            return dg.SkipReason(why)
        today = context.scheduled_execution_time.astimezone(TZ).date()
        requests, skipped = [], []
        for age in ages:
            day = today - dt.timedelta(days=age + 1)  # its day close ran on day + 1
            last_hour = day_hours(day)[-1]
            if day < first_day or not context.instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=filed, asset_partitions=[last_hour]), limit=1).records:
                skipped.append(day.isoformat())
                continue
            requests.append(dg.RunRequest(run_key=f"resweep_{day}_{age}", partition_key=last_hour,
                                          tags={"pncp/resweep": day.isoformat(), "pncp/resweep_age": str(age)}))
        requests += _hole_requests(context.resources.bronze_storage, today, first_day,
                                   {r.partition_key for r in requests})
        return requests or dg.SkipReason(f"No filed day to sweep again ({', '.join(skipped)}: never filed)")

    return _schedule


def _hole_requests(storage: BronzeStorage, today: dt.date, first_day: dt.date,
                   requested: set[str]) -> list[dg.RunRequest]:
    """A run per day (not already requested) whose first-seen layer has a hole found since its last closing."""
    days = [d for d in (today - dt.timedelta(days=back) for back in range(2, LOOKBACK_DAYS + 1)) if d >= first_day]
    manager = StateManager(storage.object_store())
    due = [(day, found) for layer in LAYERS if not layer.versioned
           for day, found in holes.awaiting_resweep(manager, layer, days).items()]
    return [dg.RunRequest(run_key=f"resweep_{day}_holes_{found}", partition_key=day_hours(day)[-1],
                          tags={"pncp/resweep": day.isoformat(), "pncp/resweep_reason": "holes"})
            for day, found in sorted(set(due)) if day_hours(day)[-1] not in requested]
