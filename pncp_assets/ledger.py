"""The completeness ledger: what PNCP said a day held, and when, beside what Bronze then held.

Every run that files hours of a day records one entry per sweep it used (a sweep reused by a later run is not
recorded twice) in the day's state, under `ledger` (so it is compact, and archived with the state):

    {"at": "<sweep start, UTC>", "hour": "<the last hour of the day the run filed>",
     "modalidades": {"6": [totalRegistros, listed, held, rejected], ...}}   ("all" for feeds without one)

`totalRegistros` is the API's own count; `listed` the distinct records the sweep got; `held` how many of those
the day's state holds after the run; `rejected` how many of those carry no valid ID (kept under `_rejected/`,
not lost). A day is complete by its latest closing entry (one whose hour is 23:00: every record of the day was
eligible) when, for every modalidade, `held + rejected` reaches `totalRegistros`; the difference is the
shortfall. Records PNCP withdrew make the count fall: not a shortfall.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pncp_assets.brasilia import iso_utc
from pncp_assets.layers import Layer
from pncp_assets.layout import day_hours
from pncp_assets.state import DayState, StateManager
from pncp_assets.sweeps import StoredSweep

FIELD = "ledger"  # the day state's field


def sweep_entry(layer: Layer, sweep: StoredSweep, held: set[str], hour: str) -> dict[str, Any]:
    """The entry of one sweep of the day, against the day's state IDs `held` after filing up to `hour`."""
    counts: dict[str, list[int]] = {}
    for name, report in sweep.reports.items():
        counts[_label(name)] = [int(report.get("total_registros", 0)), 0, 0, 0]
    for record, provenance in sweep.records():
        row = counts.setdefault(_label(str(provenance.modalidade)), [0, 0, 0, 0])
        row[1] += 1
        if layer.key.problem(record) is not None:
            row[3] += 1
        elif layer.key.of(record) in held:
            row[2] += 1
    return {"at": iso_utc(sweep.started), "hour": hour, "modalidades": counts}


def _label(modalidade: str) -> str:
    return "all" if modalidade in ("None", "") else modalidade


def record(manager: StateManager, layer: Layer, day: dt.date, sweep: StoredSweep,
           hour: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Append the entry of `sweep` to the day's ledger (once per sweep and hour); returns it and the day's
    whole ledger as now stored."""
    def add(state: DayState) -> tuple[dict[str, Any], bool]:
        entry = sweep_entry(layer, sweep, state.ids, hour)
        entries = state.extra.setdefault(FIELD, [])
        if any(e.get("at") == entry["at"] and e.get("hour") == hour for e in entries):
            return entry, False  # this sweep was recorded for this hour already (a reused sweep, a re-run)
        entries.append(entry)
        return entry, True

    state, entry = manager.transact(layer, day, add)
    return entry, list(state.extra.get(FIELD, []))


def entries(manager: StateManager, layer: Layer | str, day: str | dt.date | dt.datetime) -> list[dict[str, Any]]:
    """The day's ledger, oldest first."""
    return list(manager.load_fresh(layer, day).state.extra.get(FIELD, []))


@dataclass
class Shortfall:
    modalidade: str
    api: int  # totalRegistros at the latest closing sweep
    held: int
    rejected: int
    at: str

    @property
    def missing(self) -> int:
        return self.api - self.held - self.rejected

    def line(self) -> str:
        return (f"modalidade {self.modalidade}: PNCP counted {self.api} at {self.at}, Bronze holds {self.held}"
                + (f" (+{self.rejected} rejected)" if self.rejected else "") + f": {self.missing} short")


def totals(entry: dict[str, Any]) -> tuple[int, int, int]:
    """An entry's (totalRegistros, held, rejected), over its modalidades."""
    rows = entry["modalidades"].values()
    return sum(r[0] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)


def closing(ledger: Sequence[dict[str, Any]], day: dt.date) -> dict[str, Any] | None:
    """The day's latest closing entry (hour 23:00: every record of the day was eligible), or None."""
    entries = [e for e in ledger if e.get("hour") == day_hours(day)[-1]]
    return max(entries, key=lambda e: e["at"]) if entries else None


def shortfalls(ledger: Sequence[dict[str, Any]], day: dt.date) -> list[Shortfall] | None:
    """Where the day's latest closing entry finds Bronze short of PNCP's count; None when the day has no
    closing entry yet (no verdict)."""
    latest = closing(ledger, day)
    if latest is None:
        return None
    found = [Shortfall(m, total, held, rejected, latest["at"])
             for m, (total, _listed, held, rejected) in sorted(latest["modalidades"].items())]
    return [s for s in found if s.missing > 0]
