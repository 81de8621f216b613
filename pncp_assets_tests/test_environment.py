"""One configuration path: the resources are the schema, `environment.py` the one reader of variables."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3.resources import ResourceWithS3Configuration

from pncp_assets.config import ConfigError
from pncp_assets.defs.environment import bronze_storage, pncp_api
from pncp_assets.defs.resources import BronzeStorage, PncpApi
from pncp_assets.layers import FIRST_SEEN

PACKAGE = Path(__file__).resolve().parents[1] / "pncp_assets"


def test_unset_variables_leave_each_default_as_the_resource_writes_it():
    assert bronze_storage({}) == BronzeStorage()
    assert pncp_api({}) == PncpApi()


def test_every_variable_reaches_its_field():
    storage = bronze_storage({"STORAGE_TYPE": "MinIO", "PNCP_DATA_DIR": "/d", "BRONZE_BUCKET": "b",
                              "S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "sa-east-1",
                              "AWS_PROFILE": "p", "S3_MAX_ATTEMPTS": "7", "BRONZE_COMPRESSION": "snappy"})
    assert (storage.storage_type, storage.data_dir, storage.bucket, storage.endpoint_url, storage.region_name,
            storage.profile_name, storage.max_attempts, storage.compression) == (
        "minio", "/d", "b", "http://127.0.0.1:9", "sa-east-1", "p", 7, "snappy")
    api = pncp_api({"PNCP_API_BASE_URL": "http://x/api/", "PNCP_REQUEST_INTERVAL_S": "0.5",
                    "PNCP_MODALIDADES": "6,8..9", "PNCP_STEP_RETRIES": "4", "PNCP_STEP_RETRY_DELAY_S": "3",
                    "PNCP_SWEEP_MAX_AGE_MINUTES": "0", "PNCP_MAX_IN_FLIGHT": "5", "PNCP_START_IN_FLIGHT": "1",
                    "PNCP_OUTAGE_BOUND_MINUTES": "45"})
    assert (api.base_url, api.request_interval_s, api.modalidades, api.step_retries, api.step_retry_delay_s,
            api.sweep_max_age_minutes) == ("http://x/api", 0.5, "6,8..9", 4, 3.0, 0.0)
    client = api.client(endpoint=FIRST_SEEN.endpoint)
    assert client.modalidades == (6, 8, 9)
    assert (client.window.maximum, client.window.limit, client.outage_bound_s) == (5, 1, 45 * 60)


@pytest.mark.parametrize(("build", "env", "name"), [
    (bronze_storage, {"STORAGE_TYPE": "gcs"}, "STORAGE_TYPE"),
    (bronze_storage, {"STORAGE_TYPE": "s3", "S3_MAX_ATTEMPTS": "five"}, "S3_MAX_ATTEMPTS"),
    (bronze_storage, {"STORAGE_TYPE": "s3", "S3_MAX_ATTEMPTS": "0"}, "S3_MAX_ATTEMPTS"),
    (bronze_storage, {"BRONZE_COMPRESSION": "lz77"}, "BRONZE_COMPRESSION"),
    (pncp_api, {"PNCP_REQUEST_INTERVAL_S": "fast"}, "PNCP_REQUEST_INTERVAL_S"),
    (pncp_api, {"PNCP_REQUEST_INTERVAL_S": "-1"}, "PNCP_REQUEST_INTERVAL_S"),
    (pncp_api, {"PNCP_MODALIDADES": "six"}, "PNCP_MODALIDADES"),
    (pncp_api, {"PNCP_SWEEP_MAX_AGE_MINUTES": "-5"}, "PNCP_SWEEP_MAX_AGE_MINUTES"),
    (pncp_api, {"PNCP_MAX_IN_FLIGHT": "0"}, "PNCP_MAX_IN_FLIGHT"),
    (pncp_api, {"PNCP_MAX_IN_FLIGHT": "two"}, "PNCP_MAX_IN_FLIGHT"),
    (pncp_api, {"PNCP_MAX_IN_FLIGHT": "2", "PNCP_START_IN_FLIGHT": "3"}, "PNCP_START_IN_FLIGHT"),
    (pncp_api, {"PNCP_OUTAGE_BOUND_MINUTES": "-1"}, "PNCP_OUTAGE_BOUND_MINUTES"),
])
def test_a_bad_value_names_its_variable(build, env, name):
    with pytest.raises(ConfigError, match=name):
        build(env)


def test_only_the_environment_module_reads_the_environment():
    """No module but environment.py reads os.environ / os.getenv (faults.py's test hook and the demo's
    DAGSTER_HOME aside), so no setting depends on import order."""
    readers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(path.relative_to(PACKAGE).as_posix())
    assert readers == {"defs/environment.py", "faults.py", "demo.py"}


def test_storage_keeps_dagster_aws_settings_and_one_client_per_run(s3_env, seaweed):
    storage = bronze_storage()
    assert isinstance(storage, ResourceWithS3Configuration)  # dagster-aws' settings (test_definitions.py)
    with dg.build_init_resource_context() as context:
        storage.setup_for_execution(context)
    first = storage.object_store()
    assert storage.object_store() is first  # every step of the run shares it
    client = first.client
    assert client.meta.config.s3["addressing_style"] == "path"  # SeaweedFS/MinIO: path-style
    assert client.meta.config.connect_timeout == storage.connect_timeout_s
    assert client.meta.config.max_pool_connections == storage.max_pool_connections
    first.put("pncp/x", b"1")
    assert first.get("pncp/x").data == b"1"
