"""The hourly partitions, in Brasília time (PNCP's own clock; no DST in Brazil since 2019)."""

from __future__ import annotations

import os

import dagster as dg

TIMEZONE = "America/Sao_Paulo"
DEFAULT_START = "2025-01-01-00:00"


def start_date() -> str:
    """`PNCP_START_DATE` (`YYYY-MM-DD` or `YYYY-MM-DD-HH:00`), default 2025-01-01."""
    value = os.environ.get("PNCP_START_DATE", "").strip() or DEFAULT_START
    return value if len(value) > 10 else f"{value}-00:00"


hourly_partitions = dg.HourlyPartitionsDefinition(start_date=start_date(), timezone=TIMEZONE)
