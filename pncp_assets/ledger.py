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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pncp_assets import layout
from pncp_assets.brasilia import iso_utc
from pncp_assets.layers import Layer
from pncp_assets.layout import day_hours
from pncp_assets.pncp.client import ANY_COUNT
from pncp_assets.state import DayState, StateManager
from pncp_assets.sweeps import StoredSweep

# Days after its day close that a finished day is swept again (`defs/schedules.py`): the first catches what
# appeared within a day or two, the second the records PNCP backdated by up to a week (others who harvest PNCP
# look back 10 days), the last what trickles in within the month (and before retention archives the day's
# state, after 45 days). The verdict after the last is final: a day still short then is announced.
RESWEEP_AGES = (1, 7, 30)
FIELD = "ledger"  # the day state's field
HOLES_FIELD = "holes"  # the first-seen day state's field: {ID: evidence} (`holes.py`)


def sweep_entry(layer: Layer, sweep: StoredSweep, held: set[str], hour: str,
                previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entry of one sweep of the day, against the day's state IDs `held` after filing up to `hour`. A
    modalidade the sweep only counted (page 1 gave the count the day's `previous` closing entry found complete)
    keeps that entry's figures, under the new count, and is named in `counted`."""
    counts: dict[str, list[int]] = {}
    counted = [_label(name) for name, report in sweep.reports.items() if report.get("counted_only")]
    for name, report in sweep.reports.items():
        counts[_label(name)] = [int(report.get("total_registros", 0)), 0, 0, 0]
    for record, provenance in sweep.records():
        row = counts.setdefault(_label(str(provenance.modalidade)), [0, 0, 0, 0])
        row[1] += 1
        if layer.key.problem(record) is not None:
            row[3] += 1
        elif layer.key.of(record) in held:
            row[2] += 1
    before = (previous or {}).get("modalidades", {})
    for label in counted:
        if label in before:  # the state never drops an ID: what it held of them then, it holds now
            counts[label] = [counts[label][0], *before[label][1:]]
    entry: dict[str, Any] = {"at": iso_utc(sweep.started), "hour": hour, "modalidades": counts}
    if counted:
        entry["counted"] = sorted(counted)
    return entry


def _label(modalidade: str) -> str:
    return "all" if modalidade in ("None", "") else modalidade


def _modalidade(label: str) -> int | None:
    """A ledger label back to the client's modalidade (None for a feed without one)."""
    return None if label == "all" else int(label)


def record(manager: StateManager, layer: Layer, day: dt.date, sweep: StoredSweep,
           hour: str) -> tuple[dict[str, Any], DayState]:
    """Append the entry of `sweep` to the day's ledger (once per sweep and hour); returns it and the day's
    state as now stored."""
    def add(state: DayState) -> tuple[dict[str, Any], bool]:
        entries = state.extra.setdefault(FIELD, [])
        entry = sweep_entry(layer, sweep, state.ids, hour, closing(entries, day))
        if any(e.get("at") == entry["at"] and e.get("hour") == hour for e in entries):
            return entry, False  # this sweep was recorded for this hour already (a reused sweep, a re-run)
        entries.append(entry)
        return entry, True

    state, entry = manager.transact(layer, day, add)
    return entry, state


def entries(manager: StateManager, layer: Layer | str, day: str | dt.date | dt.datetime) -> list[dict[str, Any]]:
    """The day's ledger, oldest first."""
    return list(manager.load_fresh(layer, day).state.extra.get(FIELD, []))


def day_report(manager: StateManager, layer: Layer | str, day: dt.date) -> dict[str, Any]:
    """The day's ledger, its holes and its verdict, as the state command prints them (`--action ledger`)."""
    state = manager.load_fresh(layer, day).state
    verdict = judge(state, day)
    return {"ledger": state.extra.get(FIELD, []), "holes": state.extra.get(HOLES_FIELD, {}),
            "verdict": ("no closing sweep yet" if verdict is None else
                        "complete" if verdict.passed else "; ".join(verdict.problems())),
            "notes": verdict.notes() if verdict else []}


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
    entries = closings(ledger, day)
    return max(entries, key=lambda e: e["at"]) if entries else None


def closings(ledger: Sequence[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    """The day's closing entries (hour 23:00), as recorded."""
    return [e for e in ledger if e.get("hour") == day_hours(day)[-1]]


def shortfalls(ledger: Sequence[dict[str, Any]], day: dt.date) -> list[Shortfall] | None:
    """Where the day's latest closing entry finds Bronze short of PNCP's count; None when the day has no
    closing entry yet (no verdict)."""
    latest = closing(ledger, day)
    if latest is None:
        return None
    found = [Shortfall(m, total, held, rejected, latest["at"])
             for m, (total, _listed, held, rejected) in sorted(latest["modalidades"].items())]
    return [s for s in found if s.missing > 0]


def fallen(ledger: Sequence[dict[str, Any]], day: dt.date) -> dict[str, tuple[int, int]]:
    """Modalidade -> (its highest count at a closing sweep, its count at the latest): where PNCP's count of the
    day fell, records were withdrawn (or moved to another day). Reported, not a shortfall."""
    latest = closing(ledger, day)
    if latest is None:
        return {}
    highest: dict[str, int] = {}
    for entry in closings(ledger, day):
        for m, row in entry["modalidades"].items():
            highest[m] = max(highest.get(m, 0), row[0])
    return {m: (highest[m], row[0]) for m, row in sorted(latest["modalidades"].items()) if row[0] < highest[m]}


@dataclass
class DayVerdict:
    """A finished day judged: by its latest closing sweep (`entry`), Bronze short of PNCP's count, open holes
    (records the versions feed shows that the first-seen layer lacks), and counts that fell."""

    entry: dict[str, Any]
    short: list[Shortfall]
    holes: dict[str, dict[str, Any]]
    fell: dict[str, tuple[int, int]]

    @property
    def passed(self) -> bool:
        return not self.short and not self.holes

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.short) + len(self.holes)

    def problems(self, limit: int = 10) -> list[str]:
        found = []
        if self.short:
            found.append("short of PNCP's count: " + "; ".join(s.line() for s in self.short))
        if self.holes:
            found.append(f"{len(self.holes)} records held by the versions layer are missing (holes): "
                         + "; ".join(hole_line(x, e) for x, e in sorted(self.holes.items())[:limit]))
        return found

    def notes(self) -> list[str]:
        return [f"modalidade {m}: PNCP's count fell from {high} to {now} ({high - now} withdrawn or moved)"
                for m, (high, now) in self.fell.items()]


def judge(state: DayState, day: dt.date) -> DayVerdict | None:
    """The day's verdict from its state (ledger and holes); None before its first closing sweep."""
    entries = state.extra.get(FIELD, [])
    short = shortfalls(entries, day)
    if short is None:
        return None
    return DayVerdict(closing(entries, day), short, open_holes(state), fallen(entries, day))


def settled(state: DayState, day: dt.date) -> dict[int | None, int]:
    """The modalidades (None: a feed without) that the day's latest closing entry found complete, with the
    count it found: a later sweep whose page 1 gives the same count has nothing new to fetch there. None while
    the day has an open hole: PNCP's count said complete, and a record was missing all the same."""
    latest = closing(state.extra.get(FIELD, []), day)
    if latest is None or open_holes(state):
        return {}
    return {_modalidade(label): total
            for label, (total, _listed, held, rejected) in latest["modalidades"].items() if held + rejected >= total}


def open_holes(state: DayState) -> dict[str, dict[str, Any]]:
    """The day's holes (`holes.py`) whose ID its first-seen state still does not hold."""
    return {x: evidence for x, evidence in state.extra.get(HOLES_FIELD, {}).items() if x not in state.ids}


def hole_line(record_id: str, evidence: dict[str, Any]) -> str:
    return (f"{record_id} (published {evidence['published']}; its version {evidence['version']} is in "
            f"{evidence['seen_in']}, found {evidence['found_at']})")


def settled_versions(versions: DayState, first_seen: DayState, day: dt.date,
                     first_seen_now: Callable[[], Mapping[int | None, int]],
                     now: dt.datetime) -> dict[int | None, int]:
    """`settled` for a versions layer. Its count of a finished day falls as records change again (they move to
    the later day), so its own count says little days later; what a re-sweep looks for then is a record added
    to the day late, which raises the first-seen layer's count. A day ended over a day ago (`now`): when PNCP's
    first-seen count of the day now (`first_seen_now`, page 1 of each modalidade) is nowhere above what it was
    at the versions layer's last closing sweep, every modalidade is only counted (`ANY_COUNT`); otherwise the
    day is swept in full. Before that (the day close, hours after the day: versions shown late by hours, not
    records added), the layer's own count decides, as `settled` does."""
    if now < layout.parse_partition_key(day_hours(day)[-1]) + dt.timedelta(days=1, hours=1):
        return settled(versions, day)
    own = closing(versions.extra.get(FIELD, []), day)
    if own is None:
        return {}
    before = closing([e for e in first_seen.extra.get(FIELD, []) if e["at"] <= own["at"]], day)
    if before is None:
        return {}  # no first-seen count from before the versions' last close to compare with
    then = {label: row[0] for label, row in before["modalidades"].items()}
    now = first_seen_now()
    if any(total > then.get(_label(str(m)), 0) for m, total in now.items()):
        return {}
    return {_modalidade(label): ANY_COUNT for label in own["modalidades"]}
