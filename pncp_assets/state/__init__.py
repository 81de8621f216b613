"""StateManager: the per-day set of processed record IDs that makes every record land exactly once.

The state file (`pncp/_state/year=YYYY/month=MM/day=DD/state_YYYYMMDD.zst`, format in docs/DESIGN.md) is
a `DayState` (`state/day.py`). Every change to it goes through `StateManager.transact`: a
compare-and-swap on the file's version tag, retried on fresh state, so concurrent writers never lose an
update. A state file that cannot be trusted is rebuilt from the day's Bronze files, never started empty:
an empty state would ingest the whole day again and duplicate it. Nor is a day without a state file
taken as empty before its older forms are read: the seed's plain JSON (`state_YYYYMMDD.json`, moved to the
compact file by the first write) and the month's archive (`state/archive.py`), where an archived day's
state file is a marker naming it.

This is the pipeline's core: it takes its storage explicitly. The original document's no-argument
`StateManager()` and `update_state` are in `document_api.py`.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pncp_assets import bronze, faults, layout
from pncp_assets.brasilia import iso_utc, parse_day
from pncp_assets.layers import Layer, as_layer
from pncp_assets.pncp.records import ID_FIELD, RecordKey, field_key, filter_stats, format_filter_line, split
from pncp_assets.state.archive import ArchiveReader, parse_marker
from pncp_assets.state.day import Claim, CorruptState, DayState, LayoutMismatch
from pncp_assets.storage import NotFound, ObjectStore, VersionConflict

__all__ = ["MAX_STATE_BYTES", "Claim", "CorruptState", "DayState", "LayoutMismatch", "Loaded", "StateError",
           "StateManager"]

R = TypeVar("R")

# A day of PNCP is about 6,000 IDs (200 KB of state); 64 MiB holds two million. A bigger file was not
# written by us: it is treated as corrupted (rebuilt from Bronze) rather than parsed into memory.
MAX_STATE_BYTES = 64 * 1024 * 1024


class StateError(RuntimeError):
    """The state could not be updated (for example, compare-and-swap kept losing)."""


@dataclass
class Loaded:
    state: DayState
    version: str | None  # of the state file: None when there is none (yet) at the compact key
    origin: str = "stored"  # stored | legacy (the seed's JSON file) | archive (a marker names it) | new

    @property
    def ids(self) -> set[str]:
        return self.state.ids

    @property
    def exists(self) -> bool:
        """A state was ever written for the day (in whichever form)."""
        return self.origin != "new"


def backoff(attempt: int) -> None:
    """A short random pause before retrying a lost compare-and-swap (spreads out the contenders)."""
    time.sleep(min(0.5, 0.01 * attempt) * random.random())


class StateManager:
    """Filter incoming records against a day's state, and change it by compare-and-swap.

    `StateManager(storage)` works on any `ObjectStore`.
    """

    def __init__(
        self,
        storage: ObjectStore,
        *,
        logger: logging.Logger | Any | None = None,
        max_attempts: int = 100,
        max_state_bytes: int = MAX_STATE_BYTES,
    ):
        self.storage = storage
        self.log = logger or logging.getLogger(__name__)
        self.max_attempts = max_attempts
        self.max_state_bytes = max_state_bytes
        self.archives = ArchiveReader(storage)
        self._parsed: dict[str, tuple[str, DayState, str]] = {}  # the last state parsed: version, state, origin

    # --- loading -------------------------------------------------------------------------------

    def load_fresh(self, layer: Layer | str, date: str | dt.date | dt.datetime) -> Loaded:
        """The day's state as stored now, with its version tag (of the compact file, or None when the day
        has none there: a state still in the seed's JSON file, or none at all)."""
        layer, day = as_layer(layer), parse_day(date)
        source = layer.source
        key = layout.state_key(source, day)
        origin = "stored"
        try:
            stored = self.storage.get(key)
        except NotFound:
            key, origin = layout.legacy_state_key(source, day), "legacy"
            try:
                stored = self.storage.get(key)
            except NotFound:
                return Loaded(DayState.new(day, iso_utc()), None, "new")
        version = None if origin == "legacy" else stored.version  # the next write creates the compact file
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == stored.version:
            return Loaded(cached[1], version, cached[2])  # parsed already: a state is never changed in place
        try:
            if len(stored.data) > self.max_state_bytes:
                raise CorruptState(f"the file is {len(stored.data):,} bytes, over the "
                                   f"{self.max_state_bytes:,}-byte cap for a state file")
            marker = parse_marker(stored.data)
            if marker is not None:
                state, origin = self.archives.day_state(source, day, marker), "archive"
            else:
                state = DayState.decode(stored.data, day, max_bytes=self.max_state_bytes * 16)
            self._parsed = {key: (stored.version, state, origin)}
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, CorruptState) else f"not valid JSON ({exc})"
            self.log.warning(f"State file {key} is corrupted ({reason[:200]}): rebuilding it from the day's "
                             f"Bronze files")
            state = self.rebuild_from_bronze(layer, day, reason=reason)
            self._log_rebuilt(layer, day, state, "rebuilt")
        return Loaded(state, version, origin)  # the version lets the next swap replace even a broken file

    def load_state(self, layer: Layer | str, date: str | dt.date | dt.datetime) -> dict[str, Any]:
        """The day's state in its JSON form; a fresh one when there is no file; rebuilt from Bronze when
        corrupted."""
        return self.load_fresh(layer, date).state.copy().to_json()  # the caller's to change

    def rebuild_from_bronze(self, layer: Layer | str, date: str | dt.date | dt.datetime, reason: str = "") -> DayState:
        """A state whose `processed_ids` are the union of the IDs in the day's Bronze delta files, and of the
        files uploaded beside them through the original document's interface (their records are in the
        dataset: filing them again would show them twice)."""
        day = parse_day(date)
        layer = as_layer(layer)
        key_field = layer.key.field  # record IDs, or version keys
        state = DayState.new(day, iso_utc())
        files, uploads = layout.day_files(self.storage, layer.source, day)
        for key in files:
            data = self.storage.get(key).data
            file_ids = sorted({x for x in bronze.parquet_ids(data, key_field) if isinstance(x, str)})
            state.add_ids(file_ids)
            partition = layout.partition_of_delta(key)
            if partition is not None:
                state.partitions[partition] = Claim(file_ids, None, {"rebuilt": True})
        for key in uploads:
            state.add_ids(x for x in bronze.ids_of(self.storage.get(key).data, key_field) or [] if x)
        state.extra["recovered_from_bronze"] = {"at": iso_utc(), "reason": reason[:500], "files": len(files),
                                                **({"uploads": len(uploads)} if uploads else {})}
        return state

    # --- filtering -----------------------------------------------------------------------------

    def filter_new_records(
        self,
        layer: Layer | str,
        date: str | dt.date | dt.datetime,
        records: Sequence[dict[str, Any]],
        id_field: str = ID_FIELD,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The records the day's state has not seen, and the stats of the filtering.

        Duplicates inside `records` keep the first copy. Records without a valid ID are not dropped:
        they come back in `stats["rejected_records"]` (with the reason) and are counted in `rejected`.
        For `pncp_versions` a record is new when its version (ID and `dataAtualizacaoGlobal`) is.
        """
        seen = self.load_fresh(layer, date).ids
        new, rejected, already, in_input = split(records, seen, self.record_key(layer, id_field))
        stats = filter_stats(len(records), len(new), already, in_input, rejected)
        self.log.info(format_filter_line(stats))
        return new, stats

    def record_key(self, layer: Layer | str, id_field: str = ID_FIELD) -> RecordKey:
        """How the filter names a record: the layer's own rules (its ID mask, or its version key)."""
        return as_layer(layer).key if id_field == ID_FIELD else field_key(id_field)

    # --- changing --------------------------------------------------------------------------------

    def swap(self, layer: Layer | str, date: str | dt.date | dt.datetime, loaded: Loaded, state: DayState) -> None:
        """One compare-and-swap of `state` over the version `loaded` came from; `VersionConflict` if
        someone wrote in between. A state read from the seed's JSON file moves to the compact one: created
        only if absent, so one mover wins, then the JSON file is removed."""
        layer, day = as_layer(layer), parse_day(date)
        source = layer.source
        key = layout.state_key(source, day)
        condition: dict[str, Any] = {"if_absent": True} if loaded.version is None else {"if_version": loaded.version}
        version = faults.put(self.storage, key, state.encode(), "mid_state_write", **condition)
        self._parsed = {key: (version, state, "stored")}
        if loaded.origin == "legacy":
            self.storage.delete(layout.legacy_state_key(source, day))

    def transact(self, layer: Layer | str, date: str | dt.date | dt.datetime,
                 change: Callable[[DayState], tuple[R, bool]],
                 on_conflict: Callable[[R], None] | None = None) -> tuple[DayState, R]:
        """Apply `change` to the day's fresh state and compare-and-swap it, until it wins.

        `change(state)` edits its own copy and returns (result, write?); with write False nothing is
        stored. When the swap loses, `on_conflict(result)` undoes the attempt's side effects and `change`
        runs again on the state that won. A swap whose answer was lost (the write landed, the storage
        client's retry then failed its own condition) is recognised as ours. Returns (state, result).
        """
        layer, day = as_layer(layer), parse_day(date)
        source = layer.source
        for attempt in range(1, self.max_attempts + 1):
            loaded = self.load_fresh(layer, day)
            state = loaded.state.copy()
            result, write = change(state)
            if not write:
                return loaded.state, result
            try:
                self.swap(layer, day, loaded, state)
            except VersionConflict:
                if self._is_stored(source, day, state):
                    self.log.warning(f"State {source} {day}: the answer to our write was lost; it is ours")
                    return state, result
                if on_conflict is not None:
                    on_conflict(result)
                backoff(attempt)
                continue
            if attempt > 1:
                self.log.info(f"State {source} {day}: written after {attempt - 1} concurrent update(s)")
            return state, result
        raise StateError(f"could not update {layout.state_key(source, day)}: {self.max_attempts} "
                         f"compare-and-swap attempts lost")

    def _is_stored(self, source: str, day: dt.date, state: DayState) -> bool:
        try:
            return self.storage.get(layout.state_key(source, day)).data == state.encode()
        except NotFound:
            return False

    def rebuild_state(self, layer: Layer | str, date: str | dt.date | dt.datetime,
                      dry_run: bool = False) -> dict[str, Any]:
        """Replace the day's state by one rebuilt from its Bronze delta files (the seed's migration: a state
        for days ingested before there was one). Returns what was (or, with `dry_run`, would be) written."""
        layer = as_layer(layer)
        before = self.load_fresh(layer, date)
        rebuilt = self.rebuild_from_bronze(layer, date, reason="rebuild requested")
        # The hours' run records and the executions (the audit trail) are not in Bronze: keep those of the
        # state being replaced.
        rebuilt.materialized_hours = dict(before.state.materialized_hours)
        if before.exists:
            rebuilt.executions = list(before.state.executions)
            rebuilt.last_execution, rebuilt.created_at = before.state.last_execution, before.state.created_at
        self._log_rebuilt(layer, parse_day(date), rebuilt, "would rebuild" if dry_run else "rebuilt")
        if not dry_run:
            self.transact(layer, date, lambda state: (state.replace_by(rebuilt.copy()), True))
        return {"date": rebuilt.date, "written": not dry_run, "total_processed": rebuilt.total_processed,
                "files": rebuilt.extra["recovered_from_bronze"]["files"],
                "partitions": {pk: len(c.ids) for pk, c in sorted(rebuilt.partitions.items())},
                "replaces": {"total_processed": before.state.total_processed} if before.exists else None}

    def _log_rebuilt(self, layer: Layer, day: dt.date, state: DayState, verb: str) -> None:
        files = state.extra["recovered_from_bronze"]["files"]
        self.log.warning(f"State for {layer.source} {day}: {verb} {state.total_processed} IDs from {files} "
                         "Bronze file(s)")

    def get_state_summary(self, layer: Layer | str, date: str | dt.date | dt.datetime) -> dict[str, Any]:
        loaded = self.load_fresh(layer, date)
        state = loaded.state
        return {
            "state_exists": loaded.exists,
            "date": state.date,
            "total_processed": state.total_processed,
            "total_executions": len(state.executions),
            "last_execution": state.last_execution,
            "created_at": state.created_at if loaded.exists else None,  # no file: never created
            "recovered_from_bronze": "recovered_from_bronze" in state.extra,
            "stored_as": {"stored": "compact", "legacy": "plain JSON (the seed's)", "archive": "archived",
                          "new": None}[loaded.origin],
        }
