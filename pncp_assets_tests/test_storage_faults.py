"""S3 that throttles, fails, drops connections and loses answers (a proxy in front of SeaweedFS)."""

from __future__ import annotations

import datetime as dt

import pytest

from pncp_assets.defs.s3_storage import S3BronzeStorage
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import S3ObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, visible_before
from pncp_assets_tests.support.s3_proxy import FaultProxy, Rule

pytestmark = pytest.mark.s3

DAY = dt.date(2025, 10, 22)


def messages(error) -> str:
    """A Dagster error's message with those of its causes."""
    out = []
    while error is not None:
        out.append(error.message)
        error = error.cause
    return "\n".join(out)


@pytest.fixture
def proxied(seaweed, s3_bucket, monkeypatch):
    """A pipeline whose S3 traffic goes through the fault proxy; `p.store` reads SeaweedFS directly."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    proxy = FaultProxy(seaweed.endpoint)
    sim = RunningSimulator(SimulatorConfig(seed=31, volume=300, late_fraction=0.2, late_hours=1)).start()
    storage = S3BronzeStorage(bucket=s3_bucket, endpoint_url=proxy.endpoint)
    yield Pipeline(sim, S3ObjectStore(seaweed.client(), s3_bucket), storage), proxy
    sim.stop()
    proxy.stop()


def test_throttling_errors_drops_and_lost_answers_are_retried_and_every_run_completes(proxied):
    p, proxy = proxied
    # Every 4th S3 request fails, in turn: 503 SlowDown, 500, a dropped connection, a lost answer.
    proxy.add(Rule("rotate", every=4, actions=("slowdown", "error", "drop", "lose_answer")))
    for hour in (8, 9, 10):
        assert p.run(partition(DAY, hour), now=end_of_hour(DAY, hour + 1)).success, hour
    assert min(proxy.faults[a] for a in ("slowdown", "error", "drop", "lose_answer")) >= 3, proxy.faults
    p.assert_invariants(DAY, visible_before(p.sim.sim, DAY, 11))


def test_lost_answers_to_state_and_sweep_writes_never_lose_a_claim(proxied):
    p, proxy = proxied
    # Every other conditional PUT of the state (and of raw sweeps) lands but its answer is lost: the
    # client's retry then fails its own condition (412), which must not be taken for another run's win.
    proxy.add(Rule("lose_answer", method="PUT", path_contains="/_state/", every=2))
    proxy.add(Rule("lose_answer", method="PUT", path_contains="/_raw/", every=2))
    for hour in (8, 9):
        result = p.run(partition(DAY, hour), now=end_of_hour(DAY, hour))
        assert result.success, hour
    assert proxy.faults["lose_answer"] >= 4
    deltas = p.assert_invariants(DAY, visible_before(p.sim.sim, DAY, 10))
    assert set(deltas) == {partition(DAY, 8), partition(DAY, 9)}  # each hour published its own claim


@pytest.mark.parametrize("target", ["/_state/", "/pncp/year%3D"], ids=["state", "delta"])
def test_an_outage_fails_the_run_clearly_and_the_next_run_completes(proxied, seaweed, target):
    p, proxy = proxied
    assert p.run(partition(DAY, 8), now=end_of_hour(DAY, 8)).success
    before = p.delta_ids(DAY)
    p.storage = S3BronzeStorage(bucket=p.storage.bucket, endpoint_url=proxy.endpoint,
                              max_attempts=2)  # give up sooner than the default 5 attempts
    outage = proxy.add(Rule("slowdown", method="PUT", path_contains=target))
    p.sim.sim.configure(now=end_of_hour(DAY, 9))
    failed = p.run(partition(DAY, 9), raise_on_error=False)
    assert not failed.success, "the run failed"
    errors = [messages(e.step_failure_data.error) for e in failed.all_events if e.is_step_failure]
    assert any("SlowDown" in m and p.storage.bucket in m and proxy.endpoint in m for m in errors), errors
    assert outage.fired >= 2  # the client's own retry came first
    assert p.delta_ids(DAY) == before  # nothing half-done is visible as done
    state = StateManager(p.store).load_state("pncp", DAY)
    assert set(state["processed_ids"]) >= {x for ids in before.values() for x in ids}

    proxy.clear()  # the outage ends
    assert p.run(partition(DAY, 9)).success
    p.assert_invariants(DAY, visible_before(p.sim.sim, DAY, 10))
