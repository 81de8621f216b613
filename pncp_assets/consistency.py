"""The `no_duplicates` / `bronze_consistent` rules over a day's Bronze as it is (framework-free): no key
twice in an hour's delta, none of an hour's keys in another delta of its day, the day's state equal to the
union of its deltas (plus claims still being published), and, for the run that filed an hour, its delta in
Bronze as published. Read from one consistent snapshot of the state and the files."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pncp_assets import layout, ledger
from pncp_assets.brasilia import utc_now
from pncp_assets.bronze import ids_of
from pncp_assets.layers import FIRST_SEEN, Layer
from pncp_assets.state import DayState, StateManager, backoff
from pncp_assets.storage import ObjectStore


@dataclass
class CheckReport:
    passed: bool
    problems: list[str]
    offending: list[dict[str, Any]]  # up to 20: {"id": ..., "files": [...]}
    files: int
    delta_rows: int


@dataclass
class DayCheck:
    """A day read once: each hour's report, every key its deltas hold, and the hours known to be ingested
    (recorded in the state, or holding a delta)."""

    reports: dict[str, CheckReport]
    ids: set[str]
    ingested: set[str]


class ConsistencyCheck:
    """The check rules for one layer on one ObjectStore. Its "IDs" are the layer's keys: record IDs, or
    version keys."""

    def __init__(self, storage: ObjectStore, layer: Layer = FIRST_SEEN, logger: Any = None):
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a Layer (layers.layer_named for a name), not {layer!r}")
        self.storage = storage
        self.layer = layer
        self.source = layer.source
        self.key_field = self.layer.key.field
        self.state = StateManager(storage, logger=logger or logging.getLogger(__name__))

    def check(self, partition_key: str) -> CheckReport:
        """No ID twice in H's delta, none of its IDs in another delta of the day, and the state's IDs
        equal to the union of the day's Bronze IDs (plus claims still being published)."""
        return self.check_hours([partition_key])[partition_key]

    def check_hours(self, partition_keys: Sequence[str],
                    published: Mapping[str, frozenset[str]] | None = None) -> dict[str, CheckReport]:
        """`check` for several hours, reading each day's files and state once. `published`: hour -> the IDs
        this run handed over for publishing, which H's delta in Bronze must now hold (the check of the run
        that filed them judges what was published)."""
        reports: dict[str, CheckReport] = {}
        for day, hours in layout.hours_by_day(partition_keys).items():
            reports.update(self.check_day(day, hours, published).reports)
        return reports

    def check_day(self, day: dt.date, hours: Sequence[str] | None = None,
                  published: Mapping[str, frozenset[str]] | None = None) -> DayCheck:
        """The check of each hour of `day` (all 24 by default), every ID the day's deltas hold, and the
        hours ingested, from one snapshot."""
        hours = hours or layout.day_hours(day)
        state, files, uploaded = self._snapshot(day)
        where = _where(files)
        day_problems, day_bad = self._day_agrees_with_state(files, where, state, uploaded)
        reports = {hour: self._hour_report(hour, files, where, day_problems, day_bad, (published or {}).get(hour))
                   for hour in hours}
        ingested = state.ingested_hours() | {layout.partition_of_delta(name) for name in files}
        return DayCheck(reports, set(where), ingested)

    def _snapshot(self, day: dt.date, tries: int = 50) -> tuple[DayState, dict[str, list[str]], set[str]]:
        """The day's state, the IDs of its delta files and those of the files uploaded beside them (the
        original document's `upload_to_bronze`) as of one moment: the state read before the files and
        unchanged after them. (A run that claims, publishes or finalizes meanwhile changes the state; read
        again. Reading only once could pair an old state with newer files, or the reverse.)"""
        key = layout.state_key(self.source, day)
        for attempt in range(1, tries + 1):
            loaded = self.state.load_fresh(self.layer, day)
            deltas, uploads = layout.day_files(self.storage, self.source, day)
            files = {name: ids_of(self.storage.get(name).data, self.key_field) or [] for name in deltas}
            uploaded = {x for name in uploads for x in ids_of(self.storage.get(name).data, self.key_field) or []}
            if self.storage.version(key) == loaded.version:
                return loaded.state, files, uploaded
            backoff(attempt)
        raise RuntimeError(f"{day}: the state kept changing while the check read Bronze ({tries} tries)")

    def _day_agrees_with_state(self, files: dict[str, list[str]], where: dict[str, list[str]],
                               state: DayState, uploaded: set[str]) -> tuple[list[str], dict[str, list[str]]]:
        pending: set[str] = set()
        for pk, claim in state.open_claims().items():
            pending |= set(claim.ids) - set(files.get(layout.delta_key(self.source, pk), []))
        processed = state.ids
        not_in_state = set(where) - processed
        # An ID the original document's `update_state` recorded for its own upload is in Bronze too.
        not_in_bronze = processed - set(where) - pending - uploaded
        problems: list[str] = []
        bad: dict[str, list[str]] = {}
        if not_in_state:
            problems.append(f"{len(not_in_state)} {self.layer.noun} in Bronze are missing from the state")
            bad.update({x: where[x] for x in not_in_state})
        if not_in_bronze:
            problems.append(f"{len(not_in_bronze)} {self.layer.noun} in the state are in no Bronze delta file")
            bad.update({x: ["(state only)"] for x in not_in_bronze})
        return problems, bad

    def _hour_report(self, partition_key: str, files: dict[str, list[str]], where: dict[str, list[str]],
                     day_problems: list[str], day_bad: dict[str, list[str]],
                     published: frozenset[str] | None = None) -> CheckReport:
        own_key = layout.delta_key(self.source, partition_key)
        own = files.get(own_key, [])
        problems: list[str] = []
        bad: dict[str, list[str]] = {}
        unpublished = sorted(published - set(own)) if published else []
        if unpublished:
            problems.append(f"{len(unpublished)} {self.layer.noun} filed in {partition_key} by this run are not in "
                            f"{own_key}: its delta was not published (the next run, or the state asset, publishes "
                            f"it from its staged file)")
            bad.update({x: ["(not published)"] for x in unpublished})
        twice = [x for x, n in Counter(own).items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} {self.layer.noun} appear more than once in {own_key}")
            bad.update({x: where[x] for x in twice})
        elsewhere = [x for x in set(own) if len(set(where[x])) > 1]
        if elsewhere:
            problems.append(f"{len(elsewhere)} {self.layer.noun} of {partition_key} are also in other delta "
                            f"files of the day")
            bad.update({x: sorted(set(where[x])) for x in elsewhere})
        problems += day_problems
        bad.update(day_bad)
        offending = [{"id": x, "files": files_} for x, files_ in sorted(bad.items())[:20]]
        return CheckReport(not problems, problems, offending, len(files), len(own))


def _where(files: dict[str, list[str]]) -> dict[str, list[str]]:
    """ID -> the delta files it appears in (once per appearance)."""
    where: dict[str, list[str]] = {}
    for key, ids in files.items():
        for x in ids:
            where.setdefault(x, []).append(key)
    return where


# --- A range of days, as the checks command judges it ----------------------------------------------

@dataclass
class RangeReport:
    first: dt.date
    last: dt.date
    source: str = FIRST_SEEN.source
    partitions: int = 0
    files: int = 0
    rows: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"day", "hours", "problems", "offending"}
    across_days: dict[str, list[str]] = field(default_factory=dict)  # ID -> the days it is in
    not_due: int = 0  # hours of the range not yet due: not checked for gaps
    before_start: int = 0  # days of the range before the pipeline's first partition: not judged
    start: dt.date | None = None
    notes: list[str] = field(default_factory=list)  # what is reported, not failed: counts that fell

    @property
    def passed(self) -> bool:
        return not self.failures


NEVER_INGESTED = "never ingested: no run recorded in the day's state and no delta file"
INCOMPLETE = "incomplete (the completeness ledger)"


def check_range(store: ObjectStore, first: dt.date, last: dt.date, layer: Layer = FIRST_SEEN,
                logger: Any = None, now: dt.datetime | None = None, start: dt.date | None = None) -> RangeReport:
    """Run the check rules for every hour of every day in [first, last], reading each day once; hours due by
    `now` (the present by default) that were never ingested fail too. Days before `start` (the pipeline's
    first partition) are counted, not judged."""
    checker = ConsistencyCheck(store, layer, logger=logger or logging.getLogger(__name__))
    report = RangeReport(first, last, checker.source, start=start)
    now = now or utc_now()
    days_of: dict[str, list[str]] = {}
    day = first
    if start is not None and first < start:
        report.before_start = (min(last + dt.timedelta(days=1), start) - first).days
        day = start
    while day <= last:
        checked = checker.check_day(day)
        per_hour = checked.reports
        report.partitions += len(per_hour)
        report.files += next(iter(per_hour.values())).files
        report.rows += sum(r.delta_rows for r in per_hour.values())
        # Group the hours that fail for the same reasons (the day-wide rules fail every hour alike).
        grouped: dict[tuple[str, ...], list[str]] = {}
        for hour, r in per_hour.items():
            if not r.passed:
                grouped.setdefault(tuple(r.problems), []).append(hour)
        for problems, failed in grouped.items():
            offending = per_hour[failed[0]].offending
            report.failures.append({"day": day.isoformat(), "hours": failed, "problems": list(problems),
                                    "offending": offending})
        due = [h for h in layout.day_hours(day) if layout.is_due(h, now)]
        report.not_due += 24 - len(due)
        # A hole in the data: a due hour whose run the state never recorded and that holds no delta (an hour
        # that was ingested and filed nothing is recorded, in `materialized_hours`).
        gaps = [h for h in due if h not in checked.ingested]
        if gaps:
            report.failures.append({"day": day.isoformat(), "hours": gaps, "problems": [NEVER_INGESTED],
                                    "offending": []})
        verdict = ledger.judge(checker.state.load_fresh(layer, day).state, day)
        if verdict is not None and not verdict.passed:  # Bronze lacks records PNCP counted, or that it showed
            report.failures.append({"day": day.isoformat(), "hours": [layout.day_hours(day)[-1]],
                                    "problems": [f"{INCOMPLETE}: " + "; ".join(verdict.problems())],
                                    "offending": []})
        if verdict is not None:
            report.notes.extend(f"{day}: {note}" for note in verdict.notes())
        for x in checked.ids:
            days_of.setdefault(x, []).append(day.isoformat())
        day += dt.timedelta(days=1)
    report.across_days = {x: d for x, d in days_of.items() if len(d) > 1}
    return report


def _spans(hours: Sequence[str]) -> str:
    """`2025-10-22-03:00 .. 2025-10-22-05:00, 2025-10-22-09:00`: consecutive hours as one span."""
    runs: list[list[str]] = []
    for h in sorted(hours, key=layout.parse_partition_key):
        if runs and layout.parse_partition_key(h) - layout.parse_partition_key(runs[-1][-1]) == dt.timedelta(hours=1):
            runs[-1].append(h)
        else:
            runs.append([h])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]} .. {r[-1]}" for r in runs)


def format_report(report: RangeReport, limit: int = 20) -> list[str]:
    lines = []
    for f in report.failures:
        span = f["hours"][0] if len(f["hours"]) == 1 else f"{len(f['hours'])} hours of {f['day']}"
        lines.append(f"FAILED {span}: {'; '.join(f['problems'])}")
        if NEVER_INGESTED in f["problems"]:
            lines.append(f"  hours: {_spans(f['hours'])}")
        for o in f["offending"][:limit]:
            lines.append(f"  {o['id']}: {', '.join(o['files'])}")
    if report.across_days:
        lines.append(f"WARNING {len(report.across_days)} IDs are in more than one day (the API moved their "
                     f"publication date):")
        for x, days in sorted(report.across_days.items())[:limit]:
            lines.append(f"  {x}: {', '.join(days)}")
    lines.extend(f"NOTE {note}" for note in report.notes[:limit])
    verdict = "passed" if report.passed else f"FAILED ({sum(len(f['hours']) for f in report.failures)} partitions)"
    pending = f" ({report.not_due} hours not yet due, not checked for gaps)" if report.not_due else ""
    if report.before_start:
        pending += (f" ({report.before_start} days before the pipeline's start, {report.start}: not judged; "
                    "PNCP_START_DATE)")
    lines.append(f"Checked {report.partitions} partitions of {report.source} from {report.first} to {report.last}: "
                 f"{report.files} files, {report.rows} rows{pending}; {verdict}")
    return lines
