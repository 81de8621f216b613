"""Command line: the state actions (`python -m pncp_assets.state`) and the demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pncp_assets.brasilia import parse_day


class _OneLineParser(argparse.ArgumentParser):
    """Bad input: exit code 2 and a single line, not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> str:
    try:
        return parse_day(text).strftime("%Y%m%d")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def state_main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(
        prog="python -m pncp_assets.state",
        description="Inspect a day's state, or dry-run the duplicate filter on a JSON list of records.",
    )
    parser.add_argument("--source", default="pncp")
    parser.add_argument("--date", required=True, type=_day, help="YYYYMMDD or YYYY-MM-DD (Brasília day)")
    parser.add_argument("--action", required=True, choices=["load", "summary", "filter"])
    parser.add_argument("--input", default="-", help="filter: a JSON file of records, or - for stdin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)

    from pncp_assets.config import ConfigError
    from pncp_assets.state import StateManager
    from pncp_assets.storage import StorageError

    try:
        manager = StateManager()
        if args.action == "load":
            _print(manager.load_state(args.source, args.date))
        elif args.action == "summary":
            _print(manager.get_state_summary(args.source, args.date))
        else:
            records = _read_records(args.input)
            _, stats = manager.filter_new_records(args.source, args.date, records)
            _print(stats)
    except (ConfigError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"{parser.prog}: storage error: {exc}", file=sys.stderr)
        return 1
    return 0


def _read_records(path: str) -> list[Any]:
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"input is not JSON: {exc}") from None
    if isinstance(records, dict) and isinstance(records.get("records"), list):
        records = records["records"]
    if not isinstance(records, list):
        raise ValueError("input must be a JSON list of records")
    return records


def demo_main(argv: Sequence[str] | None = None) -> int:
    """Sweep a simulated PNCP day at three moments, filing only new records in Bronze each time."""
    parser = _OneLineParser(prog="python -m pncp_assets.cli demo", description=demo_main.__doc__)
    parser.add_argument("--date", default="20251022", type=_day)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  %(message)s", stream=sys.stdout)
    for noisy in ("pncp_assets.pncp.client",):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import datetime as dt

    from pncp_assets import bronze
    from pncp_assets.pncp.client import PncpClient
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.state import StateManager

    day = parse_day(args.date)
    manager = StateManager()
    store = manager.storage
    print(f"Storage: {store.describe()}")
    with RunningSimulator(SimulatorConfig(seed=args.seed)) as sim:
        print(f"PNCP simulator on {sim.base_url} (loopback only), day {day}")
        client = PncpClient(sim.base_url, request_interval_s=0)
        for hour in (11, 17, 23, 23):
            sim.sim.configure(now=dt.datetime.combine(day, dt.time(hour, 59, 59)))
            sweep = client.sweep_day(day)
            records = [r for r, _ in sweep.records()]
            print(f"Run at {hour:02d}:59: swept {len(records)} records in {sweep.totals()['requests']} requests")
            new, stats = manager.filter_new_records("pncp", day, records)
            if new:
                partition = f"{day:%Y-%m-%d}-{hour:02d}:00"
                key = bronze.delta_key("pncp", partition)
                store.put(key, bronze.encode_parquet(new, partition_key=partition))
                print(f"  wrote {len(new)} new records to {key}")
            manager.update_state("pncp", day, [r["numeroControlePNCP"] for r in new], stats)
    print("State summary:")
    _print(manager.get_state_summary("pncp", day))
    print(f"Inspect it yourself: python -m pncp_assets.state --date {day:%Y%m%d} --action summary")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": demo_main, "state": state_main}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m pncp_assets.cli {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
