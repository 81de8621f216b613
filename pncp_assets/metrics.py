"""The run's figures as Prometheus metrics, pushed to a Pushgateway (PNCP_PUSHGATEWAY_URL; off when unset).

Each group of figures is pushed under its own grouping key, so that runs never overwrite each other's series:
a layer's hour (`layer`, `partition`), a layer's day (`layer`, `day`). The Pushgateway keeps the last push of
each group; Prometheus scrapes it (`honor_labels: true`). Names and labels follow Prometheus' conventions:

| metric | type | labels | what |
|---|---|---|---|
| `pncp_hour_new_records` | gauge | layer, partition | records (versions) first filed in the hour, at its latest run |
| `pncp_hour_duplicates_filtered` | gauge | layer, partition | records up to the hour's end already in the state |
| `pncp_hour_rejected_records` | gauge | layer, partition | records without a valid ID, kept under `_rejected/` |
| `pncp_hour_filter_rate_ratio` | gauge | layer, partition | duplicates filtered / records in (0 to 1) |
| `pncp_hour_records_held` | gauge | layer, partition | records the hour's delta holds |
| `pncp_day_state_ids` | gauge | layer, day | IDs (keys) in the day's state |
| `pncp_day_state_bytes` | gauge | layer, day | the day's state file, as stored |
| `pncp_day_executions` | gauge | layer, day | executions recorded in the day's state |
| `pncp_day_api_records` | gauge | layer, day | PNCP's count of the day at the latest sweep (the completeness ledger) |
| `pncp_day_bronze_records` | gauge | layer, day | of the records that sweep listed, those the state holds |

A push that fails (no answer within `timeout_s`, a refusal) never fails the run: `push` returns the error,
which the caller logs once, without the URL's credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway

JOB = "pncp_assets"

HOUR_METRICS = {
    "new_records": ("pncp_hour_new_records", "Records (versions) first filed in the hour, at its latest run"),
    "duplicates_filtered": ("pncp_hour_duplicates_filtered",
                            "Records of the sweep up to the hour's end that the day's state already held"),
    "rejected": ("pncp_hour_rejected_records", "Records without a valid ID, kept under _rejected/"),
    "filter_rate": ("pncp_hour_filter_rate_ratio", "Duplicates filtered / records in (0 to 1)"),
    "held": ("pncp_hour_records_held", "Records the hour's delta holds"),
}
DAY_METRICS = {
    "state_ids": ("pncp_day_state_ids", "IDs (keys) in the day's state"),
    "state_bytes": ("pncp_day_state_bytes", "The day's state file, as stored"),
    "executions": ("pncp_day_executions", "Executions recorded in the day's state"),
    "api_records": ("pncp_day_api_records", "PNCP's count of the day at the latest sweep (the ledger)"),
    "bronze_records": ("pncp_day_bronze_records", "Of the records that sweep listed, those the state holds"),
}


@dataclass(frozen=True)
class Gateway:
    """A Pushgateway: its URL (credentials, if any, as `https://user:password@host`) and a push timeout."""

    url: str
    timeout_s: float = 5.0

    @property
    def shown(self) -> str:
        """The URL without its credentials: what logs and errors may say."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def push(self, kind: str, grouping: Mapping[str, str], figures: Mapping[str, float]) -> Exception | None:
        """Push one group's figures (`kind`: "hour" or "day"); the error instead of raising it."""
        names = HOUR_METRICS if kind == "hour" else DAY_METRICS
        registry = CollectorRegistry()
        for key, value in figures.items():
            name, description = names[key]
            Gauge(name, description, registry=registry).set(float(value))
        parts = urlsplit(self.url)
        handler = default_handler
        if parts.username is not None:
            user, password = parts.username, parts.password or ""

            def handler(url, method, timeout, headers, data):
                return basic_auth_handler(url, method, timeout, headers, data, user, password)
        try:
            push_to_gateway(self.shown, job=JOB, registry=registry, grouping_key=dict(grouping),
                            timeout=self.timeout_s, handler=handler)
        except Exception as exc:
            return exc
        return None
