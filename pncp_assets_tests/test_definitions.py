"""The code location loads as Dagster would load it."""

from __future__ import annotations

import dagster as dg

from pncp_assets.resources import BronzeStorage
from pncp_assets.storage import LocalObjectStore, S3ObjectStore


def test_definitions_load():
    from pncp_assets.definitions import defs

    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)


def test_bronze_storage_resource_follows_the_environment(local_env, monkeypatch):
    assert isinstance(BronzeStorage.from_env().object_store(), LocalObjectStore)


def test_bronze_storage_resource_on_s3(s3_env):
    store = BronzeStorage.from_env().object_store()
    assert isinstance(store, S3ObjectStore)
    store.put("pncp/x", b"1")
    assert store.get("pncp/x").data == b"1"
