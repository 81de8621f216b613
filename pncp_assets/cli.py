"""Command line: `python -m pncp_assets.cli demo|ui|state`, and the state actions (`python -m pncp_assets.state`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pncp_assets.brasilia import parse_day
from pncp_assets.cli_args import OneLineParser, day_arg, existing_local_root, log_to_stderr


def _print(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def state_main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m pncp_assets.state",
        description="Inspect a day's state (as the original document's JSON), dry-run the pipeline's duplicate "
        "filter on a JSON list of records, rebuild the state from the day's Bronze files, archive the states of "
        "old days, or apply the whole retention policy (what the pncp_retention schedule runs).",
    )
    from pncp_assets.layers import LAYERS, layer_named

    parser.add_argument("--source", default="pncp", choices=[layer.source for layer in LAYERS] + ["all"],
                        help="the layer (default pncp: " + ", ".join(f"{x.source} ({x.title})" for x in LAYERS)
                        + "); archive and retention also take all")
    parser.add_argument("--date", type=day_arg, help="YYYYMMDD or YYYY-MM-DD (Brasília day): load, summary, filter, "
                        "rebuild, ledger")
    parser.add_argument("--action", required=True, choices=["load", "summary", "filter", "rebuild", "ledger",
                                                             "archive", "retention"])
    parser.add_argument("--before", type=day_arg, help="archive: the states of the days before this one")
    parser.add_argument("--input", default="-", help="filter: a JSON file of records, or - for stdin")
    parser.add_argument("--dry-run", action="store_true",
                        help="rebuild, archive, retention: print what would be done, change nothing")
    args = parser.parse_args(argv)
    day_actions = ("load", "summary", "filter", "rebuild", "ledger")
    if args.action in day_actions and not args.date:
        parser.error(f"--action {args.action} needs --date")
    if args.action == "archive" and not args.before:
        parser.error("--action archive needs --before YYYYMMDD")
    if args.source == "all" and args.action in day_actions:
        parser.error(f"--action {args.action} takes one layer in --source, not all")

    from pncp_assets.config import ConfigError
    from pncp_assets.defs.environment import bronze_storage, retention
    from pncp_assets.state import StateManager
    from pncp_assets.storage import StorageError

    log_to_stderr()
    layers = list(LAYERS) if args.source == "all" else [layer_named(args.source)]
    try:
        storage = bronze_storage()
        existing_local_root(storage)  # never creates storage where a typo points
        store = storage.object_store()
        if args.action in ("archive", "retention"):
            return _retention_action(args, store, layers, retention())
        records = _read_records(args.input) if args.action == "filter" else None
        manager = StateManager(store)
        if args.action == "load":
            _print(manager.load_state(args.source, args.date))
        elif args.action == "summary":
            summary = manager.get_state_summary(args.source, args.date)
            if not summary["state_exists"]:
                print(f"No state file for {args.source} {parse_day(args.date)}: nothing ingested that day yet",
                      file=sys.stderr)
            _print(summary)
        elif args.action == "rebuild":
            _print(manager.rebuild_state(args.source, args.date, dry_run=args.dry_run))
        elif args.action == "ledger":
            from pncp_assets import ledger

            _print(ledger.day_report(manager, args.source, parse_day(args.date)))
        else:
            _, stats = manager.filter_new_records(args.source, args.date, records or [])
            _print(stats)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"{parser.prog}: storage error: {exc}", file=sys.stderr)
        return 3  # as the checks command: the storage could not be reached or read
    return 0


def _retention_action(args: Any, store: Any, layers: list[Any], settings: Any) -> int:
    """`archive --before D`: the states of the days before D; `retention`: the whole policy, from today."""
    import datetime as dt

    from pncp_assets.brasilia import TZ, utc_now
    from pncp_assets.retention import apply_retention, archive_states

    if args.action == "archive":
        before = parse_day(args.before)
        if before > utc_now().astimezone(TZ).date() - dt.timedelta(days=2):
            raise ValueError(f"--before {before}: a day that may still be ingested (the day close sweeps "
                             "yesterday); archive finished days only")
        reports = [archive_states(store, layer, before, dry_run=args.dry_run) for layer in layers]
    else:
        reports = apply_retention(store, layers, utc_now().astimezone(TZ).date(), settings.policy(),
                                  dry_run=args.dry_run)
    for report in reports:
        print(("would: " if args.dry_run else "") + report.line(), file=sys.stderr)
    _print([vars(r) for r in reports])
    return 0


def _read_records(path: str) -> list[Any]:
    if path != "-" and not Path(path).is_file():
        raise ValueError(f"--input {path}: {'is a directory' if Path(path).is_dir() else 'no such file'}")
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"input is not JSON: {exc}") from None
    if isinstance(records, dict) and isinstance(records.get("records"), list):
        records = records["records"]
    if not isinstance(records, list):
        raise ValueError("input must be a JSON list of records")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from pncp_assets.demo import demo_main, ui_main

    commands = {"demo": demo_main, "ui": ui_main, "state": state_main}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m pncp_assets.cli {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
