"""Benchmark: what each feed's sweep costs in requests, and so in API time at the real pacing.

    python bench/bench_sweeps.py [--volume 6000] [--update-fraction 0.3] [--update-max-days 14] [--seed 1]

The simulator on loopback, paced at 0 s (this measures requests, not PNCP's pacing); every modalidade
(for the contratações), every page, as the pipeline's client sweeps them, for each of the five endpoints:
- a backfilled day: the day swept once, the simulator's clock at 06:00 of the next day (the day closed);
- an hourly run: the day swept at 12:05, as the schedule's run of 11:00 does (the day so far).
Printed: requests, records and wall time, what the requests cost at the real API's 2 s a request
(PNCP_REQUEST_INTERVAL_S), and the contratos' sweep at pages of 50 beside pages of 500 (the same records,
fewer requests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

DAY = dt.date(2025, 10, 22)
REAL_INTERVAL_S = 2.0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pncp_assets.layers import CONTRATOS, LAYERS
    from pncp_assets.pncp.client import PncpClient
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=None, help="contratações per day (default ~6000)")
    parser.add_argument("--update-fraction", type=float, default=0.3)
    parser.add_argument("--update-max-days", type=float, default=14.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    config = SimulatorConfig(seed=args.seed, volume=args.volume, update_fraction=args.update_fraction,
                             update_max_days=args.update_max_days)
    moments = {"backfilled day": dt.datetime.combine(DAY, dt.time(0)) + dt.timedelta(days=1, hours=6),
               "hourly run at 12:05": dt.datetime.combine(DAY, dt.time(12, 5))}
    print(f"One simulated day ({DAY}), {args.update_fraction:.0%} of records changing within "
          f"{args.update_max_days:g} days of publication; API time at {REAL_INTERVAL_S:g} s a request")
    with RunningSimulator(config) as sim:
        for label, now in moments.items():
            sim.sim.configure(now=now)
            print(f"\n{label}:")
            print(f"{'layer':>24} | {'endpoint':>24} | {'requests':>8} | {'records':>7} | {'wall s':>6} | "
                  f"{'API time':>8}")
            total = 0
            for layer in LAYERS:
                client = PncpClient(sim.base_url, request_interval_s=0, endpoint=layer.endpoint)
                start = time.perf_counter()
                t = client.sweep_day(DAY).totals()
                elapsed = time.perf_counter() - start
                total += t["requests"]
                print(f"{layer.source:>24} | {layer.endpoint.label:>24} | {t['requests']:>8} | "
                      f"{t['distinct_ids']:>7} | {elapsed:6.1f} | {t['requests'] * REAL_INTERVAL_S / 60:5.1f} min",
                      flush=True)
            print(f"{'all five':>24} | {'':>24} | {total:>8} | {'':>7} | {'':>6} | "
                  f"{total * REAL_INTERVAL_S / 60:5.1f} min ({total * REAL_INTERVAL_S / 3600:.0%} of an hour)")
        sim.sim.configure(now=moments["backfilled day"])
        sizes = {size: PncpClient(sim.base_url, request_interval_s=0, endpoint=CONTRATOS.endpoint, page_size=size)
                 .sweep_day(DAY).totals() for size in (50, 500)}
        print(f"\ncontratos at pages of 50: {sizes[50]['requests']} requests for {sizes[50]['distinct_ids']} records; "
              f"at 500: {sizes[500]['requests']} for {sizes[500]['distinct_ids']} "
              f"({sizes[50]['requests'] / max(1, sizes[500]['requests']):.1f}x fewer)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
