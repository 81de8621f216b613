"""Benchmark: what one ingested day keeps in storage, before and after retention (`retention.py`).

    python bench/bench_retention.py [--volume 6000] [--seed 1]

One simulated business day (30 % of records changing after publication, a few broken IDs) ingested by the
real asset graph, every layer, as the schedules run it: 24 single-hour runs, each at H+1:05 on the
simulator's clock (each sweeps), then the day close at 06:05 of the next day. Then the state is written
once more as the pipeline wrote it before the compact form (plain JSON, every ID twice) to size it, and
the retention job's work is applied as it would be 100 days later (states archived, raw sweeps and
rejected records expired). Prints the bytes per kind of object, per layer and in all, before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import warnings
from pathlib import Path

DAY = dt.date(2025, 10, 22)
KINDS = ("deltas", "_state", "_archive", "_raw", "_rejected", "_staging")


def kind_of(key: str) -> str:
    if key.startswith("_staging/"):
        return "_staging"
    part = key.split("/")[1]
    return part if part in KINDS else "deltas"


def sizes(store, layers) -> dict[str, dict[str, int]]:
    out = {layer: dict.fromkeys(KINDS, 0) for layer in layers}
    for key, size in store.sizes("").items():
        layer = key.split("/")[1] if key.startswith("_staging/") else key.split("/")[0]
        if layer in out:
            out[layer][kind_of(key)] += size
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import dagster as dg

    from pncp_assets import layout
    from pncp_assets.brasilia import TZ
    from pncp_assets.defs.assets import LAYER_GRAPHS
    from pncp_assets.defs.io_manager import BronzeParquetIOManager
    from pncp_assets.defs.resources import BronzeStorage, MetricsGateway, PncpApi
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.retention import RetentionPolicy, apply_retention
    from pncp_assets.state import StateManager

    layers = [g.layer.source for g in LAYER_GRAPHS]
    assets = [a for g in LAYER_GRAPHS for a in g.assets]
    config = SimulatorConfig(seed=args.seed, volume=args.volume, update_fraction=0.3, bad_ids=5)
    with tempfile.TemporaryDirectory() as tmp, RunningSimulator(config) as sim:
        storage = BronzeStorage(data_dir=tmp)
        store = storage.object_store()
        resources = {"bronze_storage": storage, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
                     "pncp_api": PncpApi(base_url=sim.base_url, request_interval_s=0, sweep_max_age_minutes=0),
                     "metrics_gateway": MetricsGateway()}
        instance = dg.DagsterInstance.ephemeral()
        runs = [(hour, dt.datetime.combine(DAY, dt.time(0)) + dt.timedelta(hours=n + 1, minutes=5))
                for n, hour in enumerate(layout.day_hours(DAY))]
        runs.append((layout.day_hours(DAY)[-1], dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(6, 5))))
        for hour, now in runs:
            sim.sim.configure(now=now)
            assert dg.materialize(assets, partition_key=hour, resources=resources, instance=instance).success
        compact = sizes(store, layers)
        # The same states as the pipeline stored them before (plain JSON, every ID twice), for the "before".
        manager = StateManager(store)
        json_state = {layer: len(manager.load_fresh(layer, DAY).state.encode_json()) for layer in layers}
        before = {layer: {**compact[layer], "_state": json_state[layer]} for layer in layers}
        apply_retention(store, [g.layer for g in LAYER_GRAPHS], DAY + dt.timedelta(days=100), RetentionPolicy())
        after = sizes(store, layers)
        for layer in layers:
            assert manager.load_fresh(layer, DAY).origin == "archive"
        del TZ

    def row(name: str, figures: dict[str, int]) -> str:
        return f"{name:<26} | " + " | ".join(f"{figures[k]:>11,}" for k in KINDS) + f" | {sum(figures.values()):>11,}"

    print(f"One day of {args.volume} contratações, every layer, 25 scheduled runs; bytes stored")
    print(f"{'':<26} | " + " | ".join(f"{k:>11}" for k in KINDS) + f" | {'all':>11}")
    total = {name: dict.fromkeys(KINDS, 0) for name in ("before", "compact", "after")}
    for layer in layers:
        for name, figures in (("before", before[layer]), ("compact", compact[layer]), ("after", after[layer])):
            print(row(f"{layer} {name}", figures))
            for k in KINDS:
                total[name][k] += figures[k]
    print("-" * 120)
    for name in ("before", "compact", "after"):
        print(row(f"all layers {name}", total[name]))
    b, a = sum(total["before"].values()), sum(total["after"].values())
    print(f"\nbefore: states as plain JSON, everything kept; compact: the compact states; after: 100 days later, "
          f"retention applied. After / before: {a / b:.3f} of the bytes ({b - a:,} saved per day)")
    sb, sa = total["before"]["_state"], total["after"]["_state"] + total["after"]["_archive"]
    print(f"States alone: {sb:,} -> {total['compact']['_state']:,} compact -> {sa:,} archived "
          f"({sa / sb:.3f} of the plain JSON)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
