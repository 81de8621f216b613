"""Property-based: random days and random schedules of runs keep every invariant (hypothesis).

A day: random volume, late records, pages shifting under the sweep (records inserted and withdrawn),
204s, 5xx, short pages and duplicated rows. A schedule: runs of random hours at a moving clock, some
crashing at a random point, some two at a time. Each run is what the three assets do (sweep, commit,
publish, finalize), without Dagster, on local storage so that many examples fit in CI. A fixed seed in
CI (`derandomize`); `bench/bench_properties.py` runs many more random examples.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pncp_assets import bronze, faults, layout
from pncp_assets.commit import DeltaCommitter
from pncp_assets.consistency import ConsistencyCheck
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.pncp.client import PncpClient, PncpError
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore, ObjectStore
from pncp_assets.sweeps import SweepStore
from pncp_assets_tests.support.concurrency import run_together
from pncp_assets_tests.support.pipeline import partition, visible_before

DAY = dt.date(2025, 10, 22)
HOURS = list(range(10, 16))
MODALIDADES = (6, 8, 9)
EXAMPLES = int(os.environ.get("PNCP_HYPOTHESIS_EXAMPLES", "50"))
RANDOM = os.environ.get("PNCP_HYPOTHESIS_RANDOM") == "1"  # bench: new random examples each time
TALLY = os.environ.get("PNCP_PROPERTY_TALLY")  # bench: a file that gets one JSON line per example

days = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "volume": st.integers(0, 90),
    "late_fraction": st.sampled_from([0.0, 0.2, 0.5]),
    "late_hours": st.sampled_from([0.5, 1.5, 3.0]),
    "shift_every": st.sampled_from([0, 3, 7]),
    "shift_remove": st.booleans(),
    "transient_204_rate": st.sampled_from([0.0, 0.1, 0.3]),
    "error_5xx_rate": st.sampled_from([0.0, 0.1]),
    "duplicate_rate": st.sampled_from([0.0, 0.2]),
    "short_page_rate": st.sampled_from([0.0, 0.2]),
})
steps = st.lists(st.tuples(
    st.sampled_from(HOURS),                                  # the hour materialised
    st.integers(0, 150),                                     # minutes the clock moves first
    st.one_of(st.none(), st.sampled_from(faults.POINTS)),    # where that run crashes, if it does
    st.one_of(st.none(), st.sampled_from(HOURS)),            # a second run at the same time, if any
), min_size=1, max_size=7)


def run_hour(store: ObjectStore, api: str, pk: str, run_id: str, crash: str | None = None) -> str:
    """What one Dagster run of H does, step by step; returns ok, crashed or the API's error."""
    client = PncpClient(api, request_interval_s=0, modalidades=MODALIDADES, page_size=10, endpoint=FIRST_SEEN.endpoint,
                        backoff_initial_s=0.0005, backoff_max_s=0.002)
    with faults.injected(crash):
        try:
            SweepStore(store).sweep_for(pk, client, max_age=dt.timedelta(0))
            committer = DeltaCommitter(store)
            result = committer.commit(pk, SweepStore(store).assigned(pk).records(), run_id)
            if result.output is not None:
                committer.publish(result.output)
            committer.finalize(pk)
        except faults.InjectedCrash:
            return "crashed"
        except PncpError as exc:  # the sweep gave up: the run fails before writing anything of H
            return f"api error: {exc}"
    return "ok"


def readable_deltas(store: ObjectStore) -> dict[str, set[str]]:
    out = {}
    for key in layout.day_delta_keys(store, "pncp", DAY):
        try:
            out[key] = set(bronze.parquet_ids(store.get(key).data))
        except Exception:
            continue  # torn by a crash point: not a whole file, nobody may take it as one
    return out


@settings(max_examples=EXAMPLES, derandomize=not RANDOM, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(day=days, schedule=steps)
def test_random_days_and_schedules_keep_every_invariant(tmp_path_factory, day, schedule):
    store = LocalObjectStore(Path(tmp_path_factory.mktemp("prop")) / "bronze")
    with RunningSimulator(SimulatorConfig(**day)) as running:
        sim, api = running.sim, running.base_url
        clock = dt.datetime.combine(DAY, dt.time(HOURS[0], 5))
        seen: dict[str, set[str]] = {}
        tally: Counter = Counter()
        for n, (hour, minutes, crash, pair) in enumerate(schedule):
            clock += dt.timedelta(minutes=minutes)
            sim.configure(now=clock)
            runs = [(hour, crash)] + ([(pair, None)] if pair is not None else [])
            outcomes: dict[int, str] = {}

            def one(i: int, runs=runs, outcomes=outcomes, n=n) -> None:
                h, c = runs[i]
                outcomes[i] = run_hour(store, api, partition(DAY, h), f"run-{n}-{i}", c)

            assert not run_together(len(runs), one)
            tally.update(outcome.split(":")[0] for outcome in outcomes.values())
            tally["concurrent_pairs"] += len(runs) == 2
            for i, (h, c) in enumerate(runs):
                assert outcomes[i] != "crashed" or c is not None
                if outcomes[i] == "ok":  # the inline check of a run that finished
                    report = ConsistencyCheck(store).check(partition(DAY, h))
                    assert report.passed, report.problems
            for key, ids in readable_deltas(store).items():  # a partition never shrinks
                assert ids >= seen.get(key, set()), f"{key} shrank"
                seen[key] = ids

        # Later, with every late record out and the API healthy (a sweep through duplicated rows can
        # miss a record in all its passes, and says so: a shortfall), one more run of the last hour.
        sim.configure(now=dt.datetime.combine(DAY, dt.time(23, 59)), error_5xx_rate=0.0, transient_204_rate=0.0,
                      shift_every=0, duplicate_rate=0.0, short_page_rate=0.0)
        assert run_hour(store, api, partition(DAY, HOURS[-1]), "final") == "ok"

        deltas = readable_deltas(store)
        assert len(deltas) == len(layout.day_delta_keys(store, "pncp", DAY))
        counts = Counter(x for ids in deltas.values() for x in ids)
        assert not [x for x, c in counts.items() if c > 1], "an ID in two delta files"
        state = StateManager(store).load_state("pncp", DAY)  # fresh if nothing was ever ingested
        assert state["processed_ids"] == sorted(counts) and state["total_processed"] == len(counts)
        assert not [pk for pk, e in state.get("partitions", {}).items() if e.get("staged")], "a claim left open"
        ever = {r["numeroControlePNCP"]: r for r in sim.all_records(DAY, withdrawn=True)}
        assert visible_before(sim, DAY, HOURS[-1] + 1, MODALIDADES) <= set(counts) <= set(ever)
        for key in deltas:  # lossless: each row's _raw is the record as the API sent it
            for raw in bronze.read_parquet(store.get(key).data, columns=["_raw"]).column("_raw").to_pylist():
                record = json.loads(raw)
                assert record == ever[record["numeroControlePNCP"]]
        if TALLY:
            tally.update(final_runs=1, records=len(counts), delta_files=len(deltas))
            with open(TALLY, "a") as out:
                out.write(json.dumps(tally) + "\n")
