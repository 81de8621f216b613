"""Adding a feed is one declaration plus its schema and simulator data (docs/DESIGN.md "Adding a feed").

A sixth feed, the instrumentos de cobrança (`/v1/instrumentoscobranca/inclusao`, filed by `dataInclusao`), is
declared here and nowhere else: its schema, its `Layer`, and a simulator route serving its records. Its
assets come from the same factory as the shipped layers', named by the same rule, and run through real
`materialize` runs against the simulator over HTTP: hourly runs as the clock moves, a re-run, then a run over
the whole day as a backfill launches it. Every record lands once, in the hour of its inclusion.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import dagster as dg
import pyarrow as pa
import pytest

from pncp_assets import bronze, layout
from pncp_assets.defs.assets import AssetNames, layer_graph
from pncp_assets.layers import LAYERS, FeedError, Layer, check_registry, feeds
from pncp_assets.pncp.client import Endpoint
from pncp_assets.pncp.records import any_id
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.schemas import DATE, TIMESTAMP
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore
from pncp_assets_tests.support.pipeline import end_of_hour, partition, resources, storage_resource

DAY = dt.date(2025, 10, 22)
RECORDS_A_DAY = 60

# --- The feed, declared in this test alone -------------------------------------------------------------

FIELDS = [
    ("idInstrumentoCobranca", pa.string()),
    ("numeroControlePncpContrato", pa.string()),
    ("tipoInstrumentoCobranca", pa.int64()),
    ("numeroInstrumentoCobranca", pa.string()),
    ("dataEmissaoDocumento", DATE),
    ("chaveNFe", pa.string()),
    ("dataInclusao", TIMESTAMP),
    ("dataAtualizacao", TIMESTAMP),
]
INSTRUMENTOS = Layer(
    "pncp_instrumentos", "instrumentos",
    Endpoint("/v1/instrumentoscobranca/inclusao", any_id("idInstrumentoCobranca"), by_modalidade=False,
             page_size=100),
    bronze.RecordSchema("instrumento_cobranca", FIELDS), "instrumentos de cobrança, first seen",
    (("idInstrumentoCobranca", "instrumento"), ("numeroControlePncpContrato", "contrato"),
     ("numeroInstrumentoCobranca", "número"), ("dataInclusao", "incluído")),
    filed_by="dataInclusao")


def instrumentos(day: dt.date, now: dt.datetime | None) -> list[dict]:
    """The simulator's route: the day's instrumentos included up to the simulated `now`, in inclusion order."""
    rows = []
    for n in range(RECORDS_A_DAY):
        included = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=n * 24 * 60 // RECORDS_A_DAY + 7)
        if now is not None and included > now:
            continue
        contrato = f"12345678000190-2-{n // 3:06d}/{day.year}"
        rows.append({"idInstrumentoCobranca": f"{contrato}-{n % 3 + 1}", "numeroControlePncpContrato": contrato,
                     "tipoInstrumentoCobranca": 1 + n % 2, "numeroInstrumentoCobranca": f"NF {1000 + n}",
                     "dataEmissaoDocumento": day.isoformat(), "chaveNFe": None,
                     "dataInclusao": included.isoformat(timespec="seconds"),
                     "dataAtualizacao": included.isoformat(timespec="seconds")})
    return rows


# --- The proof -------------------------------------------------------------------------------------------


def test_a_sixth_feed_declared_in_a_test_runs_an_hour_end_to_end_exactly_once(tmp_path):
    check_registry((*LAYERS, INSTRUMENTOS))  # it fits the registry beside the shipped five
    assert feeds((*LAYERS, INSTRUMENTOS))["instrumentos"] == (INSTRUMENTOS,)
    graph = layer_graph(INSTRUMENTOS)
    names = AssetNames.of(INSTRUMENTOS)
    assert [a.key.to_user_string() for a in graph.assets] == [
        "pncp_instrumentos_raw_pages", "pncp_instrumentos_new_records", "pncp_instrumentos_daily_state"]
    assert layout.delta_key_pattern("pncp_instrumentos") in graph.deltas.descriptions_by_key[graph.deltas.key]

    store = LocalObjectStore(tmp_path / "bronze")
    storage = storage_resource(store)
    instance = dg.DagsterInstance.ephemeral()
    routes = {INSTRUMENTOS.endpoint.path: instrumentos}
    with RunningSimulator(SimulatorConfig(seed=1), routes=routes) as sim:
        api = resources(sim.base_url, storage)
        assets = [*graph.assets, graph.check]

        def run(hour_or_range, now: dt.datetime) -> dg.ExecuteInProcessResult:
            sim.sim.configure(now=now)
            if isinstance(hour_or_range, tuple):
                tags = {"dagster/asset_partition_range_start": hour_or_range[0],
                        "dagster/asset_partition_range_end": hour_or_range[1]}
                return dg.materialize(assets, resources=api, instance=instance, tags=tags)
            return dg.materialize(graph.assets, partition_key=hour_or_range, resources=api, instance=instance)

        # The first hours as the schedule runs them, the clock moving; one of them again (a retry).
        for hour in range(6):
            assert run(partition(DAY, hour), end_of_hour(DAY, hour)).success
        first_six = dict(_delta_ids(store))
        assert run(partition(DAY, 3), end_of_hour(DAY, 7)).success
        # Then the whole day in one run, as a backfill launches it, the next morning.
        assert run((partition(DAY, 0), partition(DAY, 23)), end_of_hour(DAY + dt.timedelta(days=1), 6)).success
        served = {e.path for e in sim.sim.log}

    assert served == {INSTRUMENTOS.endpoint.path}  # its own endpoint, through the same client
    filed = _delta_ids(store)
    counts = Counter(x for ids in filed.values() for x in ids)
    expected = {r["idInstrumentoCobranca"]: r for r in instrumentos(DAY, None)}
    assert set(counts) == set(expected) and set(counts.values()) == {1}  # each record once
    for hour, ids in filed.items():  # ... in the hour of its inclusion
        assert {expected[x]["dataInclusao"][:13] for x in ids} == {hour[:10] + "T" + hour[11:13]}
    assert all(set(filed[h]) == set(ids) for h, ids in first_six.items())  # no hour's file changed later
    state = StateManager(store).load_state(INSTRUMENTOS, DAY)
    assert sorted(state["processed_ids"]) == sorted(counts)
    verdicts = instance.fetch_materializations(dg.AssetKey(names.deltas), limit=100).records
    assert len(verdicts) == 6 + 1 + 24  # every hour of every run materialised, each with its own metadata


def _delta_ids(store: LocalObjectStore) -> dict[str, list[str]]:
    return {layout.partition_of_delta(key): bronze.parquet_ids(store.get(key).data, INSTRUMENTOS.id_field)
            for key in layout.day_delta_keys(store, INSTRUMENTOS.source, DAY)}


@pytest.mark.parametrize(("change", "part"), [
    ({"preview": (("valorGlobal", "valor"),)}, "preview column 'valorGlobal' is not in its record schema"),
    ({"preview": ()}, "preview columns are missing"),
    ({"title": ""}, "title is missing"),
    ({"filed_by": "dataPublicacaoPncp"}, "no column dataPublicacaoPncp (the filing time)"),
    ({"record": bronze.RecordSchema("x", FIELDS[1:])}, "no column idInstrumentoCobranca (the endpoint's ID)"),
    ({"endpoint": "/v1/instrumentoscobranca/inclusao"}, "endpoint must be a pncp.client.Endpoint"),
    ({"source": "pncp/../x"}, "source must be a lowercase prefix"),
])
def test_a_declaration_missing_a_part_fails_when_it_loads_naming_the_layer_and_the_part(change, part):
    with pytest.raises(FeedError) as refused:
        dataclasses.replace(INSTRUMENTOS, **change)
    assert str(refused.value).startswith(f"layer {change.get('source', 'pncp_instrumentos')!r}")
    assert part in str(refused.value)


def test_a_registry_refuses_a_prefix_or_endpoint_declared_twice():
    other = Endpoint("/v1/other", any_id("idInstrumentoCobranca"))
    with pytest.raises(FeedError, match=r"its source .* is also layer 'pncp_instrumentos'"):
        check_registry((INSTRUMENTOS, dataclasses.replace(INSTRUMENTOS, feed="other", endpoint=other)))
    with pytest.raises(FeedError, match=r"its endpoint .* is also layer 'pncp'"):
        same_path = Endpoint(LAYERS[0].endpoint.path, any_id("idInstrumentoCobranca"))
        check_registry((*LAYERS, dataclasses.replace(INSTRUMENTOS, endpoint=same_path)))
