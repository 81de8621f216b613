"""The PNCP client against the simulator over real HTTP, with each fault of the real API."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import Counter

import pytest

from pncp_assets.layers import FIRST_SEEN, VERSIONS
from pncp_assets.pncp.client import (
    MalformedResponse,
    PncpClient,
    PncpRequestError,
    SweepError,
    validate_envelope,
)
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

DAY = dt.date(2025, 10, 22)
MODALIDADES = (6, 8, 9, 16)  # three busy ones and one that is empty on the simulated day


def make_client(sim: RunningSimulator, **kwargs) -> PncpClient:
    options = {"request_interval_s": 0, "modalidades": MODALIDADES, "backoff_initial_s": 0.001,
               "backoff_max_s": 0.01, "read_timeout_s": 5, "endpoint": FIRST_SEEN.endpoint}
    options.update(kwargs)
    return PncpClient(sim.base_url, **options)


@pytest.fixture
def simulator(request):
    config = getattr(request, "param", None) or SimulatorConfig(seed=11, volume=1500)
    with RunningSimulator(config) as running:
        yield running


def expected_ids(sim: RunningSimulator, modalidades=MODALIDADES) -> list[str]:
    return sorted(r["numeroControlePNCP"] for r in sim.sim.visible_records(DAY) if r["modalidadeId"] in modalidades)


def swept_ids(result) -> list[str]:
    return sorted(r["numeroControlePNCP"] for r, _ in result.records())


def test_clean_sweep_gets_every_page_of_every_modalidade(simulator):
    result = make_client(simulator).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    log = simulator.sim.log
    for modalidade in MODALIDADES:
        report = result.reports[modalidade]
        asked = sorted(int(e.params["pagina"]) for e in log
                       if int(e.params["codigoModalidadeContratacao"]) == modalidade)
        pages = -(-report.total_registros // 50)
        if pages:
            assert asked == list(range(1, pages + 1))  # every page, once, no cap
            assert report.shortfall == 0 and report.distinct_ids == report.total_registros
        else:
            assert asked == [1, 1]  # an empty answer on page 1 is confirmed once
    assert all(e.params["tamanhoPagina"] == "50" for e in log)
    assert {e.params["dataInicial"] for e in log} == {"20251022"}


def test_no_page_cap_on_a_big_modalidade():
    with RunningSimulator(SimulatorConfig(seed=2, volume=4000)) as sim:
        result = make_client(sim, modalidades=(8,)).sweep_day(DAY)
        report = result.reports[8]
        assert report.pages > 10  # the seed's cap of 10 pages per modalidade lost data
        assert swept_ids(result) == expected_ids(sim, (8,))


def test_sweep_uses_the_brasilia_day_of_a_utc_moment(simulator):
    late_evening = dt.datetime(2025, 10, 23, 1, 30, tzinfo=dt.UTC)  # 22:30 on the 22nd in Brasília
    make_client(simulator, modalidades=(8,)).sweep_day(late_evening)
    assert {e.params["dataInicial"] for e in simulator.sim.log} == {"20251022"}


def test_pacing_keeps_the_interval_between_requests(simulator):
    interval = 0.1
    make_client(simulator, modalidades=(9,), request_interval_s=interval).sweep_day(DAY)
    arrivals = sorted(e.at for e in simulator.sim.log)
    assert len(arrivals) >= 3
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Spaced at the client; at the server, less the arrival jitter of a loaded machine (8 ms seen in CI).
    assert min(gaps) >= interval * 0.8


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, rate_limit_every=5,
                                                       rate_limit_burst=3)], indirect=True)
def test_429_bursts_are_retried(simulator):
    result = make_client(simulator).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    assert sum(r.retries for r in result.reports.values()) >= 3
    assert Counter(e.status for e in simulator.sim.log)[429] >= 3


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, error_5xx_rate=0.3)], indirect=True)
def test_5xx_are_retried(simulator):
    result = make_client(simulator).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    assert any(e.status >= 500 for e in simulator.sim.log)


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, transient_204_rate=0.3)],
                         indirect=True)
def test_transient_204_is_retried_never_read_as_done(simulator):
    result = make_client(simulator, empty_confirmations=3).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    assert any(e.status == 204 and int(e.params["pagina"]) > 1 for e in simulator.sim.log)


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=600, slow_rate=0.2, slow_seconds=1.0)],
                         indirect=True)
def test_answers_slower_than_the_read_timeout_are_retried(simulator):
    result = make_client(simulator, modalidades=(8, 9), read_timeout_s=0.3).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator, (8, 9))
    assert sum(r.retries for r in result.reports.values()) >= 1


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, drop_rate=0.2)], indirect=True)
def test_dropped_connections_are_retried(simulator):
    result = make_client(simulator).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    assert any(e.status == 0 for e in simulator.sim.log)
    assert sum(r.retries for r in result.reports.values()) >= 1


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, short_page_rate=0.3)], indirect=True)
def test_short_pages_are_re_requested_and_the_fullest_kept(simulator):
    result = make_client(simulator, short_page_retries=6).sweep_day(DAY)
    assert swept_ids(result) == expected_ids(simulator)
    assert sum(r.short_pages_rerequested for r in result.reports.values()) >= 1
    assert sum(r.shortfall for r in result.reports.values()) == 0


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, short_page_rate=1.0)], indirect=True)
def test_pages_that_stay_short_are_reported_as_a_shortfall(simulator, caplog):
    with caplog.at_level(logging.WARNING):
        result = make_client(simulator, modalidades=(8,), short_page_retries=1, max_passes=1).sweep_day(DAY)
    report = result.reports[8]
    assert report.short_pages_unresolved >= 1
    assert report.shortfall == report.total_registros - report.distinct_ids > 0
    assert "SHORTFALL" in report.line()
    assert "still" in caplog.text


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, shift_every=4, shift_remove=True)],
                         indirect=True)
def test_pages_shifting_mid_sweep_still_give_every_record_once(simulator):
    before = set(expected_ids(simulator))
    result = make_client(simulator).sweep_day(DAY)
    after = set(expected_ids(simulator))
    assert after != before  # records really were inserted and removed mid-sweep
    assert swept_ids(result) == sorted(set(swept_ids(result)))
    # Records there from start to end of the sweep are all caught, although they moved across pages;
    # one inserted after its modalidade was swept is for the next run.
    assert before & after <= set(swept_ids(result))


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=1500, duplicate_rate=0.1)], indirect=True)
def test_the_same_record_on_two_pages_is_kept_once(simulator):
    result = make_client(simulator).sweep_day(DAY)
    seen = sum(r.records_seen for r in result.reports.values())
    assert swept_ids(result) == expected_ids(simulator)
    assert seen > len(swept_ids(result))


@pytest.mark.parametrize("kind", ["not_json", "html", "not_utf8", "missing_fields", "wrong_types", "data_not_list"])
def test_malformed_envelopes_fail_naming_what_was_wrong(kind):
    config = SimulatorConfig(seed=11, volume=300, malformed_rate=1.0, malformed_kind=kind)
    with RunningSimulator(config) as sim, pytest.raises(SweepError) as info:
        make_client(sim, modalidades=(8,), max_attempts=2).sweep_day(DAY)
    words = {"not_json": "not JSON", "html": "not JSON: '<!DOCTYPE html>", "not_utf8": "not UTF-8",
             "missing_fields": "lacks totalRegistros", "wrong_types": "totalRegistros is '",
             "data_not_list": "not a list"}
    assert words[kind] in str(info.value)
    assert "Modalidade 8 page 1" in str(info.value)


def test_validate_envelope_unit():
    good = {"data": [{"a": 1}], "totalRegistros": 1, "totalPaginas": 1, "numeroPagina": 1}
    assert validate_envelope(good) is good
    with pytest.raises(MalformedResponse, match="not an object"):
        validate_envelope([1])
    with pytest.raises(MalformedResponse, match="totalRegistros"):
        validate_envelope({**good, "totalRegistros": "1"})
    with pytest.raises(MalformedResponse, match="disagrees"):
        validate_envelope({**good, "totalPaginas": 3})


@pytest.mark.parametrize("simulator", [SimulatorConfig(seed=11, volume=600, error_5xx_rate=1.0)], indirect=True)
def test_a_modalidade_failing_after_its_retries_fails_the_whole_sweep(simulator):
    client = make_client(simulator, modalidades=(8, 9), max_attempts=3)
    with pytest.raises(SweepError) as info:
        client.sweep_day(DAY)
    assert info.value.modalidade == 8 and info.value.pagina == 1
    assert "Modalidade 8 page 1" in str(info.value) and "3 attempts" in str(info.value)
    assert len(simulator.sim.log) == 3  # nothing after the failure is reported as swept


def test_400_is_not_retried_and_carries_message_and_parameters(simulator):
    client = make_client(simulator, modalidades=(8,), page_size=500)
    with pytest.raises(PncpRequestError) as info:
        client.sweep_day(DAY)
    assert info.value.status == 400
    assert info.value.server_message == "Tamanho de página inválido"
    assert info.value.params["tamanhoPagina"] == 500 and "Tamanho de página inválido" in str(info.value)
    assert len(simulator.sim.log) == 1


def test_sweep_progress_is_logged_at_most_every_interval_and_anything_unusual_always(simulator, caplog):
    def swept_lines(**kwargs) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="pncp_assets.pncp.client"):
            make_client(simulator, **kwargs).sweep_day(DAY)
        return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]

    # As a slow sweep shows them (each modalidade past the interval): one line each, counted.
    lines = swept_lines(progress_every_s=0)
    assert any(line.startswith("Modalidade 8 (Dispensa): ") and "distinct records of" in line
               and f"[{MODALIDADES.index(8) + 1} of {len(MODALIDADES)}]" in line for line in lines)
    assert sum(line.startswith("Modalidade ") for line in lines) == len(MODALIDADES)
    assert lines[-1].startswith("Swept 2025-10-22: ")
    # A sweep faster than the interval: its start and its summary, no line per modalidade.
    lines = swept_lines()
    assert [line.split(" ")[0] for line in lines] == ["Sweeping", "Swept"]
    # Anything unusual is shown whatever the interval: a modalidade that needed retries.
    simulator.sim.configure(error_5xx_rate=0.3)
    lines = swept_lines()
    retried = [line for line in lines if line.startswith("Modalidade ")]
    assert retried and all(" 0 retries" not in line for line in retried)


def test_full_day_with_every_fault_on_comes_back_complete_exactly_once():
    config = SimulatorConfig(
        seed=5, rate_limit_every=17, rate_limit_burst=2, transient_204_rate=0.05, error_5xx_rate=0.05,
        short_page_rate=0.05, shift_every=23, duplicate_rate=0.05, late_fraction=0.0,
        slow_rate=0.02, slow_seconds=0.6,
    )
    with RunningSimulator(config) as sim:
        client = make_client(sim, modalidades=tuple(range(1, 20)), read_timeout_s=0.4, short_page_retries=5,
                             empty_confirmations=2, max_attempts=10)
        before = set(expected_ids(sim, tuple(range(1, 20))))
        result = client.sweep_day(DAY)
        after = set(expected_ids(sim, tuple(range(1, 20))))
    ids = swept_ids(result)
    assert len(ids) == len(set(ids))
    assert len(before) == 6000 and before & after <= set(ids)
    assert len(after) > len(before)  # records were published mid-sweep
    assert result.totals()["retries"] > 0


def test_client_from_environment(monkeypatch):
    monkeypatch.setenv("PNCP_API_BASE_URL", "http://127.0.0.1:9/api/consulta/")
    monkeypatch.setenv("PNCP_REQUEST_INTERVAL_S", "0")
    monkeypatch.setenv("PNCP_MODALIDADES", "6,8..9")
    from pncp_assets.defs.environment import pncp_api

    client = pncp_api().client(endpoint=FIRST_SEEN.endpoint)
    assert client.base_url == "http://127.0.0.1:9/api/consulta"
    assert client.modalidades == (6, 8, 9)
    assert client._pacer.interval == 0


def test_waiting_out_the_interval_keeps_the_spacing_for_whoever_asks_next():
    slept: list[float] = []
    client = PncpClient("http://127.0.0.1:9", request_interval_s=0.5, sleep=slept.append, endpoint=FIRST_SEEN.endpoint)
    client.wait_out_interval()
    assert slept == []  # no request made: nothing to wait for
    client._pacer.wait()  # what a request does
    client.wait_out_interval()
    assert len(slept) == 1 and 0.4 < slept[0] <= 0.5


def test_an_update_sweep_with_every_fault_on_comes_back_complete_exactly_once():
    """`/atualizacao` through the same client: the day's included or changed records, each once, as they
    are at the clock, whatever the faults."""
    ATUALIZACAO = VERSIONS.endpoint

    config = SimulatorConfig(
        seed=5, volume=1500, update_fraction=0.4, update_max_days=3, now=dt.datetime(2025, 10, 26, 12),
        rate_limit_every=17, rate_limit_burst=2, transient_204_rate=0.05, error_5xx_rate=0.05,
        short_page_rate=0.05, duplicate_rate=0.05,
    )
    with RunningSimulator(config) as sim:
        client = make_client(sim, modalidades=MODALIDADES, short_page_retries=5, empty_confirmations=2,
                             max_attempts=10, endpoint=ATUALIZACAO)
        result = client.sweep_day(DAY)
        expected = {r["numeroControlePNCP"]: r for r in sim.sim.updated_records(DAY)
                    if r["modalidadeId"] in MODALIDADES}
        requested = {e.path for e in sim.sim.log}
    got = {r["numeroControlePNCP"]: r for r, _ in result.records()}
    assert len(result.records()) == len(got) and got == expected
    assert any(r["dataAtualizacaoGlobal"][:10] == "2025-10-22" and r["dataPublicacaoPncp"][:10] < "2025-10-22"
               for r in got.values()), "records published earlier and changed on the day are in it"
    assert requested == {ATUALIZACAO.path} and result.totals()["retries"] > 0


def test_the_client_refuses_an_unknown_endpoint(simulator):
    with pytest.raises(TypeError, match="endpoint must be an Endpoint"):
        make_client(simulator, endpoint="/v1/contratos")  # a path is not an endpoint: which ID, which pages?
