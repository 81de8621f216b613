"""Benchmark: what pushing the metrics costs a run.

    python bench/bench_metrics.py [--rounds 3] [--volume 1500] [--held 20000] [--compare-at 2000]

A day of all five layers in one range run (as a backfill runs it: 24 hours, every asset and check), against the
simulator on loopback (no pacing) and local Bronze, in this process; each round runs it once without a gateway
and once with `PNCP_PUSHGATEWAY_URL` pointing at a real Pushgateway (Debian's `prometheus-pushgateway`, on
loopback, started as deployed: without its consistency check), each on fresh storage and a fresh instance, the
order alternating; and once with a gateway that is down (a closed port). The gateway first holds `--held`
groups (45 days of five feeds are some 20,000), as a production one does. Printed: each run's wall time and
CPU, the pushes a run makes, the medians and the ratios to the run without a gateway; then what a push costs a
gateway holding `--compare-at` groups, with and without the consistency check (Debian's default; filling a
checking gateway with 20,000 groups would take hours, which is the point).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAY = dt.date(2025, 10, 22)


def run_day(volume: int, gateway: str | None) -> tuple[float, float]:
    import dagster as dg

    from pncp_assets.defs.assets import LAYER_GRAPHS
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource

    with tempfile.TemporaryDirectory() as root, RunningSimulator(SimulatorConfig(seed=5, volume=volume)) as sim:
        store = LocalObjectStore(Path(root) / "bronze")
        p = Pipeline(sim, store, storage_resource(store), graphs=LAYER_GRAPHS, pushgateway=gateway,
                     instance=dg.DagsterInstance.ephemeral())
        wall, cpu = time.perf_counter(), time.process_time()
        result = p.run_range(partition(DAY, 0), partition(DAY, 23), now=end_of_hour(DAY, 23))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert result.success
    return wall, cpu


def fill(gateway: str, count: int, layer: str) -> float:
    """`count` check groups pushed under `layer`; the seconds it took."""
    from pncp_assets.metrics import Gateway

    g, start = Gateway(gateway), time.perf_counter()
    for i in range(count):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=i // 24)
        error = g.push("check", {"layer": layer, "check": "no_duplicates", "partition": f"{day}-{i % 24:02d}:00"},
                       {"passed": 1})
        assert error is None, error
    return time.perf_counter() - start


@contextlib.contextmanager
def gateway_alone(root: Path, flags: tuple[str, ...]) -> Iterator[str]:
    """A Pushgateway of its own (no Prometheus), started with `flags`; its URL."""
    from pncp_assets_tests.support import prometheus

    port = prometheus.free_port()
    process = subprocess.Popen([prometheus.PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}",
                                f"--persistence.file={root}.data", *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        while prometheus._get(f"{url}/-/ready")[0] != 200:
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def groups(gateway: str) -> int:
    with urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=10) as answer:
        return len(json.loads(answer.read())["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--volume", type=int, default=1500)
    parser.add_argument("--held", type=int, default=20000)
    parser.add_argument("--compare-at", type=int, default=2000)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.INFO)
    from pncp_assets_tests.support import prometheus
    from pncp_assets_tests.support.prometheus import PrometheusStack

    times: dict[str, list[tuple[float, float]]] = {"without": [], "with": [], "down": []}
    with tempfile.TemporaryDirectory() as root, PrometheusStack(Path(root)) as stack:
        fill(stack.gateway, args.held, "held_before")
        pushes = 0
        for n in range(args.rounds):
            order = [("without", None), ("with", stack.gateway), ("down", "http://127.0.0.1:9")]
            for name, url in order if n % 2 == 0 else order[::-1]:
                before = groups(stack.gateway)
                times[name].append(run_day(args.volume, url))
                if name == "with" and n == 0:
                    pushes = groups(stack.gateway) - before
                print(f"round {n + 1} {name:<8} wall {times[name][-1][0]:6.2f} s  cpu {times[name][-1][1]:6.2f} s",
                      flush=True)
        # A push to a gateway holding `compare_at` groups, with Debian's default (the check) and without it.
        per_push = {}
        for name, flags in (("with the check", ()), ("without it", prometheus.GATEWAY_FLAGS)):
            with gateway_alone(Path(root) / name.replace(" ", "_"), flags) as url:
                fill(url, args.compare_at, "held_before")
                per_push[name] = fill(url, 200, "timed") / 200
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    print(f"\na day of five layers in one run, {args.volume} contratações; {pushes} groups pushed by a run")
    for name in ("without", "with", "down"):
        print(f"  {name:<8} median wall {wall[name]:6.2f} s  cpu {cpu[name]:6.2f} s  "
              f"ratio to without: wall {wall[name] / wall['without']:.3f}, cpu {cpu[name] / cpu['without']:.3f}")
    print(f"a push to a gateway holding {args.compare_at:,} groups: "
          + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in per_push.items()))


if __name__ == "__main__":
    main()
