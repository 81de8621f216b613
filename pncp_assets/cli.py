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
    """Backfill one simulated PNCP day (24 hourly partitions) through Dagster on local storage."""
    parser = _OneLineParser(prog="python -m pncp_assets.cli demo", description=demo_main.__doc__)
    parser.add_argument("--date", default="20251022", type=_day)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--volume", type=int, default=None, help="records in the day (default: ~6000)")
    args = parser.parse_args(argv)

    import os
    import shutil
    import time
    import warnings
    from pathlib import Path

    warnings.filterwarnings("ignore")  # Dagster's preview/deprecation notices are not for the demo's reader
    logging.disable(logging.WARNING)

    import dagster as dg
    import pyarrow.dataset as ds

    from pncp_assets import bronze
    from pncp_assets.definitions import bronze_assets
    from pncp_assets.io_manager import BronzeParquetIOManager
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.resources import BronzeStorage, PncpApi

    day = parse_day(args.date)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and Path("dagster.yaml").exists():
        shutil.copy("dagster.yaml", home / "dagster.yaml")
    storage = BronzeStorage.from_env()
    store = storage.object_store()
    print(f"Bronze: {store.describe()}\nDagster instance: {home}")
    with RunningSimulator(SimulatorConfig(seed=args.seed, volume=args.volume)) as sim:
        print(f"PNCP simulator on {sim.base_url} (loopback only); backfilling {day} hour by hour")
        api = PncpApi(base_url=sim.base_url, request_interval_s=0)
        resources = {"bronze_storage": storage, "pncp_api": api,
                     "bronze_io_manager": BronzeParquetIOManager(storage=storage)}
        instance = dg.DagsterInstance.get()
        started = time.monotonic()
        failed = 0
        for hour in range(24):
            partition = f"{day:%Y-%m-%d}-{hour:02d}:00"
            result = dg.materialize(bronze_assets, partition_key=partition, resources=resources,
                                    instance=instance, raise_on_error=False, tags={"pncp/demo": "true"})
            checks = result.get_asset_check_evaluations()
            md = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
            new = md.get("pncp_new_records", {}).get("new")
            failed += not result.success
            print(f"  [{hour + 1:2d}/24] {partition}: {new.value if new else '?':>5} new records, check "
                  f"{'passed' if checks and all(c.passed for c in checks) else 'FAILED'}, "
                  f"{time.monotonic() - started:5.1f}s", flush=True)
        requests_made = len(sim.sim.log)
    files = [k for k in store.list(bronze.day_prefix("pncp", day)) if bronze.is_delta_key(k)]
    ids = [x for k in files for x in bronze.parquet_ids(store.get(k).data)]
    state = store.get_json(bronze.state_key("pncp", day))
    print("Summary:")
    print(f"  records in Bronze:  {len(ids)} in {len(files)} hourly files ({requests_made} API requests)")
    print(f"  state:              {state['total_processed']} processed IDs, {len(state['executions'])} executions")
    print(f"  duplicates:         {len(ids) - len(set(ids))}")
    root = getattr(store, "root", None)
    if root is not None:
        table = ds.dataset(str(Path(root) / "pncp"), format="parquet", partitioning="hive").to_table(
            columns=["numeroControlePNCP"])
        print(f"  read back as one dataset: {table.num_rows} rows  (pyarrow.dataset over {Path(root) / 'pncp'})")
    print("Open the UI on the same data:")
    print(f"  DAGSTER_HOME={home} .venv/bin/dagster dev -m pncp_assets.definitions -h 127.0.0.1")
    return 1 if failed or len(ids) != len(set(ids)) else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": demo_main, "state": state_main}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m pncp_assets.cli {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
