"""Concurrent runs in separate processes, outside Dagster's pool: only compare-and-swap keeps them apart. Each
run files two feeds (contratações and contratos), as the hourly job does."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os

import pytest

from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets.layers import CONTRATOS
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.storage import S3ObjectStore
from pncp_assets_tests.support.feeds import assert_layer_exact
from pncp_assets_tests.support.pipeline import Pipeline, partition, visible_before
from pncp_assets_tests.support.processes import worker

FIRST_DAY = dt.date(2025, 10, 20)  # Monday
ROUNDS = int(os.environ.get("PNCP_CONCURRENCY_ROUNDS", "3"))  # one day each; more for a long run
HOURS = [8, 9, 10, 11, 12, 13, 14, 14]  # six different hours, and two runs of the same hour
LAYERS = ("pncp", "pncp_contratos")


@pytest.mark.s3
def test_eight_processes_at_once_keep_every_invariant_round_after_round(seaweed, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    days = [FIRST_DAY + dt.timedelta(days=r) for r in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate run workers would be
    barrier, results = ctx.Barrier(len(HOURS)), ctx.Queue()
    with RunningSimulator(SimulatorConfig(seed=41, volume=400)) as sim:  # the days are over: all visible
        procs = [ctx.Process(target=worker, args=(barrier, [partition(d, h) for d in days], sim.base_url,
                                                  s3_bucket, seaweed.endpoint, results, LAYERS))
                 for h in HOURS]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=600) for _ in range(len(HOURS) * ROUNDS)]
        for proc in procs:
            proc.join(timeout=60)
        assert [proc.exitcode for proc in procs] == [0] * len(HOURS)
        assert all(ok for _, _, ok, _ in outcomes), [o for o in outcomes if not o[2]]
        # The runs really raced: some commits lost a compare-and-swap and recomputed on the winner's state.
        assert sum(attempts > 1 for *_, attempts in outcomes) >= ROUNDS, outcomes

        storage = S3BronzeStorage(bucket=s3_bucket, endpoint_url=seaweed.endpoint)
        p = Pipeline(sim, S3ObjectStore(seaweed.client(), s3_bucket), storage)
        for day in days:
            deltas = p.assert_invariants(day, visible_before(sim.sim, day, max(HOURS) + 1))
            assert set(deltas) <= {partition(day, h) for h in HOURS}
            end = f"{day}T{max(HOURS) + 1:02d}:00:00"
            assert_layer_exact(p.store, CONTRATOS, day, {r["numeroControlePNCP"] for r in
                                                         sim.sim.visible_records(day, kind="contratos")
                                                         if r["dataPublicacaoPncp"] < end})
