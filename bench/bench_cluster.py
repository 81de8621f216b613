"""Benchmark: a multi-day backfill on the local cluster (`scripts/cluster.sh`) with 1 and with 2 Celery
run workers.

    python bench/bench_cluster.py [--days 4] [--volume 2000] [--interval 0.25] [--workers 1,2]

Each configuration gets a fresh cluster (PostgreSQL, Redis, N workers, webserver, daemon), local Bronze
storage and the simulator on loopback with `--interval` seconds between requests. The three assets over
`--days` finished days are backfilled through GraphQL as the UI launches it (one run per day); printed:
wall time from launch to completion, runs, API requests, and how much of the wall time the API budget
alone accounts for (requests x interval: the `pncp_api` pool lets one run talk to PNCP at a time, on
every machine, by design), and how many runs were executing at once on average (run-seconds / the span
from the first run's start to the last run's end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

FIRST_DAY = dt.date(2025, 10, 22)


def backfill(workers: int, days: int, volume: int, seed: int, interval: float) -> dict:
    from pncp_assets import bronze, layout
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.cluster import ClusterStack

    dates = [FIRST_DAY + dt.timedelta(days=i) for i in range(days)]
    partitions = [f"{d:%Y-%m-%d}-{h:02d}:00" for d in dates for h in range(24)]
    with tempfile.TemporaryDirectory() as tmp:
        env = {"STORAGE_TYPE": "local", "PNCP_DATA_DIR": str(Path(tmp) / "data"),
               "PNCP_REQUEST_INTERVAL_S": str(interval), "PNCP_CLUSTER_WORKERS": str(workers)}
        with ClusterStack(Path(tmp), env, ["--seed", str(seed), "--volume", str(volume)]) as cluster:
            result = cluster.backfill(["pncp_raw_pages", "pncp_new_records", "pncp_daily_state"], partitions)
        store = LocalObjectStore(Path(tmp) / "data" / "bronze")
        sim = PncpSimulator(SimulatorConfig(seed=seed, volume=volume))
        ids = [x for d in dates for k in layout.day_delta_keys(store, "pncp", d)
               for x in bronze.parquet_ids(store.get(k).data)]
        expected = sum(len(sim.all_records(d)) for d in dates)
        assert len(ids) == len(set(ids)) == expected, f"{len(ids)} rows, {len(set(ids))} distinct, {expected} expected"
    runs = result["runs"]
    busy = sum(r["endTime"] - r["startTime"] for r in runs if r["startTime"] and r["endTime"])
    first, last = min(r["startTime"] for r in runs), max(r["endTime"] for r in runs)
    return {**result, "runs": len(runs), "records": expected, "overlap": busy / (last - first)}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--volume", type=int, default=2000, help="records per day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between API requests")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    print(f"Cluster backfill: {args.days} days x 24 hours x 3 assets, {args.volume} records/day, "
          f"{args.interval} s between API requests")
    print(f"{'workers':>7} | {'status':>17} | {'runs':>4} | {'wall s':>6} | {'requests':>8} | {'API budget s':>12} | "
          f"{'records':>7} | {'runs at once':>12}")
    results = {}
    for workers in (int(w) for w in args.workers.split(",")):
        r = backfill(workers, args.days, args.volume, args.seed, args.interval)
        results[workers] = r
        print(f"{workers:>7} | {r['status']:>17} | {r['runs']:>4} | {r['seconds']:6.1f} | {r['requests']:>8} | "
              f"{r['requests'] * args.interval:12.1f} | {r['records']:>7} | {r['overlap']:12.2f}", flush=True)
    if len(results) == 2:
        (a, ra), (b, rb) = sorted(results.items())
        print(f"{b} workers against {a}: {ra['seconds'] / rb['seconds']:.2f}x the speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
