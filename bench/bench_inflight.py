"""Benchmark: how close a day's sweep comes to the API's own limit, one request at a time and three in flight.

    python bench/bench_inflight.py [--scale 0.3] [--volume 6000]

The pacing allows one request per `PNCP_REQUEST_INTERVAL_S` (2 s against the real API: 1,800 an hour). Pages take
time to answer (about 3 s for 50 contratações and 5 to 8 s for 500 contratos, as others measured), and a client
that waits for each page before asking the next cannot use the pacing's whole budget. Here the simulator models
that time (`TimeModel`), everything scaled by `--scale` (0.3: 2 s of pacing are 0.6 s, a 3 s page 0.9 s; the
simulator's and the client's own CPU per page is not scaled, and at 0.1 it made a 500-row page cost a third more
than its modelled time; the simulator runs in its own process, so that its CPU and the client's do not queue for
one interpreter's lock), with the
real API's limits (500 or 504 above six requests in flight, 429 for a start less than 1 s after the last), and
one business day of each endpoint is swept twice: one request at a time (`PNCP_MAX_IN_FLIGHT=1`, the client before
issue 31) and as shipped (up to 3 in flight, starting with 2). Printed per endpoint and client: requests, wall
seconds, requests per hour in the API's time, the ratio to the pacing's ceiling, the most requests in flight at
once, and the 429s and 5xx met. Then the whole history per feed: requests, and days at each client's measured
ratio (`HISTORY`: the volumes docs/PNCP_API.md gives).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAY = dt.date(2025, 10, 22)
PACING_S = 2.0
# (layer, seconds a page takes before its rows, seconds per row): 50 contratações in about 3 s, 500 contratos
# in about 6.5 s.
SHAPES = (("pncp", 0.5, 0.05), ("pncp_contratos", 0.5, 0.012))
CLIENTS = (("one at a time", 1, 1), ("3 in flight", 3, 2))  # (name, max_in_flight, start_in_flight)
HISTORY_DAYS = (dt.date(2026, 12, 1) - dt.date(2021, 1, 1)).days
# (feed, records since 2021, rows a page, lists a day, the shape whose ratio applies): docs/PNCP_API.md "Volumes".
HISTORY = (("contratações (pncp)", 4_000_000, 50, 19, "pncp"),
           # Versions: one measured day listed 2.6 times the day's publications (docs/PNCP_API.md); a guess.
           ("their versions (pncp_versions)", 10_400_000, 50, 19, "pncp"),
           ("contratos (pncp_contratos)", 4_700_000, 500, 1, "pncp_contratos"),
           ("atas (pncp_atas_versions)", 1_140_000, 500, 1, "pncp_contratos"))


@contextlib.contextmanager
def simulator(volume: int, **time_model: float) -> Iterator[str]:
    """`python -m pncp_assets.pncp.simulator` in its own process, with the time model; its base URL once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "pncp_assets.pncp.simulator", "--port", str(port), "--seed", "3",
                                "--volume", str(volume), "--config", json.dumps(time_model)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/_sim/state", timeout=2).ok:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--volume", type=int, default=6000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from pncp_assets.layers import layer_named
    from pncp_assets.pncp.client import PncpClient

    print(f"pacing {PACING_S} s (ceiling {3600 / PACING_S:.0f} requests an hour), time scale {args.scale}")
    ratios: dict[tuple[str, str], float] = {}
    for source, latency_s, per_row_s in SHAPES:
        model = {"latency_s": latency_s, "latency_per_row_s": per_row_s, "time_scale": args.scale,
                 "max_in_flight": 6, "min_start_interval_s": 1.0}
        for name, most, start in CLIENTS:
            with simulator(args.volume, **model) as url:
                # The simulator builds a day's records at its first request (seconds of its CPU, which the real
                # API does not spend): once, before the clock starts, and left out of the count.
                endpoint = layer_named(source).endpoint
                requests.get(f"{url}/api/consulta{endpoint.path}", timeout=600, params={
                    "dataInicial": f"{DAY:%Y%m%d}", "dataFinal": f"{DAY:%Y%m%d}", "pagina": 1,
                    "tamanhoPagina": endpoint.page_size, **({"codigoModalidadeContratacao": 6}
                                                            if endpoint.by_modalidade else {})})
                client = PncpClient(url, endpoint=layer_named(source).endpoint,
                                    request_interval_s=PACING_S * args.scale, modalidades=tuple(range(1, 20)),
                                    max_in_flight=most, start_in_flight=start, backoff_initial_s=2 * args.scale,
                                    backoff_max_s=60 * args.scale)
                started = time.perf_counter()
                client.sweep_day(DAY)
                wall = time.perf_counter() - started
                log = requests.get(f"{url}/_sim/log", timeout=30).json()[1:]
            per_hour = len(log) / (wall / args.scale) * 3600
            ratios[source, name] = per_hour / (3600 / PACING_S)
            print(f"{source:<15} {name:<14} {len(log):>5} requests in {wall:6.1f} s: {per_hour:6.0f} an hour of the "
                  f"API's time, {ratios[source, name]:.2f} of the ceiling; at most "
                  f"{max(e['in_flight'] for e in log)} in flight, {sum(e['status'] == 429 for e in log)} 429s, "
                  f"{sum(e['status'] >= 500 for e in log)} 5xx")
        print(f"{source:<15} 3 in flight / one at a time: "
              f"{ratios[source, '3 in flight'] / ratios[source, 'one at a time']:.2f}x")

    print(f"\nthe whole history, {HISTORY_DAYS} days since 2021-01-01: requests = pages of rows + one page 1 per "
          "list a day")
    for feed, records, rows, lists, shape in HISTORY:
        asked = -(-records // rows) + HISTORY_DAYS * lists
        at_ceiling = asked / (3600 / PACING_S) / 24
        print(f"{feed:<31} {asked:>8,} requests: {at_ceiling:5.1f} days at the ceiling, "
              + ", ".join(f"{at_ceiling / ratios[shape, name]:5.1f} days {name}" for name, _, _ in CLIENTS))


if __name__ == "__main__":
    main()
