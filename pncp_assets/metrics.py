"""The run's figures as Prometheus metrics, pushed to a Pushgateway (PNCP_PUSHGATEWAY_URL; off when unset).

Each group of figures is pushed under its own grouping key (`GROUPS`), so that runs never overwrite each
other's series: a layer's hour, a layer's day, a sweep, a check's verdict on an hour. The Pushgateway keeps
the last push of each group; Prometheus scrapes it (`honor_labels: true`). The metrics, their labels and what
each means: docs/OPERATIONS.md, "Metrics in Prometheus and Grafana" (a test holds that table to `GROUPS`).

A push that fails (no answer within `timeout_s`, a refusal) never fails the run: `push` returns the error,
which the caller logs once, without the URL's credentials.

The Pushgateway never forgets a group by itself (about 450 a day over five feeds), so the retention job
deletes those of days older than its `metrics_days` (`Gateway.prune`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import basic_auth_handler, default_handler, delete_from_gateway, push_to_gateway
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

JOB = "pncp_assets"


@dataclass(frozen=True)
class Figure:
    """One metric: its Prometheus name (counters end in `_total`), type and help text."""

    name: str
    type: str  # "gauge" or "counter"
    help: str


@dataclass(frozen=True)
class Group:
    """Figures pushed together under one grouping key (`labels`, in this order)."""

    labels: tuple[str, ...]
    figures: Mapping[str, Figure]


GROUPS: dict[str, Group] = {
    "hour": Group(("layer", "partition"), {
        "input_records": Figure("pncp_hour_input_records", "gauge",
                                "Records of the day's sweep up to the hour's end, at the hour's latest run"),
        "new_records": Figure("pncp_hour_new_records", "gauge",
                              "Records (versions) first filed in the hour, at its latest run"),
        "duplicates_filtered": Figure("pncp_hour_duplicates_filtered", "gauge",
                                      "Input records the day's state already held"),
        "rejected": Figure("pncp_hour_rejected_records", "gauge", "Records without a valid ID, kept under _rejected/"),
        "filter_rate": Figure("pncp_hour_filter_rate_ratio", "gauge",
                              "Duplicates filtered / input records, 0 to 1 (the original document's filter rate)"),
        "held": Figure("pncp_hour_records_held", "gauge", "Records the hour's delta holds"),
    }),
    "day": Group(("layer", "day"), {
        "state_ids": Figure("pncp_day_state_ids", "gauge", "IDs (keys) in the day's state"),
        "state_bytes": Figure("pncp_day_state_bytes", "gauge", "The day's state file, as stored"),
        "executions": Figure("pncp_day_executions", "gauge", "Executions recorded in the day's state"),
        "api_records": Figure("pncp_day_api_records", "gauge",
                              "PNCP's count of the day at the latest sweep (the completeness ledger)"),
        "bronze_records": Figure("pncp_day_bronze_records", "gauge",
                                 "Of the records that sweep listed, those the state holds"),
        "missing_records": Figure("pncp_day_missing_records", "gauge",
                                  "Records Bronze lacks by the day's latest closing sweep: short of PNCP's count, "
                                  "plus holes (only for days with a closing sweep)"),
    }),
    "sweep": Group(("layer", "day", "started"), {
        "requests": Figure("pncp_sweep_requests_total", "counter", "Requests the sweep made (retries included)"),
        "retries": Figure("pncp_sweep_retries_total", "counter", "Requests the sweep repeated after a failure"),
        "throttled": Figure("pncp_sweep_throttled_total", "counter", "Answers 429 (rate limited)"),
        "server_errors": Figure("pncp_sweep_server_errors_total", "counter", "Answers 5xx"),
        "seconds": Figure("pncp_sweep_duration_seconds", "gauge", "How long the sweep took"),
    }),
    "check": Group(("layer", "check", "partition"), {
        "passed": Figure("pncp_check_passed", "gauge", "The check's latest verdict on the hour: 1 passed, 0 failed"),
    }),
}


class _Figures:
    """A collector of one group's figures, exposed without the `_created` series of client-side counters."""

    def __init__(self, group: Group, figures: Mapping[str, float]):
        self.group, self.figures = group, figures

    def collect(self) -> Iterator[Metric]:
        for key, value in self.figures.items():
            figure = self.group.figures[key]
            family = CounterMetricFamily if figure.type == "counter" else GaugeMetricFamily
            yield family(figure.name, figure.help, value=float(value))


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

    def _credentials(self) -> tuple[str, str] | None:
        """The URL's user and password (sent as basic auth, never shown), if it has them."""
        parts = urlsplit(self.url)
        return None if parts.username is None else (parts.username, parts.password or "")

    def _handler(self):
        credentials = self._credentials()
        if credentials is None:
            return default_handler

        def handler(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, *credentials)
        return handler

    def groups(self) -> list[dict[str, str]]:
        """The grouping keys of every group this project pushed (job `pncp_assets`)."""
        request = urllib.request.Request(self.shown.rstrip("/") + "/api/v1/metrics")
        credentials = self._credentials()
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            body = json.loads(response.read())
        return [{k: v for k, v in g["labels"].items() if k != "job"} for g in body.get("data", [])
                if g.get("labels", {}).get("job") == JOB]

    def prune(self, before: dt.date, dry_run: bool = False) -> tuple[int, Exception | None]:
        """Delete the groups of days before `before` (by their `day`, or their `partition`'s day); how many, and
        the error that stopped it (None when none did)."""
        done = 0
        try:
            for grouping in self.groups():
                day = grouping.get("day") or grouping.get("partition", "")[:10]
                try:
                    old = dt.date.fromisoformat(day) < before
                except ValueError:
                    continue  # not one of ours to judge (pushed by hand, another shape)
                if old:
                    if not dry_run:
                        delete_from_gateway(self.shown, job=JOB, grouping_key=grouping, timeout=self.timeout_s,
                                            handler=self._handler())
                    done += 1
        except Exception as exc:
            return done, exc
        return done, None

    def push(self, kind: str, grouping: Mapping[str, str], figures: Mapping[str, float]) -> Exception | None:
        """Push one group's figures (`kind`: a key of `GROUPS`); the error instead of raising it."""
        group = GROUPS[kind]
        if tuple(grouping) != group.labels:
            raise ValueError(f"{kind} figures are grouped by {group.labels}, not {tuple(grouping)}")
        registry = CollectorRegistry()
        registry.register(_Figures(group, figures))
        try:
            push_to_gateway(self.shown, job=JOB, registry=registry, grouping_key=dict(grouping),
                            timeout=self.timeout_s, handler=self._handler())
        except Exception as exc:
            return exc
        return None
