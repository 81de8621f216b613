"""The seed's storage client API on both backends, chosen by the environment as a user would."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pncp_assets import bronze
from pncp_assets.config import ConfigError
from pncp_assets.defs.environment import bronze_storage
from pncp_assets.document_api import get_storage_client, read_json_from_s3, upload_to_bronze, write_json_to_s3
from pncp_assets.layers import FIRST_SEEN
from pncp_assets.storage import LocalObjectStore, S3ObjectStore
from pncp_assets_tests.support.seaweed import S3_PARAM

MOMENT = dt.datetime(2025, 10, 22, 14, 30, 5)


@pytest.fixture(params=["local", S3_PARAM])
def env_backend(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(f"{request.param}_env")
    return request.param


def test_get_storage_client_follows_storage_type(env_backend: str):
    client = get_storage_client()
    assert isinstance(client.store, LocalObjectStore if env_backend == "local" else S3ObjectStore)


def test_minio_is_s3_with_path_style(s3_env, monkeypatch):
    monkeypatch.setenv("STORAGE_TYPE", "minio")
    client = get_storage_client()
    assert isinstance(client.store, S3ObjectStore)
    client.put("x", b"1")
    assert client.get("x").data == b"1"


def test_unknown_storage_type_lists_the_valid_values(monkeypatch):
    monkeypatch.setenv("STORAGE_TYPE", "gcs")
    with pytest.raises(ConfigError, match="local, s3, minio"):
        get_storage_client()


@pytest.mark.parametrize("value", ["0", "five", "-2"])
def test_s3_max_attempts_must_be_a_positive_whole_number(monkeypatch, value):
    monkeypatch.setenv("S3_MAX_ATTEMPTS", value)
    monkeypatch.setenv("STORAGE_TYPE", "s3")
    with pytest.raises(ConfigError, match="S3_MAX_ATTEMPTS"):
        bronze_storage()


def test_s3_max_attempts_reaches_the_client(monkeypatch):
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "9")
    monkeypatch.setenv("STORAGE_TYPE", "s3")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")
    store = get_storage_client().store
    assert store.client.meta.config.retries["total_max_attempts"] == 9  # the first try included


def test_json_round_trip_and_absent_key(env_backend: str):
    assert read_json_from_s3("pncp/_meta/absent.json") is None
    write_json_to_s3("pncp/_meta/x.json", {"a": 1, "b": ["ç"]})
    assert read_json_from_s3("pncp/_meta/x.json") == {"a": 1, "b": ["ç"]}


def test_upload_list_of_dicts_returns_the_seed_key(env_backend: str, sample_records):
    key = upload_to_bronze(sample_records, source="pncp", date=MOMENT)
    assert key == "pncp/year=2025/month=10/day=22/pncp_20251022_143005.parquet"
    table = bronze.read_parquet(get_storage_client().get(key).data)
    assert table.schema.equals(FIRST_SEEN.schema, check_metadata=False)
    assert bronze.raw_records(table) == sample_records


def test_upload_dataframe(env_backend: str, sample_records):
    frame = pd.DataFrame(sample_records)
    key = upload_to_bronze(frame, date=MOMENT)
    table = bronze.read_parquet(get_storage_client().get(key).data)
    assert table.column("numeroControlePNCP").to_pylist() == [r["numeroControlePNCP"] for r in sample_records]
    assert table.column("valorTotalHomologado").to_pylist() == [None] * len(sample_records)


def test_upload_legacy_json_outside_the_parquet_dataset(env_backend: str, sample_records):
    key = upload_to_bronze(sample_records, date=MOMENT, format="json")
    assert key == "pncp/_legacy_json/year=2025/month=10/day=22/pncp_20251022_143005.json"
    assert read_json_from_s3(key) == sample_records


def test_upload_rejects_bad_format_and_data(env_backend: str, sample_records):
    with pytest.raises(ValueError, match="parquet"):
        upload_to_bronze(sample_records, date=MOMENT, format="csv")
    with pytest.raises(TypeError):
        upload_to_bronze("not records", date=MOMENT)


def test_the_seeds_own_usage_works_as_methods_of_the_client(env_backend: str, sample_records):
    """The seed calls these as methods: storage = get_storage_client(); storage.upload_to_bronze(...)."""
    storage = get_storage_client()
    key = storage.upload_to_bronze(data=sample_records, source="pncp", date=MOMENT, format="parquet")
    assert key == "pncp/year=2025/month=10/day=22/pncp_20251022_143005.parquet"
    assert bronze.raw_records(bronze.read_parquet(storage.get(key).data)) == sample_records
    assert storage.read_json_from_s3("pncp/_meta/none.json") is None
    storage.write_json_to_s3("pncp/_meta/run.json", {"ok": True})
    assert storage.read_json_from_s3("pncp/_meta/run.json") == {"ok": True}
    from pncp_assets.document_api import StateManager

    assert StateManager().load_state("pncp", "20251022")["total_processed"] == 0  # the seed's no-argument form
