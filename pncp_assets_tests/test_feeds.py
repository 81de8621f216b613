"""PNCP beyond contratações: contratos, their versions and the atas' versions, each a layer with every
guarantee of the first two, on both storage backends; the simulator's contract for their endpoints; their
sweeps with every fault on; the cross-feed links check."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests

from pncp_assets import layout
from pncp_assets.defs.assets import LAYER_GRAPHS, AssetNames
from pncp_assets.layers import ATAS_VERSIONS, CONTRATOS, CONTRATOS_VERSIONS
from pncp_assets.pncp.client import PncpClient
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.pncp.synthetic import OLD_DAY
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.feeds import NEW_FEEDS, assert_layer_exact, feeds_truth, layer_keys
from pncp_assets_tests.support.pipeline import Pipeline, metadata_by_hour, partition, storage_resource

DAYS = [dt.date(2025, 10, 22), dt.date(2025, 10, 23)]
WORLD = {"seed": 61, "volume": 150, "update_fraction": 0.4, "update_max_days": 1.0}


@pytest.fixture(scope="module")
def five_layers(tmp_path_factory):
    """Two finished days of every layer, backfilled as a UI backfill runs them (a run per day), after every
    change of the world (no clock), for the module's tests, which only read it. On local storage: the e2e
    test backfills every feed on S3 through the UI and checks each exactly as `assert_layer_exact` does here."""
    store = LocalObjectStore(tmp_path_factory.mktemp("feeds") / "bronze")
    with RunningSimulator(SimulatorConfig(**WORLD)) as sim:
        p = Pipeline(sim, store, storage_resource(store), graphs=LAYER_GRAPHS)
        results = [p.run_range(partition(day, 0), partition(day, 23)) for day in DAYS]
        assert all(r.success for r in results)
        yield p, results


def test_every_record_of_every_feed_lands_once_in_its_hour(five_layers):
    p, _ = five_layers
    for day in DAYS:
        for layer, expected in feeds_truth(p.sim.sim, day).items():
            assert expected, f"the simulated {layer.source} has records on {day}"
            assert_layer_exact(p.store, layer, day, expected)
    # Amendments and cancellations are versions of their own.
    changed = {k.split("@")[0] for keys in layer_keys(p.store, CONTRATOS_VERSIONS, DAYS[1]).values() for k in keys}
    first = {x for keys in layer_keys(p.store, CONTRATOS, DAYS[0]).values() for x in keys}
    assert changed & first, "contratos of the first day were amended on the second, each amendment a version"
    # The sweeps of the new feeds: one list a day (no modalidade), pages of 500.
    new_paths = {layer.endpoint.path for layer in NEW_FEEDS}
    asked = [e for e in p.sim.sim.log if e.path in new_paths]
    assert asked and all("codigoModalidadeContratacao" not in e.params and e.params["tamanhoPagina"] == "500"
                         for e in asked)
    assert len(asked) == len(new_paths) * len(DAYS)  # a day of each fits one page here: one request each


def test_running_every_hour_again_files_nothing_twice(five_layers):
    p, _ = five_layers
    before = {layer: {d: layer_keys(p.store, layer, d) for d in DAYS} for layer in NEW_FEEDS}
    again = p.run_range(partition(DAYS[1], 0), partition(DAYS[1], 23))
    assert again.success
    for layer in NEW_FEEDS:
        assert {d: layer_keys(p.store, layer, d) for d in DAYS} == before[layer], layer.source


def test_a_contrato_whose_contratacao_bronze_lacks_is_reported_never_dropped(five_layers):
    p, results = five_layers
    held = {x for d in DAYS for ks in p.delta_ids(d).values() for x in ks} | {
        k.split("@")[0] for d in DAYS for ks in p.delta_ids(d, "pncp_versions").values() for k in ks}
    verdicts = {(c.asset_key.path[-1], c.partition): c for r in results for c in r.get_asset_check_evaluations()
                if c.check_name == "contratacao_links"}
    old = 0
    for layer in (CONTRATOS, CONTRATOS_VERSIONS, ATAS_VERSIONS):
        asset = AssetNames.of(layer).deltas
        for day in DAYS:
            rows = p.sim.sim.visible_records(day, kind="contratos") if layer is CONTRATOS else None
            for hour in layout.day_hours(day):
                verdict = verdicts[(asset, hour)]
                md = {k: v.value for k, v in verdict.metadata.items()}
                filed = layer_keys(p.store, layer, day).get(hour, [])
                assert md["records"] == len(filed), (asset, hour)  # every record counted, none dropped
                if rows is not None:
                    links = {r["numeroControlePNCP"]: r["numeroControlePncpCompra"] for r in rows}
                    missing = [x for x in filed if links[x] not in held]
                    # Two days ingested: every window holds days never ingested, so a contratação Bronze lacks
                    # may be of one of them: counted outside coverage, and the check does not fail for it.
                    assert (md["missing_contratacao"], md["outside_coverage"]) == (0, len(missing)), (asset, hour)
                    assert verdict.passed and verdict.severity.value == "WARN"
                    assert {e["id"] for e in md["examples"]} <= set(missing)
                    old += sum(1 for x in filed if links[x] in _old_ids(p))
    assert old > 0, "some contratos point at contratações published long before the pipeline's start"


def _old_ids(p: Pipeline) -> set[str]:
    return {r["numeroControlePNCP"] for r in p.sim.sim.all_records(OLD_DAY)}


def test_the_delta_assets_metadata_and_previews_speak_of_each_feed(five_layers):
    _, results = five_layers
    contratos = metadata_by_hour(results[0], AssetNames.of(CONTRATOS).deltas)
    busy = max(contratos, key=lambda h: contratos[h]["new"])
    assert contratos[busy]["preview"].startswith("| numeroControlePNCP | contratação | fornecedor |")
    assert contratos[busy]["published"] == "written" and contratos[busy]["dagster/row_count"] > 0
    atas = metadata_by_hour(results[0], AssetNames.of(ATAS_VERSIONS).deltas)
    assert any(md["new"] for md in atas.values())


@pytest.mark.parametrize("endpoint", [layer.endpoint for layer in NEW_FEEDS], ids=lambda e: e.label)
def test_a_sweep_of_each_new_feed_with_every_fault_on_comes_back_complete_exactly_once(endpoint):
    config = SimulatorConfig(seed=62, volume=1200, atas_ratio=0.5, update_fraction=0.4, update_max_days=2,
                             now=dt.datetime(2025, 10, 25, 12), rate_limit_every=4, rate_limit_burst=1,
                             transient_204_rate=0.15, error_5xx_rate=0.1, short_page_rate=0.3, duplicate_rate=0.3)
    kind = "atas" if "atas" in endpoint.path else "contratos"
    with RunningSimulator(config) as sim:
        client = PncpClient(sim.base_url, request_interval_s=0, endpoint=endpoint, backoff_initial_s=0.001,
                            backoff_max_s=0.01, max_attempts=12, short_page_retries=6, empty_confirmations=2)
        result = client.sweep_day(DAYS[0])
        statuses = {e.status for e in sim.sim.log}
        truth = (sim.sim.updated_records(DAYS[0], kind=kind) if "atualizacao" in endpoint.path else
                 sim.sim.visible_records(DAYS[0], kind=kind))
    field = endpoint.id_rule.field
    got = {r[field]: r for r, _ in result.records()}
    assert len(result.records()) == len(got) and got == {r[field]: r for r in truth}
    assert len(truth) > 500 and statuses - {200}  # more than a page, and faults met


def test_the_simulator_speaks_the_new_endpoints_contract():
    with RunningSimulator(SimulatorConfig(seed=63, volume=100, now=dt.datetime(2025, 10, 23))) as sim:
        base = sim.base_url

        def get(path: str, **params: object) -> requests.Response:
            query = {"dataInicial": "20251022", "dataFinal": "20251022", "pagina": 1, **params}
            return requests.get(f"{base}{path}", params={k: v for k, v in query.items() if v is not None}, timeout=30)

        for path in ("/v1/contratos", "/v1/contratos/atualizacao", "/v1/atas/atualizacao"):
            page = get(path, tamanhoPagina=500)
            assert page.status_code == 200 and set(page.json()) >= {"data", "totalRegistros", "totalPaginas"}
            assert get(path, tamanhoPagina=501).status_code == 400  # 10..500 here
            assert get(path, tamanhoPagina=9).json()["message"] == "Tamanho de página inválido"
            assert get(path, pagina=None).status_code == 400
            assert get(path, dataInicial="20240101", dataFinal="20251022").status_code == 422  # over 365 days
            assert get(path, dataInicial="20251122", dataFinal="20251123", tamanhoPagina=10).status_code == 204
        assert get("/v1/contratacoes/publicacao", tamanhoPagina=500, codigoModalidadeContratacao=8).status_code == 400
        contrato = get("/v1/contratos", tamanhoPagina=10).json()["data"][0]
        assert len(contrato) == 37 and contrato["numeroControlePNCP"].split("-")[1] == "2"
        ata = get("/v1/atas/atualizacao", tamanhoPagina=10).json()["data"][0]
        assert len(ata) == 23 and ata["numeroControlePNCPAta"].startswith(ata["numeroControlePNCPCompra"])
        # Deep pages of a window wider than a day fail, as reported of the real contratos endpoint.
        wide = get("/v1/contratos", dataInicial="20251001", dataFinal="20251031", pagina=12, tamanhoPagina=500)
        assert wide.status_code == 500 and "banco de dados" in wide.json()["message"]


def test_contratos_point_at_contratacoes_of_the_same_world():
    sim = RunningSimulator(SimulatorConfig(seed=64, volume=300)).sim
    day = DAYS[0]
    ids = {r["numeroControlePNCP"]: d for d in [OLD_DAY, *(day - dt.timedelta(days=n) for n in range(15))]
           for r in sim.all_records(d)}
    contratos = sim.all_records(day, kind="contratos")
    assert contratos and all(c["numeroControlePncpCompra"] in ids for c in contratos)
    assert any(ids[c["numeroControlePncpCompra"]] == OLD_DAY for c in contratos)  # before any pipeline's start
    assert all(c["dataPublicacaoPncp"][:10] == day.isoformat() for c in contratos)


@pytest.mark.parametrize("five_layers", ["local"], indirect=True)  # a local tree is what the view reads here
@pytest.mark.parametrize("feed", ["contratos", "atas"])
def test_the_current_view_of_contratos_and_atas_is_the_simulators_truth(five_layers, feed):
    from pncp_assets.current import current_view

    p, _ = five_layers
    view = current_view(str(p.store.root), DAYS[0], DAYS[-1], feed=feed)
    field = "numeroControlePNCPAta" if feed == "atas" else "numeroControlePNCP"
    rows = {r[field]: json.loads(r["_raw"]) for r in view.select([field, "_raw"]).to_pylist()}
    truth = {}  # every record published or changed in the range, as it is now (no clock: every change applied)
    for day in DAYS:
        records = [*p.sim.sim.updated_records(day, kind=feed)]
        if feed == "contratos":
            records += p.sim.sim.visible_records(day, kind=feed)
        truth.update({r[field]: r for r in records})
    assert rows == truth


def test_the_schedules_ticks_through_a_day_file_every_new_feed_exactly_once(tmp_path, monkeypatch):
    """The hourly schedule's ticks from 00:05 of a day to the day close at 06:05 of the next, the clocks
    moving with them, over the three new layers (the contratos late by up to 4 h): every contrato of the
    day is in Bronze once by the day close, in an hour no earlier than its publication; every version the
    update sweeps showed is in Bronze once."""
    from pncp_assets.brasilia import TZ
    from pncp_assets.defs.assets import GRAPHS
    from pncp_assets_tests.support.schedules import run_the_schedules

    day = DAYS[0]
    store = LocalObjectStore(tmp_path / "bronze")
    world = SimulatorConfig(seed=65, volume=120, update_fraction=0.5, update_max_days=0.5, late_fraction=0.1,
                            late_hours=4.0)
    seen: dict[str, set[str]] = {"pncp_contratos_versions": set(), "pncp_atas_versions": set()}
    with RunningSimulator(world) as sim:
        p = Pipeline(sim, store, storage_resource(store), sweep_max_age_minutes=60,
                     graphs=tuple(GRAPHS[layer.source] for layer in NEW_FEEDS))
        start = dt.datetime.combine(day, dt.time(0, 5), tzinfo=TZ)
        for hour in range(31):  # one tick at a time (the day close's among them), to read what each showed
            moment = start + dt.timedelta(hours=hour)
            run_the_schedules(p, monkeypatch, moment, moment)
            for layer, kind in ((CONTRATOS_VERSIONS, "contratos"), (ATAS_VERSIONS, "atas")):
                seen[layer.source] |= {layer.key.of(r) for r in sim.sim.updated_records(day, kind=kind)}
        truth = {r["numeroControlePNCP"]: r for r in sim.sim.visible_records(day, kind="contratos")}
    assert_layer_exact(store, CONTRATOS, day, set(truth))
    filed = {x: hour for hour, keys in layer_keys(store, CONTRATOS, day).items() for x in keys}
    assert all(filed[x] >= r["dataPublicacaoPncp"][:13].replace("T", "-") + ":00" for x, r in truth.items())
    assert any(filed[x] > r["dataPublicacaoPncp"][:13].replace("T", "-") + ":00" for x, r in truth.items()), \
        "late contratos were filed in a later hour than their publication"
    for layer in (CONTRATOS_VERSIONS, ATAS_VERSIONS):
        day_seen = {k for k in seen[layer.source] if k.split("@")[1][:10] == day.isoformat()}
        assert_layer_exact(store, layer, day, day_seen)


def test_the_links_check_fails_only_where_every_day_of_its_window_was_ingested(local_store):
    """A contrato whose contratação Bronze lacks is a failure when every day of the 31 before it was ingested;
    with one of those days never ingested it is outside coverage, named, not a failure."""
    from pncp_assets import bronze
    from pncp_assets.links import LOOKBACK_DAYS, link_reports
    from pncp_assets.state import StateManager

    day, hour = dt.date(2025, 10, 22), "2025-10-22-08:00"
    manager = StateManager(local_store)
    for back in range(LOOKBACK_DAYS + 1):  # every day of the window ingested (its state written)
        manager.transact("pncp", day - dt.timedelta(days=back), lambda s: (s.confirm_hours([], "t"), True))
    contrato = {"numeroControlePNCP": "12345678000190-2-000001/2025", "numeroControlePncpCompra": "nowhere-1-1/2025",
                "dataPublicacaoPncp": "2025-10-22T08:10:00"}
    local_store.put(layout.delta_key(CONTRATOS.source, hour), bronze.table_to_parquet(CONTRATOS.to_table([contrato])))
    [covered] = link_reports(local_store, CONTRATOS, [hour]).values()
    assert (covered.missing, covered.outside_coverage) == (1, 0)
    gap = day - dt.timedelta(days=9)
    local_store.delete(layout.state_key("pncp", gap))
    [partial] = link_reports(local_store, CONTRATOS, [hour]).values()
    assert (partial.missing, partial.outside_coverage, partial.uncovered) == (0, 1, [str(gap)])
