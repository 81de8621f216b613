"""Benchmark: Bronze Parquet size and encoding speed against the same records as JSON.

    python bench/bench_bronze.py [--days 3] [--seed 1]

Uses simulated days (records shaped exactly like the real API's). JSON = the records as the API sends
them (one JSON array, UTF-8), which is what a seed-style JSON Bronze would store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pncp_assets import bronze
    from pncp_assets.pncp.synthetic import generate_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'day':>10} | {'records':>7} | {'JSON KB':>8} | {'Parquet KB':>10} | {'ratio':>6} | "
          f"{'typed-only KB':>13} | {'encode ms':>9}")
    print("-" * 80)
    totals = [0, 0]
    for i in range(args.days):
        day = dt.date(2025, 10, 20) + dt.timedelta(days=i)
        records = [r.record for r in generate_day(day, args.seed)]
        as_json = json.dumps(records, ensure_ascii=False).encode("utf-8")
        start = time.perf_counter()
        parquet = bronze.encode_parquet(records, partition_key=f"{day}-12:00")
        elapsed_ms = (time.perf_counter() - start) * 1000
        typed = bronze.table_to_parquet(bronze.records_to_table(records).drop_columns(["_raw"]))
        totals[0] += len(as_json)
        totals[1] += len(parquet)
        print(f"{day!s:>10} | {len(records):>7} | {len(as_json) / 1024:8.0f} | {len(parquet) / 1024:10.0f} | "
              f"{len(parquet) / len(as_json):6.2f} | {len(typed) / 1024:13.0f} | {elapsed_ms:9.0f}")
    print(f"Parquet (typed columns + _raw) / JSON over {args.days} days: {totals[1] / totals[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
