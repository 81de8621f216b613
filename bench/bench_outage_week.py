"""Benchmark: a week backfilled through PNCP outages, one run per day as a backfill runs them.

    python bench/bench_outage_week.py [--volume 400] [--bound 6]

Seven simulated days, each run over its 24 hours (the assets' backfill policy) with the shipped client (up to 3
requests in flight) against a simulator with latency. Two outages are switched on as the days go: before day 3,
one shorter than the runs' outage bound (`--bound` seconds, standing for PNCP_OUTAGE_BOUND_MINUTES), which the
run rides out; before day 5, one longer, which fails that day's run with "PNCP unavailable since ..." and is over
by the next day's run. The failed day is then run again (what `python -m pncp_assets.backfill --resume ID` launches).
Printed: each run's outcome and time, then per day the records PNCP lists, those Bronze holds, missing and twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAYS = [dt.date(2025, 10, 20) + dt.timedelta(days=n) for n in range(7)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=400)
    parser.add_argument("--bound", type=float, default=6.0, help="the runs' outage bound, seconds")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    import dagster as dg

    from pncp_assets.layout import day_hours
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline, storage_resource

    # Before these days, PNCP goes down for this many seconds (as a fraction of the bound).
    outages = {DAYS[2]: 0.5 * args.bound, DAYS[4]: 1.5 * args.bound}
    config = SimulatorConfig(seed=9, volume=args.volume, latency_s=0.05, latency_per_row_s=0.001)
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance, RunningSimulator(config) as sim:
        store = LocalObjectStore(Path(tmp) / "bronze")
        p = Pipeline(sim, store, storage_resource(store), instance=instance,
                     outage_bound_minutes=args.bound / 60)
        p.sim.sim.configure(now=dt.datetime.combine(DAYS[-1] + dt.timedelta(days=2), dt.time(12)))
        failed, started = [], time.perf_counter()

        def run(day: dt.date) -> None:
            t0 = time.perf_counter()
            result = p.run_range(day_hours(day)[0], day_hours(day)[-1], raise_on_error=False)
            tags = instance.get_run_by_id(result.run_id).tags
            note = tags.get("pncp/outage") or ""
            print(f"{day}: {'succeeded' if result.success else 'FAILED'} in {time.perf_counter() - t0:5.1f} s"
                  + (f"  [{note}]" if note else "")
                  + ("" if result.success else f"  unavailable since {tags.get('pncp/unavailable_since')}"))
            if not result.success:
                failed.append(day)

        for day in DAYS:
            if day in outages:
                now = sim.sim.time.elapsed(sim.sim.config)
                sim.sim.configure(outages=[(now, now + outages[day])])
                print(f"{day}: PNCP down for {outages[day]:.1f} s from now (bound {args.bound:.1f} s)")
            run(day)
        for day in list(failed):
            print(f"{day}: resumed")
            failed.remove(day)
            run(day)
        wall = time.perf_counter() - started

        total_missing = total_twice = 0
        for day in DAYS:
            listed = {r["numeroControlePNCP"] for r in sim.sim.visible_records(day) if r["modalidadeId"] in (6, 8, 9)}
            filed = [x for ids in p.delta_ids(day).values() for x in ids]
            missing, twice = len(listed - set(filed)), len(filed) - len(set(filed))
            total_missing, total_twice = total_missing + missing, total_twice + twice
            print(f"{day}: {len(listed)} records listed, {len(set(filed))} in Bronze, {missing} missing, "
                  f"{twice} twice")
        print(f"week: {total_missing} missing, {total_twice} twice, {len(failed)} days still failed, {wall:.0f} s")


if __name__ == "__main__":
    main()
