"""Benchmark: backfilling simulated days of first-seen records (`pncp_raw_pages`, `pncp_new_records`,
`pncp_daily_state`), as the schedule runs them and as a UI backfill runs them.

    python bench/bench_backfill.py [--days 2] [--volume 6000] [--seed 1] [--interval 0] [--skip-ui]
    python bench/bench_backfill.py --baseline db651c3   # and, in the same run, the UI backfill of that commit

1. In process (`materialize`), one day on local storage: 24 single-hour runs (what the hourly schedule
   does) against one run over the day's 24 hours (what a backfill run does with the assets'
   BackfillPolicy).
2. Through real `dagster-webserver` + `dagster-daemon` (a migrated SQLite DAGSTER_HOME, at most 3 runs
   at a time, the shipped pools): an asset backfill of the three assets over `--days` finished days,
   launched through GraphQL exactly as the UI's *Materialize -> pick partitions* launches it; wall time
   from launch to completion, runs, API requests against the days' pages.

The simulator runs on loopback with `--interval` seconds between requests (0 by default: this measures
the pipeline, not PNCP's pacing; against the real API a day's sweep is about 4.5 minutes at 2 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

FIRST_DAY = dt.date(2025, 10, 22)


def pages_of(records: list[dict]) -> int:
    counts: dict[int, int] = {}
    for r in records:
        counts[r["modalidadeId"]] = counts.get(r["modalidadeId"], 0) + 1
    return sum(-(-n // 50) for n in counts.values())


def in_process(volume: int | None, seed: int, single_run: bool) -> dict:
    import dagster as dg

    from pncp_assets import bronze, layout
    from pncp_assets.defs.assets import first_seen
    from pncp_assets.defs.io_manager import BronzeParquetIOManager
    from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    hours = [f"{FIRST_DAY:%Y-%m-%d}-{h:02d}:00" for h in range(24)]
    with tempfile.TemporaryDirectory() as tmp, RunningSimulator(SimulatorConfig(seed=seed, volume=volume)) as sim:
        storage = BronzeStorage(data_dir=tmp)
        resources = {"bronze_storage": storage, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
                     "pncp_api": PncpApi(base_url=sim.base_url, request_interval_s=0),
                     "metrics_gateway": MetricsGateway()}
        instance = dg.DagsterInstance.ephemeral()
        start = time.perf_counter()
        if single_run:
            tags = {"dagster/asset_partition_range_start": hours[0], "dagster/asset_partition_range_end": hours[-1]}
            assert dg.materialize(first_seen.assets, resources=resources, instance=instance, tags=tags).success
        else:
            for hour in hours:
                assert dg.materialize(first_seen.assets, partition_key=hour, resources=resources,
                                      instance=instance).success
        elapsed = time.perf_counter() - start
        store = storage.object_store()
        files = layout.day_delta_keys(store, "pncp", FIRST_DAY)
        ids = [x for k in files for x in bronze.parquet_ids(store.get(k).data)]
        records = sim.sim.all_records(FIRST_DAY)
        assert len(ids) == len(set(ids)) == len(records), "duplicates or records lost"
        parquet_bytes = sum(len(store.get(k).data) for k in files)
        json_bytes = len(json.dumps(records, ensure_ascii=False).encode("utf-8"))
        return {"seconds": elapsed, "runs": 1 if single_run else 24, "requests": len(sim.sim.log),
                "pages": pages_of(records), "records": len(ids), "ratio": parquet_bytes / json_bytes}


def ui_backfill(days: int, volume: int | None, seed: int, interval: float, code: Path) -> dict:
    from pncp_assets import bronze, layout
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.dagster_stack import DagsterStack

    dates = [FIRST_DAY + dt.timedelta(days=i) for i in range(days)]
    partitions = [f"{d:%Y-%m-%d}-{h:02d}:00" for d in dates for h in range(24)]
    sim_args = ["--seed", str(seed)] + (["--volume", str(volume)] if volume else [])
    with tempfile.TemporaryDirectory() as tmp:
        env = {"STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(Path(tmp) / "data"),
               "PNCP_REQUEST_INTERVAL_S": str(interval), "PNCP_STEP_RETRY_DELAY_S": "1"}
        with DagsterStack(Path(tmp), env, sim_args, code_dir=code) as stack:
            result = stack.backfill(["pncp_raw_pages", "pncp_new_records", "pncp_daily_state"], partitions)
        store = LocalObjectStore(Path(tmp) / "data" / "bronze")
        sim = PncpSimulator(SimulatorConfig(seed=seed, volume=volume))
        expected = {d: {r["numeroControlePNCP"]: r for r in sim.all_records(d)} for d in dates}
        ids, misfiled = [], 0
        for d in dates:
            for key in layout.day_delta_keys(store, "pncp", d):
                for x in bronze.parquet_ids(store.get(key).data):
                    ids.append(x)
                    misfiled += expected[d][x]["dataPublicacaoPncp"][11:13] != layout.partition_of_delta(key)[11:13]
        total = sum(len(e) for e in expected.values())
        assert len(ids) == len(set(ids)) == total, f"{len(ids)} rows, {len(set(ids))} distinct, {total} expected"
        return {**result, "runs": len(result["runs"]),
                "pages": sum(pages_of(list(e.values())) for e in expected.values()), "records": total,
                "misfiled": misfiled}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2, help="days in the UI backfill (default 2)")
    parser.add_argument("--volume", type=int, default=None, help="records per day (default ~6000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between API requests (default 0)")
    parser.add_argument("--skip-ui", action="store_true", help="only the in-process figures")
    parser.add_argument("--ui-only", action="store_true", help="only the UI backfill")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the UI backfill on this git revision of the project, first (a worktree "
                             "in a temporary folder), and print the ratios")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parents[1]

    baseline = None
    if args.baseline and not args.skip_ui:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(tree), args.baseline],
                           check=True, capture_output=True)
            try:
                baseline = ui_backfill(args.days, args.volume, args.seed, args.interval, tree)
            finally:
                subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(tree)], check=False)
        print_ui(f"{args.baseline} (baseline)", args.days, baseline)

    if not args.ui_only:
        print("1. In process, one day, local storage")
        print(f"{'shape':>22} | {'runs':>4} | {'wall s':>6} | {'records':>7} | {'requests':>8} | {'pages':>5} | "
              f"{'req/page':>8} | {'Parquet/JSON':>12}")
        for label, single in (("24 single-hour runs", False), ("one run over 24 hours", True)):
            r = in_process(args.volume, args.seed, single)
            print(f"{label:>22} | {r['runs']:4d} | {r['seconds']:6.1f} | {r['records']:7d} | {r['requests']:8d} | "
                  f"{r['pages']:5d} | {r['requests'] / r['pages']:8.2f} | {r['ratio']:12.2f}", flush=True)
    if not args.skip_ui:
        r = ui_backfill(args.days, args.volume, args.seed, args.interval, here)
        print_ui("this tree", args.days, r)
        if baseline:
            print(f"   against the baseline: {baseline['runs'] / r['runs']:.0f}x fewer runs, "
                  f"{baseline['seconds'] / r['seconds']:.0f}x faster")
    return 0


def print_ui(label: str, days: int, r: dict) -> None:
    print(f"2. UI asset backfill through webserver + daemon, {label}: {days} days x 24 hours x 3 assets")
    print(f"   {r['status']}: {r['runs']} runs, {r['seconds']:.0f} s wall, {r['records']} records, "
          f"{r['requests']} requests for {r['pages']} pages ({r['requests'] / r['pages']:.2f} per page), "
          f"{r['misfiled']} records outside their publication hour", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
