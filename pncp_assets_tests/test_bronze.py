"""Bronze encoding: one explicit schema whatever the API sends, lossless `_raw`, one readable dataset."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from pncp_assets import bronze, layout
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.storage import LocalObjectStore, ObjectStore
from pncp_assets_tests.support.records import encode_parquet, record_like


def _odd_records(sample_records: list[dict]) -> list[dict]:
    """The real samples plus records with an extra field, wrong types and missing fields."""
    base = sample_records[0]
    extra = record_like(base, 901, campoNovo={"x": 1}, outroCampo="surprise")
    wrong = record_like(
        base, 902,
        valorTotalEstimado="1.000,00",  # text where a number belongs
        anoCompra="2025",
        srp="false",
        dataPublicacaoPncp=20251022,
        orgaoEntidade="not an object",
        fontesOrcamentarias={"codigo": 1},
        situacaoCompraId="1",
        unidadeOrgao={"ufNome": 7, "codigoIbge": 4115804},
    )
    int_money = record_like(base, 903, valorTotalEstimado=1500, valorTotalHomologado=1499)
    missing = record_like(base, 904)
    for name in ("emendaParlamentar", "orgaoSubRogado", "amparoLegal"):
        missing.pop(name, None)
    with_sources = record_like(base, 905, fontesOrcamentarias=[
        {"codigo": 1, "nome": "Recursos próprios", "descricao": "x", "dataInclusao": "2025-10-22T10:00:00"},
        "not an object",
    ])
    return [extra, wrong, int_money, missing, with_sources]


def test_every_file_has_the_identical_schema(sample_records):
    batches = [[r] for r in sample_records] + [[r] for r in _odd_records(sample_records)] + [sample_records]
    schemas = {bronze.read_parquet(encode_parquet(b, partition_key="2025-10-22-08:00")).schema
               for b in batches}
    assert len(schemas) == 1
    assert next(iter(schemas)).equals(FIRST_SEEN.schema, check_metadata=False)


def test_schema_has_the_35_documented_fields_plus_ingestion_columns(sample_records):
    sample_keys = set().union(*(r.keys() for r in sample_records))
    record_columns = [n for n in FIRST_SEEN.schema.names if not n.startswith("_")]
    assert len(record_columns) == 35
    assert set(record_columns) == sample_keys
    assert {"_raw", "_ingested_at", "_partition_key", "_modalidade", "_pagina"} <= set(FIRST_SEEN.schema.names)


def test_wrong_types_become_null_and_raw_keeps_the_record(sample_records):
    records = _odd_records(sample_records)
    table = FIRST_SEEN.to_table(records)
    rows = table.to_pylist()
    wrong = rows[1]
    for column in ("valorTotalEstimado", "anoCompra", "srp", "dataPublicacaoPncp", "orgaoEntidade",
                   "fontesOrcamentarias", "situacaoCompraId"):
        assert wrong[column] is None, column
    assert wrong["unidadeOrgao"]["ufNome"] is None and wrong["unidadeOrgao"]["codigoIbge"] is None
    assert wrong["unidadeOrgao"]["ufSigla"] == records[1]["unidadeOrgao"].get("ufSigla")
    assert bronze.raw_records(table) == records  # lossless, extra fields and odd types included
    assert rows[2]["valorTotalEstimado"] == 1500.0 and rows[2]["valorTotalHomologado"] == 1499.0
    assert rows[3]["emendaParlamentar"] is None and rows[3]["amparoLegal"] is None
    fontes = rows[4]["fontesOrcamentarias"]
    assert fontes[0]["nome"] == "Recursos próprios" and fontes[1] is None
    assert "campoNovo" not in table.schema.names


def test_typed_columns_hold_the_api_values(sample_records):
    record = sample_records[0]
    row = FIRST_SEEN.to_table([record], partition_key="2025-10-22-08:00").to_pylist()[0]
    assert row["numeroControlePNCP"] == record["numeroControlePNCP"]
    assert row["valorTotalEstimado"] == record["valorTotalEstimado"]
    assert row["valorTotalHomologado"] is None  # null stays null, never 0
    assert row["orgaoEntidade"] == record["orgaoEntidade"] | {}
    expected = dt.datetime.fromisoformat(record["dataPublicacaoPncp"])
    assert row["dataPublicacaoPncp"].replace(tzinfo=None) == expected  # Brasília wall time preserved
    assert row["dataPublicacaoPncp"].utcoffset() == dt.timedelta(hours=-3)
    assert row["_partition_key"] == "2025-10-22-08:00"
    assert json.loads(row["_raw"]) == record


def test_whole_pncp_prefix_reads_as_one_hive_dataset(tmp_path, sample_records):
    store = LocalObjectStore(tmp_path / "bronze")
    odd = _odd_records(sample_records)
    store.put(layout.delta_key("pncp", "2025-10-22-08:00"), encode_parquet(sample_records[:3]))
    store.put(layout.delta_key("pncp", "2025-10-22-23:00"), encode_parquet(sample_records[3:]))
    store.put(layout.delta_key("pncp", "2025-10-23-00:00"), encode_parquet(odd))
    # Side layers that readers must skip.
    store.put(layout.state_key("pncp", "20251022"), b'{"date": "2025-10-22"}')
    store.put("pncp/_raw/year=2025/month=10/day=22/pages_x.json", b"[]")
    store.put("pncp/_raw/year=2025/month=10/day=22/pages_y.parquet", b"not parquet")

    dataset = ds.dataset(str(tmp_path / "bronze" / "pncp"), format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == len(sample_records) + len(odd)
    assert {"year", "month", "day"} <= set(table.schema.names)
    ids = sorted(table.column("numeroControlePNCP").to_pylist())
    assert ids == sorted(r["numeroControlePNCP"] for r in sample_records + odd)
    per_day = table.group_by("day").aggregate([("numeroControlePNCP", "count")]).to_pylist()
    assert {r["day"]: r["numeroControlePNCP_count"] for r in per_day} == {22: 6, 23: len(odd)}
    frame = pd.read_parquet(tmp_path / "bronze" / "pncp")  # what an analyst with pandas types
    assert len(frame) == table.num_rows and "_raw" in frame.columns


def test_dataset_reads_back_from_s3(seaweed, s3_store: ObjectStore, sample_records):
    s3_store.put(layout.delta_key("pncp", "2025-10-22-08:00"), encode_parquet(sample_records))
    s3_store.put(layout.state_key("pncp", "20251022"), b"{}")
    fs = pafs.S3FileSystem(
        access_key=seaweed.access_key, secret_key=seaweed.secret_key,
        endpoint_override=seaweed.endpoint, scheme="http", region="us-east-1",
    )
    table = ds.dataset(f"{s3_store.bucket}/pncp", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(sample_records)


def test_key_layout():
    assert layout.delta_key("pncp", "2025-10-22-08:00") == "pncp/year=2025/month=10/day=22/pncp_20251022_080000.parquet"
    assert layout.state_key("pncp", "20251022") == "pncp/_state/year=2025/month=10/day=22/state_20251022.zst"
    assert layout.day_prefix("pncp", dt.date(2025, 1, 2)) == "pncp/year=2025/month=01/day=02/"
    utc_moment = dt.datetime(2025, 10, 23, 1, 0, tzinfo=dt.UTC)  # 22:00 in Brasília
    assert layout.bronze_key("pncp", utc_moment).endswith("day=22/pncp_20251022_220000.parquet")


@pytest.mark.parametrize("key", ["2025-10-22", "2025-10-22-08:30", "../2025-10-22-08:00", "2025-02-30-08:00", ""])
def test_bad_partition_keys_are_refused(key: str):
    with pytest.raises(ValueError):
        layout.delta_key("pncp", key)


def test_raw_column_survives_unicode_and_nesting(sample_records):
    record = copy.deepcopy(sample_records[0])
    record["objetoCompra"] = "Aquisição de café ☕ — “aspas” \u0000 nul"
    table = bronze.read_parquet(encode_parquet([record]))
    assert bronze.raw_records(table) == [record]
    assert table.column("objetoCompra").to_pylist() == [record["objetoCompra"]]
