"""StateManager: the per-day set of processed record IDs that makes every record land exactly once.

The state file (`pncp/_state/year=YYYY/month=MM/day=DD/state_YYYYMMDD.json`, format in docs/DESIGN.md) is
updated by compare-and-swap on its version tag, retried on fresh state, so concurrent writers never
lose an update. A state file that cannot be trusted is rebuilt from the day's Bronze files, never
started empty: an empty state would ingest the whole day again and duplicate it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pncp_assets import bronze, faults, layout
from pncp_assets.brasilia import iso_utc, parse_day
from pncp_assets.pncp.records import ID_FIELD, ID_PATTERN, all_valid_ids, id_problem
from pncp_assets.storage import NotFound, ObjectStore, VersionConflict

DEFAULT_SOURCE = "pncp"
_SCALARS = (str, int, float, bool, type(None))


# A day of PNCP is about 6,000 IDs (200 KB of state); 64 MiB holds two million. A bigger file was not
# written by us: it is treated as corrupted (rebuilt from Bronze) rather than parsed into memory.
MAX_STATE_BYTES = 64 * 1024 * 1024


class StateError(RuntimeError):
    """The state could not be updated (for example, compare-and-swap kept losing)."""


class CorruptState(ValueError):
    """A state file that does not have the documented shape."""


@dataclass
class Loaded:
    state: dict[str, Any]
    version: str | None  # None: no state file exists yet
    _ids: set[str] | None = None

    @property
    def ids(self) -> set[str]:
        """The processed IDs as a set, built once per loaded version."""
        if self._ids is None:
            self._ids = set(self.state["processed_ids"])
        return self._ids


def filter_rate(duplicates: int, inputs: int) -> float:
    """`100 * duplicates / inputs`, rounded to 2 places; 0 when there is no input."""
    return round(100.0 * duplicates / inputs, 2) if inputs else 0.0


def new_state(day: dt.date, now: str | None = None) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "processed_ids": [],
        "last_execution": None,
        "total_processed": 0,
        "executions": [],
        "created_at": now or iso_utc(),
    }


def validate_state(obj: Any, day: dt.date) -> tuple[dict[str, Any], set[str]]:
    """Check the documented shape; raise `CorruptState` naming the first problem.

    Returns the state and its IDs as a set (built here once, used by filtering and updating).
    """
    if not isinstance(obj, dict):
        raise CorruptState(f"state is a {type(obj).__name__}, not an object")
    if obj.get("date") != day.isoformat():
        raise CorruptState(f"state is for date {obj.get('date')!r}, expected {day.isoformat()!r}")
    ids = obj.get("processed_ids")
    if not isinstance(ids, list):
        raise CorruptState("processed_ids is not a list")
    if ids and set(map(type, ids)) != {str}:
        raise CorruptState("processed_ids holds values that are not strings")
    total = obj.get("total_processed")
    if type(total) is not int:
        raise CorruptState("total_processed is not an integer")
    executions = obj.get("executions")
    if not isinstance(executions, list) or not all(isinstance(e, dict) for e in executions):
        raise CorruptState("executions is not a list of objects")
    for name in ("last_execution", "created_at"):
        if obj.get(name) is not None and not isinstance(obj.get(name), str):
            raise CorruptState(f"{name} is not a string")
    if total != len(ids):
        # The count is the cheap cross-check of the list: a disagreement means the file is damaged.
        raise CorruptState(f"total_processed={total} disagrees with {len(ids)} processed_ids")
    unique = set(ids)
    if len(unique) != len(ids):
        raise CorruptState("processed_ids holds the same ID twice")
    partitions = obj.get("partitions", {})
    if not isinstance(partitions, dict):
        raise CorruptState("partitions is not an object")
    for name, entry in partitions.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("ids"), list):
            raise CorruptState(f"partitions[{name!r}] has no ids list")
        if not all(type(x) is str and x in unique for x in entry["ids"]):
            raise CorruptState(f"partitions[{name!r}] names IDs missing from processed_ids")
        if entry.get("staged") is not None and not isinstance(entry["staged"], str):
            raise CorruptState(f"partitions[{name!r}].staged is not a key")
    return obj, unique


def encode_state(state: dict[str, Any]) -> bytes:
    return json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class StateManager:
    """Filter incoming records against a day's state, and record what was ingested.

    `StateManager()` uses the storage configured by the environment (`STORAGE_TYPE`, ...);
    pass `storage=` to use another `ObjectStore`.
    """

    def __init__(
        self,
        storage: ObjectStore | None = None,
        *,
        logger: logging.Logger | Any | None = None,
        max_attempts: int = 100,
        max_state_bytes: int = MAX_STATE_BYTES,
    ):
        if storage is None:  # the seed's `StateManager()`: the storage the environment configures
            from pncp_assets.storage_client import get_storage_client

            storage = get_storage_client()
        self.storage = storage
        self.log = logger or logging.getLogger(__name__)
        self.max_attempts = max_attempts
        self.max_state_bytes = max_state_bytes
        self._cache: dict[str, Loaded] = {}

    # --- loading -------------------------------------------------------------------------------

    def _load(self, source: str, day: dt.date) -> Loaded:
        key = layout.state_key(source, day)
        try:
            stored = self.storage.get(key)
        except NotFound:
            loaded = Loaded(new_state(day), None)
        else:
            try:
                if len(stored.data) > self.max_state_bytes:
                    raise CorruptState(f"the file is {len(stored.data):,} bytes, over the "
                                       f"{self.max_state_bytes:,}-byte cap for a state file")
                state, ids = validate_state(json.loads(stored.data), day)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                reason = str(exc) if isinstance(exc, CorruptState) else f"not valid JSON ({exc})"
                self.log.warning(
                    f"State file {key} is corrupted ({reason[:200]}): rebuilding it from the day's Bronze files"
                )
                state, ids = self.rebuild_from_bronze(source, day, reason=reason), None
            loaded = Loaded(state, stored.version, ids)  # keep the version so the next swap replaces it
        self._cache[key] = loaded
        return loaded

    def load_state(self, source: str, date: str | dt.date | dt.datetime) -> dict[str, Any]:
        """The day's state; a fresh one when there is no file; rebuilt from Bronze when corrupted."""
        return self._load(layout.validate_source(source), parse_day(date)).state

    def _load_checked(self, source: str, date: str | dt.date | dt.datetime) -> Loaded:
        return self._load(layout.validate_source(source), parse_day(date))

    def rebuild_from_bronze(self, source: str, date: str | dt.date | dt.datetime, reason: str = "") -> dict[str, Any]:
        """A state whose `processed_ids` are the union of the IDs in the day's Bronze delta files."""
        day = parse_day(date)
        ids: set[str] = set()
        partitions: dict[str, dict[str, Any]] = {}
        files = [k for k in self.storage.list(layout.day_prefix(source, day)) if layout.is_delta_key(k)]
        for key in files:
            file_ids = sorted({x for x in bronze.parquet_ids(self.storage.get(key).data) if isinstance(x, str)})
            ids.update(file_ids)
            partition = layout.partition_of_delta(key)
            if partition is not None:
                partitions[partition] = {"ids": file_ids, "staged": None, "rebuilt": True}
        state = new_state(day)
        state["processed_ids"] = sorted(ids)
        state["total_processed"] = len(ids)
        if partitions:
            state["partitions"] = partitions
        state["recovered_from_bronze"] = {"at": iso_utc(), "reason": reason[:500], "files": len(files)}
        self.log.warning(f"State for {source} {day}: rebuilt {len(ids)} IDs from {len(files)} Bronze file(s)")
        return state

    # --- filtering -----------------------------------------------------------------------------

    def filter_new_records(
        self,
        source: str,
        date: str | dt.date | dt.datetime,
        records: Sequence[dict[str, Any]],
        id_field: str = ID_FIELD,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The records the day's state has not seen, and the stats of the filtering.

        Duplicates inside `records` keep the first copy. Records without a valid ID are not dropped:
        they come back in `stats["rejected_records"]` (with the reason) and are counted in `rejected`.
        """
        seen = self._load_checked(source, date).ids
        new, rejected, already, in_input = split(records, seen, id_field)
        stats = filter_stats(len(records), len(new), already, in_input, rejected)
        self.log.info(format_filter_line(stats))
        return new, stats

    # --- updating ------------------------------------------------------------------------------

    def load_fresh(self, source: str, date: str | dt.date | dt.datetime) -> Loaded:
        """The day's state as stored now, with its version tag (for a later `swap`)."""
        return self._load_checked(source, date)

    def swap(self, source: str, date: str | dt.date | dt.datetime, loaded: Loaded, state: dict[str, Any],
             ids: set[str] | None = None) -> None:
        """One compare-and-swap of `state` over the version `loaded` came from; `VersionConflict` if
        someone wrote in between."""
        key = layout.state_key(layout.validate_source(source), parse_day(date))
        state["total_processed"] = len(state["processed_ids"])
        try:
            condition: dict[str, Any] = (
                {"if_absent": True} if loaded.version is None else {"if_version": loaded.version})
            version = faults.put(self.storage, key, encode_state(state), "mid_state_write", **condition)
        except BaseException:
            self._cache.pop(key, None)
            raise
        self._cache[key] = Loaded(state, version, ids)

    def transact(
        self,
        source: str,
        date: str | dt.date | dt.datetime,
        change: Callable[[dict[str, Any], set[str]], tuple[dict[str, Any], set[str] | None] | None],
        *,
        fresh: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Compare-and-swap the day's state, retried on fresh state until it wins.

        `change(state, ids)` gets a shallow copy of the state and its ID set (do not mutate lists in
        place: copy them) and returns the new state with its ID set (or None for "build it"), or None
        for "nothing to write". Returns (state, written). `fresh=True` reloads before the first try.
        """
        source = layout.validate_source(source)
        day = parse_day(date)
        key = layout.state_key(source, day)
        loaded = (None if fresh else self._cache.get(key)) or self._load(source, day)
        for attempt in range(1, self.max_attempts + 1):
            outcome = change(dict(loaded.state), loaded.ids)
            if outcome is None:
                return loaded.state, False
            state, ids = outcome
            try:
                self.swap(source, day, loaded, state, ids)
            except VersionConflict:
                # Someone else wrote first: back off a little, reload, and apply the change to their state.
                backoff(attempt)
                loaded = self._load(source, day)
                continue
            if attempt > 1:
                self.log.info(f"State {source} {day}: written after {attempt - 1} concurrent update(s)")
            return state, True
        raise StateError(f"could not update {key}: {self.max_attempts} compare-and-swap attempts lost")

    def update_state(
        self,
        source: str,
        date: str | dt.date | dt.datetime,
        new_ids: Iterable[str],
        execution_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add `new_ids` to the day's state by compare-and-swap, retried on fresh state until it wins.

        Records one execution entry: `new_records` counts the IDs this call really added.
        """
        incoming = sorted(set(new_ids))
        if incoming and (set(map(type, incoming)) != {str} or incoming[0] == ""):
            raise ValueError("new_ids must be non-empty strings")
        added_count = 0

        def change(state: dict[str, Any], existing: set[str]) -> tuple[dict[str, Any], set[str]]:
            nonlocal added_count
            added = add_ids(state, existing, incoming)
            added_count = len(added)
            now = iso_utc()
            state["last_execution"] = now
            state["executions"] = [*state["executions"], execution_entry(now, len(added), execution_metadata)]
            existing.update(added)  # transact drops the cached set if the write fails
            return state, existing

        state, _ = self.transact(source, date, change)
        self.log.info(f"State updated: {source} {parse_day(date)} +{added_count} IDs -> "
                      f"{state['total_processed']} processed")
        return state

    def rebuild_state(self, source: str, date: str | dt.date | dt.datetime, dry_run: bool = False) -> dict[str, Any]:
        """Replace the day's state by one rebuilt from its Bronze delta files (the seed's migration: a state
        for days ingested before there was one). Returns what was (or, with `dry_run`, would be) written."""
        loaded = self.load_fresh(source, date)
        state = self.rebuild_from_bronze(layout.validate_source(source), date, reason="rebuild requested")
        if not dry_run:
            self.swap(source, date, loaded, state)
        parts = state.get("partitions", {})
        return {"date": state["date"], "written": not dry_run, "total_processed": state["total_processed"],
                "files": state["recovered_from_bronze"]["files"],
                "partitions": {pk: len(e["ids"]) for pk, e in sorted(parts.items())},
                "replaces": None if loaded.version is None else {"total_processed": loaded.state["total_processed"]}}

    def get_state_summary(self, source: str, date: str | dt.date | dt.datetime) -> dict[str, Any]:
        loaded = self._load_checked(source, date)
        state = loaded.state
        return {
            "state_exists": loaded.version is not None,
            "date": state["date"],
            "total_processed": state["total_processed"],
            "total_executions": len(state["executions"]),
            "last_execution": state["last_execution"],
            "created_at": state.get("created_at"),
            "recovered_from_bronze": "recovered_from_bronze" in state,
        }


def split(
    records: Sequence[Any], seen: set[str], id_field: str = ID_FIELD
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """Split records into (new, rejected, already processed count, repeated-in-input count)."""
    return _split(records, seen, id_field, False) or _split(records, seen, id_field, True)  # type: ignore[return-value]


def _split(
    records: Sequence[Any], seen: set[str], id_field: str, validate_each: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int] | None:
    """The fast pass (`validate_each=False`) checks the new IDs against the mask all at once and
    returns None if any fails, so that `split` can redo it checking each ID."""
    pncp_mask = id_field == ID_FIELD
    new: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    already = in_input = 0
    taken: set[str] = set()
    for record in records:
        rid = record.get(id_field) if type(record) is dict else None
        if type(rid) is not str or not rid:
            rejected.append({"reason": id_problem(record, id_field), "record": record})
        elif rid in seen:  # IDs in the state were validated when they were added
            already += 1
        elif rid in taken:
            in_input += 1
        elif validate_each and pncp_mask and not ID_PATTERN.fullmatch(rid):
            rejected.append({"reason": id_problem(record, id_field), "record": record})
        else:
            taken.add(rid)
            new.append(record)
    if not validate_each and pncp_mask and not all_valid_ids([r[id_field] for r in new]):
        return None
    return new, rejected, already, in_input


def backoff(attempt: int) -> None:
    """A short random pause before retrying a lost compare-and-swap (spreads out the contenders)."""
    time.sleep(min(0.5, 0.01 * attempt) * random.random())


def add_ids(state: dict[str, Any], existing: set[str], incoming: Sequence[str]) -> list[str]:
    """Merge sorted `incoming` into the state's sorted `processed_ids`; returns the IDs really added."""
    added = [x for x in incoming if x not in existing]
    if added:
        # Both lists are sorted: Timsort merges the two runs in linear time.
        state["processed_ids"] = sorted(state["processed_ids"] + added)
    state["total_processed"] = len(state["processed_ids"])
    return added


def filter_stats(
    inputs: int, new: int, already: int, in_input: int, rejected: list[dict[str, Any]]
) -> dict[str, Any]:
    duplicates = already + in_input
    return {
        "input_records": inputs,
        "new_records": new,
        "already_processed": already,
        "duplicates_in_input": in_input,
        "duplicates_filtered": duplicates,
        "rejected": len(rejected),
        "rejected_records": rejected,
        "filter_rate": filter_rate(duplicates, inputs),
    }


def format_filter_line(stats: dict[str, Any]) -> str:
    line = (
        f"State filtering: {stats['input_records']} input -> {stats['new_records']} new "
        f"({stats['duplicates_filtered']} duplicates filtered)"
    )
    if stats["rejected"]:
        line += f", {stats['rejected']} rejected (invalid {ID_FIELD})"
    return line


def execution_entry(timestamp: str, added: int, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """One `executions` entry: the seed's four fields plus any scalar metadata given."""
    md = {k: v for k, v in (metadata or {}).items() if isinstance(v, _SCALARS)}
    duplicates = int(md.pop("duplicates_filtered", 0) or 0)
    rate = md.pop("filter_rate", None)
    inputs = md.get("input_records")
    if rate is None:
        rate = filter_rate(duplicates, inputs) if isinstance(inputs, int) else 0.0
    md.pop("new_records", None)
    return {"timestamp": timestamp, "new_records": added, "duplicates_filtered": duplicates,
            "filter_rate": rate, **md}

