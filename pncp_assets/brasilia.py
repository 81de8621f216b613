"""Brasília time: PNCP's own clock, the partition clock and the day of every key and state file; and durations
as messages show them (`span`)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

TZ = ZoneInfo("America/Sao_Paulo")
UTC = dt.UTC

_COMPACT = re.compile(r"^\d{8}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: str | dt.date | dt.datetime) -> dt.date:
    """A Brasília calendar day from `YYYYMMDD`, `YYYY-MM-DD`, a date, or a datetime.

    A naive datetime is taken as Brasília time (like every PNCP timestamp); an aware one is converted.
    """
    if isinstance(value, dt.datetime):
        return to_brasilia(value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if _COMPACT.match(text):
                return dt.datetime.strptime(text, "%Y%m%d").date()
            if _ISO.match(text):
                return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"invalid date {value!r}: expected YYYYMMDD or YYYY-MM-DD")


def to_brasilia(moment: dt.datetime) -> dt.datetime:
    """An aware datetime in Brasília time; a naive one is assumed to be Brasília time already."""
    return moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment.astimezone(TZ)


def utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso_utc(moment: dt.datetime | None = None) -> str:
    """`2025-10-22T12:00:00Z`, the timestamp format of the state file."""
    moment = (moment or utc_now()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def span(seconds: float) -> str:
    """A duration as a person reads it: `42.0 s`, `12.5 min`, `1.6 h`."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
