"""Retention: what the pipeline keeps of a finished day, and for how long (the original document's "State
cleanup: archive old state files after N days"). Bronze itself (deltas and uploads) is never touched.

    day states     archived after `state_days` (45): into the month's archive object, each state file then
                   a marker naming it (`state/archive.py`); an archived day still loads, re-runs and
                   backfills exactly as before, nothing filed twice
    raw sweeps     deleted after `raw_days` (7): the pages as fetched, which served the day's hours; every
                   record is in Bronze with its `_raw` JSON, and a run of an old hour sweeps again
    rejected       deleted after `rejected_days` (90): records the ID rules refused, the only copy of them
    staged deltas  orphans (no claim names them, older than the 24 h grace) of the days being archived
    metrics        the Pushgateway's groups of days older than `metrics_days` (45), when a gateway is set
                   (`metrics.Gateway.prune`): Prometheus keeps their history by its own retention

The links check reads 31 days of day states back from each record's day (`links.LOOKBACK_DAYS`): states
are kept live for longer than that, so that the hourly checks never read an archive.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pncp_assets import layout
from pncp_assets.commit import DeltaCommitter
from pncp_assets.layers import Layer
from pncp_assets.ledger import RESWEEP_AGES
from pncp_assets.links import LOOKBACK_DAYS
from pncp_assets.state import StateManager
from pncp_assets.state.archive import archive_month
from pncp_assets.storage import ObjectStore


@dataclass(frozen=True)
class RetentionPolicy:
    """Days a finished day's state stays live, its raw sweeps and rejected records stay at all, and its groups
    stay in the Pushgateway."""

    state_days: int = 45
    raw_days: int = 7
    rejected_days: int = 90
    metrics_days: int = 45

    def __post_init__(self) -> None:
        if self.state_days <= LOOKBACK_DAYS:
            raise ValueError(f"state retention of {self.state_days} days: keep states live for more than the "
                             f"{LOOKBACK_DAYS} days the links check reads")
        if self.raw_days < 2 or self.rejected_days < 2:
            raise ValueError("raw sweeps and rejected records are kept 2 days at least (the day close sweeps "
                             "yesterday)")
        if self.metrics_days <= max(RESWEEP_AGES):
            raise ValueError(f"metrics retention of {self.metrics_days} days: keep a day's metrics past its last "
                             f"re-sweep ({max(RESWEEP_AGES)} days)")


@dataclass
class LayerRetention:
    """What one layer's retention did (or, in a dry run, would do)."""

    source: str
    archived: list[str] = field(default_factory=list)  # days whose state is now in an archive
    skipped: dict[str, str] = field(default_factory=dict)  # day -> why its state stays live
    state_bytes_before: int = 0  # the archived days' state files
    state_bytes_after: int = 0  # their markers and the archives' growth
    raw_deleted: int = 0
    raw_bytes: int = 0
    rejected_deleted: int = 0
    rejected_bytes: int = 0
    staged_removed: int = 0

    def line(self) -> str:
        saved = self.state_bytes_before - self.state_bytes_after
        return (f"{self.source}: {len(self.archived)} day states archived ({self.state_bytes_before:,} -> "
                f"{self.state_bytes_after:,} bytes, {saved:,} saved), {len(self.skipped)} kept live; "
                f"{self.raw_deleted} raw sweep objects ({self.raw_bytes:,} bytes), {self.rejected_deleted} rejected "
                f"files ({self.rejected_bytes:,} bytes) and {self.staged_removed} orphaned staged deltas removed")


def archive_states(store: ObjectStore, layer: Layer, before: dt.date, dry_run: bool = False,
                   logger: Any = None, report: LayerRetention | None = None) -> LayerRetention:
    """Archive the day states of `layer` for the days before `before`, a month's days into one archive."""
    source = layer.source
    report = report or LayerRetention(source)
    manager = StateManager(store, logger=logger or logging.getLogger(__name__))
    days = sorted({d for d in map(layout.day_of_state_key, store.list(f"{source}/_state/"))
                   if d is not None and d < before})
    by_month: dict[tuple[int, int], list[dt.date]] = {}
    for day in days:
        by_month.setdefault((day.year, day.month), []).append(day)
    committer = DeltaCommitter(store, layer, logger=manager.log)
    for month_days in by_month.values():
        done = archive_month(store, source, month_days, manager.load_fresh, dry_run=dry_run)
        report.archived += done.archived
        report.skipped.update(done.skipped)
        report.state_bytes_before += done.bytes_before
        report.state_bytes_after += done.bytes_after
        for day in month_days:
            report.staged_removed += committer.remove_orphans(day, dry_run=dry_run)
    return report


def expire(store: ObjectStore, prefix: str, before: dt.date, dry_run: bool = False) -> tuple[int, int]:
    """Delete the objects under `prefix` whose day folder is before `before`; (count, bytes)."""
    count = size = 0
    for key, nbytes in store.sizes(prefix).items():
        day = layout.day_of_side_key(key)
        if day is not None and day < before:
            if not dry_run:
                store.delete(key)
            count, size = count + 1, size + nbytes
    return count, size


def apply_retention(store: ObjectStore, layers: Iterable[Layer], today: dt.date,
                    policy: RetentionPolicy = RetentionPolicy(), dry_run: bool = False,
                    logger: Any = None) -> list[LayerRetention]:
    """The whole policy for each layer, counted back from `today` (Brasília)."""
    log = logger or logging.getLogger(__name__)
    reports = []
    for layer in layers:
        source = layer.source
        report = archive_states(store, layer, today - dt.timedelta(days=policy.state_days), dry_run, log)
        report.raw_deleted, report.raw_bytes = expire(store, f"{source}/_raw/",
                                                      today - dt.timedelta(days=policy.raw_days), dry_run)
        report.rejected_deleted, report.rejected_bytes = expire(
            store, f"{source}/_rejected/", today - dt.timedelta(days=policy.rejected_days), dry_run)
        log.info(("Retention (dry run) " if dry_run else "Retention ") + report.line())
        reports.append(report)
    return reports
