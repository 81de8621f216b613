"""The simulator's own contract: records shaped like the real samples, the real envelope, validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import requests

from pncp_assets.pncp.records import ID_PATTERN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig

DAY = dt.date(2025, 10, 22)  # a Wednesday


def _json_type(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
            type(None): "null"}[type(value)]


# What the live API sends beyond the few samples (docs/PNCP_API.md): money as int or float, often null.
DOCUMENTED_EXTRA_TYPES = {
    "valorTotalEstimado": {"integer", "number"},
    "valorTotalHomologado": {"number", "integer"},
    "unidadeSubRogada": {"object"},
    "orgaoSubRogado": {"object"},
    "fontesOrcamentarias": {"array"},
    "dataAberturaProposta": {"null"},
    "dataEncerramentoProposta": {"null"},
    "justificativaPresencial": {"string"},
    "linkProcessoEletronico": {"string"},
}


@pytest.fixture(scope="module")
def sim():
    with RunningSimulator(SimulatorConfig(seed=7)) as running:
        yield running


def get(sim, **params) -> requests.Response:
    base = {"dataInicial": "20251022", "dataFinal": "20251022", "codigoModalidadeContratacao": 8, "pagina": 1,
            "tamanhoPagina": 50}
    base.update(params)
    base = {k: v for k, v in base.items() if v is not None}
    return requests.get(f"{sim.base_url}/v1/contratacoes/publicacao", params=base, timeout=10)


def test_records_have_exactly_the_keys_and_json_types_of_the_real_samples(sim, sample_records):
    allowed: dict[str, set[str]] = {}
    nested: dict[str, set[str]] = {}
    for record in sample_records:
        for key, value in record.items():
            allowed.setdefault(key, set()).add(_json_type(value))
            if isinstance(value, dict):
                nested[key] = set(value)
    for key, extra in DOCUMENTED_EXTRA_TYPES.items():
        allowed[key] |= extra
    nested["unidadeSubRogada"] = nested["unidadeOrgao"]
    nested["orgaoSubRogado"] = nested["orgaoEntidade"]
    records = sim.sim.all_records(DAY)
    assert len(records) == 6000
    optional = {"emendaParlamentar"}  # absent from older records, as in the samples
    for record in records:
        assert set(allowed) - optional <= set(record) <= set(allowed)
        for key, value in record.items():
            assert _json_type(value) in allowed[key], (key, value)
            if isinstance(value, dict):
                assert set(value) == nested[key], key
        assert ID_PATTERN.fullmatch(record["numeroControlePNCP"])
        assert record["dataPublicacaoPncp"].startswith("2025-10-22T")
    fontes = [f for r in records for f in r["fontesOrcamentarias"]]
    assert fontes and all(set(f) == {"codigo", "nome", "descricao", "dataInclusao"} for f in fontes)


def test_data_has_the_real_mix(sim):
    records = sim.sim.all_records(DAY)
    by_modalidade: dict[int, int] = {}
    for r in records:
        by_modalidade[r["modalidadeId"]] = by_modalidade.get(r["modalidadeId"], 0) + 1
    top3 = sorted(by_modalidade, key=by_modalidade.get, reverse=True)[:3]
    assert set(top3) == {6, 8, 9}
    assert len({r["numeroControlePNCP"] for r in records}) == len(records)
    share_null_homologado = sum(r["valorTotalHomologado"] is None for r in records) / len(records)
    share_empty_fontes = sum(r["fontesOrcamentarias"] == [] for r in records) / len(records)
    assert 0.6 < share_null_homologado < 0.95 and 0.8 < share_empty_fontes < 0.97
    assert any(not r["orgaoEntidade"]["cnpj"].isdigit() for r in records)  # some alphanumeric CNPJs
    hours = {int(r["dataPublicacaoPncp"][11:13]) for r in records}
    assert len(hours) >= 20  # spread over the Brasília day


def test_same_seed_same_day_same_records():
    a = RunningSimulator(SimulatorConfig(seed=3)).sim.all_records(DAY)
    b = RunningSimulator(SimulatorConfig(seed=3)).sim.all_records(DAY)
    c = RunningSimulator(SimulatorConfig(seed=4)).sim.all_records(DAY)
    assert a == b and a != c


def test_envelope_matches_the_real_one(sim, sample_envelopes):
    response = get(sim)
    assert response.status_code == 200
    body = response.json()
    real = sample_envelopes["one_record_page"]
    assert set(body) == set(real)
    assert {k: _json_type(v) for k, v in body.items()} == {k: _json_type(v) for k, v in real.items()}
    assert body["totalPaginas"] == -(-body["totalRegistros"] // 50)
    assert body["paginasRestantes"] == body["totalPaginas"] - 1
    assert len(body["data"]) == 50 and body["empty"] is False


def test_nothing_matches_is_204_with_no_body(sim):
    response = get(sim, codigoModalidadeContratacao=19)
    assert response.status_code == 204 and response.content == b""
    past_last = get(sim, pagina=10_000)
    assert past_last.status_code == 204


def test_empty_as_200_matches_the_real_empty_envelope(sample_envelopes):
    with RunningSimulator(SimulatorConfig(seed=7, empty_as_200=True)) as running:
        body = get(running, codigoModalidadeContratacao=19).json()
    real = sample_envelopes["empty_page"]
    assert body == real


@pytest.mark.parametrize(
    "params, status, message",
    [
        ({"tamanhoPagina": 500}, 400, "Tamanho de página inválido"),
        ({"tamanhoPagina": 9}, 400, "Tamanho de página inválido"),
        ({"codigoModalidadeContratacao": None}, 400, "codigoModalidadeContratacao"),
        ({"dataInicial": None}, 400, "dataInicial"),
        ({"pagina": None}, 400, "pagina"),
        ({"pagina": 0}, 400, "página"),
        ({"dataInicial": "2024-01-01"}, 400, "yyyyMMdd"),
        ({"dataInicial": "20240101", "dataFinal": "20250102"}, 422, "365"),
    ],
)
def test_validation_like_the_real_api(sim, params, status, message):
    response = get(sim, **params)
    assert response.status_code == status
    body = response.json()
    assert message in body["message"]
    assert set(body) == {"timestamp", "status", "error", "message", "path"}


def test_clock_shows_only_records_published_up_to_now():
    with RunningSimulator(SimulatorConfig(seed=7, now=dt.datetime(2025, 10, 22, 9, 0))) as running:
        morning = get(running).json()["totalRegistros"]
        running.sim.configure(now=dt.datetime(2025, 10, 22, 15, 0))
        afternoon = get(running).json()["totalRegistros"]
        everything = [r for r in running.sim.all_records(DAY) if r["modalidadeId"] == 8]
    expected_morning = sum(r["dataPublicacaoPncp"] <= "2025-10-22T09:00:00" for r in everything)
    assert morning == expected_morning
    assert 0 < morning < afternoon < len(everything)


def test_late_records_appear_hours_after_their_publication():
    config = SimulatorConfig(seed=7, late_fraction=0.2, late_hours=3, now=dt.datetime(2025, 10, 22, 12, 0))
    with RunningSimulator(config) as running:
        visible = {r["numeroControlePNCP"] for r in running.sim.visible_records(DAY)}
        published_by_noon = [r for r in running.sim.all_records(DAY)
                             if r["dataPublicacaoPncp"] <= "2025-10-22T12:00:00"]
        hidden = [r for r in published_by_noon if r["numeroControlePNCP"] not in visible]
        assert hidden, "some records published before noon are still hidden"
        running.sim.configure(now=dt.datetime(2025, 10, 22, 15, 0, 1))
        later = {r["numeroControlePNCP"] for r in running.sim.visible_records(DAY)}
    assert {r["numeroControlePNCP"] for r in hidden} <= later


def test_429_burst_is_html_without_retry_after():
    with RunningSimulator(SimulatorConfig(seed=7, rate_limit_every=2, rate_limit_burst=2)) as running:
        statuses = [get(running) for _ in range(4)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and all(r.headers["Content-Type"].startswith("text/html") for r in limited)
    assert all("Retry-After" not in r.headers for r in limited)
    assert all(r.text.lstrip().startswith("<html>") for r in limited)


def test_request_log_and_control_endpoints(sim):
    sim.sim.reset_log()
    get(sim, pagina=2)
    log = requests.get(f"{sim.base_url}/_sim/log", timeout=5).json()
    assert len(log) == 1 and log[0]["params"]["pagina"] == "2" and log[0]["status"] == 200
    requests.post(f"{sim.base_url}/_sim/config", data=json.dumps({"now": "2025-10-22T10:00:00"}), timeout=5)
    assert sim.sim.config.now == dt.datetime(2025, 10, 22, 10, 0)
    sim.sim.configure(now=None)


def test_simulator_binds_loopback_only(sim):
    assert sim.base_url.startswith("http://127.0.0.1:")


# --- /v1/contratacoes/atualizacao: records included or changed in a window ---------------------------


def fetch_all(base_url: str, endpoint: str, day: dt.date, modalidade: int) -> list[dict]:
    """Every page of one day and modalidade, as a client would read them."""
    rows, page = [], 1
    while True:
        answer = requests.get(f"{base_url}/v1/contratacoes/{endpoint}", timeout=10, params={
            "dataInicial": f"{day:%Y%m%d}", "dataFinal": f"{day:%Y%m%d}", "codigoModalidadeContratacao": modalidade,
            "pagina": page, "tamanhoPagina": 50})
        if answer.status_code == 204:
            return rows
        assert answer.status_code == 200, answer.text
        envelope = answer.json()
        rows += envelope["data"]
        if envelope["paginasRestantes"] == 0:
            return rows
        page += 1


UPDATES = SimulatorConfig(seed=11, volume=300, update_fraction=0.5, update_max_days=5, updates_max=3)


def test_atualizacao_speaks_the_same_contract():
    with RunningSimulator(UPDATES) as running:
        url = f"{running.base_url}/v1/contratacoes/atualizacao"
        missing = requests.get(url, params={"dataInicial": "20251022", "dataFinal": "20251022", "pagina": 1},
                               timeout=10)
        assert missing.status_code == 400 and "codigoModalidadeContratacao" in missing.json()["message"]
        small = requests.get(url, params={"dataInicial": "20251022", "dataFinal": "20251022",
                                          "codigoModalidadeContratacao": 8, "pagina": 1, "tamanhoPagina": 5},
                             timeout=10)
        assert small.status_code == 400
        nothing = requests.get(url, params={"dataInicial": "20251022", "dataFinal": "20251022",
                                            "codigoModalidadeContratacao": 99, "pagina": 1}, timeout=10)
        assert nothing.status_code == 204 and nothing.content == b""
        params = {"dataInicial": "20251022", "dataFinal": "20251022", "codigoModalidadeContratacao": 8, "pagina": 1}
        page = requests.get(url, params=params, timeout=10).json()
        publicacao = requests.get(url.replace("atualizacao", "publicacao"), params=params, timeout=10).json()
        assert set(page) == set(publicacao) and page["data"]
        assert all(ID_PATTERN.fullmatch(r["numeroControlePNCP"]) for r in page["data"])


def test_a_changed_record_moves_to_its_last_change_day_and_agrees_with_publicacao():
    world = RunningSimulator(UPDATES).sim
    changed = [r for r in world._day(DAY).records if r.updates]
    assert changed, "the world has records that change"
    record = max(changed, key=lambda r: len(r.updates))
    first_change, last_change = record.updates[0].at, record.updates[-1].at
    rid, modalidade = record.record["numeroControlePNCP"], record.record["modalidadeId"]

    with RunningSimulator(dataclasses.replace(UPDATES, now=first_change)) as running:
        shown = {r["numeroControlePNCP"]: r for r in fetch_all(running.base_url, "atualizacao",
                                                                first_change.date(), modalidade)}
        assert shown[rid]["dataAtualizacaoGlobal"] == first_change.strftime("%Y-%m-%dT%H:%M:%S")
        # /publicacao shows the same version of the record at the same clock.
        published = {r["numeroControlePNCP"]: r for r in fetch_all(running.base_url, "publicacao", DAY, modalidade)}
        assert published[rid] == shown[rid]
        if first_change.date() != DAY:  # before the change, the publication day listed it; now it moved on
            assert rid not in {r["numeroControlePNCP"] for r in fetch_all(running.base_url, "atualizacao", DAY,
                                                                           modalidade)}

    with RunningSimulator(dataclasses.replace(UPDATES, now=last_change + dt.timedelta(days=1))) as running:
        final = record.version_at(None)
        on_last_day = fetch_all(running.base_url, "atualizacao", last_change.date(), modalidade)
        assert [r for r in on_last_day if r["numeroControlePNCP"] == rid] == [final]  # once, as it is now
        if record.record["valorTotalHomologado"] is None:
            assert final["valorTotalHomologado"] is not None  # homologated by its last change
        days_before = {record.updates[i].at.date() for i in range(len(record.updates) - 1)} - {last_change.date()}
        for day in days_before:
            assert rid not in {r["numeroControlePNCP"] for r in fetch_all(running.base_url, "atualizacao", day,
                                                                           modalidade)}


def test_without_updates_atualizacao_lists_the_days_new_records():
    config = SimulatorConfig(seed=11, volume=200)
    with RunningSimulator(config) as running:
        expected = {r["numeroControlePNCP"] for r in running.sim.all_records(DAY)
                    if r["modalidadeId"] == 6 and r["dataAtualizacaoGlobal"].startswith(DAY.isoformat())}
        got = [r["numeroControlePNCP"] for r in fetch_all(running.base_url, "atualizacao", DAY, 6)]
        assert sorted(got) == sorted(expected) and len(got) == len(set(got))


# --- Records backdated by days, withdrawn, moved (what a finished day's re-sweep must cope with) ------------

BACKDATED = SimulatorConfig(seed=21, volume=300, late_fraction=0.1, late_hours=48, late_hours_max=144)


def _ids(records: list[dict]) -> set[str]:
    return {r["numeroControlePNCP"] for r in records}


@pytest.mark.parametrize("stamped", ["publication", "insertion"])
def test_a_backdated_record_shows_in_its_days_listing_only_days_later_stamped_as_the_knob_says(stamped):
    from pncp_assets.pncp.simulator import PncpSimulator

    world = PncpSimulator(dataclasses.replace(BACKDATED, late_updated_at=stamped))
    late = [r for r in world._day(DAY).records if r.visible_from - r.published >= dt.timedelta(days=2)]
    assert len(late) > 10 and all(r.visible_from - r.published <= dt.timedelta(hours=144) for r in late)
    record = min(late, key=lambda r: r.visible_from)
    rid, inserted = record.record["numeroControlePNCP"], record.visible_from
    world.configure(now=inserted - dt.timedelta(seconds=1))
    assert rid not in _ids(world.visible_records(DAY))  # the day closed long ago without it
    world.configure(now=inserted)
    [shown] = [r for r in world.visible_records(DAY) if r["numeroControlePNCP"] == rid]
    assert shown["dataPublicacaoPncp"][:10] == DAY.isoformat()  # backdated into its own day
    first_version_day = inserted.date() if stamped == "insertion" else DAY
    assert shown["dataAtualizacaoGlobal"][:10] == first_version_day.isoformat()
    assert rid in _ids(world.updated_records(first_version_day))
    other_day = DAY if stamped == "insertion" else inserted.date()
    assert rid not in _ids(world.updated_records(other_day))


def test_a_withdrawn_record_leaves_every_listing_and_the_days_count_falls():
    from pncp_assets.pncp.simulator import PncpSimulator

    world = PncpSimulator(SimulatorConfig(seed=22, volume=400, withdraw_fraction=0.05, withdraw_after_days=2,
                                          now=dt.datetime(2025, 10, 23, 6)))
    before = _ids(world.visible_records(DAY))
    world.configure(now=dt.datetime(2025, 10, 26, 6))  # more than two days after every publication of DAY
    after = _ids(world.visible_records(DAY))
    gone = before - after
    assert after < before and 5 <= len(gone) <= 40  # about 5 % of 400
    assert gone <= _ids(world.all_records(DAY))  # the truth of what was published keeps them
    assert not gone & _ids(world.updated_records(DAY))


def test_a_moved_record_is_listed_on_its_new_day_with_its_new_date_and_no_longer_on_the_old_one():
    from pncp_assets.pncp.simulator import PncpSimulator

    config = SimulatorConfig(seed=23, volume=400, move_fraction=0.05, move_after_days=1, move_by_days=2,
                             now=dt.datetime(2025, 10, 22, 23, 59))
    world = PncpSimulator(config)
    first_listing = _ids(world.visible_records(DAY))
    later = DAY + dt.timedelta(days=2)
    world.configure(now=dt.datetime(2025, 10, 25, 6))
    moved = first_listing - _ids(world.visible_records(DAY))
    assert 5 <= len(moved) <= 40
    on_new_day = {r["numeroControlePNCP"]: r for r in world.visible_records(later) if r["numeroControlePNCP"] in moved}
    assert set(on_new_day) == moved  # the same IDs, once, on the later day
    assert {r["dataPublicacaoPncp"][:10] for r in on_new_day.values()} == {later.isoformat()}
    # The change is a new version, dated when it was made (the day after publication).
    assert {r["dataAtualizacaoGlobal"][:10] for r in on_new_day.values()} <= {"2025-10-23"}
    assert moved <= _ids(world.updated_records(dt.date(2025, 10, 23)))


# --- the API's time: latency, the ceiling in flight, the start rate, slow spells, outages -----------------


def test_a_page_takes_longer_the_more_rows_it_holds_and_the_time_scale_shrinks_every_duration():
    config = SimulatorConfig(seed=7, volume=600, latency_s=0.05, latency_per_row_s=0.004)
    with RunningSimulator(config) as running:
        get(running, tamanhoPagina=10)  # the day's records are built at its first request: not timed
        get(running, tamanhoPagina=10)
        get(running, tamanhoPagina=50)
        running.sim.configure(time_scale=0.1)
        get(running, tamanhoPagina=50)
        _, small, large, scaled = running.sim.log
    assert (small.rows, large.rows, scaled.rows) == (10, 50, 50)
    assert small.duration_s >= 0.05 + 10 * 0.004 and large.duration_s >= 0.05 + 50 * 0.004
    assert large.duration_s > small.duration_s
    assert 0.025 <= scaled.duration_s < large.duration_s  # a tenth of 0.25 s: the API ten times faster


def test_requests_beyond_the_ceiling_in_flight_answer_500_or_504():
    import concurrent.futures

    with RunningSimulator(SimulatorConfig(seed=7, latency_s=0.5, max_in_flight=2)) as running:
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda _: get(running).status_code, range(5)))
        log = running.sim.log
    assert sorted(answers).count(200) >= 2 and set(answers) - {200} <= {500, 504} and set(answers) != {200}
    assert all(e.status == 200 for e in log if e.in_flight <= 2)  # within the ceiling: served
    assert all(e.status in (500, 504) for e in log if e.in_flight > 2)


def test_a_request_started_sooner_than_the_interval_after_the_last_is_429():
    with RunningSimulator(SimulatorConfig(seed=7, min_start_interval_s=30.0)) as running:
        first, second = get(running), get(running)
        running.sim.configure(time_scale=0.001)  # 30 s of the API's time are 30 ms now
        import time

        time.sleep(0.05)
        third = get(running)
    assert (first.status_code, second.status_code, third.status_code) == (200, 429, 200)
    assert second.headers["Content-Type"].startswith("text/html")


def test_an_outage_window_answers_503_and_a_slow_spell_multiplies_the_latency():
    with RunningSimulator(SimulatorConfig(seed=7, latency_s=0.02)) as running:
        now = running.sim.time.elapsed(running.sim.config)
        running.sim.configure(outages=((now, now + 3600),))
        down = get(running)
        requests.post(f"{running.base_url}/_sim/config", timeout=5,  # as a process that did not start it sets it
                      data=json.dumps({"outages": [], "slow_spells": [[0, now + 3600, 10]]}))
        slow = get(running)
        entries = running.sim.log
    assert down.status_code == 503 and slow.status_code == 200
    assert entries[-1].duration_s >= 0.2  # 0.02 s ten times
