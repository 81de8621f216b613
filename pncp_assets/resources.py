"""Dagster resources, built from the environment (DESIGN.md's configuration table)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg

from pncp_assets.config import PncpSettings, StorageSettings, parse_modalidades
from pncp_assets.pncp.client import MAX_RESPONSE_BYTES, PncpClient
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
    s3_max_attempts: int = 5

    @classmethod
    def from_env(cls) -> BronzeStorage:
        return cls(**dataclasses.asdict(StorageSettings.from_env()))

    def object_store(self) -> ObjectStore:
        names = [f.name for f in dataclasses.fields(StorageSettings)]
        return storage_from_settings(StorageSettings(**{n: getattr(self, n) for n in names}))


class PncpApi(dg.ConfigurableResource):
    """The PNCP consultation API: where it is, how fast to ask, which modalidades, how to retry."""

    base_url: str = "https://pncp.gov.br/api/consulta"
    request_interval_s: float = 2.0
    modalidades: str = "1..19"
    max_attempts: int = 8
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 90.0
    sweep_max_age_minutes: float = 60.0  # a stored sweep younger than this serves the hours it covers
    max_response_bytes: int = MAX_RESPONSE_BYTES  # a bigger answer is refused (a page is about 100 KB)

    @classmethod
    def from_env(cls) -> PncpApi:
        s = PncpSettings.from_env()
        return cls(base_url=s.base_url, request_interval_s=s.request_interval_s,
                   modalidades=",".join(str(m) for m in s.modalidades))

    @property
    def sweep_max_age(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.sweep_max_age_minutes)

    def client(self, logger: object = None) -> PncpClient:
        return PncpClient(
            self.base_url, request_interval_s=self.request_interval_s,
            modalidades=parse_modalidades(self.modalidades), max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s, backoff_max_s=self.backoff_max_s,
            connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s,
            max_response_bytes=self.max_response_bytes, logger=logger,
        )
