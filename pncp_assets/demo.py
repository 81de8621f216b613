"""The demo: a simulated PNCP day backfilled through Dagster on local storage, and the UI on it.

    bash scripts/demo.sh [--day YYYY-MM-DD] [--seed N] [--volume N]     # python -m pncp_assets.cli demo
    bash scripts/demo.sh ui [--seed N] [--volume N] [--port 3000]         # python -m pncp_assets.cli ui
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pncp_assets.brasilia import parse_day
from pncp_assets.cli_args import OneLineParser, day_arg
from pncp_assets.state import StateManager

UPDATE_FRACTION = 0.3  # the simulated world of the demo and its UI: this share of records changes


def _yesterday() -> str:
    from pncp_assets.brasilia import TZ, utc_now

    return (utc_now().astimezone(TZ).date() - dt.timedelta(days=1)).strftime("%Y%m%d")


def _demo_home() -> Path:
    """The demo's Dagster instance (./.dagster_home unless DAGSTER_HOME says otherwise), with the
    project's dagster.yaml (pools) copied in."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and Path("dagster.yaml").exists():
        shutil.copy("dagster.yaml", home / "dagster.yaml")
    return home


def _demo_first_day(home: Path) -> dt.date | None:
    """The earliest day the demo has filled in this instance (`pncp_demo.json`, beside its dagster.yaml)."""
    import json

    try:
        return dt.date.fromisoformat(json.loads((home / "pncp_demo.json").read_text())["first_day"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember_first_day(home: Path, day: dt.date) -> dt.date:
    """Keep `day` as the demo's first day if it is earlier than the one kept; returns the first day."""
    import json

    first = min(day, _demo_first_day(home) or day)
    (home / "pncp_demo.json").write_text(json.dumps({"first_day": first.isoformat()}))
    return first


def _demo_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("--seed", type=int, default=1, help="the simulated world (default 1)")
    parser.add_argument("--volume", type=int, default=None, help="records per day (default: ~6000)")
    return parser


def demo_main(argv: Sequence[str] | None = None) -> int:
    """Backfill one simulated PNCP day (24 hourly partitions) through Dagster on local storage, in one
    run as a UI backfill runs it."""
    parser = _demo_parser("python -m pncp_assets.cli demo", demo_main.__doc__)
    parser.add_argument("--day", "--date", dest="day", default=None, type=day_arg,
                        help="the Brasília day to backfill, YYYY-MM-DD (default: yesterday)")
    args = parser.parse_args(argv)

    import time
    import warnings

    warnings.filterwarnings("ignore")  # Dagster's preview/deprecation notices are not for the demo's reader
    logging.disable(logging.WARNING)

    # The demo's instance starts its partitions on its own first day (unless PNCP_START_DATE says otherwise), so
    # that the UI shows the demo's range as filled, not "0 %" of every hour since 2025. Set before the code
    # location is imported: the partitions are built then.
    day = parse_day(args.day or _yesterday())
    home = _demo_home()
    os.environ.setdefault("PNCP_START_DATE", _remember_first_day(home, day).isoformat())

    import dagster as dg
    import pyarrow.dataset as ds

    from pncp_assets import bronze, layout
    from pncp_assets.brasilia import TZ, utc_now
    from pncp_assets.definitions import bronze_assets, bronze_checks
    from pncp_assets.defs.environment import bronze_storage, metrics_gateway
    from pncp_assets.defs.io_manager import BronzeParquetIOManager
    from pncp_assets.defs.resources import PncpApi
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    hours = layout.day_hours(day)
    storage = bronze_storage()
    store = storage.object_store()
    print(f"Bronze: {store.describe()}\nDagster instance: {home}")
    # The world at the real time, as the UI's simulator shows it: yesterday is complete, and records have
    # changed since (a share of them, up to three times within two weeks), so the update sweep finds
    # versions. The clock stands still during the backfill (a live one would make the simulator work out
    # every answer anew).
    now = utc_now().astimezone(TZ).replace(tzinfo=None)
    world = SimulatorConfig(seed=args.seed, volume=args.volume, now=now, update_fraction=UPDATE_FRACTION)
    with RunningSimulator(world) as sim:
        print(f"PNCP simulator on {sim.base_url} (loopback only, seed {args.seed}); backfilling {day}: "
              f"24 hours in one run, as a UI backfill runs them", flush=True)
        api = PncpApi(base_url=sim.base_url, request_interval_s=0)
        resources = {"bronze_storage": storage, "pncp_api": api, "metrics_gateway": metrics_gateway(),
                     "bronze_io_manager": BronzeParquetIOManager(storage=storage)}
        started = time.monotonic()
        job = dg.Definitions(assets=bronze_assets, asset_checks=bronze_checks,
                             resources=resources).resolve_implicit_global_asset_job_def()
        instance = dg.DagsterInstance.get()
        run_id = str(uuid.uuid4())
        progress = _Progress(hours, started)
        instance.add_event_listener(run_id, progress.on_event)  # each step's news as it happens, not at the end
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_id=run_id,
                                        tags={"pncp/demo": "true", "dagster/asset_partition_range_start": hours[0],
                                              "dagster/asset_partition_range_end": hours[-1]})
        elapsed = time.monotonic() - started
        requests_made = len(sim.sim.log)
    files = layout.day_delta_keys(store, "pncp", day)
    ids = [x for k in files for x in bronze.parquet_ids(store.get(k).data)]
    state = StateManager(store).load_state("pncp", day) if files else {"total_processed": 0, "executions": []}
    print(f"Summary ({'run succeeded' if result.success else 'RUN FAILED'} in {elapsed:.1f}s):")
    print(f"  records in Bronze:  {len(ids)} in {len(files)} hourly files ({requests_made} API requests, every feed)")
    print(f"  state:              {state['total_processed']} processed IDs, {len(state['executions'])} executions")
    print(f"  duplicates:         {len(ids) - len(set(ids))}")
    print(_versions_line(store, day))
    print(_contratos_line(store, day, result))
    print(_atas_line(store, day))
    root = getattr(store, "root", None)
    if root is not None and files:
        table = ds.dataset(str(Path(root) / "pncp"), format="parquet", partitioning="hive").to_table(
            columns=["numeroControlePNCP"], use_threads=False)  # see bronze.read_parquet
        print(f"  read back as one dataset: {table.num_rows} rows  (pyarrow.dataset over {Path(root) / 'pncp'})")
        from pncp_assets.current import current_view

        view = current_view(str(root), day, day)
        print(f"  current view:       {view.num_rows} contratações of {day}, each at its latest version "
              f"(pncp_assets.current.current_view)")
    world = f" --seed {args.seed}" + (f" --volume {args.volume}" if args.volume else "")
    print("Open the UI on the same data, with the same simulated PNCP behind it (Ctrl-C stops both):")
    print(f"  bash scripts/demo.sh ui{world}")
    return 1 if not result.success or len(ids) != len(set(ids)) else 0


def _deltas_assets() -> tuple[str, dict[str, str]]:
    """The contratações' first-seen delta asset, and every other layer's (name -> what it holds)."""
    from pncp_assets.defs.assets import AssetNames
    from pncp_assets.layers import FIRST_SEEN, LAYERS

    return AssetNames.of(FIRST_SEEN).deltas, {AssetNames.of(layer).deltas: layer.title
                                              for layer in LAYERS if layer is not FIRST_SEEN}


class _Progress:
    """Prints the run's progress from its events as they are stored: each sweep as it starts, each hour of the
    contratações as it is filed, with its checks, then each other feed's day."""

    def __init__(self, hours: list[str], started: float):
        import time

        self.hours, self.started, self.clock = hours, started, time.monotonic
        self.first_seen, self.others = _deltas_assets()
        self.new: dict[str, dict[str, int]] = {}  # asset -> hour -> new
        self.verdicts: dict[str, dict[str, list[bool]]] = {}  # asset -> hour -> blocking verdicts

    def _print(self, text: str) -> None:
        print(f"  {self.clock() - self.started:5.1f}s {text}", flush=True)

    def on_event(self, entry: Any) -> None:
        event = entry.dagster_event
        if event is None:
            return
        step = event.step_key or ""
        if event.event_type_value == "STEP_START" and step.endswith("_pages"):
            self._print(f"sweeping: {step} ...")
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            asset = event.asset_key.path[-1]
            metadata = event.event_specific_data.materialization.metadata
            if "new" in metadata and event.partition:
                self.new.setdefault(asset, {})[event.partition] = metadata["new"].value
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.blocking and evaluation.partition:
                asset = evaluation.asset_key.path[-1]
                self.verdicts.setdefault(asset, {}).setdefault(evaluation.partition, []).append(evaluation.passed)
        elif event.event_type_value == "STEP_SUCCESS" and step in (self.first_seen, *self.others):
            self._step_done(step)

    def _step_done(self, asset: str) -> None:
        new, verdicts = self.new.get(asset, {}), self.verdicts.get(asset, {})
        if asset == self.first_seen:
            for n, hour in enumerate(self.hours, 1):
                checks = verdicts.get(hour, [])
                print(f"  [{n:2d}/24] {hour}: {new.get(hour, '?'):>5} new records, checks "
                      f"{'passed' if checks and all(checks) else 'FAILED'}", flush=True)
            return
        passed = all(all(v) for v in verdicts.values()) and len(verdicts) == len(self.hours)
        self._print(f"{self.others[asset]}: {sum(new.values())} new in 24 hours, checks "
                    f"{'passed' if passed else 'FAILED'}")


def _versions_line(store: Any, day: dt.date) -> str:
    """What the update sweep of `day` filed: versions, of how many contratações, how many published before."""
    from pncp_assets.layers import VERSIONS

    rows = _layer_rows(store, VERSIONS.source, day,
                       ["numeroControlePNCP", "dataPublicacaoPncp", "valorTotalHomologado"])
    earlier = {r["numeroControlePNCP"] for r in rows
               if r["dataPublicacaoPncp"] and r["dataPublicacaoPncp"].date() < day}
    homologated = {r["numeroControlePNCP"] for r in rows if r["valorTotalHomologado"] is not None}
    return (f"  versions:           {len(rows)} of {len({r['numeroControlePNCP'] for r in rows})} contratações "
            f"changed on {day} ({len(earlier)} published on earlier days, {len(homologated)} homologated), in "
            f"{VERSIONS.source}/")


def _layer_rows(store: Any, source: str, day: dt.date, columns: list[str]) -> list[dict[str, Any]]:
    """These columns of every row a layer filed for `day`."""
    from pncp_assets import bronze, layout

    return [r for k in layout.day_delta_keys(store, source, day)
            for r in bronze.read_parquet(store.get(k).data, columns).to_pylist()]


def _contratos_line(store: Any, day: dt.date, result: Any) -> str:
    """The day's contratos: first seen, their versions, and how many point outside Bronze."""
    from pncp_assets.defs.assets import LINKS_CHECK, AssetNames
    from pncp_assets.layers import CONTRATOS, CONTRATOS_VERSIONS

    first = _layer_rows(store, CONTRATOS.source, day, ["numeroControlePNCP"])
    versions = _layer_rows(store, CONTRATOS_VERSIONS.source, day, ["numeroControlePNCP", "numeroRetificacao"])
    amended = sum(1 for r in versions if (r["numeroRetificacao"] or 0) > 0)
    verdicts = [c.metadata for c in result.get_asset_check_evaluations()
                if c.check_name == LINKS_CHECK and c.asset_key.path[-1] == AssetNames.of(CONTRATOS).deltas]
    missing = sum(m["missing_contratacao"].value for m in verdicts)
    outside = sum(m["outside_coverage"].value for m in verdicts)
    return (f"  contratos:          {len(first)} first seen, {len(versions)} versions ({amended} amendments), in "
            f"pncp_contratos/ and pncp_contratos_versions/; {outside} point at a contratação of the weeks before, "
            f"which the demo did not ingest (outside the check contratacao_links' coverage), {missing} at one "
            f"Bronze should hold; filed all the same")


def _atas_line(store: Any, day: dt.date) -> str:
    rows = _layer_rows(store, "pncp_atas_versions", day, ["numeroControlePNCPAta", "cancelado"])
    cancelled = sum(1 for r in rows if r["cancelado"])
    return (f"  atas:               {len(rows)} versions of {len({r['numeroControlePNCPAta'] for r in rows})} atas "
            f"({cancelled} cancelled), in pncp_atas_versions/")


def ui_main(argv: Sequence[str] | None = None) -> int:
    """`dagster dev` on the demo's instance and storage, with the demo's simulated PNCP (same seed, on the
    real clock) behind it: materialising from the UI continues the demo's world."""
    parser = _demo_parser("python -m pncp_assets.cli ui", ui_main.__doc__)
    parser.add_argument("--port", type=int, default=3000, help="the UI's port on 127.0.0.1 (default 3000)")
    args = parser.parse_args(argv)

    import signal
    import subprocess

    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Both signals stop everything, however this was started: a shell's background job (`&`, a CI step) begins
    # with SIGINT ignored, and that would be inherited by `dagster dev` and its webserver and daemon (Dagster
    # turns SIGTERM into its SIGINT handling), which would then never stop.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    home = _demo_home()
    world = SimulatorConfig(seed=args.seed, volume=args.volume, live=True, update_fraction=UPDATE_FRACTION)
    with RunningSimulator(world) as sim:
        env = {**os.environ, "DAGSTER_HOME": str(home), "PNCP_API_BASE_URL": sim.base_url,
               "PNCP_REQUEST_INTERVAL_S": "0",
               # `dagster dev` is superseded by `dg dev` (dagster-dg-cli, not a dependency): no notice for it.
               "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded"}
        first_day = _demo_first_day(home)
        if first_day and not env.get("PNCP_START_DATE"):  # the partitions start where the demo's data does
            env["PNCP_START_DATE"] = first_day.isoformat()
        if env.get("PNCP_DATA_DIR"):  # `dagster dev` runs in the instance's folder (below): keep the data's
            env["PNCP_DATA_DIR"] = str(Path(env["PNCP_DATA_DIR"]).resolve())
        print(f"PNCP simulator on {sim.base_url} (seed {args.seed}, real clock); Dagster UI on "
              f"http://127.0.0.1:{args.port}, instance {home}", flush=True)
        if not env.get("PNCP_ALERT_WEBHOOK_URL"):
            print("Alerts: off (PNCP_ALERT_WEBHOOK_URL is not set: the failed-run and stale-asset sensors are "
                  "stopped). Set it to a webhook URL to turn them on.", flush=True)
        bin_dir = Path(sys.executable).parent
        # The instance's schema first: webserver and daemon must not both create it at once.
        subprocess.run([str(bin_dir / "dagster"), "instance", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        # Run in the instance's folder: from the checkout, Dagster would warn that the dagster.yaml there is
        # not the instance's (it is the template this one was copied from).
        dev = subprocess.Popen([str(bin_dir / "dagster"), "dev", "-m", "pncp_assets.definitions", "-h", "127.0.0.1",
                                "-p", str(args.port)], env=env, cwd=home, preexec_fn=_default_signals,
                               start_new_session=True)  # its own group: stopped whole, below
        try:
            return dev.wait()
        except KeyboardInterrupt:
            print("Stopping the Dagster UI and the simulator...", flush=True)
            return _stop_group(dev)


def _default_signals() -> None:
    """In the child, before `dagster dev` starts: SIGINT and SIGTERM as a fresh process has them (not ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_group(process: Any, grace_s: float = 20.0) -> int:
    """Ask `dagster dev` to stop as Ctrl-C does (it stops its webserver and daemon), then, after `grace_s`,
    end whatever of its process group is left: nothing outlives the command."""
    import signal
    import subprocess

    try:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        code = -signal.SIGKILL
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything of the group still there (the group outlives its leader)
    except ProcessLookupError:
        pass
    process.wait()
    return code
