"""The hourly partitions, in Brasília time (PNCP's own clock; no DST in Brazil since 2019), and the days they
make up (the daily view)."""

from __future__ import annotations

import dagster as dg

from pncp_assets.defs.environment import SETTINGS

TIMEZONE = "America/Sao_Paulo"

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=SETTINGS.start_date, timezone=TIMEZONE)
daily_partitions = dg.DailyPartitionsDefinition(start_date=SETTINGS.start_date[:10], timezone=TIMEZONE)
