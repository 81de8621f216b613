"""Benchmark: checking Bronze for CI, one command over a range against one Dagster call per hour.

    python bench/bench_checks.py [--days 30] [--volume 2000] [--hourly-calls 24]

Builds `--days` days of Bronze on local storage, every layer (simulated contratações, contratos and atas,
30 % of them changing within four days, first seen and versions, committed hour by hour through the commit
protocol, no API), then times (the command checks every layer, as it does by default):
- `python -m pncp_assets.checks --from D1 --to DN`: every hourly partition of the range in one command;
- the same command over the first day alone;
- `dagster job execute -m pncp_assets.definitions -j pncp_checks` for the first `--hourly-calls` hours
  of the first day, one call per hour (what CI had to do before), from which the per-hour cost and the
  cost of covering the whole range that way follow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_DAY = dt.date(2025, 10, 1)


def build(root: Path, days: int, volume: int) -> dict[str, tuple[int, int]]:
    """Every layer of `days` days, each hour committed and confirmed; returns (files, rows) per layer."""
    from pncp_assets import bronze, layout
    from pncp_assets.brasilia import TZ
    from pncp_assets.commit import DeltaCommitter
    from pncp_assets.layers import layer_named
    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore

    store = LocalObjectStore(root)
    end = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=days), dt.time())  # the clock: after the range
    sim = PncpSimulator(SimulatorConfig(seed=3, volume=volume, update_fraction=0.3, update_max_days=4.0, now=end))
    sweeps = {"pncp": sim.all_records, "pncp_versions": sim.updated_records,  # what each layer's endpoint shows
              "pncp_contratos": lambda day: sim.visible_records(day, kind="contratos"),
              "pncp_contratos_versions": lambda day: sim.updated_records(day, kind="contratos"),
              "pncp_atas_versions": lambda day: sim.updated_records(day, kind="atas")}
    built = {}
    for source, sweep in sweeps.items():
        committer = DeltaCommitter(store, layer_named(source))
        files = rows = 0
        for n in range(days):
            day = FIRST_DAY + dt.timedelta(days=n)
            swept = [(r, bronze.Provenance(r.get("modalidadeId"), 1)) for r in sweep(day)]
            for hour in layout.day_hours(day):
                result = committer.commit(hour, swept, "bench", swept_at=end.replace(tzinfo=TZ))
                if result.output is not None:
                    committer.publish(result.output)
                    files += 1
                    rows += result.output.table.num_rows
            committer.finalize_hours(layout.day_hours(day))  # every hour ingested: no gap for the check
        built[source] = (files, rows)
    return built


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--volume", type=int, default=2000, help="records per day")
    parser.add_argument("--hourly-calls", type=int, default=24, help="single-hour Dagster calls to time")
    args = parser.parse_args(argv)
    last = FIRST_DAY + dt.timedelta(days=args.days - 1)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        built = build(Path(tmp) / "bronze", args.days, args.volume)
        layers = ", ".join(f"{source}: {files} files, {rows} rows" for source, (files, rows) in built.items())
        print(f"Built {args.days} days of Bronze ({layers}) in {time.perf_counter() - start:.0f} s")
        env = {**os.environ, "STORAGE_TYPE": "local", "PNCP_DATA_DIR": tmp, "DAGSTER_HOME": tmp}
        checks = [sys.executable, "-m", "pncp_assets.checks", "--from", f"{FIRST_DAY}"]
        range_s, result = timed([*checks, "--to", f"{last}"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        print(f"one command, {args.days * 24} partitions: {range_s:.1f} s   ({result.stdout.strip()})")
        day_s, result = timed(checks, env)
        assert result.returncode == 0, result.stdout + result.stderr
        print(f"one command, 24 partitions:   {day_s:.1f} s")
        hourly = []
        for hour in range(args.hourly_calls):
            tags = json.dumps({"dagster/partition": f"{FIRST_DAY}-{hour:02d}:00"})
            seconds, result = timed([str(bin_dir / "dagster"), "job", "execute", "-m", "pncp_assets.definitions",
                                     "-j", "pncp_checks", "--tags", tags], env)
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            hourly.append(seconds)
        per_hour = sum(hourly) / len(hourly)
        print(f"dagster job execute pncp_checks, one hour a call: {per_hour:.2f} s per call "
              f"({len(hourly)} calls timed)")
        print(f"the first day: {24 * per_hour:.0f} s in 24 calls vs {day_s:.1f} s in one command "
              f"({24 * per_hour / day_s:.0f}x)")
        print(f"{args.days} days: {args.days * 24} calls, about {args.days * 24 * per_hour / 60:.0f} min, vs "
              f"{range_s:.1f} s in one command ({args.days * 24 * per_hour / range_s:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
