"""Holes across feeds: a record whose version Bronze holds, but whose first-seen layer missed it; and IDs filed
on two publication days.

A new contratação (contrato) shows in the versions feed (`/atualizacao`) on the day of its first change, and in
the first-seen feed (`/publicacao`) on its publication day. When a versions layer files a record published on
a finished day D (D's first-seen ledger has a closing sweep: the day was swept whole), and the first-seen state
of D does not hold it, nor that of any nearby day (PNCP may have moved its publication date), D has a hole:
PNCP's listing of D did not show the record when we swept it.

A hole is written into D's first-seen state, under `holes`, with its evidence (the version key, the file and
hour that hold it, its publication time, when it was found); the re-sweep schedule then sweeps D again
(`defs/schedules.py`), in full. A hole is open while D's state does not hold its ID (`ledger.open_holes`):
the re-sweep that files it closes it, and the entry stays as history. An open hole fails D's completeness verdict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pncp_assets import ledger
from pncp_assets.brasilia import TZ, iso_utc
from pncp_assets.day_index import LOOKBACK_DAYS, DayIndex
from pncp_assets.layers import PUBLICATION_FIELD, Layer
from pncp_assets.ledger import HOLES_FIELD
from pncp_assets.pncp.records import api_time
from pncp_assets.state import DayState, StateManager


@dataclass(frozen=True)
class Hole:
    id: str
    day: dt.date  # its publication day, which the first-seen layer lacks it on
    version: str  # the version key that holds it
    seen_in: str  # the delta file (or, before publishing, the hour) holding that version
    published: str

    def evidence(self, found_at: str) -> dict[str, Any]:
        return {"version": self.version, "seen_in": self.seen_in, "published": self.published, "found_at": found_at}


def find(index: DayIndex, versions: Layer, records: Iterable[dict[str, Any]], seen_in: str,
         today: dt.date) -> list[Hole]:
    """The records of a versions layer (filed into `seen_in`) that are holes of their feed's first-seen layer:
    published on a closed day before `today`, within `LOOKBACK_DAYS`, and first seen on no day near it."""
    holes = []
    for record in records:
        published = api_time(record.get(PUBLICATION_FIELD))
        if published is None:
            continue
        day = published.astimezone(TZ).date()
        if not (today - dt.timedelta(days=LOOKBACK_DAYS) <= day < today) or not index.closed(day):
            continue  # its day is still open, or too old to be swept again: not judged here
        record_id = record.get(versions.id_field)
        if record_id in index.first_seen(day) or index.first_seen_days(record_id, day, until=today):
            continue
        holes.append(Hole(record_id, day, versions.key.of(record), seen_in, str(record.get(PUBLICATION_FIELD))))
    return holes


def filed_before(index: DayIndex, ids: Iterable[str], day: dt.date) -> dict[str, list[str]]:
    """Those of `ids` (being filed into `day`) that an earlier day's first-seen state holds too, with those days:
    PNCP moved their publication date, and each copy stays in the day it had when swept. Only the days before:
    a record moved to a later day is filed there second (a backfill filing the later day first is caught by the
    checks command, which reads every day of its range)."""
    found = {x: [str(d) for d in index.first_seen_days(x, day, until=day - dt.timedelta(days=1))] for x in sorted(ids)}
    return {x: days for x, days in found.items() if days}


def record(manager: StateManager, first_seen: Layer, holes: Iterable[Hole]) -> dict[dt.date, int]:
    """Write the holes into their days' first-seen states (an ID once per day); returns day -> holes added."""
    by_day: dict[dt.date, list[Hole]] = {}
    for hole in holes:
        by_day.setdefault(hole.day, []).append(hole)
    added: dict[dt.date, int] = {}
    for day, found in by_day.items():
        def add(state: DayState, found: list[Hole] = found) -> tuple[int, bool]:
            known = state.extra.setdefault(HOLES_FIELD, {})
            now = iso_utc()
            new = {h.id: h.evidence(now) for h in found if h.id not in known and h.id not in state.ids}
            known.update(new)
            return len(new), bool(new)

        _, added[day] = manager.transact(first_seen, day, add)
    return {day: n for day, n in added.items() if n}



def awaiting_resweep(manager: StateManager, first_seen: Layer, days: Iterable[dt.date]) -> dict[dt.date, str]:
    """The days with an open hole found after their latest closing sweep (no sweep since could have filled it),
    with when the last was found: each is swept again once per finding (the re-sweep schedule's run key)."""
    due = {}
    for day in days:
        state = manager.load_fresh(first_seen, day).state
        found = [e["found_at"] for e in ledger.open_holes(state).values()]
        latest = ledger.closing(state.extra.get(ledger.FIELD, []), day)
        if found and (latest is None or max(found) > latest["at"]):
            due[day] = max(found)
    return due
