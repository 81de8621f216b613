"""The seed's storage client, exactly as the seed calls it:

    storage = get_storage_client()
    key = storage.upload_to_bronze(data=records, source="pncp", date=moment, format="parquet")
    storage.write_json_to_s3(key, obj)
    storage.read_json_from_s3(key)          # None when absent

`get_storage_client()` follows `STORAGE_TYPE` (`local`, `s3`, `minio`) and the rest of the environment,
and the client is also a full `ObjectStore` (get, put with conditions, list, delete), so the pipeline's
own code takes it anywhere. The module-level functions of the same names use a client from the
environment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pncp_assets.bronze import write_bronze_file
from pncp_assets.storage import NotFound, ObjectStore, StoredObject


class StorageClient(ObjectStore):
    """An `ObjectStore` (local or S3, in `.store`) with the seed's three methods on top."""

    def __init__(self, store: ObjectStore):
        self.store = store

    # --- the seed's API ---------------------------------------------------------------------------

    def upload_to_bronze(self, data: Any, source: str = "pncp", date: dt.datetime | None = None,
                         format: str = "parquet") -> str:
        """Records (a list of dicts or a pandas DataFrame) as one Bronze file; returns its key."""
        return write_bronze_file(self, data, source, date, format)

    def write_json_to_s3(self, key: str, obj: Any) -> str:
        """`obj` as JSON at `key` (whichever backend is configured); returns the version tag."""
        return self.put_json(key, obj)

    def read_json_from_s3(self, key: str) -> Any | None:
        """The JSON object at `key`, or None when there is none."""
        try:
            return self.get_json(key)
        except NotFound:
            return None

    # --- ObjectStore, by delegation ------------------------------------------------------------

    def get(self, key: str) -> StoredObject:
        return self.store.get(key)

    def version(self, key: str) -> str | None:
        return self.store.version(key)

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None) -> str:
        return self.store.put(key, data, if_absent=if_absent, if_version=if_version)

    def list(self, prefix: str = "") -> list[str]:
        return self.store.list(prefix)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def describe(self) -> str:
        return self.store.describe()


def get_storage_client() -> StorageClient:
    """The storage chosen by `STORAGE_TYPE` (`local`, `s3`, `minio`) and the rest of the environment."""
    from pncp_assets.defs.environment import bronze_storage  # the one place that reads the environment

    return StorageClient(bronze_storage().object_store())


def upload_to_bronze(data: Any, source: str = "pncp", date: dt.datetime | None = None,
                     format: str = "parquet") -> str:
    return get_storage_client().upload_to_bronze(data, source, date, format)


def write_json_to_s3(key: str, obj: Any) -> str:
    return get_storage_client().write_json_to_s3(key, obj)


def read_json_from_s3(key: str) -> Any | None:
    return get_storage_client().read_json_from_s3(key)
