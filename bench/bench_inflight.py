"""Benchmark: how close a day's sweep comes to the API's own limit, with the client's requests one at a time.

    python bench/bench_inflight.py [--scale 0.1] [--volume 6000]

The pacing allows one request per `PNCP_REQUEST_INTERVAL_S` (2 s against the real API: 1,800 an hour). Pages take
time to answer (about 3 s for 50 contratações and 5 to 8 s for 500 contratos, as others measured), and a client
that waits for each page before asking the next cannot use the pacing's whole budget. Here the simulator models
that time (`TimeModel`), everything scaled by `--scale` (0.1: 2 s of pacing are 0.2 s, a 3 s page 0.3 s), and one
business day of each endpoint is swept by today's client. Printed per endpoint: requests, wall seconds, requests
per hour in the API's time, the ratio to the pacing's ceiling, and the most requests in flight at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAY = dt.date(2025, 10, 22)
PACING_S = 2.0
# (layer, seconds a page takes before its rows, seconds per row): 50 contratações in about 3 s, 500 contratos
# in about 6.5 s.
SHAPES = (("pncp", 0.5, 0.05), ("pncp_contratos", 0.5, 0.012))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--volume", type=int, default=6000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from pncp_assets.layers import layer_named
    from pncp_assets.pncp.client import PncpClient
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    print(f"pacing {PACING_S} s (ceiling {3600 / PACING_S:.0f} requests an hour), time scale {args.scale}")
    for source, latency_s, per_row_s in SHAPES:
        config = SimulatorConfig(seed=3, volume=args.volume, latency_s=latency_s, latency_per_row_s=per_row_s,
                                 time_scale=args.scale)
        with RunningSimulator(config) as sim:
            client = PncpClient(sim.base_url, endpoint=layer_named(source).endpoint,
                                request_interval_s=PACING_S * args.scale, modalidades=tuple(range(1, 20)))
            start = time.perf_counter()
            client.sweep_day(DAY)
            wall = time.perf_counter() - start
            log = list(sim.sim.log)
        per_hour = len(log) / (wall / args.scale) * 3600
        print(f"{source:<15} {len(log):>5} requests in {wall:6.1f} s: {per_hour:6.0f} an hour of the API's time, "
              f"{per_hour / (3600 / PACING_S):.2f} of the ceiling; at most {max(e.in_flight for e in log)} in flight")


if __name__ == "__main__":
    main()
