"""The `bronze_consistent` rules over a day or a range of days, in one command, for CI.

    python -m pncp_assets.checks --from 2025-10-01 --to 2025-10-31 [--source all | LAYER]

Uses the storage the environment configures (as the pipeline does). Reads Bronze and the day states only:
no API call, nothing written. Every layer by default (`layers.LAYERS`: the contratações, contratos and
atas, first seen and versions, each keyed as its layer says). For every hourly partition of the range: no
ID twice in its delta, none of its IDs in another delta of its day, the day's state equal to the day's
Bronze IDs. Beyond what a single hour's check can see: every hour that is due (ended
`layout.DUE_AFTER_END` ago) was ingested, its run recorded in the day's state (`materialized_hours`) or its
delta in Bronze, so a hole in the data fails even when what is there is consistent; and IDs present in two
different days (the API moved a record's publication date) are reported as a warning. Days before the
pipeline's first partition (`PNCP_START_DATE`) are not judged, and said so.

Exit codes: 0 every rule holds; 1 the data failed (offending IDs and files, or the hours never ingested,
listed); 2 bad input (an unknown source, a range wholly in the future or wholly before the start date, a
local storage folder that does not exist); 3 the storage could not be reached or read (S3 credentials,
endpoint, bucket): the data was not judged at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pncp_assets import layout
from pncp_assets.brasilia import parse_day, utc_now
from pncp_assets.consistency import ConsistencyCheck
from pncp_assets.layers import FIRST_SEEN, LAYERS
from pncp_assets.storage import ObjectStore

MAX_DAYS = 3660  # ten years: a larger range is a typo
EXIT_STORAGE = 3  # the storage could not be reached or read: not a verdict on the data


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

    @property
    def passed(self) -> bool:
        return not self.failures


NEVER_INGESTED = "never ingested: no run recorded in the day's state and no delta file"


def check_range(store: ObjectStore, first: dt.date, last: dt.date, source: str = "pncp",
                logger: Any = None, now: dt.datetime | None = None, start: dt.date | None = None) -> RangeReport:
    """Run the check rules for every hour of every day in [first, last], reading each day once; hours due by
    `now` (the present by default) that were never ingested fail too. Days before `start` (the pipeline's
    first partition) are counted, not judged."""
    checker = ConsistencyCheck(store, source, logger=logger or logging.getLogger(__name__))
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
    verdict = "passed" if report.passed else f"FAILED ({sum(len(f['hours']) for f in report.failures)} partitions)"
    pending = f" ({report.not_due} hours not yet due, not checked for gaps)" if report.not_due else ""
    if report.before_start:
        pending += (f" ({report.before_start} days before the pipeline's start, {report.start}: not judged; "
                    "PNCP_START_DATE)")
    lines.append(f"Checked {report.partitions} partitions of {report.source} from {report.first} to {report.last}: "
                 f"{report.files} files, {report.rows} rows{pending}; {verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    from pncp_assets.cli_args import OneLineParser, day_arg

    parser = OneLineParser(prog="python -m pncp_assets.checks", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", required=True, type=day_arg, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=day_arg, help="last day (default: the first)")
    sources = {layer.source: layer.title for layer in LAYERS}
    parser.add_argument("--source", default="all", choices=["all", *sources],
                        help="all (the default), or one layer: " + ", ".join(f"{k} ({v})" for k, v in sources.items()))
    args = parser.parse_args(argv)
    first = parse_day(args.first)
    last = parse_day(args.last) if args.last else first
    if last < first:
        parser.error(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        parser.error(f"the range holds more than {MAX_DAYS} days")

    from pncp_assets.brasilia import TZ
    from pncp_assets.cli_args import existing_local_root, log_to_stderr
    from pncp_assets.config import ConfigError
    from pncp_assets.defs.environment import SETTINGS, bronze_storage
    from pncp_assets.storage import StorageError

    today = utc_now().astimezone(TZ).date()
    if first > today:
        parser.error(f"--from {first} is in the future (today is {today}, Brasília time): no hour of the range is "
                     "due yet")
    start = layout.parse_partition_key(SETTINGS.start_date).date()
    if last < start:
        parser.error(f"the range ends before the pipeline's first day, {start} (PNCP_START_DATE): nothing there "
                     "is ever ingested")
    log_to_stderr(logging.WARNING)  # e.g. a state file found broken, and rebuilt in memory for the check
    try:
        sources = [x.source for x in LAYERS] if args.source == "all" else [args.source]
        storage = bronze_storage()
        existing_local_root(storage)  # checking never creates storage
        reports = [check_range(storage.object_store(), first, last, source, start=start) for source in sources]
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    except StorageError as exc:
        print(f"{parser.prog}: storage error (exit {EXIT_STORAGE}: the data was not checked): {exc}", file=sys.stderr)
        return EXIT_STORAGE
    print("\n".join(line for report in reports for line in format_report(report)))
    return 0 if all(report.passed for report in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
