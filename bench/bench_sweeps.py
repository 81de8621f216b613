"""Benchmark: a day's sweep of `/publicacao` beside the same day's sweep of `/atualizacao`.

    python bench/bench_sweeps.py [--volume 6000] [--update-fraction 0.3] [--update-max-days 14] [--seed 1]

The simulator on loopback, paced at 0 s (this measures requests, not PNCP's pacing), its clock at 06:00
of the next day; every modalidade, every page, as the pipeline's client sweeps them. Printed: requests,
records and wall time of each sweep, and what the requests cost against the real API's pacing
(PNCP_REQUEST_INTERVAL_S = 2 s): the part of each hour's API budget that sweeping the day on both
endpoints takes.
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
    from pncp_assets.pncp.client import ATUALIZACAO, PUBLICACAO, PncpClient
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=None, help="records per day (default ~6000)")
    parser.add_argument("--update-fraction", type=float, default=0.3)
    parser.add_argument("--update-max-days", type=float, default=14.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    config = SimulatorConfig(seed=args.seed, volume=args.volume, update_fraction=args.update_fraction,
                             update_max_days=args.update_max_days, now=dt.datetime.combine(DAY, dt.time(0))
                             + dt.timedelta(days=1, hours=6))
    print(f"One simulated day ({DAY}), {args.update_fraction:.0%} of records changing within "
          f"{args.update_max_days:g} days of publication")
    print(f"{'endpoint':>12} | {'requests':>8} | {'records':>7} | {'wall s':>6} | {'at 2 s/request':>14}")
    total = 0
    with RunningSimulator(config) as sim:
        for endpoint in (PUBLICACAO, ATUALIZACAO):
            client = PncpClient(sim.base_url, request_interval_s=0, endpoint=endpoint)
            start = time.perf_counter()
            result = client.sweep_day(DAY)
            elapsed = time.perf_counter() - start
            t = result.totals()
            total += t["requests"]
            print(f"{endpoint.rsplit('/', 1)[1]:>12} | {t['requests']:>8} | {t['distinct_ids']:>7} | {elapsed:6.1f} | "
                  f"{t['requests'] * REAL_INTERVAL_S / 60:11.1f} min", flush=True)
    print(f"both, at 2 s per request: {total * REAL_INTERVAL_S / 60:.1f} min of each hour's API budget "
          f"({total * REAL_INTERVAL_S / 3600:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
