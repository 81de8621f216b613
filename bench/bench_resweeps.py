"""Benchmark: what the re-sweeps of finished days cost, and what they recover.

    python bench/bench_resweeps.py [--volume 6000] [--seed 1] [--late-fractions [0 0.02 ...]] [--late-days 2 25]
                                   [--skip-recovery]

1. Requests. The simulator on loopback (every feed, 30 % of records changing within 14 days, none or 2 % of
   the contratações backdated by 30 hours to 10 days), each of the five layers swept as the shipped schedules
   sweep one day D: the hourly schedule (D's 24 hours, each at H+1:05), the day close (D+1 06:05) and the
   re-sweeps (+1, +7 and +30 days after it, at 06:35), with the client the pipeline uses and its count-first
   rules (`ledger.settled`: a modalidade whose page 1 gives the count the last closing sweep found complete is
   not fetched further; `ledger.settled_versions`: a versions layer days later is only counted unless the
   first-seen layer's count rose).
   Printed per layer: requests of each, the re-sweeps beside full re-sweeps, and the re-sweeps as a share of
   the hourly schedule's own. Every day costs the same in steady state: a month is 30 such days.
2. Recovery. The real asset graph (`materialize`, the contratações' first-seen layer) against a simulator
   where 6 % of a day's 1,500 contratações are inserted 2 to 25 days after their publication (faults off), the
   shipped schedules ticked with both clocks moving: the hourly and day-close ticks from D 00:05 to D+1 06:05,
   then the re-sweep ticks to D+31 06:35. Printed: the day's records missing from pncp/ and filed twice, after
   the day close (what the pipeline did before the re-sweeps) and after the last re-sweep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections import Counter
from pathlib import Path

DAY = dt.date(2025, 10, 22)


def _sweep_moments() -> dict[str, list[dt.datetime]]:
    next_day = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(0))
    return {
        "hourly": [dt.datetime.combine(DAY, dt.time(0)) + dt.timedelta(hours=h + 1, minutes=5) for h in range(24)],
        "day close": [next_day + dt.timedelta(hours=6, minutes=5)],
        "re-sweeps": [next_day + dt.timedelta(days=age, hours=6, minutes=35) for age in (1, 7, 30)],
    }


def requests_per_day(volume: int | None, seed: int, late_fraction: float) -> None:
    from pncp_assets.layers import LAYERS, first_seen_of
    from pncp_assets.pncp.client import ANY_COUNT, PncpClient
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

    config = SimulatorConfig(seed=seed, volume=volume, update_fraction=0.3, update_max_days=14.0,
                             late_fraction=late_fraction, late_hours=30.0, late_hours_max=240.0)
    moments = _sweep_moments()
    day_close = moments["day close"][0]
    print(f"1. Requests for one day ({DAY}, {volume or 'about 6000'} contratações, {late_fraction:.0%} of them "
          "backdated by 30 h to 10 days), swept as the schedules do")
    print(f"{'layer':>24} | {'hourly':>7} | {'day close':>9} | {'re-sweeps':>9} | {'full re-sweeps':>14} | "
          f"{'re-sweeps / hourly':>18}")
    totals = Counter()
    first_seen_counts: dict[tuple[str, dt.datetime], dict] = {}  # (feed, moment) -> its first-seen counts then
    started = time.perf_counter()
    with RunningSimulator(config) as sim:
        for layer in LAYERS:
            client = PncpClient(sim.base_url, request_interval_s=0, endpoint=layer.endpoint)
            sibling = first_seen_of(layer) if layer.versioned else None
            counts = Counter()
            settled: dict[int | None, int] = {}
            last_close: dt.datetime | None = None
            for kind, times in moments.items():
                for now in times:
                    sim.sim.configure(now=now)
                    rule = settled if now >= moments["hourly"][-1] else None
                    if sibling is not None and now > day_close and last_close is not None:
                        # ledger.settled_versions: count only, unless the first-seen count rose since the last close
                        counter = PncpClient(sim.base_url, request_interval_s=0, endpoint=sibling.endpoint)
                        result = counter.sweep_day(DAY, {m: ANY_COUNT for m in _lists(counter)})
                        counts[kind] += result.totals()["requests"]
                        then = first_seen_counts[sibling.feed, last_close]
                        rose = any(r.total_registros > then.get(m, 0) for m, r in result.reports.items())
                        rule = {} if rose else {m: ANY_COUNT for m in _lists(client)}
                    result = client.sweep_day(DAY, rule)
                    counts[kind] += result.totals()["requests"]
                    if kind == "re-sweeps":  # the same sweep without counting first
                        counts["full"] += client.sweep_day(DAY).totals()["requests"]
                    if now >= moments["hourly"][-1]:  # a closing sweep: every listed record is filed
                        settled = {m: r.total_registros for m, r in result.reports.items()
                                   if r.counted_only or r.distinct_ids >= r.total_registros}
                        last_close = now
                        if not layer.versioned:
                            first_seen_counts[layer.feed, now] = {m: r.total_registros
                                                                  for m, r in result.reports.items()}
            totals.update(counts)
            print(f"{layer.source:>24} | {counts['hourly']:>7} | {counts['day close']:>9} | {counts['re-sweeps']:>9} | "
                  f"{counts['full']:>14} | {counts['re-sweeps'] / counts['hourly']:>17.1%}", flush=True)
    print(f"{'all five':>24} | {totals['hourly']:>7} | {totals['day close']:>9} | {totals['re-sweeps']:>9} | "
          f"{totals['full']:>14} | {totals['re-sweeps'] / totals['hourly']:>17.1%}")
    print(f"A month (30 such days): {30 * totals['re-sweeps']} re-sweep requests against {30 * totals['hourly']} "
          f"hourly ones ({totals['re-sweeps'] / totals['hourly']:.1%}); full re-sweeps would add "
          f"{totals['full'] / totals['hourly']:.1%}; the day close adds {totals['day close'] / totals['hourly']:.1%}. "
          f"({time.perf_counter() - started:.0f} s)")


def _lists(client) -> tuple:
    return client.modalidades if client.endpoint.by_modalidade else (None,)


def recovery(seed: int, late_days: tuple[float, float]) -> None:
    import dagster as dg
    import pytest

    from pncp_assets.brasilia import TZ
    from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
    from pncp_assets.storage import LocalObjectStore
    from pncp_assets_tests.support.pipeline import Pipeline, storage_resource
    from pncp_assets_tests.support.schedules import run_the_schedules

    config = SimulatorConfig(seed=seed, volume=1500, late_fraction=0.06, late_hours=24 * late_days[0],
                             late_hours_max=24 * late_days[1])
    modalidades = (6, 8, 9)
    print(f"\n2. Recovery: 6 % of {DAY}'s contratações inserted {late_days[0]:g} to {late_days[1]:g} days late "
          f"(modalidades {', '.join(map(str, modalidades))})")
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance, \
            pytest.MonkeyPatch.context() as monkeypatch, RunningSimulator(config) as sim:
        store = LocalObjectStore(Path(tmp) / "bronze")
        p = Pipeline(sim, store, storage_resource(store), modalidades="6,8,9", sweep_max_age_minutes=60,
                     instance=instance)
        truth = {r["numeroControlePNCP"] for r in sim.sim.all_records(DAY) if r["modalidadeId"] in modalidades}

        def judged(label: str) -> None:
            filed = Counter(x for d in (DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1))
                            for ids in p.delta_ids(d).values() for x in ids)
            missing = truth - set(filed)
            twice = [x for x in truth if filed[x] > 1]
            print(f"{label:>28}: {len(truth) - len(missing)} of {len(truth)} in pncp/, {len(missing)} missing, "
                  f"{len(twice)} filed twice", flush=True)

        start = dt.datetime.combine(DAY, dt.time(0, 5), tzinfo=TZ)
        closed = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(6, 5), tzinfo=TZ)
        run_the_schedules(p, monkeypatch, start, closed, names=("pncp_hourly_schedule", "pncp_day_close_schedule"))
        judged("after the day close")
        runs = run_the_schedules(p, monkeypatch, closed, closed + dt.timedelta(days=30, hours=1),
                                 names=("pncp_resweep_schedule",))
        judged("after the last re-sweep")
    ours = [t for t, _, pk in runs if pk.startswith(DAY.isoformat())]
    print(f"re-sweeps of {DAY}: {', '.join(f'{t:%m-%d %H:%M}' for t in ours)} "
          f"({time.perf_counter() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=None, help="contratações per day (default ~6000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--late-days", type=float, nargs=2, default=(2.0, 25.0))
    parser.add_argument("--late-fractions", type=float, nargs="*", default=(0.0, 0.02),
                        help="shares of contratações backdated, one table each (part 1; none: skip it)")
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    for fraction in args.late_fractions:
        requests_per_day(args.volume, args.seed, fraction)
    if not args.skip_recovery:
        recovery(args.seed, tuple(args.late_days))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
