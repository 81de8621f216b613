"""Benchmark: what a run costs, against Dagster's own floor and, if installed, dlt.

    python bench/bench_run_cost.py [--rounds 3] [--profile] [--dlt-python PATH]

    pip install -e ".[bench]"                                       # py-spy, for --profile
    python -m venv .venv-dlt && .venv-dlt/bin/pip install "dlt[parquet]>=1.31,<2"   # the dlt baseline

Every run is a fresh process through the CLI a deployment uses (`dagster asset materialize` /
`dagster job execute`, a SQLite instance with the project's dagster.yaml, local Bronze), against the
simulator on loopback in its own process (paced at 0 s: this measures the pipeline, not PNCP's pacing),
its clock at 12:05 of a business day (2025-10-22) for the hourly runs. Measured per run, from the kernel
(`wait4`): CPU (user + sys) and peak RSS. The bench process itself stays small, so no child inherits a
large peak from it. In each round, in this order:

  floor          a trivial three-asset hourly project (bench/floor_project.py), one hour
  floor x15      five such chains: the hourly job's 15 steps, with nothing in them
  floor+pyarrow  the three assets, the last loading pyarrow.parquet (the library Bronze is written with)
  reuse          the contratações' first-seen layer (3 assets), 10:00, reusing the sweep stored at 11:00
  sweep          the same layer, 11:00, sweeping the day
  job reuse      the whole hourly job (five layers, 15 assets), 10:00, reusing every stored sweep
  job sweep      the whole hourly job, 11:00, sweeping the five endpoints
  day            the first-seen layer of the day in 4 range runs, as a backfill runs them, at 08:00,
                 12:00, 16:00 and 01:00 the next day (the simulator's clock moving): CPU summed, the
                 largest peak; then Bronze is compared with the simulator's truth
  dlt            the same day by dlt (rest_api -> filesystem Parquet, append) at the same four moments,
                 when `--dlt-python` names (or this Python has) an interpreter with dlt[parquet]

Printed: every run, then the medians and their ratios to the floor (and the day's to dlt). `--profile`
adds one sampled run of each pncp shape under py-spy (`pip install py-spy`) and prints where the time
went: imports (Dagster's; the code location's with its libraries), Dagster's instance and event log,
definitions and orchestration, the sweep (HTTP, JSON), stored raw pages, the commit (filtering, Parquet,
state) and the checks.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = "2025-10-22"
NEXT_DAY = "2025-10-23"
HOURLY_CLOCK = f"{DAY}T12:05:00"
FIRST_SEEN = "pncp_raw_pages,pncp_new_records,pncp_daily_state"
# A backfill of the day as the day goes on: the hours ended by each moment, one range run each.
MOMENTS = [(f"{DAY}T08:00:00", "00", "07"), (f"{DAY}T12:00:00", "08", "11"), (f"{DAY}T16:00:00", "12", "15"),
           (f"{NEXT_DAY}T01:00:00", "16", "23")]
FLOORS = {"floor": "defs", "floor x15": "defs_fifteen", "floor+pyarrow": "defs_pyarrow"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    """The simulator in a process of its own, so its world never counts in a run's or this bench's memory."""

    def __init__(self, volume: int | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "pncp_assets.pncp.simulator", "--port", str(self.port), "--now", HOURLY_CLOCK]
        if volume:
            args += ["--volume", str(volume)]
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()  # printed once the socket listens
        if "PNCP simulator on" not in line:
            raise RuntimeError(f"the simulator did not start: {line}{self.proc.stdout.read()}")

    def set_clock(self, now: str) -> None:
        request = urllib.request.Request(f"{self.url}/_sim/config", data=json.dumps({"now": now}).encode(),
                                         method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def measured(args: list[str], env: dict[str, str], cwd: Path = REPO, profile_to: Path | None = None) -> dict:
    """Run one command to its end; its CPU and peak RSS as the kernel counted them."""
    if profile_to is not None:
        args = [py_spy_path(), "record", "--rate", "250", "--format", "raw", "--output", str(profile_to), "--", *args]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(args[:6])}... exited {proc.returncode}:\n{log.read().decode()[-4000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


class Bench:
    def __init__(self, sim: Simulator, work: Path, dlt_python: str | None, volume: int | None):
        self.sim = sim
        self.volume = volume
        self.work = work
        self.dlt_python = dlt_python
        self.home = work / "dagster_home"
        self.home.mkdir()
        shutil.copy(REPO / "dagster.yaml", self.home / "dagster.yaml")
        self.dagster = str(Path(sys.executable).with_name("dagster"))
        self.runs = 0

    def env(self, data_dir: Path, fresh_sweep: bool = False) -> dict[str, str]:
        env = {**os.environ, "DAGSTER_HOME": str(self.home), "PNCP_API_BASE_URL": self.sim.url,
               "PNCP_DATA_DIR": str(data_dir), "PNCP_REQUEST_INTERVAL_S": "0", "PNCP_START_DATE": "2025-10-01",
               "PYTHONWARNINGS": "ignore"}
        if fresh_sweep:
            # The simulator's moments are hours apart, the pipeline's clock only seconds: a stored sweep must
            # not look recent enough to serve an hour that a real run, an hour later, would sweep for.
            env["PNCP_SWEEP_MAX_AGE_MINUTES"] = "0"
        return env

    def fresh_dir(self) -> Path:
        self.runs += 1
        path = self.work / f"data{self.runs}"
        path.mkdir()
        return path

    def floor(self, attribute: str) -> dict:
        return measured([self.dagster, "asset", "materialize", "-f", str(REPO / "bench" / "floor_project.py"),
                         "-a", attribute, "--select", "*", "--partition", f"{DAY}-11:00"], self.env(self.work))

    def layer_hour(self, data_dir: Path, hour: str, fresh_sweep: bool = False, profile_to: Path | None = None) -> dict:
        return measured([self.dagster, "asset", "materialize", "-m", "pncp_assets.definitions", "--select", FIRST_SEEN,
                         "--partition", f"{DAY}-{hour}:00"], self.env(data_dir, fresh_sweep), profile_to=profile_to)

    def job_hour(self, data_dir: Path, hour: str, fresh_sweep: bool = False, profile_to: Path | None = None) -> dict:
        return measured([self.dagster, "job", "execute", "-m", "pncp_assets.definitions", "-j", "pncp_hourly_ingestion",
                         "--tags", json.dumps({"dagster/partition": f"{DAY}-{hour}:00"})],
                        self.env(data_dir, fresh_sweep), profile_to=profile_to)

    def layer_range(self, data_dir: Path, first: str, last: str, profile_to: Path | None = None) -> dict:
        # What a backfill's run is: the job, the layer's ops, the range in the run's tags.
        tags = {"dagster/asset_partition_range_start": f"{DAY}-{first}:00",
                "dagster/asset_partition_range_end": f"{DAY}-{last}:00"}
        return measured([self.dagster, "job", "execute", "-m", "pncp_assets.definitions", "-j", "pncp_hourly_ingestion",
                         "-o", FIRST_SEEN, "--tags", json.dumps(tags)], self.env(data_dir, fresh_sweep=True),
                        profile_to=profile_to)

    def hourly_runs(self, hour_run, profiles: Path | None = None) -> tuple[dict, dict]:
        """(reuse, sweep), each filing one hour's new records as a steady pipeline does: 09:00 first (not
        measured: the day so far filed, its sweep stored), then 10:00 reusing that sweep, then 11:00 sweeping."""
        self.sim.set_clock(HOURLY_CLOCK)
        data_dir = self.fresh_dir()
        hour_run(data_dir, "09")
        reuse = hour_run(data_dir, "10", profile_to=profiles and profiles / "reuse.txt")
        sweep = hour_run(data_dir, "11", fresh_sweep=True, profile_to=profiles and profiles / "sweep.txt")
        return reuse, sweep

    def day(self) -> dict:
        data_dir = self.fresh_dir()
        runs = []
        for now, first, last in MOMENTS:
            self.sim.set_clock(now)
            runs.append(self.layer_range(data_dir, first, last))
        exact = self.verify(data_dir / "bronze" / "pncp", "bronze")
        return {"cpu_s": sum(r["cpu_s"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs), **exact}

    def dlt_day(self) -> dict:
        out = self.fresh_dir()
        runs = []
        for now, _, _ in MOMENTS:
            self.sim.set_clock(now)
            runs.append(measured([self.dlt_python, str(Path(__file__).with_name("dlt_pipeline.py")), self.sim.url,
                                  DAY, str(out)], {**os.environ, "PYTHONWARNINGS": "ignore"}, cwd=out))
        exact = self.verify(out, "dlt")
        return {"cpu_s": sum(r["cpu_s"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs), **exact}

    def verify(self, root: Path, kind: str) -> dict:
        """Duplicates and missing records against the simulator's truth at the last moment (in a child:
        reading Parquet here would grow this process, which every later run would inherit as its peak)."""
        out = subprocess.run([sys.executable, __file__, "--verify", kind, "--root", str(root),
                              "--volume", str(self.volume or 0)], capture_output=True, text=True, cwd=REPO, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def verify_child(kind: str, root: Path, volume: int) -> None:
    import datetime as dt

    import pyarrow.parquet as pq

    from pncp_assets.pncp.simulator import PncpSimulator, SimulatorConfig

    sim = PncpSimulator(SimulatorConfig(volume=volume or None, now=dt.datetime.fromisoformat(MOMENTS[-1][0])))
    truth = {r["numeroControlePNCP"] for r in sim.visible_records(dt.date.fromisoformat(DAY))}
    if kind == "bronze":  # the layer's published files, not its staging or quarantine
        files = [p for p in root.rglob("*.parquet") if not {"_staging", "_rejects"} & set(p.parts)]
        column = "numeroControlePNCP"
    else:  # dlt's table, not its bookkeeping tables
        files = [p for p in root.rglob("*.parquet") if "contratacoes" in p.parts]
        column = "numero_controle_pncp"
    ids = [i for p in files for i in pq.read_table(p, columns=[column]).column(0).to_pylist()]
    counts = collections.Counter(ids)
    print(json.dumps({"records": len(ids), "duplicates": sum(n - 1 for n in counts.values()),
                      "missing": len(truth - counts.keys()), "truth": len(truth)}))


# --- Where the time goes (py-spy) -------------------------------------------------------------------

PNCP_PARTS = [("sweep (HTTP, JSON parse)", ("pncp_assets/pncp/",)),
              ("stored raw pages", ("pncp_assets/sweeps.py",)),
              ("checks", ("pncp_assets/consistency.py", "pncp_assets/links.py", "pncp_assets/checks.py")),
              ("commit (filter, Parquet, state)", ("pncp_assets/commit.py", "pncp_assets/bronze.py",
                                                  "pncp_assets/state/", "pncp_assets/storage.py",
                                                  "pncp_assets/defs/io_manager.py"))]


def part_of(stack: str) -> str:
    """The part of a run one sampled stack (py-spy's raw format, outermost frame first) belongs to."""
    frames = stack.split(";")
    if any("_find_and_load" in f for f in frames):
        # Dagster's own the floor pays too; the rest are the code location's and what its runs load.
        ours = any(p in f for f in frames for p in ("pncp_assets/", "pyarrow/", "pandas/", "boto", "requests/"))
        return "imports: pncp_assets and its libraries" if ours else "imports: Dagster and its CLI"
    if any("dagster/_core/storage" in f or "sqlalchemy" in f or "sqlite3" in f for f in frames):
        return "instance and event log"
    for frame in reversed(frames):
        for name, paths in PNCP_PARTS:
            if any(p in frame for p in paths):
                return name
    if any("pncp_assets/" in f for f in frames):
        return "assets (wiring)"
    if any("/_cli/" in f or "load_python_module" in f or "repository" in f for f in frames) and not any(
            "/execution/" in f for f in frames):
        return "CLI and definitions"
    return "Dagster orchestration"


def breakdown(profile: Path) -> dict[str, int]:
    parts: collections.Counter[str] = collections.Counter()
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            parts[part_of(stack)] += int(count)
    return dict(parts)


def print_breakdown(name: str, parts: dict[str, int], cpu_s: float) -> None:
    total = sum(parts.values()) or 1
    print(f"\n{name}: {cpu_s:.1f} s CPU, of which (py-spy samples):")
    for part, count in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:<34} {100 * count / total:5.1f} %  ~{cpu_s * count / total:5.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--volume", type=int, default=None, help="contratações per day (default ~6000)")
    parser.add_argument("--profile", action="store_true", help="also sample one run of each pncp shape with py-spy")
    parser.add_argument("--dlt-python", default=None,
                        help="a Python with dlt[parquet] installed (default: this one, if it has dlt)")
    parser.add_argument("--verify", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.verify:
        verify_child(args.verify, Path(args.root), args.volume)
        return 0
    if args.profile and py_spy_path() is None:
        parser.error("--profile samples with py-spy: pip install -e '.[bench]'")
    dlt_python = args.dlt_python
    if dlt_python is None and subprocess.run([sys.executable, "-c", "import dlt"], capture_output=True).returncode == 0:
        dlt_python = sys.executable
    sim = Simulator(args.volume)
    results: dict[str, list[dict]] = collections.defaultdict(list)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(sim, Path(tmp), dlt_python, args.volume)
            # Warm-up: the simulator builds its world, the instance its tables, the OS its page cache.
            bench.floor("defs")
            bench.hourly_runs(bench.job_hour)
            print(f"{'run':>14} | {'CPU s':>6} | {'peak RSS MB':>11} | exact?")
            for _ in range(args.rounds):
                shapes: list[tuple[str, dict]] = [(name, bench.floor(attr)) for name, attr in FLOORS.items()]
                reuse, sweep = bench.hourly_runs(bench.layer_hour)
                shapes += [("reuse", reuse), ("sweep", sweep)]
                reuse, sweep = bench.hourly_runs(bench.job_hour)
                shapes += [("job reuse", reuse), ("job sweep", sweep), ("day", bench.day())]
                if dlt_python:
                    shapes.append(("dlt", bench.dlt_day()))
                for name, r in shapes:
                    results[name].append(r)
                    exact = (f"{r['records']} records, {r['duplicates']} duplicates, {r['missing']} missing "
                             f"of {r['truth']}" if "truth" in r else "")
                    print(f"{name:>14} | {r['cpu_s']:6.2f} | {r['rss_mb']:11.0f} | {exact}", flush=True)
                print("-" * 60)
            medians = {name: {k: statistics.median(r[k] for r in runs) for k in ("cpu_s", "rss_mb")}
                       for name, runs in results.items()}
            floor = medians["floor"]
            print(f"\nMedians of {args.rounds} rounds; ratios to the floor (CPU / peak RSS):")
            for name, m in medians.items():
                print(f"{name:>14} | {m['cpu_s']:6.2f} s | {m['rss_mb']:5.0f} MB | "
                      f"{m['cpu_s'] / floor['cpu_s']:4.2f}x CPU | {m['rss_mb'] / floor['rss_mb']:4.2f}x RSS")
            x15 = medians["floor x15"]
            print(f"\njob reuse / floor x15: {medians['job reuse']['cpu_s'] / x15['cpu_s']:.2f}x CPU, "
                  f"{medians['job reuse']['rss_mb'] / x15['rss_mb']:.2f}x RSS; job sweep / floor x15: "
                  f"{medians['job sweep']['cpu_s'] / x15['cpu_s']:.2f}x CPU, "
                  f"{medians['job sweep']['rss_mb'] / x15['rss_mb']:.2f}x RSS")
            if "dlt" in medians:
                print(f"day / dlt: {medians['day']['cpu_s'] / medians['dlt']['cpu_s']:.2f}x CPU, "
                      f"{medians['day']['rss_mb'] / medians['dlt']['rss_mb']:.2f}x peak RSS")
            if args.profile:
                profiles = Path(tmp) / "profiles"
                profiles.mkdir()
                for label, hour_run, shape in [("first-seen layer", bench.layer_hour, ""),
                                               ("15 assets", bench.job_hour, "job ")]:
                    bench.hourly_runs(hour_run, profiles)
                    for name, hour in [("reuse", "10"), ("sweep", "11")]:
                        print_breakdown(f"{shape}{name} ({label}, {hour}:00)", breakdown(profiles / f"{name}.txt"),
                                        medians[shape + name]["cpu_s"])
                data_dir = bench.fresh_dir()
                parts: collections.Counter[str] = collections.Counter()
                for now, first, last in MOMENTS:
                    sim.set_clock(now)
                    bench.layer_range(data_dir, first, last, profile_to=profiles / "day.txt")
                    parts.update(breakdown(profiles / "day.txt"))
                print_breakdown("day (4 range runs)", dict(parts), medians["day"]["cpu_s"])
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
