"""Dagster resources, built from the environment (DESIGN.md's configuration table)."""

from __future__ import annotations

import dagster as dg

from pncp_assets.config import StorageSettings
from pncp_assets.storage import ObjectStore, storage_from_settings


class BronzeStorage(dg.ConfigurableResource):
    """Where Bronze lives: local files (the embedded default) or an S3 bucket.

    The S3 client is built by `storage.make_s3_client`, the same one the CLI uses, because it sets
    what dagster-aws' `S3Resource` does not expose: connect/read timeouts, path-style addressing for
    MinIO/SeaweedFS, and a connection pool sized for concurrent writers. Credentials are read by boto3
    from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) and never pass through config.
    """

    storage_type: str = "local"
    data_dir: str = "./data"
    bucket: str = "bronze"
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls) -> BronzeStorage:
        s = StorageSettings.from_env()
        return cls(storage_type=s.storage_type, data_dir=s.data_dir, bucket=s.bucket,
                   endpoint_url=s.endpoint_url, region=s.region)

    def object_store(self) -> ObjectStore:
        return storage_from_settings(
            StorageSettings(self.storage_type, self.data_dir, self.bucket, self.endpoint_url, self.region)
        )
