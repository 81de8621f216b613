"""Benchmark: one state cycle (load -> filter -> update -> save) for days of 10k, 100k and 1M IDs.

Each measurement runs in its own process on local storage, with as many incoming records as the day
holds, half of them new. The baseline does what a straightforward port of the seed would do: the IDs
kept in a list and `in` tested on the list. It runs up to the size where it still ends within a minute.

    python bench/bench_state.py [--sizes 10000,100000,1000000] [--baseline-limit-s 60]

Prints a table: wall time of the cycle, the process's peak RSS (interpreter, libraries and the incoming
records included), how much of that peak the cycle added above the process with its input loaded, and
the floor beside it: only parsing the day's IDs and writing them back with the new ones (orjson). The
`is_in` column is the other half of any cycle's work, alone and compiled: pyarrow's C++ hash set deciding
which incoming IDs the day holds, with both ID arrays built before the clock starts. The floor plus
`is_in` is a cycle's unavoidable work done by the fastest tools at hand, without the rest (deduplication,
sorting, validation, durability).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DAY = "20251022"
STATE_PATH = "pncp/_state/year=2025/month=10/day=22/state_20251022.json"


def make_id(n: int) -> str:
    return f"{n % 10**14:014d}-1-{n % 10**6:06d}/{2020 + n // 10**6}"


def prepare(root: Path, size: int) -> None:
    """A state file with `size` IDs, and `size` incoming records (half new, shuffled) in records.json."""
    from pncp_assets import layout
    from pncp_assets.brasilia import iso_utc
    from pncp_assets.storage import LocalObjectStore

    ids = sorted(make_id(i) for i in range(size))
    state = {"date": "2025-10-22", "processed_ids": ids, "last_execution": iso_utc(), "total_processed": size,
             "executions": [], "created_at": iso_utc()}
    store = LocalObjectStore(root)
    store.put_json(STATE_PATH, state)  # the plain JSON that the baseline and the floor read and write
    try:  # the project's own stored form (compact since issue 26; before it, the same plain JSON)
        from pncp_assets.state import DayState

        compact = layout.state_key("pncp", DAY)
        if compact != STATE_PATH:
            store.put(compact, DayState.from_json(state, dt.date(2025, 10, 22)).encode())
    except ImportError:
        pass
    old = [make_id(i) for i in range(size // 2)]
    fresh = [make_id(size + i) for i in range(size - size // 2)]
    incoming = old + fresh
    random.Random(size).shuffle(incoming)  # the API's order is not the IDs' order
    (root / "records.json").write_text(json.dumps([{"numeroControlePNCP": x} for x in incoming]))
    (root / "new_ids.json").write_text(json.dumps(fresh))  # what the floor is told


def cycle_project(root: Path, records: list[dict], new_ids: list[str]) -> int:
    from pncp_assets.document_api import StateManager
    from pncp_assets.storage import LocalObjectStore

    manager = StateManager(LocalObjectStore(root))
    new, stats = manager.filter_new_records("pncp", DAY, records)
    state = manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new], stats)
    return state["total_processed"]


def cycle_baseline(root: Path, records: list[dict], new_ids: list[str]) -> int:
    """The seed's shape: a JSON file, a list of IDs, `in` on the list."""
    path = root / STATE_PATH
    state = json.loads(path.read_text())
    processed = state["processed_ids"]
    new = []
    for record in records:
        if record["numeroControlePNCP"] not in processed:
            new.append(record)
    for record in new:
        processed.append(record["numeroControlePNCP"])
    state["processed_ids"] = processed
    state["total_processed"] = len(processed)
    path.write_text(json.dumps(state))
    return len(processed)


def cycle_floor(root: Path, records: list[dict], new_ids: list[str]) -> int:
    """The physical floor of a cycle: parse the state's IDs and write them back with the new ones
    (which it is told), with the fastest JSON codec at hand; no filtering, no checks, no durability."""
    import orjson

    path = root / STATE_PATH
    state = orjson.loads(path.read_bytes())
    state["processed_ids"] = state["processed_ids"] + new_ids
    path.write_bytes(orjson.dumps(state))
    return len(state["processed_ids"])


def membership_only(state: Any, incoming: Any) -> int:
    """Not a cycle: only the membership test, in C++ (pyarrow `is_in`), on ID arrays built before the clock
    starts. Returns how many incoming IDs the day holds."""
    import pyarrow.compute as pc

    return int(pc.sum(pc.is_in(incoming, value_set=state)).as_py())


def _measured(kind: str, root: Path) -> Callable[[], int]:
    """What `kind` times, with its inputs loaded (they are not part of the measurement)."""
    records = json.loads((root / "records.json").read_text())
    if kind == "is_in":
        import pyarrow as pa

        state = json.loads((root / STATE_PATH).read_text())["processed_ids"]
        ids = [r["numeroControlePNCP"] for r in records]
        return functools.partial(membership_only, pa.array(state, pa.string()), pa.array(ids, pa.string()))
    new_ids = json.loads((root / "new_ids.json").read_text()) if kind == "floor" else []
    cycle = {"project": cycle_project, "baseline": cycle_baseline, "floor": cycle_floor}[kind]
    return functools.partial(cycle, root, records, new_ids)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _worker(kind: str, root: str, queue: mp.Queue) -> None:
    import logging

    import pncp_assets.state  # noqa: F401 - libraries loaded before the baseline RSS is read

    logging.disable(logging.INFO)
    measured = _measured(kind, Path(root))
    before = _rss_mb()
    start = time.perf_counter()
    total = measured()
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((elapsed, peak_mb, peak_mb - before, total))


def _run(target, args, limit_s: float):
    ctx = mp.get_context("spawn")  # a fresh process: the peak RSS belongs to this measurement alone
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    proc.join(limit_s + 60)  # loading the inputs takes time too
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return queue.get(timeout=5) if not queue.empty() else None


def _prepare_worker(root: str, size: int, queue: mp.Queue) -> None:
    prepare(Path(root), size)
    queue.put(True)


def measure(kind: str, size: int, limit_s: float) -> tuple[float, float, float, int] | None:
    with tempfile.TemporaryDirectory() as tmp:
        if not _run(_prepare_worker, (tmp, size), 600):
            raise RuntimeError("preparing the inputs failed")
        result = _run(_worker, (kind, tmp), limit_s)
    if result is None or result[0] > limit_s:
        return None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--baseline-limit-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"State cycle on local storage (python {sys.version.split()[0]}); incoming = day size, half new")
    print("MB = peak RSS of the process (interpreter, libraries, input records included); "
          "+MB = what the cycle added")
    print(f"{'IDs in day':>11} | {'project s':>9} | {'MB':>5} | {'+MB':>5} | {'floor s':>7} | {'is_in s':>7} | "
          f"{'baseline s':>10} | {'MB':>5} | {'+MB':>5} | {'speed-up':>8}")
    print("-" * 100)
    baseline_alive = True
    for size in sizes:
        project = measure("project", size, 600)
        expected = size + (size - size // 2)
        if project is None or project[3] != expected:
            print(f"{size:>11,} | project run failed or gave a wrong total")
            return 1
        floor = measure("floor", size, 600)
        is_in = measure("is_in", size, 600)
        if is_in is None or is_in[3] != size // 2:
            print(f"{size:>11,} | the is_in measurement failed or found a wrong count")
            return 1
        baseline = measure("baseline", size, args.baseline_limit_s) if baseline_alive else None
        if baseline is None:
            baseline_alive = False
        b_time = f"{baseline[0]:10.2f}" if baseline else f"{'> ' + str(int(args.baseline_limit_s)):>10}"
        b_mem = f"{baseline[1]:5.0f} | {baseline[2]:5.0f}" if baseline else f"{'-':>5} | {'-':>5}"
        ratio = f"{baseline[0] / project[0]:7.0f}x" if baseline else f"{'-':>8}"
        floor_s = f"{floor[0]:7.2f}" if floor else f"{'-':>7}"
        print(f"{size:>11,} | {project[0]:9.2f} | {project[1]:5.0f} | {project[2]:5.0f} | {floor_s} | "
              f"{is_in[0]:7.2f} | {b_time} | {b_mem} | {ratio}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
