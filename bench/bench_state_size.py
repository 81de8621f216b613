"""Benchmark: a day state's bytes and its load + save time, compact (`pncp_state/2`) against the plain JSON
the pipeline wrote before (every ID twice: the day's list and its hour's claim) and the original document's
plain JSON (the list alone, no claims).

    python bench/bench_state_size.py [--sizes 6000,100000,1000000] [--repeat 5]

IDs are shaped like PNCP's: an organisation's CNPJ (a pool of one per eight records, as the simulator has
it) and its own sequence, `CNPJ-1-NNNNNN/2025`, filed over the day's 24 hours. Two cycles, each the median of
`--repeat` runs in this process: load + save (parse and check the state, `DayState.decode`, then encode it
again: what a write that changes no ID does, an execution recorded or an hour confirmed), and load + claim +
save (an hour claims new IDs, a 24th of the day's, as a commit does). Also prints the level trade-off of
zstd on the compact body.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

DAY = dt.date(2025, 10, 22)


def make_state(size: int):
    from pncp_assets.state.day import Claim, DayState

    rng = random.Random(size)
    orgs = ["".join(str(rng.randrange(10)) for _ in range(14)) for _ in range(max(20, size // 8))]
    sequences: dict[str, int] = {}
    ids: set[str] = set()
    while len(ids) < size:
        cnpj = rng.choice(orgs)
        sequences[cnpj] = sequences.get(cnpj, rng.randrange(1, 400)) + 1
        ids.add(f"{cnpj}-1-{sequences[cnpj]:06d}/2025")
    state = DayState.new(DAY, "2025-10-22T03:05:00Z")
    state.add_ids(ids)
    hours: dict[str, list[str]] = {}
    for x in state.processed_ids:
        hours.setdefault(f"2025-10-22-{rng.randrange(24):02d}:00", []).append(x)
    for hour, held in sorted(hours.items()):
        state.partitions[hour] = Claim(held, None, {"run_id": "bench", "committed_at": "2025-10-22T12:05:00Z"})
        state.materialized_hours[hour] = "2025-10-22T12:05:00Z"
        state.record_execution("2025-10-22T12:05:00Z", len(held), {"input_records": len(held), "partition": hour})
    return state


def median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import orjson
    import zstandard

    from pncp_assets.state.day import DayState

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="6000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"Day state bytes and load + save (python {sys.version.split()[0]}); medians of {args.repeat}")
    print(f"{'IDs':>9} | {'document JSON':>13} | {'before (JSON)':>13} | {'compact':>9} | {'/ document':>10} | "
          f"{'/ before':>8} | {'load+save before':>16} | {'compact':>8} | {'ratio':>5} | "
          f"{'+claim before':>13} | {'compact':>8} | {'ratio':>5}")
    print("-" * 150)
    for size in (int(s) for s in args.sizes.split(",")):
        state = make_state(size)
        seed_fields = ("date", "processed_ids", "last_execution", "total_processed", "executions", "created_at")
        document = orjson.dumps({k: v for k, v in state.to_json().items() if k in seed_fields})
        before = state.encode_json()
        compact = state.encode()
        assert DayState.decode(compact, DAY).to_json() == state.to_json() == DayState.decode(before, DAY).to_json()
        t_before = median_s(lambda b=before: DayState.decode(b, DAY).encode_json(), args.repeat)
        t_compact = median_s(lambda c=compact: DayState.decode(c, DAY).encode(), args.repeat)
        fresh = [f"99999999000191-1-{n:06d}/2025" for n in range(size // 24)]

        def claimed(data: bytes, encode: str, fresh: list[str] = fresh) -> None:
            state = DayState.decode(data, DAY).copy()
            state.claim("2025-10-22-23:00", fresh, "", "2025-10-23T03:05:00Z", {"run_id": "bench"})
            getattr(state, encode)()

        c_before = median_s(lambda b=before: claimed(b, "encode_json"), args.repeat)
        c_compact = median_s(lambda c=compact: claimed(c, "encode"), args.repeat)
        print(f"{size:>9,} | {len(document):>13,} | {len(before):>13,} | {len(compact):>9,} | "
              f"{len(compact) / len(document):>10.3f} | {len(compact) / len(before):>8.3f} | {t_before:>14.3f} s | "
              f"{t_compact:>6.3f} s | {t_compact / t_before:>5.2f} | {c_before:>11.3f} s | {c_compact:>6.3f} s | "
              f"{c_compact / c_before:>5.2f}")
    body = make_state(100_000).encode_body()
    print("\nzstd level on the compact body of 100,000 IDs (bytes, compression time):")
    for level in (1, 3, 6, 9, 19):
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        spent = median_s(lambda c=compressor: c.compress(body), args.repeat)
        print(f"  level {level:>2}: {len(compressor.compress(body)):>9,} bytes, {spent:.3f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
