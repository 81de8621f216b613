"""The commit protocol of hourly deltas: every swept record lands in exactly one delta file of its day.

A run of partition H:
1. recover: any claimed partition whose published delta is incomplete is published again from its
   staged file (roll forward); one whose staged file is gone too loses its claim, so its IDs are simply
   ingested again;
2. delta(H) = the rows H already holds + swept records published before the end of H that the state
   has never seen; it is written to a staging key named by the run;
3. the state file, the single commit point, is compare-and-swapped with H's claim (its IDs, the staged
   key); a lost swap means: reload, recompute, stage again;
4. publish: the delta is written to H's key, only ever replacing a file whose IDs it contains (so a
   late, stale publisher can never shrink a partition). In the Dagster graph the delta asset returns its
   claimed deltas (`Deltas`) and the Bronze IO manager publishes them; with any other IO manager nothing
   is published by the run, and step 1 (the next run, or the state asset's finalize) rolls the claim
   forward from its staged file;
5. finalize (the `pncp_daily_state` asset): check the published file holds the claim, clear the staged
   key, remove the staged file, record H as ingested (`materialized_hours`, also when it filed nothing),
   and remove orphans past a grace period (never those of a live run).
A half-written object is never trusted: files are checked to parse and hold the IDs a claim names.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pncp_assets import bronze, faults, layout
from pncp_assets.brasilia import iso_utc, utc_now
from pncp_assets.bronze import ids_of
from pncp_assets.layers import FIRST_SEEN, PUBLICATION_FIELD, Layer
from pncp_assets.pncp.records import ID_FIELD, api_time, filter_stats, format_filter_line, split
from pncp_assets.state import Claim, DayState, StateManager, backoff
from pncp_assets.storage import NotFound, ObjectStore, VersionConflict

STAGING_GRACE = dt.timedelta(hours=24)


# Why an hour filed nothing, as its `no_data_reason` says (the document's two, and two it could not tell apart).
NO_DATA_WORDS = {
    "no_data_from_api": "No new records to process (the API returned none for the day so far)",
    "only_later_hours": "No new records to process (the API returned records of later hours only)",
    "all_duplicates": "No new records to process (all duplicates)",
    "all_rejected": "No new records to process (every record rejected by the ID rules)",
}


def no_data_reason(stats: dict[str, Any], swept: int) -> str:
    """Why an hour that held nothing filed nothing: the sweep had no record at all, none up to the hour's
    end, every eligible one already filed (or repeated), or every eligible one rejected."""
    if not swept:
        return "no_data_from_api"
    if not stats["input_records"]:
        return "only_later_hours"
    return "all_duplicates" if stats["duplicates_filtered"] else "all_rejected"


class PublishConflict(RuntimeError):
    """A published delta holds IDs that the claim being published does not: refusing to drop them."""


@dataclass
class DeltaOutput:
    """What a run of H publishes: the delta's rows, its Parquet bytes and IDs."""

    partition_key: str
    key: str
    table: pa.Table
    data: bytes
    ids: frozenset[str]


@dataclass(frozen=True)
class Deltas:
    """What a run of a delta asset returns for its IO manager to publish (step 4): the claimed, staged delta
    of each of its hours that filed something new (hours without one are absent)."""

    layer: Layer
    by_hour: dict[str, DeltaOutput]

    def ids(self) -> dict[str, frozenset[str]]:
        """Hour -> the IDs its published delta must hold."""
        return {hour: output.ids for hour, output in self.by_hour.items()}


@dataclass
class CommitResult:
    partition_key: str
    key: str
    status: str  # written | unchanged | no_data
    reason: str | None  # for no_data: all_duplicates | no_data_from_api
    stats: dict[str, Any]
    held: int = 0
    new_ids: list[str] = field(default_factory=list)
    output: DeltaOutput | None = None
    rejected_key: str | None = None
    attempts: int = 1
    late: int = 0  # new records published (versions: changed) before H began: first seen in this run
    changed: int = 0  # new rows of contratações published before H began (for versions: records changed)
    hour_records: int = 0  # swept records published within H itself
    hour_repeats: int = 0  # ... of which the day's state already held (a re-run, or an earlier late run)

    @property
    def filter_rate(self) -> float:
        """Share of H's own records (published within H) that were already in Bronze, in percent: 0 on a
        clean first pass, 100 when an hour is run again. (The seed's `filter_rate` in `stats` counts every
        record of the day so far, so it reads 80-100 % on a healthy day.)"""
        return round(100.0 * self.hour_repeats / self.hour_records, 2) if self.hour_records else 0.0


@dataclass
class _Attempt:
    """One try of stage-and-claim, on the state as it was then."""

    stats: dict[str, Any]
    hour: dict[str, int]
    held: list[str]
    new_ids: list[str] = field(default_factory=list)
    staged: str | None = None
    output: DeltaOutput | None = None
    superseded: str | None = None  # the staged file of an earlier claim of H that ours replaces


def publish_delta(store: ObjectStore, key: str, data: bytes, ids: frozenset[str] | set[str],
                  key_field: str = ID_FIELD) -> str:
    """Write a delta at its key unless the file there already holds all its keys; never drop one.

    Returns "written" or "kept". Compare-and-swap on the key, so two publishers cannot interleave.
    """
    for attempt in range(1, 101):
        try:
            current = store.get(key)
        except NotFound:
            try:
                faults.put(store, key, data, "mid_delta_write", if_absent=True)
                return "written"
            except VersionConflict:
                continue
        current_ids = ids_of(current.data, key_field)
        if current_ids is not None:
            present = set(current_ids)
            if present >= ids:
                return "kept"
            if not present <= ids:
                extra = sorted(present - ids)[:5]
                raise PublishConflict(f"{key} holds IDs the claim does not ({extra}...): not overwriting it")
        try:
            faults.put(store, key, data, "mid_delta_write", if_version=current.version)
            return "written"
        except VersionConflict:
            backoff(attempt)
    raise RuntimeError(f"could not publish {key}: too many concurrent writers")


class DeltaCommitter:
    """Runs the protocol for one layer (`layers.py`: first-seen records, or versions) on one ObjectStore
    (framework-free). Its "IDs" are the layer's keys: record IDs, or version keys."""

    def __init__(self, storage: ObjectStore, layer: Layer = FIRST_SEEN, logger: Any = None,
                 staging_grace: dt.timedelta = STAGING_GRACE, compression: str = bronze.DEFAULT_CODEC):
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a Layer (layers.layer_named for a name), not {layer!r}")
        self.storage = storage
        self.compression = bronze.validate_compression(compression)
        self.layer = layer
        self.source = layer.source
        self.key_field = self.layer.key.field
        self.log = logger or logging.getLogger(__name__)
        self.state = StateManager(storage, logger=self.log)
        self.staging_grace = staging_grace

    # --- reading files ---------------------------------------------------------------------------

    def _delta_ids(self, partition_key: str) -> set[str]:
        try:
            data = self.storage.get(layout.delta_key(self.source, partition_key)).data
        except NotFound:
            return set()
        return set(ids_of(data, self.key_field) or [])

    def _whole(self, key: str | None, want: set[str]) -> bytes | None:
        """The object's bytes if it parses and holds every wanted ID."""
        if not key:
            return None
        try:
            data = self.storage.get(key).data
        except NotFound:
            return None
        ids = ids_of(data, self.key_field)
        return data if ids is not None and want <= set(ids) else None

    def _partition_rows(self, partition_key: str, claim: Claim) -> pa.Table:
        want = set(claim.ids)
        data = self._whole(layout.delta_key(self.source, partition_key), want) or self._whole(claim.staged, want)
        if data is None:
            raise RuntimeError(f"partition {partition_key}: neither its delta nor its staged file holds its claim")
        import pyarrow.compute as pc  # here only: a run that holds nothing back never loads it (8 MB)

        table = bronze.read_parquet(data)
        keep = pc.is_in(table.column(self.key_field), value_set=pa.array(sorted(want), type=pa.string()))
        return table.filter(keep)

    # --- 1. recovery -------------------------------------------------------------------------------

    def recover(self, day: dt.date, in_flight: str | None = None) -> list[str]:
        """Roll forward claimed partitions whose published delta is incomplete; drop claims nothing holds.
        `in_flight`: the run calling, whose own claims are not stuck but waiting for its output to be
        published (a run over a range claims every hour before its IO manager publishes them)."""

        def roll_forward(state: DayState) -> tuple[tuple[list[str], dict[str, set[str]]], bool]:
            notes: list[str] = []
            lost: dict[str, set[str]] = {}
            for pk, claim in state.open_claims().items():
                if in_flight is not None and claim.extra.get("run_id") == in_flight:
                    continue
                want = set(claim.ids)
                published = self._delta_ids(pk)
                if want <= published:
                    continue
                data = self._whole(claim.staged, want)
                if data is not None:
                    publish_delta(self.storage, layout.delta_key(self.source, pk), data, frozenset(want),
                                  self.key_field)
                    notes.append(f"rolled {pk} forward from {claim.staged}")
                    self.log.warning(f"Recovery: published {pk} again from its staged file ({len(want)} records)")
                else:
                    lost[pk] = want - published
            state.drop_lost(lost)
            return (notes, lost), bool(lost)

        _, (notes, lost) = self.state.transact(self.layer, day, roll_forward)
        for pk, ids in lost.items():
            self.log.warning(f"Recovery: {len(ids)} {self.layer.noun} claimed by {pk} are in no whole file; they "
                             f"will be ingested again")
            notes.append(f"dropped {len(ids)} lost {self.layer.noun} of {pk}")
        return notes

    # --- 2-3. stage and claim ------------------------------------------------------------------

    def commit(self, partition_key: str, records: list[tuple[dict[str, Any], bronze.Provenance]],
               run_id: str, swept_at: dt.datetime | None = None) -> CommitResult:
        """Stage and claim H's delta from a sweep's records (`swept_at`: when that sweep started)."""
        start = layout.parse_partition_key(partition_key)
        day, end = start.date(), start + dt.timedelta(hours=1)
        key = layout.delta_key(self.source, partition_key)
        self.recover(day, in_flight=run_id)
        layer_key = self.layer.key
        # A record's time (publication; change, for versions). An unreadable one counts as within H, so
        # that the record is never left out (it is rejected visibly if it cannot be keyed).
        times = {id(r): self.layer.time_of(r) for r, _ in records}
        tail = self.layer.versioned and swept_at is not None and end <= swept_at < end + dt.timedelta(hours=1)
        eligible = [(r, p) for r, p in records if tail or (times[id(r)] or start) < end]
        provenance = {id(r): p for r, p in eligible}
        rows = [r for r, _ in eligible]
        own_hour = [r for r in rows if start <= (times[id(r)] or start) < end]
        rejected_key: str | None = None
        attempts = 0

        def stage_and_claim(state: DayState) -> tuple[_Attempt, bool]:
            nonlocal attempts, rejected_key
            attempts += 1
            claim = state.partitions.get(partition_key)
            held_ids = list(claim.ids) if claim else []
            new, rejected, already, in_input = split(rows, state.ids, layer_key)
            stats = filter_stats(len(rows), len(new), already, in_input, rejected)
            hour = {"hour_records": len(own_hour),
                    "hour_repeats": sum(1 for r in own_hour if layer_key.problem(r) is None
                                        and layer_key.of(r) in state.ids),
                    "late": sum(1 for r in new if (times[id(r)] or start) < start),
                    "changed": len({r.get(self.layer.id_field) for r in new
                                    if (api_time(r.get(PUBLICATION_FIELD)) or start) < start})}
            if attempts == 1:  # kept once: the rejected records do not depend on the state
                rejected_key = self._keep_rejected(partition_key, rejected)
            execution = {k: v for k, v in stats.items() if k != "rejected_records"}
            execution.update(partition=partition_key, run_id=run_id)
            if not new:  # nothing to file, but the execution is on record all the same (the audit trail)
                state.record_execution(iso_utc(), 0, execution)
                return _Attempt(stats, hour, held_ids), True
            new_table = self.layer.to_table(new, partition_key=partition_key,
                                            provenance=[provenance[id(r)] for r in new])
            held_table = self._partition_rows(partition_key, claim) if claim else None
            table = bronze.concat_tables([held_table, new_table], self.layer.schema)
            data = bronze.table_to_parquet(table, self.compression)
            staged = layout.staging_key(self.source, partition_key, run_id)
            faults.put(self.storage, staged, data, "mid_staging_write")
            faults.crash("after_staging")
            new_ids = [layer_key.of(r) for r in new]
            all_ids = state.claim(partition_key, new_ids, staged, iso_utc(), execution)
            output = DeltaOutput(partition_key, key, table, data, frozenset(all_ids))
            superseded = claim.staged if claim and claim.staged else None
            return _Attempt(stats, hour, held_ids, new_ids, staged, output, superseded), True

        def discard(attempt: _Attempt) -> None:
            if attempt.staged:
                self.storage.delete(attempt.staged)  # ours alone: no claim names it
            self.log.info(f"{partition_key}: another run committed first; recomputing on its state")

        _, done = self.state.transact(self.layer, day, stage_and_claim, on_conflict=discard)
        if done.output is None:
            status = "unchanged" if done.held else "no_data"
            why = no_data_reason(done.stats, len(records))
            # One line per hour (each is an event-log write, per hour of a range run), in the document's words.
            self.log.info(f"{self._filter_line(done)}; {NO_DATA_WORDS[why]}"
                          + (f"; {partition_key} holds {len(done.held)}" if done.held else ""))
            reason = None if done.held else why
            return CommitResult(partition_key, key, status, reason, done.stats, len(done.held),
                                rejected_key=rejected_key, attempts=attempts, **done.hour)
        faults.crash("after_claim")
        if done.superseded and done.superseded != done.staged:
            self.storage.delete(done.superseded)  # superseded: our delta holds all of it
        self.log.info(f"{self._filter_line(done)}; State updated: {len(done.new_ids)} new IDs added "
                      f"({partition_key} holds {len(done.new_ids) + len(done.held)})")
        return CommitResult(partition_key, key, "written", None, done.stats, len(done.held), done.new_ids,
                            done.output, rejected_key, attempts, **done.hour)

    def _filter_line(self, attempt: _Attempt) -> str:
        return format_filter_line(attempt.stats, attempt.hour["changed"] if self.layer.versioned else None,
                                  self.layer.id_field)

    def _keep_rejected(self, partition_key: str, rejected: list[dict[str, Any]]) -> str | None:
        if not rejected:
            return None
        key = layout.rejected_key(self.source, partition_key)
        lines = [json.dumps(r, ensure_ascii=False, default=str) for r in rejected]
        self.storage.put(key, ("\n".join(lines) + "\n").encode("utf-8"))
        self.log.warning(f"{partition_key}: {len(rejected)} records rejected by the ID rules, kept at {key}")
        return key

    # --- 4. publish ----------------------------------------------------------------------------

    def publish(self, output: DeltaOutput) -> str:
        outcome = publish_delta(self.storage, output.key, output.data, output.ids, self.key_field)
        faults.crash("after_publish")
        return outcome

    # --- 5. finalize ---------------------------------------------------------------------------

    def finalize(self, partition_key: str) -> dict[str, Any]:
        """Make sure H's published delta holds its claim, then retire its staged file, those of any other
        claim of the day already published in full (left open by a run that died after publishing), and
        old orphans."""
        return self.finalize_hours([partition_key])[layout.parse_partition_key(partition_key).date()]

    def finalize_hours(self, partition_keys: Sequence[str]) -> dict[dt.date, dict[str, Any]]:
        """`finalize` for several hours, once per day; returns each day's summary, including the number
        of IDs each hour holds (`hour_ids`)."""
        return {day: self._finalize_day(day, set(hours))
                for day, hours in layout.hours_by_day(partition_keys).items()}

    def _finalize_day(self, day: dt.date, hours: set[str]) -> dict[str, Any]:
        self.recover(day)  # any claim of the day not fully published is published (or dropped) first

        def retire(state: DayState) -> tuple[dict[str, str], bool]:
            done = {pk: c.staged for pk, c in state.open_claims().items() if set(c.ids) <= self._delta_ids(pk)}
            state.retire(done)
            confirmed = state.confirm_hours(sorted(hours), iso_utc())  # ingested, with or without records
            return done, bool(done) or confirmed  # type: ignore[return-value]

        _, retired = self.state.transact(self.layer, day, retire)
        for staged in retired.values():
            self.storage.delete(staged)
        removed = self.remove_orphans(day)
        state = self.state.load_fresh(self.layer, day).state
        return {"total_processed": state.total_processed, "executions": len(state.executions),
                "partitions": len(state.partitions), "orphans_removed": removed,
                "hour_ids": {pk: len(state.partitions[pk].ids) if pk in state.partitions else 0
                             for pk in sorted(hours)}}

    def remove_orphans(self, day: dt.date, now: dt.datetime | None = None, dry_run: bool = False) -> int:
        """Delete staged files that no claim names and that are older than the grace period: a younger
        one may belong to a run still in flight. Returns how many (would be, with `dry_run`) removed."""
        named = {c.staged for c in self.state.load_fresh(self.layer, day).state.partitions.values()}
        now = now or utc_now()
        removed = 0
        staged = [*self.storage.list(layout.staging_prefix(self.source, day)),
                  *self.storage.list(layout.legacy_staging_prefix(self.source, day))]
        for key in staged:
            written = layout.staged_at(key)
            if key not in named and written is not None and now - written > self.staging_grace:
                if not dry_run:
                    self.storage.delete(key)
                removed += 1
        return removed
