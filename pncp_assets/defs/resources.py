"""Dagster resources: the one schema of the pipeline's settings, each default written here once.

`environment.py` fills them from environment variables; tests and deployments may build them directly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import ConfigDict, PrivateAttr, field_validator, model_validator

from pncp_assets import bronze
from pncp_assets.config import parse_modalidades
from pncp_assets.metrics import Gateway
from pncp_assets.pncp.client import MAX_RESPONSE_BYTES, Endpoint, PncpClient
from pncp_assets.retention import RetentionPolicy
from pncp_assets.storage import LocalObjectStore, ObjectStore

STORAGE_TYPES = ("local", "s3", "minio")


class BronzeStorage(dg.ConfigurableResource):
    """Where Bronze lives: local files (the embedded default, this class) or an S3 bucket (`S3BronzeStorage` of
    `s3_storage.py`, which adds dagster-aws' S3 settings; `environment.py` builds it when STORAGE_TYPE is `s3`
    or `minio`, so that only S3 deployments import dagster-aws and boto3: 0.3 s of CPU and 13 MB in every
    process otherwise, README "What a run costs"). One store per run: built when the run sets the resource
    up, shared by every step of it."""

    storage_type: str = "local"
    data_dir: str = "./data"
    bucket: str = "bronze"
    compression: str = "zstd"  # Parquet codec of Bronze files (README "Bronze schema": measured)
    # For S3: path-style addressing (MinIO, SeaweedFS), timeouts and a connection pool sized for concurrent
    # writers, which dagster-aws' client does not expose. None: path-style for `minio` or any custom endpoint.
    path_style: bool | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_pool_connections: int = 32

    _store: ObjectStore | None = PrivateAttr(default=None)
    # A refused value is never repeated in the error (it may be a credential pasted in the wrong place).
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("storage_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in STORAGE_TYPES:
            raise ValueError(f"storage_type {value!r} is not valid; use one of: {', '.join(STORAGE_TYPES)}")
        return value

    @field_validator("compression")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        return bronze.validate_compression(value)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = self._build()

    def object_store(self) -> ObjectStore:
        if self._store is None:
            self._store = self._build()
        return self._store

    def _build(self) -> ObjectStore:
        if self.storage_type != "local":
            raise ValueError(f"storage_type {self.storage_type!r} takes S3 settings: use "
                             "pncp_assets.defs.s3_storage.S3BronzeStorage (STORAGE_TYPE does)")
        return LocalObjectStore(Path(self.data_dir) / self.bucket)


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
    # A sweep of a day the completeness ledger found complete (a re-sweep, a re-run of a closed day) asks page 1
    # of each modalidade first, and fetches the rest only where PNCP's count changed (README "Re-sweeps").
    count_first: bool = True
    max_response_bytes: int = MAX_RESPONSE_BYTES  # a bigger answer is refused (a page is about 100 KB)
    # A sweep that fails after the client's own retries (a long 429 block, a gateway outage) is tried
    # again by Dagster, as a step retry, after step_retry_delay_s, doubling each time.
    step_retries: int = 2
    step_retry_delay_s: float = 120.0
    # Pages take seconds to answer: up to max_in_flight requests at once, still request_interval_s apart at
    # their starts, starting at start_in_flight and adapting to what PNCP answers (README "How close a sweep
    # comes to the API's limit"). 1 and 1: one request at a time.
    max_in_flight: int = 3
    start_in_flight: int = 2
    # An outage (no good answer from any request) is waited out this long from its first failure, then the run
    # fails with "PNCP unavailable since ..." (docs/OPERATIONS.md "When PNCP is down"). 0: a page fails after
    # its own max_attempts, as any other trouble.
    outage_bound_minutes: float = 30.0

    @field_validator("modalidades")
    @classmethod
    def _modalidades(cls, value: str) -> str:
        parse_modalidades(value)
        return value

    @field_validator("request_interval_s", "step_retry_delay_s", "sweep_max_age_minutes", "outage_bound_minutes")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("max_in_flight", "start_in_flight")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @model_validator(mode="after")
    def _start_within_maximum(self) -> PncpApi:
        if self.start_in_flight > self.max_in_flight:
            raise ValueError(f"start_in_flight (PNCP_START_IN_FLIGHT) {self.start_in_flight} is above max_in_flight "
                             f"(PNCP_MAX_IN_FLIGHT) {self.max_in_flight}")
        return self

    @property
    def sweep_max_age(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.sweep_max_age_minutes)

    def retry_wait_s(self, retry_number: int) -> float:
        """Seconds before step retry number `retry_number` (0 for the first)."""
        return self.step_retry_delay_s * 2 ** retry_number

    def client(self, logger: Any = None, *, endpoint: Endpoint, **overrides: Any) -> PncpClient:
        """A client of `endpoint` (a layer's: `layers.Layer.endpoint`); `overrides` are `PncpClient` options
        (`on_outage`, or a probe's single attempt)."""
        options: dict[str, Any] = dict(
            request_interval_s=self.request_interval_s,
            modalidades=parse_modalidades(self.modalidades), max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s, backoff_max_s=self.backoff_max_s,
            connect_timeout_s=self.connect_timeout_s, read_timeout_s=self.read_timeout_s,
            max_response_bytes=self.max_response_bytes, max_in_flight=self.max_in_flight,
            start_in_flight=self.start_in_flight, outage_bound_s=self.outage_bound_minutes * 60,
        )
        return PncpClient(self.base_url, logger=logger, endpoint=endpoint, **{**options, **overrides})


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go: a webhook URL that takes a JSON POST with a `text` (Slack, Mattermost, ...). Without a
    URL alerts are off. `environment.py` binds `url` to PNCP_ALERT_WEBHOOK_URL as a `dg.EnvVar`, so the UI
    shows the variable's name, never the URL (which holds the webhook's token)."""

    url: str | None = None
    timeout_s: float = 10.0

    model_config = ConfigDict(hide_input_in_errors=True)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def send(self, text: str, **fields: Any) -> None:
        """Post one message; `webhook.WebhookError` when the webhook does not take it."""
        from pncp_assets.webhook import post_message

        if self.url:
            post_message(self.url, text, self.timeout_s, **fields)


class MetricsGateway(dg.ConfigurableResource):
    """Where each run's figures go: a Prometheus Pushgateway (`metrics.py`). Without a URL nothing is pushed.
    `environment.py` binds `url` to PNCP_PUSHGATEWAY_URL as a `dg.EnvVar`, so the UI never shows credentials."""

    url: str | None = None
    timeout_s: float = 5.0

    model_config = ConfigDict(hide_input_in_errors=True)

    def gateway(self) -> Gateway | None:
        return Gateway(self.url, self.timeout_s) if self.url else None


class Retention(dg.ConfigurableResource):
    """How long a finished day keeps its live state, raw sweeps and rejected records (`retention.py`: what
    each holds, and why the state is kept past the links check's 31 days)."""

    state_days: int = 45
    raw_days: int = 7
    rejected_days: int = 90
    metrics_days: int = 45

    def policy(self) -> RetentionPolicy:
        """The domain's policy, which checks the days (`environment.retention` calls it at load)."""
        return RetentionPolicy(self.state_days, self.raw_days, self.rejected_days, self.metrics_days)
