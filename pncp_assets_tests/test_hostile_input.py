"""Hostile and broken input: each gets a clear outcome (an error naming it, or quarantine), nothing is
written outside the layout, nothing is lost. Broken API envelopes are in test_client.py, corrupted
state files in test_state.py, escaping storage keys in test_storage.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import dagster as dg
import pyarrow as pa
import pytest

from pncp_assets import bronze, layout
from pncp_assets.commit import DeltaCommitter
from pncp_assets.consistency import ConsistencyCheck
from pncp_assets.defs.io_manager import BronzeParquetIOManager
from pncp_assets.defs.resources import BronzeStorage
from pncp_assets.layers import ATAS_VERSIONS, CONTRATOS, FIRST_SEEN, FeedError, layer_named
from pncp_assets.pncp.client import PncpClient, SweepError
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.state import StateManager
from pncp_assets.storage import LocalObjectStore, ObjectStore
from pncp_assets.sweeps import SweepStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, metadata, partition, storage_resource
from pncp_assets_tests.support.records import encode_parquet, record_like

DAY = dt.date(2025, 10, 22)
FIVE_MB = 5 * 1024 * 1024
LAYERS = tuple(f"{prefix}/" for source in ("pncp", "pncp_versions") for prefix in (
    f"{source}/year=2025/month=10/day=22", f"{source}/_raw", f"{source}/_state", f"_staging/{source}",
    f"{source}/_rejected"))


def wrong_value(typ: pa.DataType):
    """A JSON value of the wrong type for a column of type `typ`."""
    if pa.types.is_struct(typ):
        return "not an object"
    if pa.types.is_list(typ):
        return {"not": "a list"}
    if pa.types.is_timestamp(typ):
        return 20251022
    if pa.types.is_boolean(typ):
        return "true"
    if pa.types.is_integer(typ):
        return "12"
    if pa.types.is_floating(typ):
        return "1.000,00"
    return {"not": "text"}


@pytest.mark.parametrize("field", [name for name, _ in FIRST_SEEN.record.fields if name != "numeroControlePNCP"])
def test_every_typed_column_given_a_wrong_type_becomes_null_and_raw_keeps_it(sample_records, field):
    typ = FIRST_SEEN.schema.field(field).type
    record = record_like(sample_records[0], 1, **{field: wrong_value(typ)}, campoDesconhecido=[1, {"a": None}])
    table = FIRST_SEEN.to_table([record])
    assert table.schema == FIRST_SEEN.schema  # the schema never bends to the input
    assert table.column(field).to_pylist() == [None]
    assert bronze.raw_records(table) == [record]  # lossless: the wrong value and the unknown field


@pytest.mark.parametrize(("schema", "field"), [(schema, name) for schema in (CONTRATOS.record, ATAS_VERSIONS.record)
                                               for name, _ in schema.fields if not name.startswith("numeroControle")],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_every_typed_column_of_contratos_and_atas_given_a_wrong_type_becomes_null(schema, field):
    typ = schema.schema.field(field).type
    record = {"numeroControlePNCP": "X-2-000001/2025", field: wrong_value(typ), "campoNovo": {"x": 1}}
    table = schema.to_table([record])
    assert table.schema == schema.schema and table.column(field).to_pylist() == [None]
    assert bronze.raw_records(table) == [record]


@pytest.mark.parametrize(("layer", "kind"), [("pncp_contratos", "contratos"), ("pncp_atas_versions", "atas")])
def test_contratos_and_atas_with_bad_ids_are_quarantined_and_the_rest_ingested(tmp_path, layer, kind):
    from pncp_assets.defs.assets import LAYER_GRAPHS
    from pncp_assets.layers import layer_named
    from pncp_assets_tests.support.feeds import assert_layer_exact

    store = LocalObjectStore(tmp_path / "bronze")
    target = layer_named(layer)
    with RunningSimulator(SimulatorConfig(seed=6, volume=60, bad_ids=8)) as sim:
        p = Pipeline(sim, store, storage_resource(store), graphs=tuple(g for g in LAYER_GRAPHS if g.layer is target))
        assert p.run(partition(DAY, 23), now=end_of_hour(DAY + dt.timedelta(days=1), 6)).success
        records = (sim.sim.visible_records(DAY, kind=kind) if not target.versioned else
                   sim.sim.updated_records(DAY, kind=kind))
        good = [r for r in records if target.key.problem(r) is None]
        assert len(records) - len(good) == 8  # the simulator broke eight IDs of this feed
        assert_layer_exact(store, target, DAY, {target.key.of(r) for r in good})
        [rejected_key] = store.list(f"{layer}/_rejected/")
        quarantined = [json.loads(line) for line in store.get(rejected_key).data.decode().splitlines()]
        assert len(quarantined) == 8 and all(q["reason"] for q in quarantined)


def test_a_5mb_objeto_compra_lands_whole_in_bronze(tmp_path):
    store = LocalObjectStore(tmp_path / "bronze")
    with RunningSimulator(SimulatorConfig(seed=3, volume=40, huge_objeto_bytes=FIVE_MB)) as sim:
        p = Pipeline(sim, store, storage_resource(store), modalidades="1..19")
        assert p.run(partition(DAY, 23), now=end_of_hour(DAY, 23)).success
        huge = sim.sim.all_records(DAY)[0]
        [key] = layout.day_delta_keys(store, "pncp", DAY)
        table = bronze.read_parquet(store.get(key).data).to_pylist()
        [row] = [r for r in table if r["numeroControlePNCP"] == huge["numeroControlePNCP"]]
        assert len(row["objetoCompra"].encode()) >= FIVE_MB - 4 and row["objetoCompra"] == huge["objetoCompra"]
        assert json.loads(row["_raw"]) == huge
        p.assert_invariants(DAY, {r["numeroControlePNCP"] for r in sim.sim.all_records(DAY)})


def test_a_response_over_the_size_cap_fails_the_sweep_at_once_naming_the_page():
    with RunningSimulator(SimulatorConfig(seed=3, volume=40, huge_objeto_bytes=FIVE_MB)) as sim:
        modalidade = sim.sim.all_records(DAY)[0]["modalidadeId"]
        client = PncpClient(sim.base_url, request_interval_s=0, modalidades=(modalidade,), endpoint=FIRST_SEEN.endpoint,
                            max_response_bytes=1024 * 1024, backoff_initial_s=0.001, backoff_max_s=0.01)
        with pytest.raises(SweepError, match=rf"Modalidade {modalidade} page 1 of 20251022: .*over the 1 MiB cap"):
            client.sweep_day(DAY)
        assert len(sim.sim.log) == 1  # not retried: the same page would be as big again


def test_records_with_bad_ids_are_quarantined_and_the_rest_ingested(tmp_path):
    store = LocalObjectStore(tmp_path / "bronze")
    with RunningSimulator(SimulatorConfig(seed=5, volume=60, bad_ids=8)) as sim:
        p = Pipeline(sim, store, storage_resource(store), modalidades="1..19")
        result = p.run(partition(DAY, 23), now=end_of_hour(DAY, 23))
        assert result.success
        assert metadata(result, "pncp_new_records")["rejected"] == 8
        records = sim.sim.all_records(DAY)
        good = {r["numeroControlePNCP"] for r in records if bronze_id_ok(r)}
        p.assert_invariants(DAY, good)
        [rejected_key] = store.list("pncp/_rejected/")
        quarantined = [json.loads(line) for line in store.get(rejected_key).data.decode().splitlines()]
        assert sorted(json.dumps(q["record"], sort_keys=True) for q in quarantined) == sorted(
            json.dumps(r, sort_keys=True) for r in records if not bronze_id_ok(r))  # each one, whole
        assert all(q["reason"] for q in quarantined)
        assert all(k.startswith(LAYERS) for k in store.list(""))  # nothing outside the layout


def test_records_that_are_not_objects_are_quarantined_and_the_page_ingested(tmp_path):
    store = LocalObjectStore(tmp_path / "bronze")
    config = SimulatorConfig(seed=5, volume=120, malformed_rate=1.0, malformed_kind="record_not_object")
    with RunningSimulator(config) as sim:
        p = Pipeline(sim, store, storage_resource(store), modalidades="8")
        result = p.run(partition(DAY, 23), now=end_of_hour(DAY, 23))
        assert result.success
        pages = {e.params["pagina"] for e in sim.sim.log if e.status == 200}
        [rejected_key] = store.list("pncp/_rejected/")
        quarantined = [json.loads(line) for line in store.get(rejected_key).data.decode().splitlines()]
        assert {q["record"] for q in quarantined} == {f"<registro ilegível {n}>" for n in pages}
        assert all(q["reason"] == "record is a str, not an object" for q in quarantined)
        # Every other record of every page is in Bronze (each page's first was garbled by the API).
        shown = [r["numeroControlePNCP"] for r in sim.sim.visible_records(DAY, 8)]
        garbled = set(shown[::50])
        p.assert_invariants(DAY, set(shown) - garbled)


def bronze_id_ok(record: dict) -> bool:
    rid = record.get("numeroControlePNCP")
    return isinstance(rid, str) and rid.count("-") == 2 and "/" in rid


HOSTILE_NAMES = ["../pncp", "pncp/../../etc", "/etc/passwd", "pn\x00cp", "pncp/x", "C:\\pncp", ""]
HOSTILE_PARTITIONS = ["../2025-10-22-08:00", "2025-10-22-08:00/../../x", "/2025-10-22-08:00",
                      "2025-10-22-08:00\x00", "2025/10/22-08:00", "2025-10-22-08:00/", " 2025-10-22-08:00"]


class Spy(LocalObjectStore):
    """Counts every call that reaches storage."""

    calls = 0

    def get(self, key):
        Spy.calls += 1
        return super().get(key)

    def put(self, key, data, **kw):
        Spy.calls += 1
        return super().put(key, data, **kw)

    def list(self, prefix=""):
        Spy.calls += 1
        return super().list(prefix)


@pytest.mark.parametrize("source", HOSTILE_NAMES)
def test_hostile_source_names_are_refused_before_any_key_is_built(tmp_path, source):
    store = Spy(tmp_path / "bronze")
    Spy.calls = 0
    # A name enters through the registry (no layer of that name) or the key layout (not a prefix at all) ...
    for build in (lambda: StateManager(store).load_state(source, DAY), lambda: layer_named(source),
                  lambda: layout.state_key(source, DAY), lambda: layout.delta_key(source, "2025-10-22-08:00")):
        with pytest.raises(ValueError, match=r"invalid source|no layer"):
            build()
    # ... and the protocol takes layers, never names.
    for build in (lambda: DeltaCommitter(store, source), lambda: SweepStore(store, source)):
        with pytest.raises(TypeError, match="must be a Layer"):
            build()
    with pytest.raises(FeedError, match="source must be a lowercase prefix"):
        dataclasses.replace(FIRST_SEEN, source=source)
    assert Spy.calls == 0 and not [f for f in (tmp_path / "bronze").rglob("*") if f.is_file()]


@pytest.mark.parametrize("key", HOSTILE_PARTITIONS)
def test_hostile_partition_keys_are_refused_before_any_key_is_built(tmp_path, key):
    store = Spy(tmp_path / "bronze")
    Spy.calls = 0
    for build in (lambda: DeltaCommitter(store).commit(key, [], "run"), lambda: ConsistencyCheck(store).check(key),
                  lambda: SweepStore(store).assigned(key), lambda: layout.staging_key("pncp", key, "run")):
        with pytest.raises(ValueError, match="invalid hourly partition key"):
            build()
    assert Spy.calls == 0


def test_the_io_manager_refuses_a_hostile_source(tmp_path):
    manager = BronzeParquetIOManager(storage=BronzeStorage(data_dir=str(tmp_path)), source="../escape")
    with pytest.raises(ValueError, match=r"no layer '\.\./escape'"):
        manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("pncp_new_records"),
                                                  partition_key="2025-10-22-08:00"))
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]


def test_an_oversized_state_file_is_not_parsed_but_rebuilt_from_bronze(local_store: ObjectStore, sample_records,
                                                                       caplog):
    ids = sorted(r["numeroControlePNCP"] for r in sample_records[:3])
    local_store.put(layout.delta_key("pncp", "2025-10-22-08:00"), encode_parquet(sample_records[:3]))
    padding = ["x" * 100] * 20_000  # 2 MB of junk in a field we never read
    huge = {"date": "2025-10-22", "processed_ids": [], "total_processed": 0, "executions": [], "junk": padding}
    local_store.put_json(layout.state_key("pncp", DAY), huge)
    state = StateManager(local_store, max_state_bytes=1024 * 1024).load_state("pncp", DAY)
    assert state["processed_ids"] == ids and "over the" in state["recovered_from_bronze"]["reason"]
    # The default cap (64 MiB) holds a real large day: 200,000 IDs load as they are.
    big_ids = sorted(f"12345678000190-1-{n:06d}/2025" for n in range(200_000))
    local_store.put_json(layout.state_key("pncp", DAY), {"date": "2025-10-22", "processed_ids": big_ids,
                                                         "total_processed": len(big_ids), "executions": []})
    assert StateManager(local_store).load_state("pncp", DAY)["total_processed"] == 200_000
