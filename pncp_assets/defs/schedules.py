"""The day-close schedule: one last sweep of yesterday, for records the API shows only after midnight.

The hourly schedule runs D's last hour (23:00) at 00:05 of D+1, and nothing sweeps D after that. PNCP
shows some records hours after their `dataPublicacaoPncp`, so a record of D that appears after 00:05 would
never reach Bronze. At `hour`:05 of D+1 (Brasília time) this schedule runs D's 23:00 partition again: it
sweeps D anew (the stored sweep is hours old by then) and files every record of D not yet in the state in
D's 23:00 delta, the earliest hour that has not yet been filed, and never one before its publication.
After that run D is closed: records that appear later still are not ingested.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pncp_assets.brasilia import TZ
from pncp_assets.defs.partitions import TIMEZONE
from pncp_assets.layout import day_hours


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
