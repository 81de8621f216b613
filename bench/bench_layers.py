"""Benchmark: one hourly run with the five layers against the same run with the contratações' two.

    python bench/bench_layers.py [--volume 6000] [--rounds 3]

Each run is a fresh Python process materialising one hour (11:00 of a simulated business day, swept at
12:05) of the chosen layers' assets through Dagster (`materialize`, an ephemeral instance, local storage),
against the simulator on loopback (paced at 0 s: this measures the pipeline, not PNCP's pacing). The two
shapes alternate, `--rounds` times each, each on a fresh Bronze, after one warm-up run of each that lets the
simulator build its world. Printed per run: CPU (user + sys) and peak RSS of the process, requests made;
then the medians and their ratios (five layers / two).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2025, 10, 22)
HOUR = f"{DAY}-11:00"
NOW = dt.datetime.combine(DAY, dt.time(12, 5))
SHAPES = {"two layers": ["pncp", "pncp_versions"],
          "five layers": ["pncp", "pncp_versions", "pncp_contratos", "pncp_contratos_versions", "pncp_atas_versions"]}


def child(layers: list[str], api: str, data_dir: str) -> None:
    """One hourly run in this process; prints its CPU and peak RSS as JSON."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import dagster as dg

    from pncp_assets.defs.assets import LAYER_GRAPHS
    from pncp_assets.defs.io_manager import BronzeParquetIOManager
    from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi

    storage = BronzeStorage(storage_type="local", data_dir=data_dir)
    resources = {"bronze_storage": storage, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
                 "pncp_api": PncpApi(base_url=api, request_interval_s=0), "metrics_gateway": MetricsGateway()}
    assets = [a for g in LAYER_GRAPHS if g.layer.source in layers for a in g.assets]
    result = dg.materialize(assets, partition_key=HOUR, resources=resources, instance=dg.DagsterInstance.ephemeral())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime
    # The peak of this program's own memory (VmHWM): ru_maxrss would keep the forking parent's, which holds
    # the simulator's world, across exec.
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"ok": result.success, "cpu_s": cpu_s, "rss_mb": peak_kb / 1024}))


def run_child(layers: list[str], api: str) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        out = subprocess.run([sys.executable, __file__, "--child", ",".join(layers), "--api", api, "--data", data_dir],
                             capture_output=True, text=True, cwd=REPO, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=None, help="contratações per day (default ~6000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--api", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.child:
        child(args.child.split(","), args.api, args.data)
        return 0

    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    config = SimulatorConfig(seed=1, volume=args.volume, update_fraction=0.3, now=NOW)
    print(f"One hourly run ({HOUR}, swept at {NOW:%H:%M}), a simulated day of {args.volume or 'about 6,000'} "
          f"contratações; {args.rounds} rounds, alternating")
    figures: dict[str, list[dict]] = {shape: [] for shape in SHAPES}
    with RunningSimulator(config) as sim:
        for layers in SHAPES.values():  # warm-up: the simulator builds its world once
            run_child(layers, sim.base_url)
        for n in range(args.rounds):
            for shape, layers in SHAPES.items():
                before = len(sim.sim.log)
                figure = run_child(layers, sim.base_url)
                figure["requests"] = len(sim.sim.log) - before
                figures[shape].append(figure)
                print(f"  round {n + 1} {shape:>11}: CPU {figure['cpu_s']:5.2f} s, peak RSS "
                      f"{figure['rss_mb']:5.0f} MB, {figure['requests']} requests, "
                      f"{'ok' if figure['ok'] else 'FAILED'}", flush=True)
    median = {shape: {k: statistics.median(f[k] for f in runs) for k in ("cpu_s", "rss_mb", "requests")}
              for shape, runs in figures.items()}
    two, five = median["two layers"], median["five layers"]
    for shape, m in median.items():
        print(f"median {shape:>11}: CPU {m['cpu_s']:.2f} s, peak RSS {m['rss_mb']:.0f} MB, "
              f"{m['requests']:.0f} requests")
    print(f"five layers / two: CPU {five['cpu_s'] / two['cpu_s']:.2f}x, peak RSS "
          f"{five['rss_mb'] / two['rss_mb']:.2f}x, requests {five['requests'] / two['requests']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
