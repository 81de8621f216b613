"""A day's state as a typed object: its documented JSON form, and the operations the commit protocol
performs on it (claim, drop lost IDs, retire claims, add IDs). Nothing else edits a state.

The JSON keeps the seed's fields, names and order (`date`, `processed_ids`, `last_execution`,
`total_processed`, `executions`, `created_at`), then `partitions` (each hour's claim), `materialized_hours`
(each hour whose ingestion the day-state asset confirmed, records or not) and any other field found in the
file, untouched.

Stored, a state is compact (`encode`, format `pncp_state/2`, with the key layout its day's files follow:
`layout.LAYOUT_VERSION`): one zstd frame, with zstd's content checksum,
of that JSON with each ID written once. `processed_ids` holds every ID; a claim names no IDs but its number,
and after the JSON (and a newline) comes one byte per processed ID: the number of the claim holding it (0:
none). A day has at most 24 claims, so a byte suffices. `decode` reads that and the plain JSON of earlier
files (format 1, the seed's), so that old states load unchanged; the first write stores them compact.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import zstandard

from pncp_assets.layout import LAYOUT_VERSION
from pncp_assets.pncp.records import filter_rate

_SCALARS = (str, int, float, bool, type(None))
SEED_FIELDS = ("date", "processed_ids", "last_execution", "total_processed", "executions", "created_at")
FORMAT = "pncp_state/2"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Level 3 (zstd's default): on 100,000 IDs shaped like PNCP's, levels 6 and 9 save 3 % and 9 % more bytes for
# 2x and 4x the time to write (bench/bench_state.py --format).
ZSTD_LEVEL = 1
MAX_DECODED_BYTES = 1024 * 1024 * 1024  # a frame claiming more was not written by us: refuse, never inflate it


class CorruptState(ValueError):
    """A state file that does not have the documented shape."""


class LayoutMismatch(RuntimeError):
    """A state written for another version of the key layout (`layout.LAYOUT_VERSION`): its day's files are
    named differently, so neither using it nor rebuilding it from Bronze is safe before a migration."""


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


@dataclass
class Claim:
    """What hour H holds: its IDs, and while its delta is being published, the staged key it comes from."""

    ids: list[str]
    staged: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # run_id, committed_at, rebuilt, ...

    def to_json(self) -> dict[str, Any]:
        return {"ids": self.ids, "staged": self.staged, **self.extra}


@dataclass
class DayState:
    date: str
    processed_ids: list[str] = field(default_factory=list)  # sorted, unique
    executions: list[dict[str, Any]] = field(default_factory=list)
    last_execution: str | None = None
    created_at: str | None = None
    partitions: dict[str, Claim] = field(default_factory=dict)
    # Hour -> when its run first confirmed it (UTC): the hour was ingested, even when it filed nothing.
    materialized_hours: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fields this code does not know, kept as found
    # The IDs as a set, built once. A copy shares its original's set until it adds IDs (a million-ID
    # set costs tens of milliseconds and tens of MB to copy); `_owns_ids` says whether it may change it.
    _ids: set[str] | None = field(default=None, repr=False, compare=False)
    _owns_ids: bool = field(default=True, repr=False, compare=False)
    # The compact form's claim bytes (`encode_body`), with the very lists they were computed from: valid while
    # `processed_ids` and every claim's `ids` are those same list objects (every change to IDs makes new
    # lists), so a write that changes no ID (an execution, a retired claim, a confirmed hour) skips the
    # million-entry mapping of IDs to claims.
    _owners: tuple[list[str], tuple[tuple[str, list[str]], ...], bytes] | None = field(
        default=None, repr=False, compare=False)

    # --- reading -----------------------------------------------------------------------------------

    @property
    def total_processed(self) -> int:
        return len(self.processed_ids)

    @property
    def ids(self) -> set[str]:
        """The processed IDs as a set, built once."""
        if self._ids is None:
            self._ids, self._owns_ids = set(self.processed_ids), True
        return self._ids

    def open_claims(self) -> dict[str, Claim]:
        """Claims whose delta may not be published yet (they still name a staged file)."""
        return {pk: c for pk, c in self.partitions.items() if c.staged}

    # --- the protocol's changes ------------------------------------------------------------------

    def claim(self, partition_key: str, new_ids: list[str], staged: str, now: str,
              execution: dict[str, Any]) -> list[str]:
        """H claims `new_ids` (never seen by the day) on top of what it held, to be published from
        `staged`; returns every ID H then holds."""
        held = self.partitions.get(partition_key)
        ids = sorted(set(held.ids if held else []) | set(new_ids))
        self.add_ids(new_ids)
        extra = {"run_id": execution.get("run_id"), "committed_at": now}
        self.partitions[partition_key] = Claim(ids, staged, extra)
        self.record_execution(now, len(new_ids), execution)
        return ids

    def drop_lost(self, lost: dict[str, set[str]]) -> None:
        """Forget IDs that claims named but no whole file holds: they will be ingested again."""
        gone = set().union(*lost.values()) if lost else set()
        for pk, ids in lost.items():
            kept = sorted(set(self.partitions[pk].ids) - ids)
            if kept:
                self.partitions[pk] = Claim(kept, None, self.partitions[pk].extra)
            else:
                del self.partitions[pk]
        self.processed_ids = [x for x in self.processed_ids if x not in gone]
        self._ids = None  # rebuilt when next needed

    def retire(self, partition_keys: Iterable[str]) -> None:
        """These claims' deltas are published in full: they no longer need their staged files."""
        for pk in partition_keys:
            self.partitions[pk] = Claim(self.partitions[pk].ids, None, self.partitions[pk].extra)

    def confirm_hours(self, partition_keys: Iterable[str], now: str) -> bool:
        """Record that these hours were ingested (their state confirmed); True when one was new."""
        new = [pk for pk in partition_keys if pk not in self.materialized_hours]
        if new:
            self.materialized_hours = dict(sorted({**self.materialized_hours, **dict.fromkeys(new, now)}.items()))
        return bool(new)

    def ingested_hours(self) -> set[str]:
        """Hours known to have been ingested: confirmed ones, and those holding a claim (a state written
        before `materialized_hours` existed records only the hours that filed records)."""
        return set(self.materialized_hours) | set(self.partitions)

    def add_ids(self, incoming: Iterable[str]) -> list[str]:
        """Add IDs to `processed_ids` (kept sorted); returns those really added, sorted."""
        existing = self.ids
        # Sorting first lets duplicates in `incoming` drop out as neighbours, without a second hash
        # table: at a million IDs, every hash-table pass costs a tenth of a second.
        added = [x for x, _ in itertools.groupby(sorted(itertools.filterfalse(existing.__contains__, incoming)))]
        if added:
            # Both lists are sorted: Timsort merges the two runs in linear time, in place.
            merged = self.processed_ids + added
            merged.sort()
            self.processed_ids = merged
            if self._owns_ids:
                existing.update(added)
            else:
                self._ids = None  # the set belongs to the state this one was copied from
        return added

    def record_execution(self, now: str, added: int, metadata: dict[str, Any] | None) -> None:
        self.last_execution = now
        self.executions = [*self.executions, execution_entry(now, added, metadata)]

    def replace_by(self, other: DayState) -> None:
        """Become `other` (a state rebuilt from Bronze replacing this one)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(other, f.name))

    def copy(self) -> DayState:
        """An independent copy to change (the loaded state stays what the store holds)."""
        twin = copy.copy(self)
        twin.processed_ids = list(self.processed_ids)
        twin.executions = list(self.executions)
        twin.partitions = {pk: Claim(list(c.ids), c.staged, dict(c.extra)) for pk, c in self.partitions.items()}
        twin.materialized_hours = dict(self.materialized_hours)
        twin.extra = copy.deepcopy(self.extra)
        self._owns_ids = twin._owns_ids = False  # both share `_ids`: whichever adds IDs builds its own
        owners = self._cached_owners()
        twin._owners = None if owners is None else twin._claim_lists(owners)  # equal lists: the bytes hold
        return twin

    def _claim_lists(self, owners: bytes) -> tuple[list[str], tuple[tuple[str, list[str]], ...], bytes]:
        return self.processed_ids, tuple((pk, c.ids) for pk, c in self.partitions.items()), owners

    def _cached_owners(self) -> bytes | None:
        cached = self._owners
        if cached is None or cached[0] is not self.processed_ids or len(cached[1]) != len(self.partitions):
            return None
        claims = zip(cached[1], self.partitions.items(), strict=True)
        if not all(pk == name and ids is claim.ids for (name, ids), (pk, claim) in claims):
            return None
        owners = cached[2]
        # Cheap guards against a list changed in place (nothing here does; C-speed counts).
        held = sum(len(c.ids) for c in self.partitions.values())
        return owners if len(owners) == len(self.processed_ids) and len(owners) - owners.count(0) == held else None

    # --- JSON --------------------------------------------------------------------------------------

    @classmethod
    def new(cls, day: dt.date, now: str) -> DayState:
        return cls(date=day.isoformat(), created_at=now)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "date": self.date, "processed_ids": self.processed_ids, "last_execution": self.last_execution,
            "total_processed": self.total_processed, "executions": self.executions, "created_at": self.created_at,
        }
        if self.partitions:
            obj["partitions"] = {pk: c.to_json() for pk, c in self.partitions.items()}
        if self.materialized_hours:
            obj["materialized_hours"] = self.materialized_hours
        obj.update(self.extra)
        return obj

    def encode(self) -> bytes:
        """The compact form (module docstring): each ID once, one zstd frame with its checksum."""
        return compress(self.encode_body())

    def encode_body(self) -> bytes:
        """The compact form before compression: the JSON, a newline, one claim byte per processed ID."""
        obj = self.to_json()
        owners = self._cached_owners()
        if owners is None:
            owners = _owners(self.processed_ids, self.partitions)
            self._owners = None if owners is None else self._claim_lists(owners)
        if owners is None:  # claims that share an ID (only a damaged Bronze rebuilds so): kept as lists
            return orjson.dumps({"format": FORMAT, "layout": LAYOUT_VERSION, **obj}) + b"\n"
        numbered = {pk: {**{k: v for k, v in c.to_json().items() if k != "ids"}, "claim": n, "count": len(c.ids)}
                    for n, (pk, c) in enumerate(self.partitions.items(), start=1)}
        body = {"format": FORMAT, "layout": LAYOUT_VERSION, **obj, **({"partitions": numbered} if numbered else {})}
        return orjson.dumps(body) + b"\n" + owners

    def encode_json(self) -> bytes:
        """The seed's plain JSON (format 1): what `load` prints, and what states were before the compact form."""
        return orjson.dumps(self.to_json())

    @classmethod
    def decode(cls, data: bytes, day: dt.date, max_bytes: int = MAX_DECODED_BYTES) -> DayState:
        """Parse and check a state file's bytes, compact or plain JSON; `CorruptState` (a ValueError) when
        they are not one."""
        if data[:4] != ZSTD_MAGIC:
            return cls.from_json(_loads(data), day)
        return cls.decode_body(decompress(data, max_bytes), day)

    @classmethod
    def decode_body(cls, body: bytes, day: dt.date) -> DayState:
        """`encode_body`'s bytes back to a checked state."""
        head, _, tail = body.partition(b"\n")
        obj = _loads(head)
        if not isinstance(obj, dict) or obj.pop("format", None) != FORMAT:
            raise CorruptState(f"compact state is not of format {FORMAT}")
        written_for = obj.pop("layout", 1)  # states written before the version was recorded: layout 1
        if written_for != LAYOUT_VERSION:
            raise LayoutMismatch(f"state of {day} was written for key layout {written_for!r}; this version of "
                                 f"pncp_assets reads layout {LAYOUT_VERSION}: migrate the layer first")
        drawn = _expand_claims(obj, tail)
        state = cls.from_json(obj, day, drawn=drawn)
        if drawn and len(drawn) == len(state.partitions) and state.processed_ids is obj["processed_ids"]:
            state._owners = state._claim_lists(tail)
        return state

    @classmethod
    def from_json(cls, obj: Any, day: dt.date, drawn: frozenset[str] = frozenset()) -> DayState:
        """Check the documented shape; raise `CorruptState` naming the first problem. `drawn`: the claims whose
        IDs were drawn from `processed_ids` itself (the compact form's), which need no membership check."""
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
        claims: dict[str, Claim] = {}
        for name, entry in partitions.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("ids"), list):
                raise CorruptState(f"partitions[{name!r}] has no ids list")
            if name not in drawn and not all(type(x) is str and x in unique for x in entry["ids"]):
                raise CorruptState(f"partitions[{name!r}] names IDs missing from processed_ids")
            if entry.get("staged") is not None and not isinstance(entry["staged"], str):
                raise CorruptState(f"partitions[{name!r}].staged is not a key")
            extra = {k: v for k, v in entry.items() if k not in ("ids", "staged")}
            claims[name] = Claim(entry["ids"] if name in drawn else list(entry["ids"]), entry.get("staged"), extra)
        hours = obj.get("materialized_hours", {})
        if not isinstance(hours, dict) or not all(isinstance(v, str) for v in hours.values()):
            raise CorruptState("materialized_hours is not an object of times")
        known = {*SEED_FIELDS, "partitions", "materialized_hours"}
        return cls(date=obj["date"], processed_ids=ids,
                   executions=executions, last_execution=obj.get("last_execution"),
                   created_at=obj.get("created_at"), partitions=claims, materialized_hours=dict(hours),
                   extra={k: v for k, v in obj.items() if k not in known}, _ids=unique)


def compress(data: bytes) -> bytes:
    """One zstd frame with its content checksum and size. A compressor per call: they are not thread-safe."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(data)


def decompress(data: bytes, max_bytes: int = MAX_DECODED_BYTES) -> bytes:
    """One zstd frame, its checksum verified; `CorruptState` when it is not one or would inflate past
    `max_bytes`."""
    size = zstandard.frame_content_size(data) if data[:4] == ZSTD_MAGIC else -2
    if size < 0 or size > max_bytes:
        raise CorruptState(f"not a compact state frame, or one declaring over {max_bytes:,} bytes")
    try:
        return zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise CorruptState(f"compact state does not decompress ({exc})") from None


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptState(f"not valid JSON ({exc})") from None


def _owners(ids: list[str], claims: dict[str, Claim]) -> bytes | None:
    """Per processed ID, the number (1-based, in `claims`' order) of the claim holding it, 0 for none; None
    when two claims hold one ID or a claim an ID that is not processed (the states `from_json` refuses)."""
    if len(claims) > 255:
        return None
    held = sum(len(c.ids) for c in claims.values())
    owner = dict(zip(itertools.chain.from_iterable(c.ids for c in claims.values()),
                     itertools.chain.from_iterable(itertools.repeat(n, len(c.ids))
                                                   for n, c in enumerate(claims.values(), start=1)), strict=True))
    if len(owner) != held:
        return None
    numbers = bytes(map(owner.get, ids, itertools.repeat(0)))
    return numbers if len(ids) - numbers.count(0) == held else None


def _expand_claims(obj: dict[str, Any], owners: bytes) -> frozenset[str]:
    """Give each numbered claim its IDs back from the owner bytes (in `processed_ids` order: sorted); returns
    the names of the claims so drawn."""
    partitions = obj.get("partitions")
    ids = obj.get("processed_ids")
    if not isinstance(partitions, dict) or not partitions or not isinstance(ids, list):
        return frozenset()
    numbered = {e.get("claim"): (name, e) for name, e in partitions.items() if isinstance(e, dict) and "ids" not in e}
    if not numbered:
        return frozenset()
    if len(owners) != len(ids):
        raise CorruptState(f"compact state has {len(owners)} claim bytes for {len(ids)} processed_ids")
    # Group the IDs by their claim byte in C (numpy, which pyarrow loads anyway): a stable sort of the bytes.
    numbers = np.frombuffer(owners, dtype=np.uint8)
    order = np.argsort(numbers, kind="stable")
    ends = np.cumsum(np.bincount(numbers, minlength=256))
    grouped = np.array(ids, dtype=object)[order]
    for n, (_, entry) in numbered.items():
        if type(n) is not int or not 1 <= n <= 255:
            raise CorruptState(f"compact state names claim {n!r}")
        entry["ids"] = grouped[ends[n - 1]:ends[n]].tolist()
        if entry.pop("count", None) != len(entry["ids"]):
            raise CorruptState(f"compact state: claim {n} does not hold the IDs it counts")
        entry.pop("claim")
    return frozenset(name for name, _ in numbered.values())
