"""Shared fixtures: a real SeaweedFS S3 server, a bucket per test, and both ObjectStore backends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pncp_assets.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from pncp_assets_tests.support.seaweed import S3_PARAM, SeaweedS3, start_seaweed

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory):
    """One SeaweedFS server for the session; it fails (never skips) if it does not come up in 60 s."""
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop(timeout_s=3)


@pytest.fixture
def s3_bucket(seaweed: SeaweedS3):
    """A fresh bucket of the real S3 server, dropped after the test."""
    bucket = seaweed.new_bucket()
    yield bucket
    seaweed.drop_bucket(bucket)


@pytest.fixture
def s3_store(seaweed: SeaweedS3, s3_bucket: str) -> S3ObjectStore:
    """An ObjectStore on a fresh bucket of the real S3 server."""
    return S3ObjectStore(seaweed.client(), s3_bucket)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "bronze")


@pytest.fixture(params=["local", S3_PARAM])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each test using it runs once per backend."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, seaweed: SeaweedS3, s3_bucket: str) -> str:
    """The environment a user sets for S3 storage, on a fresh bucket; returns the bucket."""
    bucket = s3_bucket
    monkeypatch.setenv("STORAGE_TYPE", "s3")
    monkeypatch.setenv("S3_ENDPOINT_URL", seaweed.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("BRONZE_BUCKET", bucket)
    return bucket


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("PNCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BRONZE_BUCKET", raising=False)
    return tmp_path / "data" / "bronze"


@pytest.fixture(scope="session")
def sample_records() -> list[dict]:
    """Real PNCP records (public data), as the API returned them."""
    return json.loads((FIXTURES / "sample_records.json").read_text())["records"]


@pytest.fixture(scope="session")
def sample_envelopes() -> dict:
    return json.loads((FIXTURES / "sample_envelopes.json").read_text())


# The longest modules (the real webserver and daemon; the cluster; a simulated week; the five layers built on
# both backends): about half of the suite's worker time. With two workers the first opens one worker's run,
# the other three the other's.
LONGEST = ("test_e2e.py", "test_cluster.py", "test_versions.py", "test_feeds.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules where pytest-xdist's workers start: worksteal hands worker k the k-th of n equal
    runs of the list, then balances by stealing from the ends of the queues. So each long module opens a
    run of its own (with the default two workers, the end-to-end tests open the first, the cluster, the week
    and the feeds the second), and no worker ends up with all of them. (The week's and the feeds' tests also
    stay together: stolen away from their module's worker, one of them would build its module's fixture a
    second time.)"""
    for item in items:  # `-m "not s3"` runs without the S3 server
        if {"seaweed", "s3_bucket", "s3_store", "s3_env"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    rest = [i for i in items if i.path.name not in LONGEST]
    ordered: list[pytest.Item] = []
    for k, name in enumerate(LONGEST):
        start = len(items) * min(k, workers - 1) // workers  # where run k starts in the final list
        take = max(0, start - len(ordered))
        ordered += rest[:take] + [i for i in items if i.path.name == name]
        del rest[:take]
    items[:] = ordered + rest
