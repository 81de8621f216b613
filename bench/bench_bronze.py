"""Benchmark: Bronze Parquet size and encoding time against the same records as JSON, per codec.

    python bench/bench_bronze.py [--days 3] [--seed 1]

Uses simulated days (records shaped exactly like the real API's), written as Bronze writes them: one
file per hourly partition. JSON = the records as the API sends them (one JSON array, UTF-8), which is what
a seed-style JSON Bronze would store. Baselines beside each codec: the seed's Snappy, and the typed
columns alone (without the lossless `_raw` column).
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
    from pncp_assets.layers import FIRST_SEEN
    from pncp_assets.pncp.synthetic import generate_day

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    codecs = ["snappy", "zstd", "gzip"]
    json_bytes = 0
    sizes = dict.fromkeys([*codecs, "typed only (zstd)"], 0)
    times = dict.fromkeys(codecs, 0.0)
    records_total = 0
    for i in range(args.days):
        day = dt.date(2025, 10, 20) + dt.timedelta(days=i)
        synthetic = generate_day(day, args.seed)
        records_total += len(synthetic)
        json_bytes += len(json.dumps([r.record for r in synthetic], ensure_ascii=False).encode("utf-8"))
        by_hour: dict[int, list[dict]] = {}
        for r in synthetic:
            by_hour.setdefault(r.published.hour, []).append(r.record)
        tables = [FIRST_SEEN.to_table(recs, partition_key=f"{day}-{h:02d}:00") for h, recs in by_hour.items()]
        for codec in codecs:
            start = time.perf_counter()
            sizes[codec] += sum(len(bronze.table_to_parquet(t, codec)) for t in tables)
            times[codec] += time.perf_counter() - start
        sizes["typed only (zstd)"] += sum(len(bronze.table_to_parquet(t.drop_columns(["_raw"]), "zstd"))
                                          for t in tables)
    print(f"{args.days} simulated days, {records_total} records in hourly files; JSON {json_bytes / 1e6:.1f} MB")
    print(f"{'encoding':>18} | {'MB':>6} | {'/ JSON':>6} | {'/ Snappy':>8} | {'encode s':>8}")
    for name, size in sizes.items():
        spent = f"{times[name]:8.2f}" if name in times else f"{'':>8}"
        print(f"{name:>18} | {size / 1e6:6.2f} | {size / json_bytes:6.3f} | {size / sizes['snappy']:8.2f} | {spent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
