"""Raw sweeps under `pncp/_raw/`: every page exactly as fetched, and which sweep served which hour.

One sweep of a day serves every hour that ended before the sweep started, as long as it is recent
(`max_age`): a backfill of a finished day sweeps it once, not 24 times, while an hourly run always
sees the day as it is now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pncp_assets import bronze, faults, layout
from pncp_assets.brasilia import TZ, iso_utc, utc_now
from pncp_assets.layers import FIRST_SEEN, Layer
from pncp_assets.pncp.client import PncpClient, SweepResult, sum_reports
from pncp_assets.pncp.records import CONTRATACAO_ID, IdRule, first_copies
from pncp_assets.storage import NotFound, ObjectStore, VersionConflict

DEFAULT_MAX_AGE = dt.timedelta(hours=1)


def clock() -> dt.datetime:
    """The time by which sweeps are started and chosen (one place, so that a test can move it)."""
    return utc_now()


@dataclass
class StoredSweep:
    """A sweep as stored: its key, when it started, its pages and per-modalidade reports."""

    key: str
    day: dt.date
    started: dt.datetime
    pages: list[dict[str, Any]]
    reports: dict[str, dict[str, Any]]
    reused: bool = False
    id_rule: IdRule = CONTRATACAO_ID
    seconds: float = 0.0  # how long the sweep took (0: stored before this was recorded)

    def records(self) -> list[tuple[dict[str, Any], bronze.Provenance]]:
        """Each distinct record once (first copy seen) with the modalidade and page it came from."""
        return first_copies(((bronze.Provenance(p["modalidade"], p["pagina"]), p["records"]) for p in self.pages),
                            self.id_rule)

    def totals(self) -> dict[str, int]:
        return sum_reports(self.reports.values())


class SweepStore:
    def __init__(self, storage: ObjectStore, layer: Layer = FIRST_SEEN, logger: Any = None):
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a Layer (layers.layer_named for a name), not {layer!r}")
        self.storage = storage
        self.source = layer.source
        self.id_rule = layer.key.rule
        self.log = logger or logging.getLogger(__name__)
        self._loaded: dict[str, StoredSweep] = {}

    def save(self, result: SweepResult, started: dt.datetime, seconds: float = 0.0) -> StoredSweep:
        key = layout.raw_sweep_key(self.source, result.day, started)
        seconds = round(seconds, 3)
        pages = [{"modalidade": p.modalidade, "pagina": p.pagina, "status": p.status, "fetched_at": p.fetched_at,
                  "attempts": p.attempts, "total_registros": p.total_registros, "total_paginas": p.total_paginas,
                  "records": p.records} for p in result.pages]
        reports = {str(m): vars(r) for m, r in result.reports.items()}
        body = {"day": result.day.isoformat(), "started": iso_utc(started), "finished": iso_utc(),
                "seconds": seconds, "pages": pages, "reports": reports}
        data = gzip.compress(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6)
        try:
            self.storage.put(key, data, if_absent=True)
        except VersionConflict:
            # Our own write whose answer was lost (the client's retry failed its condition), or another
            # run's sweep started the same second: either way a whole sweep of the day is there.
            self.log.info(f"Sweep {key} already stored; using the stored one")
            return self.load(key)
        return StoredSweep(key, result.day, started, pages, reports, id_rule=self.id_rule, seconds=seconds)

    def load(self, key: str) -> StoredSweep:
        """A stored sweep, parsed once per SweepStore (a sweep is written once and never changed)."""
        if key not in self._loaded:
            body = json.loads(gzip.decompress(self.storage.get(key).data))
            started = dt.datetime.strptime(body["started"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            self._loaded[key] = StoredSweep(key, dt.date.fromisoformat(body["day"]), started, body["pages"],
                                            body["reports"], id_rule=self.id_rule,
                                            seconds=float(body.get("seconds", 0.0)))
        return self._loaded[key]

    def reusable_for(self, partition_key: str, now: dt.datetime | None = None,
                     max_age: dt.timedelta = DEFAULT_MAX_AGE) -> str | None:
        """The newest stored sweep of H's day that started after H ended and is younger than max_age."""
        hour_end = layout.parse_partition_key(partition_key) + dt.timedelta(hours=1)
        now = now or utc_now()
        prefix = layout.layer_prefix(self.source, "_raw", hour_end.astimezone(TZ) - dt.timedelta(hours=1))
        best: tuple[dt.datetime, str] | None = None
        for key in self.storage.list(prefix):
            started = layout.sweep_started(key)
            if started is None:
                continue  # an hour's pointer to its sweep, or a stray file
            if started >= hour_end and now - started <= max_age and (best is None or started > best[0]):
                best = (started, key)
        return best[1] if best else None

    def sweep_for(self, partition_key: str, client: PncpClient, now: dt.datetime | None = None,
                  max_age: dt.timedelta = DEFAULT_MAX_AGE) -> StoredSweep:
        """Reuse a recent sweep of H's day that covers H, or sweep the day now; record the choice for H."""
        return self.sweep_hours([partition_key], client, now, max_age)[partition_key]

    def sweep_hours(self, partition_keys: Sequence[str], client: PncpClient, now: dt.datetime | None = None,
                    max_age: dt.timedelta = DEFAULT_MAX_AGE, run_id: str | None = None,
                    settled: Callable[[dt.date], Mapping[int | None, int]] | None = None) -> dict[str, StoredSweep]:
        """One sweep per day for a range of hours: a recent stored sweep that covers the day's last hour
        in the range, or a new one. Every hour is recorded as served by it (and by which run); only the first
        hour served by a new sweep reports it as fetched (`reused` is False), the others as reused.
        `settled(day)`: the counts at which a modalidade of the day is known complete (`PncpClient.sweep_day`)."""
        chosen: dict[str, StoredSweep] = {}
        for day, hours in layout.hours_by_day(partition_keys).items():
            key = self.reusable_for(hours[-1], now, max_age)
            if key is not None:
                sweep = dataclasses.replace(self.load(key), reused=True)
                self.log.info(f"Reusing the sweep of {day} started {iso_utc(sweep.started)} for "
                              f"{_span(hours)}")
            else:
                started = utc_now()  # before the first request: the sweep covers only hours ended by then
                began = time.monotonic()
                result = client.sweep_day(day, settled(day) if settled else None)
                sweep = self.save(result, started, time.monotonic() - began)
            for i, hour in enumerate(hours):
                served = sweep if i == 0 else dataclasses.replace(sweep, reused=True)
                self.storage.put_json(layout.raw_assignment_key(self.source, hour),
                                      {"partition": hour, "sweep": sweep.key, "reused": served.reused,
                                       "assigned_at": iso_utc(), "run_id": run_id})
                chosen[hour] = served
            faults.crash("after_sweep")
        return chosen

    def assigned_by(self, partition_key: str) -> str | None:
        """The run that last chose H's sweep (None when none did, or before runs were recorded)."""
        try:
            return self.storage.get_json(layout.raw_assignment_key(self.source, partition_key)).get("run_id")
        except NotFound:
            return None

    def assigned(self, partition_key: str) -> StoredSweep:
        """The sweep that the layer's sweep asset chose for H."""
        try:
            pointer = self.storage.get_json(layout.raw_assignment_key(self.source, partition_key))
        except NotFound:
            raise LookupError(f"no raw sweep of {self.source} for partition {partition_key}: run the layer's "
                              "sweep asset for it first") from None
        return dataclasses.replace(self.load(pointer["sweep"]), reused=bool(pointer.get("reused")))


def _span(hours: Sequence[str]) -> str:
    return hours[0] if len(hours) == 1 else f"{hours[0]}..{hours[-1]} ({len(hours)} hours)"
