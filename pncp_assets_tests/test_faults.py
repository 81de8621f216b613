"""SIGKILL at every crash point of a run, on SeaweedFS, then the day carries on: no invariant breaks."""

from __future__ import annotations

import datetime as dt
import signal

import pytest

from pncp_assets import faults
from pncp_assets.consistency import ConsistencyCheck
from pncp_assets.defs.assets import LAYER_GRAPHS
from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets.layers import CONTRATOS, FIRST_SEEN, Layer
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import S3ObjectStore
from pncp_assets_tests.support.feeds import assert_layer_exact, layer_keys
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, visible_before
from pncp_assets_tests.support.processes import run_hour

DAY = dt.date(2025, 10, 22)
FIRST_HOUR = 8


@pytest.fixture
def day_on_s3(seaweed, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    # Late records make each crashed re-run replace a delta that already holds rows.
    sim = RunningSimulator(SimulatorConfig(seed=21, volume=500, late_fraction=0.3, late_hours=1.5)).start()
    storage = S3BronzeStorage(bucket=s3_bucket, endpoint_url=seaweed.endpoint)
    yield Pipeline(sim, S3ObjectStore(seaweed.client(), s3_bucket), storage)
    sim.stop()


def expected_before(p: Pipeline, layer: Layer, hour: int) -> set[str]:
    """The layer's keys the API shows now for DAY, published before `hour`:00."""
    if layer is FIRST_SEEN:
        return visible_before(p.sim.sim, DAY, hour)
    end = f"{DAY}T{hour:02d}:00:00"
    return {r["numeroControlePNCP"] for r in p.sim.sim.visible_records(DAY, kind="contratos")
            if r["dataPublicacaoPncp"] < end}


@pytest.mark.s3
@pytest.mark.parametrize("layer", [FIRST_SEEN, CONTRATOS], ids=lambda layer: layer.source)
def test_sigkill_at_every_crash_point_then_the_day_carries_on(day_on_s3: Pipeline, seaweed, layer: Layer):
    p = day_on_s3
    p.graphs = tuple(g for g in LAYER_GRAPHS if g.layer is layer)
    assert p.run(partition(DAY, FIRST_HOUR), now=end_of_hour(DAY, FIRST_HOUR)).success
    for n, point in enumerate(faults.POINTS):
        hour = FIRST_HOUR + n
        # An hour later, late records of `hour` have appeared: the crashed run was adding them to its delta.
        p.sim.sim.configure(now=end_of_hour(DAY, hour + 1))
        before = layer_keys(p.store, layer, DAY)
        killed = run_hour(partition(DAY, hour), p.sim.base_url, p.storage.bucket, seaweed.endpoint,
                          env={faults.ENV_POINT: point}, layers=(layer.source,))
        assert killed.returncode == -signal.SIGKILL, f"{point}: rc={killed.returncode}\n{killed.stderr[-2000:]}"
        assert f"SIGKILL at {point}" in killed.stderr

        # The same hour again, then the next one, as the schedule or a user would run them.
        assert p.run(partition(DAY, hour)).success, point
        assert p.run(partition(DAY, hour + 1)).success, point
        assert_layer_exact(p.store, layer, DAY, expected_before(p, layer, hour + 2))
        deltas = layer_keys(p.store, layer, DAY)
        for pk, ids in before.items():
            assert set(deltas[pk]) >= set(ids), f"{point}: partition {pk} shrank"
        state = StateManager(p.store).load_state(layer.source, DAY)
        assert not any(e.get("staged") for e in state["partitions"].values()), f"{point}: a claim left open"
        assert ConsistencyCheck(p.store, layer).check(partition(DAY, hour)).passed, point


def test_crash_points_are_inert_unless_named(monkeypatch):
    monkeypatch.delenv(faults.ENV_POINT, raising=False)
    for point in faults.POINTS:
        faults.crash(point)  # returns: nothing armed
    monkeypatch.setenv(faults.ENV_POINT, "after_claim")
    monkeypatch.setenv(faults.ENV_ACTION, "raise")
    faults.crash("after_sweep")
    with pytest.raises(faults.InjectedCrash):
        faults.crash("after_claim")
