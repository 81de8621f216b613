"""Sweeping finished days again: the day close, and the re-sweeps days later.

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

from pncp_assets.brasilia import TZ
from pncp_assets.defs.assets import AssetNames
from pncp_assets.defs.partitions import TIMEZONE, hourly_partitions
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.layout import day_hours

# Days after its day close that a finished day is swept again: the first catches what appeared within a day or
# two, the second the records PNCP backdated by up to a week (others who harvest PNCP look back 10 days), the
# last what trickles in within the month (and before retention archives the day's state, after 45 days).
RESWEEP_AGES = (1, 7, 30)


def day_close_schedule(job: dg.UnresolvedAssetJobDefinition, hour: int) -> dg.ScheduleDefinition:
    @dg.schedule(job=job, cron_schedule=f"5 {hour} * * *", execution_timezone=TIMEZONE,
                 name="pncp_day_close_schedule",
                 description=f"Each day at {hour:02d}:05 (Brasília time), yesterday's 23:00 partition again: "
                 "records that PNCP showed only after midnight still reach Bronze.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = (context.scheduled_execution_time.astimezone(TZ) - dt.timedelta(days=1)).date()
        return dg.RunRequest(run_key=f"day_close_{day}", partition_key=day_hours(day)[-1],
                             tags={"pncp/day_close": day.isoformat()})

    return _schedule


def resweep_schedule(job: dg.UnresolvedAssetJobDefinition, hour: int,
                     ages: tuple[int, ...] = RESWEEP_AGES) -> dg.ScheduleDefinition:
    """Each day at `hour`:35, the 23:00 partition of each day whose day close was `ages` days ago: the same run
    as the day close, later. Only days the pipeline filed (their 23:00 materialised), so it runs by default
    and never files a day nobody ingested all in its last hour."""
    first_day = hourly_partitions.start.astimezone(TZ).date()
    filed = dg.AssetKey(AssetNames.of(FIRST_SEEN).deltas)

    @dg.schedule(job=job, cron_schedule=f"35 {hour} * * *", execution_timezone=TIMEZONE,
                 name="pncp_resweep_schedule", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Each day at {hour:02d}:35 (Brasília time), the 23:00 partition of the days closed "
                 f"{', '.join(map(str, ages))} days ago, swept again: records PNCP shows days late reach their "
                 "own day, once.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
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
        return requests or dg.SkipReason(f"No filed day to sweep again ({', '.join(skipped)}: never filed)")

    return _schedule
