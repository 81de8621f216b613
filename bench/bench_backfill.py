"""Benchmark: a simulated day backfilled through Dagster (`materialize`, 24 hourly partitions), in order
and out of order, on local storage, against the simulator on loopback.

    python bench/bench_backfill.py [--volume 6000] [--seed 1]

Prints wall time, API requests per backfilled day against the day's page count (target: 1.2x at most),
records per second, and Bronze bytes against the same records as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

DAY = dt.date(2025, 10, 22)


def run(order: list[int], volume: int | None, seed: int) -> dict:
    import dagster as dg

    from pncp_assets import bronze
    from pncp_assets.definitions import bronze_assets
    from pncp_assets.io_manager import BronzeParquetIOManager
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.resources import BronzeStorage, PncpApi

    with tempfile.TemporaryDirectory() as tmp, RunningSimulator(SimulatorConfig(seed=seed, volume=volume)) as sim:
        storage = BronzeStorage(data_dir=tmp)
        resources = {"bronze_storage": storage, "bronze_io_manager": BronzeParquetIOManager(storage=storage),
                     "pncp_api": PncpApi(base_url=sim.base_url, request_interval_s=0)}
        instance = dg.DagsterInstance.ephemeral()
        start = time.perf_counter()
        for hour in order:
            result = dg.materialize(bronze_assets, partition_key=f"{DAY:%Y-%m-%d}-{hour:02d}:00",
                                    resources=resources, instance=instance)
            assert result.success
        elapsed = time.perf_counter() - start
        store = storage.object_store()
        files = [k for k in store.list(bronze.day_prefix("pncp", DAY)) if bronze.is_delta_key(k)]
        ids = [x for k in files for x in bronze.parquet_ids(store.get(k).data)]
        assert len(ids) == len(set(ids)), "duplicates"
        records = sim.sim.all_records(DAY)
        assert len(ids) == len(records), "records lost"
        pages = sum(-(-n // 50) for n in _per_modalidade(records).values())
        parquet_bytes = sum(len(store.get(k).data) for k in files)
        json_bytes = len(json.dumps(records, ensure_ascii=False).encode("utf-8"))
        return {"seconds": elapsed, "requests": len(sim.sim.log), "pages": pages, "records": len(ids),
                "parquet": parquet_bytes, "json": json_bytes, "files": len(files)}


def _per_modalidade(records: list[dict]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in records:
        counts[r["modalidadeId"]] = counts.get(r["modalidadeId"], 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=None, help="records in the day (default ~6000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    shuffled = list(range(24))
    random.Random(args.seed).shuffle(shuffled)
    print(f"{'backfill':>12} | {'wall s':>6} | {'records':>7} | {'files':>5} | {'requests':>8} | {'pages':>5} | "
          f"{'req/page':>8} | {'records/s':>9} | {'Parquet/JSON':>12}")
    print("-" * 96)
    for label, order in (("in order", list(range(24))), ("out of order", shuffled)):
        r = run(order, args.volume, args.seed)
        print(f"{label:>12} | {r['seconds']:6.1f} | {r['records']:7d} | {r['files']:5d} | {r['requests']:8d} | "
              f"{r['pages']:5d} | {r['requests'] / r['pages']:8.2f} | {r['records'] / r['seconds']:9.0f} | "
              f"{r['parquet'] / r['json']:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
