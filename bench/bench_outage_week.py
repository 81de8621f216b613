"""Benchmark: a week backfilled through PNCP outages and a slow spell, from the command line, by a real daemon.

    python bench/bench_outage_week.py [--volume 1500] [--bound 8]

A real `dagster-webserver` and `dagster-daemon` on a fresh instance (the shipped `dagster.yaml`, one run at a
time), the simulator in its own process with latency. `python -m pncp_assets.backfill --from .. --to ..` launches
seven days of the first-seen feed; the daemon runs them one run per day. While it runs, PNCP is switched off
and on through the simulator's control endpoint, each time once it has answered so many requests: for three
quarters of the runs' outage bound (`--bound` seconds, standing for PNCP_OUTAGE_BOUND_MINUTES: the run sweeping
then rides it out), for 2.5 times it (the run sweeping then fails with "PNCP unavailable since ..."; the next one
waits out the rest, or fails too), and a slow spell (pages ten times slower for 10 s). Once the backfill ends,
`--resume ID` launches what it left undone.
Printed: what was switched and when, each run's outcome, time and `pncp/outage` tag, then per day the records
PNCP lists, those Bronze holds, missing and twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAYS = [dt.date(2025, 10, 20) + dt.timedelta(days=n) for n in range(7)]
MODALIDADES = (6, 8, 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=1500)
    parser.add_argument("--bound", type=float, default=8.0, help="the runs' outage bound, seconds")
    args = parser.parse_args()
    import dagster as dg

    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.dagster_stack import DagsterStack
    from pncp_assets_tests.support.pipeline import Pipeline

    model = {"latency_s": 0.2, "latency_per_row_s": 0.002}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"STORAGE_TYPE": "local", "PNCP_DATA_DIR": f"{tmp}/data", "PNCP_REQUEST_INTERVAL_S": "0.05",
               "PNCP_MODALIDADES": ",".join(map(str, MODALIDADES)), "PNCP_OUTAGE_BOUND_MINUTES": str(args.bound / 60)}
        sim_args = ["--seed", "9", "--volume", str(args.volume), "--config", json.dumps(model)]
        with DagsterStack(Path(tmp), env, sim_args, max_concurrent_runs=1) as stack:
            started = time.monotonic()

            def sim(**config: object) -> None:
                requests.post(f"{stack.sim_url}/_sim/config", data=json.dumps(config), timeout=10).raise_for_status()

            def cli(*argv: str) -> str:
                done = subprocess.run([sys.executable, "-m", "pncp_assets.backfill", *argv, "--interval", "2"],
                                      env=stack.env, capture_output=True, text=True, timeout=3600)
                print(done.stdout + done.stderr, end="", flush=True)
                return done.stdout

            def weather() -> None:
                """PNCP's afternoon, each change once the simulator has answered so many requests (mid-sweep)."""
                for after, hold, what, on, off in (
                        (45, 0.75 * args.bound, "PNCP down", {"outages": [[0, 1e12]]}, {"outages": []}),
                        (120, 2.5 * args.bound, "PNCP down", {"outages": [[0, 1e12]]}, {"outages": []}),
                        (190, 10.0, "pages ten times slower", {"slow_spells": [[0, 1e12, 10]]}, {"slow_spells": []})):
                    while len(stack.simulator_log()) < after and not finished.is_set():
                        time.sleep(0.1)
                    sim(**on)
                    print(f"[{time.monotonic() - started:5.0f} s] {what} for {hold:.0f} s, after {after} requests",
                          flush=True)
                    time.sleep(hold)
                    sim(**off)

            finished = threading.Event()
            switcher = threading.Thread(target=weather, daemon=True)
            switcher.start()
            out = cli("--from", str(DAYS[0]), "--to", str(DAYS[-1]), "--feeds", "pncp")
            backfill_id = re.search(r"(\w+): launched", out).group(1)  # type: ignore[union-attr]
            finished.set()
            switcher.join()
            resumed = cli("--resume", backfill_id)
            runs = stack.backfill_runs(backfill_id)
            again = re.search(r"(\w+): launched", resumed)
            if again:
                runs += stack.backfill_runs(again.group(1))
            wall = time.monotonic() - started
            os.environ["DAGSTER_HOME"] = str(stack.home)
            instance = dg.DagsterInstance.get()
            for run in sorted(runs, key=lambda r: r["startTime"] or 0):
                tags = {t["key"]: t["value"] for t in run["tags"]}
                seconds = (run["endTime"] or 0) - (run["startTime"] or 0)
                print(f"run {run['runId'][:8]} {tags.get('dagster/asset_partition_range_start', '')[:10]} "
                      f"{run['status']:<8} {seconds:5.1f} s  {tags.get('pncp/outage', '')}")
                for event in instance.all_logs(run["runId"]):
                    failure = event.dagster_event if event.dagster_event else None
                    if failure and failure.event_type == dg.DagsterEventType.STEP_FAILURE:
                        error = failure.event_specific_data.error  # type: ignore[union-attr]
                        print(f"    {(error.cause or error).message.strip()[:300]}")

            store = LocalObjectStore(Path(tmp) / "data" / "bronze")
            truth = PncpSimulator(SimulatorConfig(seed=9, volume=args.volume))
            total_missing = total_twice = 0
            for day in DAYS:
                listed = {r["numeroControlePNCP"] for r in truth.all_records(day) if r["modalidadeId"] in MODALIDADES}
                filed = [x for ids in Pipeline(None, store, None).delta_ids(day).values()  # type: ignore[arg-type]
                         for x in ids]
                missing, twice = len(listed - set(filed)), len(filed) - len(set(filed))
                total_missing, total_twice = total_missing + missing, total_twice + twice
                print(f"{day}: {len(listed)} records listed, {len(set(filed))} in Bronze, {missing} missing, "
                      f"{twice} twice")
            failed = sum(r["status"] == "FAILURE" for r in runs)
            print(f"week: {len(runs)} runs ({failed} failed in the outage, resumed), {total_missing} missing, "
                  f"{total_twice} twice, {wall:.0f} s from launch to the last run's end")


if __name__ == "__main__":
    main()
