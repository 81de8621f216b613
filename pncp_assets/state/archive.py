"""Archived day states: a month's finished days in one compact object, each day's state file replaced by a
marker that names it.

    pncp/_archive/year=YYYY/month=MM/states_YYYYMM.zst

The archive is one zstd frame (with zstd's checksum) of a JSON index line, `{"format":
"pncp_state_archive/1", "source", "month", "days": {"2025-10-22": {"offset", "length", "sha256",
"total_processed"}}}`, a newline, then each day's state body (`DayState.encode_body`) back to back: a
month compresses as one, and reading a day decompresses its month once (cached by the object's version).

An archived day's state file is a marker, `{"archived_in": KEY, "date": ..., "sha256": ...}` (plain JSON),
written by compare-and-swap over the state version the archiver read: a run that wrote the day meanwhile
keeps its state, and the day is archived another time. The day is never empty for anyone: `StateManager`
reads a marked day from the archive, and a run of it writes the state back over the marker (by
compare-and-swap again), so re-running or backfilling an archived day files nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pncp_assets import layout
from pncp_assets.state.day import CorruptState, DayState, compress, decompress
from pncp_assets.storage import NotFound, ObjectStore, VersionConflict

FORMAT = "pncp_state_archive/1"
MAX_ARCHIVE_BYTES = 4 * 1024 * 1024 * 1024  # decompressed: a month of million-ID days


def parse_marker(data: bytes) -> dict[str, Any] | None:
    """The marker a state file holds once its day is archived; None for a state."""
    if data[:1] != b"{" or len(data) > 4096 or b'"archived_in"' not in data:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("archived_in"), str) else None


def marker(archive_key: str, day: dt.date, digest: str) -> bytes:
    return orjson.dumps({"archived_in": archive_key, "date": day.isoformat(), "sha256": digest})


@dataclass
class Archive:
    """A month's archive as read: the index and the bodies."""

    key: str
    version: str | None  # None: not written yet
    size: int = 0  # bytes stored
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)

    def body(self, day: dt.date) -> bytes | None:
        return self.bodies.get(day.isoformat())

    def with_days(self, source: str, month: str, bodies: dict[str, bytes]) -> bytes:
        """This archive with `bodies` (day -> state body) added or replaced, encoded."""
        merged = {**self.bodies, **bodies}
        index, parts, offset = {}, [], 0
        for day in sorted(merged):
            body = merged[day]
            head = orjson.loads(body.partition(b"\n")[0])
            index[day] = {"offset": offset, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                          "total_processed": head.get("total_processed")}
            parts.append(body)
            offset += len(body)
        header = orjson.dumps({"format": FORMAT, "source": source, "month": month, "days": index})
        return compress(header + b"\n" + b"".join(parts))


def read_archive(store: ObjectStore, key: str) -> Archive:
    """The archive at `key` (empty when absent); `CorruptState` when it is not one."""
    try:
        stored = store.get(key)
    except NotFound:
        return Archive(key, None)
    raw = decompress(stored.data, MAX_ARCHIVE_BYTES)
    header, _, rest = raw.partition(b"\n")
    try:
        head = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise CorruptState(f"archive {key} has no index ({exc})") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT or not isinstance(head.get("days"), dict):
        raise CorruptState(f"archive {key} is not of format {FORMAT}")
    bodies = {}
    for day, entry in head["days"].items():
        body = rest[entry["offset"]:entry["offset"] + entry["length"]]
        if hashlib.sha256(body).hexdigest() != entry.get("sha256"):
            raise CorruptState(f"archive {key}: the state of {day} does not match its checksum")
        bodies[day] = body
    return Archive(key, stored.version, len(stored.data), head["days"], bodies)


class ArchiveReader:
    """Reads archived day states, decompressing each month once per version."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self._cache: dict[str, Archive] = {}

    def day_state(self, source: str, day: dt.date, mark: dict[str, Any]) -> DayState:
        """The state of an archived day, from the archive its marker names; `CorruptState` when the archive
        does not hold it as the marker says (the caller rebuilds the day from Bronze: never empty)."""
        key = layout.archive_key(source, day)
        if mark.get("archived_in") != key or mark.get("date") != day.isoformat():
            raise CorruptState(f"archive marker names {mark.get('archived_in')!r} for {mark.get('date')!r}")
        archive = self._cache.get(key)
        if archive is None or archive.version != self.store.version(key):
            archive = self._cache[key] = read_archive(self.store, key)
        body = archive.body(day)
        if body is None or hashlib.sha256(body).hexdigest() != mark.get("sha256"):
            raise CorruptState(f"archive {key} does not hold the state of {day} its marker names")
        return DayState.decode_body(body, day)


@dataclass
class ArchivedMonth:
    archived: list[str] = field(default_factory=list)  # days now marked as archived
    skipped: dict[str, str] = field(default_factory=dict)  # day -> why it stays as it is
    bytes_before: int = 0  # the archived days' state files
    bytes_after: int = 0  # their markers, plus the growth of the archive object


def archive_month(store: ObjectStore, source: str, days: Iterable[dt.date], load: Callable[[str, dt.date], Any],
                  dry_run: bool = False, attempts: int = 20) -> ArchivedMonth:
    """Archive the given days of one month: their states into the month's archive, then each state file
    replaced by a marker, by compare-and-swap. `load(source, day)` is `StateManager.load_fresh`."""
    days = sorted(days)
    result = ArchivedMonth()
    if not days:
        return result
    key = layout.archive_key(source, days[0])
    picked: dict[dt.date, tuple[Any, bytes, int]] = {}  # day -> (loaded, body, stored bytes)
    for day in days:
        loaded = load(source, day)
        if loaded.origin in ("archive", "new"):
            continue  # archived already, or nothing was ever ingested
        if loaded.state.open_claims():
            result.skipped[day.isoformat()] = "claims still being published"
            continue
        picked[day] = (loaded, loaded.state.encode_body(), _stored_size(store, source, day))
    if not picked or dry_run:
        result.archived = [d.isoformat() for d in picked]
        result.bytes_before = sum(size for _, _, size in picked.values())
        return result
    for _ in range(attempts):
        archive = read_archive(store, key)
        data = archive.with_days(source, f"{days[0]:%Y-%m}", {d.isoformat(): b for d, (_, b, _) in picked.items()})
        try:
            condition = {"if_absent": True} if archive.version is None else {"if_version": archive.version}
            store.put(key, data, **condition)
            break
        except VersionConflict:
            continue
    else:
        raise RuntimeError(f"could not write {key}: too many concurrent archivers")
    result.bytes_after = len(data) - archive.size
    for day, (loaded, body, size) in picked.items():
        mark = marker(key, day, hashlib.sha256(body).hexdigest())
        state_key = layout.state_key(source, day)
        try:
            if loaded.origin == "legacy":
                store.put(state_key, mark, if_absent=True)
                store.delete(layout.legacy_state_key(source, day))
            else:
                store.put(state_key, mark, if_version=loaded.version)
        except VersionConflict:
            result.skipped[day.isoformat()] = "written by a run while archiving: kept live"
            continue
        result.archived.append(day.isoformat())
        result.bytes_before += size
        result.bytes_after += len(mark)
    return result


def _stored_size(store: ObjectStore, source: str, day: dt.date) -> int:
    for key in (layout.state_key(source, day), layout.legacy_state_key(source, day)):
        try:
            return len(store.get(key).data)
        except NotFound:
            continue
    return 0
