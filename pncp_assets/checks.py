"""The checks command: the `bronze_consistent` rules over a day or a range of days (`consistency.check_range`),
for CI.

    python -m pncp_assets.checks --from 2025-10-01 --to 2025-10-31 [--source all | LAYER]

Uses the storage the environment configures (as the pipeline does). Reads Bronze and the day states only:
no API call, nothing written. Every layer by default (`layers.LAYERS`: the contratações, contratos and
atas, first seen and versions, each keyed as its layer says). For every hourly partition of the range: no
ID twice in its delta, none of its IDs in another delta of its day, the day's state equal to the day's
Bronze IDs. Beyond what a single hour's check can see: every hour that is due (ended
`layout.DUE_AFTER_END` ago) was ingested, its run recorded in the day's state (`materialized_hours`) or its
delta in Bronze, so a hole in the data fails even when what is there is consistent; and IDs present in two
different days (the API moved a record's publication date) are reported as a warning; and a day whose latest
closing sweep counted more records than Bronze holds (the completeness ledger, `ledger.py`) fails, naming
the modalidade and the shortfall. Days before the
pipeline's first partition (`PNCP_START_DATE`) are not judged, and said so.

Exit codes: 0 every rule holds; 1 the data failed (offending IDs and files, or the hours never ingested,
listed); 2 bad input (an unknown source, a range wholly in the future or wholly before the start date, a
local storage folder that does not exist); 3 the storage could not be reached or read (S3 credentials,
endpoint, bucket): the data was not judged at all.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pncp_assets import layout
from pncp_assets.brasilia import parse_day, utc_now
from pncp_assets.consistency import check_range, format_report
from pncp_assets.layers import LAYERS, layer_named

MAX_DAYS = 3660  # ten years: a larger range is a typo
EXIT_STORAGE = 3  # the storage could not be reached or read: not a verdict on the data


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
        layers = LAYERS if args.source == "all" else [layer_named(args.source)]
        storage = bronze_storage()
        existing_local_root(storage)  # checking never creates storage
        reports = [check_range(storage.object_store(), first, last, layer, start=start) for layer in layers]
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    except StorageError as exc:
        print(f"{parser.prog}: storage error (exit {EXIT_STORAGE}: the data was not checked): {exc}", file=sys.stderr)
        return EXIT_STORAGE
    print("\n".join(line for report in reports for line in format_report(report)))
    return 0 if all(report.passed for report in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
