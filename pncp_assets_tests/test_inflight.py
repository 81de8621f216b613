"""Requests in flight while one waits, and outages ridden out: the window's rule alone, then the client against the
simulator's time model over real HTTP (latency, a ceiling of requests in flight, 429 above the start rate, outages)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import threading

import pytest

from pncp_assets.layers import CONTRATOS, FIRST_SEEN
from pncp_assets.pncp.client import PncpClient, PncpUnavailable, SweepError
from pncp_assets.pncp.inflight import Availability, InFlightWindow
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

DAY = dt.date(2025, 10, 22)
MODALIDADES = (6, 8, 9, 16)
TIMED = SimulatorConfig(seed=11, volume=1500, latency_s=0.03, latency_per_row_s=0.0004)


def client(sim: RunningSimulator, **kwargs) -> PncpClient:
    options = {"request_interval_s": 0.0, "modalidades": MODALIDADES, "backoff_initial_s": 0.01,
               "backoff_max_s": 0.05, "read_timeout_s": 10, "endpoint": FIRST_SEEN.endpoint}
    return PncpClient(sim.base_url, **{**options, **kwargs})


def page_order(result) -> list[tuple[int | None, int, tuple[str, ...]]]:
    return [(p.modalidade, p.pagina, tuple(r["numeroControlePNCP"] for r in p.records)) for p in result.pages]


# --- the window's rule -------------------------------------------------------------------------------------------

def test_the_window_grows_by_one_after_a_run_of_good_answers_and_never_past_its_maximum():
    window = InFlightWindow(start=1, maximum=3, grow_after=2)
    for _ in range(2):  # 2 x limit 1
        window.release(window.acquire(), True)
    assert window.limit == 2
    for _ in range(4):  # 2 x limit 2
        window.release(window.acquire(), True)
    assert window.limit == 3
    for _ in range(50):
        window.release(window.acquire(), True)
    assert window.limit == 3


def test_a_burst_of_failures_from_one_crowded_moment_halves_the_window_once():
    window = InFlightWindow(start=3, maximum=3)
    epochs = [window.acquire() for _ in range(3)]
    for epoch in epochs:  # all three started before the first cut: one signal
        window.release(epoch, False)
    assert (window.limit, window.cuts) == (1, 1)
    window.release(window.acquire(), False)  # started after the cut: cuts again, but never below one
    assert (window.limit, window.cuts) == (1, 2)


def test_an_answer_that_says_nothing_about_the_load_neither_grows_nor_cuts():
    window = InFlightWindow(start=2, maximum=3, grow_after=1)
    for _ in range(5):
        window.release(window.acquire(), None)
    assert (window.limit, window.cuts) == (2, 0)


def test_a_full_window_makes_the_next_request_wait_for_a_place():
    window = InFlightWindow(start=2, maximum=2)
    held = [window.acquire(), window.acquire()]
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (window.acquire(), got.set()))
    waiter.start()
    assert not got.wait(0.2)  # a third request waits while two are in flight
    window.release(held[0], True)
    assert got.wait(5)
    waiter.join()
    assert window.peak == 2


@pytest.mark.parametrize(("start", "maximum"), [(0, 3), (4, 3), (1, 0), (2, 2.5)])
def test_window_sizes_outside_one_to_the_maximum_are_refused(start, maximum):
    with pytest.raises(ValueError, match="in flight"):
        InFlightWindow(start, maximum)


def test_availability_counts_an_outage_from_its_first_failure_and_says_it_ended_once_announced():
    now = [100.0]
    availability = Availability(clock=lambda: now[0])
    availability.failed()
    now[0] = 160.0
    availability.failed()  # a later failure does not move the start
    assert availability.failing_for() == 60.0
    assert availability.announce() and not availability.announce()  # said once
    now[0] = 190.0
    assert availability.good(started=90.0) is None  # asked before the failures began: says nothing of now
    assert availability.failing_for() == 90.0 and availability.down_since(100.0)
    since_wall, seconds = availability.good(started=185.0)
    assert seconds == 90.0 and since_wall > 0
    assert availability.failing_for() == 0.0 and not availability.down_since(190.0)
    assert availability.good(started=190.0) is None  # nothing more to end


# --- the client against the simulator -----------------------------------------------------------------------------

def test_three_in_flight_file_the_same_pages_in_the_same_order_as_one_at_a_time():
    with RunningSimulator(TIMED) as sim:
        alone = client(sim).sweep_day(DAY)
        sim.sim.log.clear()
        three = client(sim, max_in_flight=3, start_in_flight=3)
        together = three.sweep_day(DAY)
        in_flight = [e.in_flight for e in sim.sim.log]
    assert page_order(together) == page_order(alone)
    assert [r["numeroControlePNCP"] for r, _ in together.records()] == [
        r["numeroControlePNCP"] for r, _ in alone.records()]
    # Pages of a list and several modalidades at once, never more than the maximum (counted by the client: the
    # server may still be closing an answered request when the next arrives).
    assert three.window.peak == 3 and max(in_flight) >= 3


def test_contratos_pages_of_one_list_are_asked_together():
    config = dataclasses.replace(TIMED, volume=3000)
    with RunningSimulator(config) as sim:
        c = client(sim, endpoint=CONTRATOS.endpoint, max_in_flight=3, start_in_flight=3)
        result = c.sweep_day(DAY)
        in_flight = [e.in_flight for e in sim.sim.log]
    report = result.reports[None]
    assert report.pages > 3 and report.shortfall == 0 and report.distinct_ids == report.total_registros
    assert c.window.peak == 3 and max(in_flight) >= 3


def test_the_window_grows_while_the_api_answers_well():
    with RunningSimulator(dataclasses.replace(TIMED, volume=4000)) as sim:
        c = client(sim, max_in_flight=3, start_in_flight=1)
        assert c.window.limit == 1  # starts at one
        c.sweep_day(DAY)
        peak = max(e.in_flight for e in sim.sim.log)
    assert c.window.limit == 3 and c.window.peak == 3 and peak >= 3


def test_above_the_apis_ceiling_the_window_shrinks_and_every_record_still_arrives():
    config = dataclasses.replace(TIMED, max_in_flight=1)  # a second request in flight answers 500 or 504
    with RunningSimulator(config) as sim:
        c = client(sim, max_in_flight=3, start_in_flight=3)
        result = c.sweep_day(DAY)
        expected = sorted(r["numeroControlePNCP"] for r in sim.sim.visible_records(DAY)
                          if r["modalidadeId"] in MODALIDADES)
        refused = sum(e.status >= 500 for e in sim.sim.log)
        asked = len(sim.sim.log)
    assert sorted(r["numeroControlePNCP"] for r, _ in result.records()) == expected
    assert c.window.cuts >= 1 and c.window.limit < 3
    assert result.totals()["server_errors"] == refused > 0
    assert refused < asked / 4  # the window learnt: most requests were answered


def test_the_pacing_still_spaces_every_start_with_three_in_flight():
    # The API refuses a start sooner than 0.04 s after the last; the client spaces them 0.15 s (the margin is for
    # the threads' and loopback's jitter on a loaded machine).
    config = dataclasses.replace(TIMED, min_start_interval_s=0.04, latency_s=0.4)
    with RunningSimulator(config) as sim:
        result = client(sim, modalidades=(6, 9), request_interval_s=0.15, max_in_flight=3,
                        start_in_flight=3).sweep_day(DAY)
        starts = sorted(e.at for e in sim.sim.log)  # logged as answered: sorted back into arrivals
        in_flight = max(e.in_flight for e in sim.sim.log)
    assert result.totals()["throttled"] == 0  # no start sooner than the API allows (its own clock says so)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.04
    assert in_flight >= 2  # and still more than one in flight while pages take their time


def test_an_outage_shorter_than_the_bound_is_ridden_out_and_said_in_the_log(caplog):
    seen: list[tuple[dt.datetime, float | None]] = []
    with RunningSimulator(TIMED) as sim:
        now = sim.sim.time.elapsed(sim.sim.config)
        sim.sim.configure(outages=[(now, now + 1.5)])  # down for 1.5 s from now
        c = client(sim, max_in_flight=3, start_in_flight=3, max_attempts=3, outage_bound_s=20,
                   on_outage=lambda since, seconds: seen.append((since, seconds)),
                   logger=logging.getLogger("pncp-test"))
        with caplog.at_level(logging.INFO, logger="pncp-test"):
            result = c.sweep_day(DAY)
        expected = sorted(r["numeroControlePNCP"] for r in sim.sim.visible_records(DAY)
                          if r["modalidadeId"] in MODALIDADES)
    assert sorted(r["numeroControlePNCP"] for r, _ in result.records()) == expected
    text = caplog.text
    assert "PNCP unavailable since" in text and "Waiting for it up to 20.0 s" in text
    assert "PNCP answering again" in text and "ridden out" in text
    assert [seconds is None for _, seconds in seen] == [True, False]  # declared once, ended once
    assert seen[0][0] == seen[1][0] and 1.0 <= seen[1][1] < 20


def test_an_outage_past_the_bound_fails_the_sweep_saying_since_when():
    with RunningSimulator(TIMED) as sim:
        now = sim.sim.time.elapsed(sim.sim.config)
        sim.sim.configure(outages=[(now, now + 3600)])
        c = client(sim, max_in_flight=3, max_attempts=2, outage_bound_s=1.0)
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with pytest.raises(PncpUnavailable) as info:
            c.sweep_day(DAY)
    message = str(info.value)
    assert message.startswith("PNCP unavailable since ") and "HTTP 503" in message
    assert before <= info.value.since <= dt.datetime.now(dt.UTC)
    assert "PNCP_OUTAGE_BOUND_MINUTES" in message


def test_one_page_failing_while_the_others_answer_is_not_an_outage():
    """A page that keeps failing alone fails after its own attempts, not after the outage bound."""
    with RunningSimulator(TIMED) as sim:
        sim.sim.configure(error_5xx_rate=1.0)
        c = client(sim, modalidades=(8,), max_attempts=3, outage_bound_s=3600)
        original = c._request
        answered = []

        def others_answer(params):  # other requests, started after this page's failures, answer well
            try:
                return original(params)
            finally:
                answered.append(c.availability.good(started=c.availability.now()))

        c._request = others_answer
        with pytest.raises(SweepError) as info:
            c.sweep_day(DAY)
    assert not isinstance(info.value, PncpUnavailable) and "3 attempts" in str(info.value)
    assert len(answered) == 3
