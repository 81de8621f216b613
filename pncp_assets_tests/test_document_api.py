"""The original design document's interface beside a live pipeline: its README section run as written, its
uploads never replacing what the pipeline filed (both stores), native types kept, and its state calls."""

from __future__ import annotations

import datetime as dt
import io
import re

import pandas as pd
import pyarrow as pa
import pytest

from pncp_assets import bronze, layout
from pncp_assets.consistency import check_range
from pncp_assets.document_api import StateManager, get_storage_client
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.pncp.simulator import RunningSimulator, SimulatorConfig
from pncp_assets.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from pncp_assets_tests.support.pipeline import Pipeline, end_of_hour, partition, storage_resource
from pncp_assets_tests.support.readme import readme_snippets
from pncp_assets_tests.support.seaweed import S3_PARAM

DAY = dt.date(2025, 10, 22)
LATER = dt.datetime(2025, 10, 25, tzinfo=dt.UTC)  # every hour of DAY is due


@pytest.fixture(params=["local", S3_PARAM])
def env_store(request: pytest.FixtureRequest, tmp_path) -> ObjectStore:
    """The environment a user sets (local or S3), and the same storage as an ObjectStore."""
    if request.param == "local":
        root = request.getfixturevalue("local_env")
        return LocalObjectStore(root)
    bucket = request.getfixturevalue("s3_env")
    return S3ObjectStore(request.getfixturevalue("seaweed").client(), bucket)


@pytest.fixture
def filled_day(env_store: ObjectStore, request: pytest.FixtureRequest) -> Pipeline:
    """DAY ingested by the pipeline, every hour, into the storage the environment names."""
    seaweed = request.getfixturevalue("seaweed") if isinstance(env_store, S3ObjectStore) else None
    with RunningSimulator(SimulatorConfig(seed=26, volume=300)) as sim:
        p = Pipeline(sim, env_store, storage_resource(env_store, seaweed))
        assert p.run_range(partition(DAY, 0), partition(DAY, 23), now=end_of_hour(DAY, 23)).success
    return p


def deltas(store: ObjectStore) -> dict[str, bytes]:
    return {k: store.get(k).data for k in layout.day_delta_keys(store, "pncp", DAY)}


def test_the_documents_uploads_beside_a_filled_day_replace_nothing_and_the_checks_pass(filled_day: Pipeline):
    store = filled_day.store
    before = deltas(store)
    assert layout.delta_key("pncp", partition(DAY, 0)) in before  # the 00:00 delta the document's name hits
    scope: dict = {}
    exec(readme_snippets("document")["uploads"], scope)  # the document's three examples, as the README has them
    keys = scope["keys"]
    assert keys[:2] == ["pncp/year=2025/month=10/day=22/pncp_20251022_000000_1.parquet",
                        "pncp/year=2025/month=10/day=22/pncp_20251022_000000_2.parquet"]
    assert re.fullmatch(r"pncp/_legacy_json/year=\d{4}/month=\d{2}/day=\d{2}/pncp_\d{8}_\d{6}\.json", keys[2])
    storage = get_storage_client()
    at_14 = storage.upload_to_bronze(data=scope["data"], source="pncp", date=dt.datetime(2025, 10, 22, 14))
    assert at_14 == "pncp/year=2025/month=10/day=22/pncp_20251022_140000_1.parquet"  # an hour's name: the next
    assert deltas(store) == before  # not one byte of the pipeline's Bronze changed
    report = check_range(store, DAY, DAY, FIRST_SEEN, now=LATER)
    assert report.passed, report.failures

    # The document's whole flow (filter, upload, update_state) on the same day: still consistent.
    manager = StateManager()
    new, stats = manager.filter_new_records("pncp", DAY, [{"numeroControlePNCP": "003", "valor": 3}])
    assert stats["new_records"] == 1
    storage.upload_to_bronze(data=new, source="pncp", date=dt.datetime(2025, 10, 22, 15, 30))
    manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new])
    assert check_range(store, DAY, DAY, FIRST_SEEN, now=LATER).passed
    assert deltas(store) == before
    # Readers see the pipeline's records once and the uploads beside them.
    scope = {"bronze_root": str(store.root) if isinstance(store, LocalObjectStore) else None, "layer": "pncp"}
    if scope["bronze_root"]:
        exec(readme_snippets()["pyarrow"], scope)
        ids = scope["df"].column("numeroControlePNCP").to_pylist()
        pipeline_ids = {x for data in before.values() for x in bronze.parquet_ids(data)}
        assert sorted(x for x in ids if x in pipeline_ids) == sorted(pipeline_ids)
        assert sorted(x for x in ids if x not in pipeline_ids) == ["001", "001", "001", "002", "002", "002", "003"]


def test_an_upload_never_replaces_an_object_even_when_two_race_for_one_name(local_env):
    storage = get_storage_client()
    moment = dt.datetime(2025, 10, 22, 9, 30, 5)
    first = storage.upload_to_bronze([{"numeroControlePNCP": "a"}], date=moment)
    second = storage.upload_to_bronze([{"numeroControlePNCP": "b"}], date=moment)
    assert first == "pncp/year=2025/month=10/day=22/pncp_20251022_093005.parquet"  # the document's own name
    assert second == "pncp/year=2025/month=10/day=22/pncp_20251022_093005_1.parquet"
    assert bronze.parquet_ids(storage.get(first).data) == ["a"]
    json_keys = [storage.upload_to_bronze([{"numeroControlePNCP": "a"}], date=moment, format="json")
                 for _ in range(2)]
    assert len(set(json_keys)) == 2
    from pncp_assets.storage import LocalObjectStore as Store

    assert Store(local_env).get(json_keys[0]).data == b'[{"numeroControlePNCP":"a"}]'


def test_write_json_to_s3_refuses_the_pipelines_keys_and_reads_a_state_as_the_documents_json(local_env):
    storage = get_storage_client()
    StateManager().update_state("pncp", DAY, ["001", "002"])
    for key in (layout.state_key("pncp", DAY), layout.legacy_state_key("pncp", DAY),
                layout.delta_key("pncp", partition(DAY, 8)), "pncp/_raw/year=2025/month=10/day=22/x.json",
                layout.archive_key("pncp", DAY), "_staging/pncp/year=2025/month=10/day=22/x.parquet"):
        with pytest.raises(ValueError, match="never replaces it"):
            storage.write_json_to_s3(key, {"date": "2025-10-22"})
    # The document reads its state where it put it, the plain JSON name; the compact file answers.
    state = storage.read_json_from_s3("pncp/_state/year=2025/month=10/day=22/state_20251022.json")
    assert state["processed_ids"] == ["001", "002"] and state["total_processed"] == 2
    assert storage.read_json_from_s3(layout.state_key("pncp", DAY + dt.timedelta(days=1))) is None
    storage.write_json_to_s3("pncp/_meta/run.json", {"ok": True})  # anything else, as the document does
    assert storage.read_json_from_s3("pncp/_meta/run.json") == {"ok": True}


def test_the_documents_walkthrough_prints_what_it_says(local_env, capsys):
    exec(readme_snippets("document")["walkthrough"], {})
    out = capsys.readouterr().out.splitlines()
    assert out == ["New: 3, Filtered: 0, filter rate 0.0",
                   "New: 2, Filtered: 3, filter rate 60.0",
                   "New: 0, Filtered: 5, filter rate 100.0",
                   "Total processed: 5, executions: 3"]
    state = StateManager().load_state("pncp", DAY)
    assert [(e["new_records"], e["duplicates_filtered"], e["filter_rate"]) for e in state["executions"]] == [
        (3, 0, 0.0), (2, 3, 60.0), (0, 5, 100.0)]  # the document's own state file, execution by execution
    assert state["last_execution"] == state["executions"][-1]["timestamp"]


def test_the_documents_log_lines(local_env, caplog):
    manager = StateManager()
    records = [{"numeroControlePNCP": f"00{n}"} for n in range(1, 5)]
    with caplog.at_level("INFO", logger="pncp_assets"):
        new, _ = manager.filter_new_records("pncp", DAY, records)
        manager.update_state("pncp", DAY, [r["numeroControlePNCP"] for r in new])
        manager.filter_new_records("pncp", DAY, records)
    text = caplog.text
    assert "State filtering: 4 input -> 4 new (0 duplicates filtered)" in text
    assert "State updated: 4 new IDs added" in text
    assert "No new records to process (all duplicates)" in text


def test_an_upload_keeps_the_callers_types_and_the_layer_reads_as_one_dataset(local_env):
    storage = get_storage_client()
    frame = pd.DataFrame({
        "numeroControlePNCP": ["001", "002", "003"],
        "valor": pd.array([1000, None, 3000], dtype="Int64"),
        "preco": [1.5, float("nan"), 3.25],
        "ativo": [True, False, True],
        "visto_em": pd.to_datetime(["2025-10-22 08:00", "2025-10-22 09:30", None]),
        "visto_utc": pd.to_datetime(["2025-10-22 11:00", "2025-10-22 12:30", "2025-10-22 13:00"]).tz_localize("UTC"),
        "nome": ["a", None, "c"],
        "dataPublicacaoPncp": pd.to_datetime(["2025-10-22 08:00", "2025-10-22 09:30", "2025-10-22 10:00"]),
    })
    key = storage.upload_to_bronze(frame, date=dt.datetime(2025, 10, 22, 8, 15))
    back = pd.read_parquet(io.BytesIO(storage.get(key).data))
    extras = ["valor", "preco", "ativo", "visto_em", "visto_utc", "nome"]
    pd.testing.assert_frame_equal(back[extras], frame[extras])  # dtypes and values, NA included
    # A column the layer types keeps the layer's type: the same instant, in Brasília time.
    assert str(back["dataPublicacaoPncp"].dtype).endswith("America/Sao_Paulo]")
    assert back["dataPublicacaoPncp"][0] == pd.Timestamp("2025-10-22 08:00", tz="America/Sao_Paulo")
    assert back["_raw"][0].startswith('{"numeroControlePNCP":"001","valor":1000,"preco":1.5')

    records = [{"numeroControlePNCP": "004", "valor": 7, "ativo": True, "preco": 2.5,
                "visto_em": dt.datetime(2025, 10, 22, 8, 0), "misto": 1},
               {"numeroControlePNCP": "005", "valor": None, "ativo": None, "preco": None,
                "visto_em": None, "misto": "dois"}]
    table = bronze.read_parquet(storage.get(storage.upload_to_bronze(records, date=dt.datetime(2025, 10, 22, 8))).data)
    assert table.schema.field("valor").type == pa.int64() and table.column("valor").to_pylist() == [7, None]
    assert table.schema.field("ativo").type == pa.bool_() and table.schema.field("preco").type == pa.float64()
    assert pa.types.is_timestamp(table.schema.field("visto_em").type)
    assert table.column("misto").to_pylist() == ["1", '"dois"']  # mixed: JSON text, nothing lost

    # With the pipeline's delta beside them, the README's readers read the layer as one dataset.
    from pncp_assets.commit import DeltaCommitter
    from pncp_assets_tests.support.records import make_id, record_like

    template = {"numeroControlePNCP": make_id(1), "dataPublicacaoPncp": "2025-10-22T08:10:00"}
    committer = DeltaCommitter(storage.store)
    result = committer.commit(partition(DAY, 8), [(record_like(template, 1), bronze.Provenance(6, 1))], "run")
    committer.publish(result.output)
    for reader in ("pyarrow", "pandas", "polars", "duckdb"):
        scope = {"bronze_root": str(local_env), "layer": "pncp"}
        exec(readme_snippets()[reader], scope)
        frame_read = scope["df"]
        column = frame_read["numeroControlePNCP"]
        ids = column.to_pylist() if hasattr(column, "to_pylist") else list(column)
        assert sorted(ids) == sorted(["001", "002", "003", "004", "005", make_id(1)]), reader


def test_bad_uploads_are_refused_with_the_reason(local_env):
    storage = get_storage_client()
    with pytest.raises(ValueError, match="parquet"):
        storage.upload_to_bronze([{"numeroControlePNCP": "1"}], date=dt.datetime(2025, 10, 22), format="csv")
    with pytest.raises(TypeError, match="list of dicts or a pandas DataFrame"):
        storage.upload_to_bronze("not records", date=dt.datetime(2025, 10, 22))
    with pytest.raises(ValueError, match="Bronze's"):
        storage.upload_to_bronze([{"numeroControlePNCP": "1", "_raw": "x"}], date=dt.datetime(2025, 10, 22))
    with pytest.raises(ValueError, match=r"no layer '\.\./x'"):
        storage.upload_to_bronze([{"numeroControlePNCP": "1"}], source="../x", date=dt.datetime(2025, 10, 22))
