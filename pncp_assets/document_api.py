"""The original design document's interface, called as the document calls it, safe beside a live pipeline.

    from pncp_assets.document_api import StateManager, get_storage_client

    manager = StateManager()                      # the storage the environment configures (STORAGE_TYPE, ...)
    new_records, stats = manager.filter_new_records(source="pncp", date=day, records=records,
                                                    id_field="numeroControlePNCP")
    manager.update_state(source="pncp", date=day, new_ids=[...], execution_metadata={...})
    manager.get_state_summary("pncp", day)

    storage = get_storage_client()
    key = storage.upload_to_bronze(data=df_or_records, source="pncp", date=day, format="parquet")
    storage.write_json_to_s3(key, obj); storage.read_json_from_s3(key)   # None when absent

What differs from the pipeline, and why:
- IDs are the caller's: any non-empty text without spaces names a record (the document's `"001"`). The
  contratação mask (`CNPJ-1-NNNNNN/YYYY`) is the pipeline's quarantine rule for what it files from PNCP.
- An upload never replaces an object: it is written only if its key is free, and takes the next free name
  (`pncp_20251022_140000_1.parquet`) when the document's name is taken or is an hour's delta name, which stays
  the pipeline's. Uploads sit beside the deltas in the day's folder, are read with them as one dataset, and
  are not the pipeline's deltas: the checks judge the deltas, and accept in the state the IDs that
  `update_state` recorded for an upload.
- An upload keeps the caller's types: the layer's typed columns and `_raw` as for API records, then every
  other column as given (`bronze.upload_table`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pncp_assets import bronze, layout, state
from pncp_assets.brasilia import iso_utc, parse_day, to_brasilia, utc_now
from pncp_assets.layers import as_layer
from pncp_assets.pncp.records import ID_FIELD, RecordKey, any_id, id_key, versions_key
from pncp_assets.storage import NotFound, ObjectStore, StoredObject, VersionConflict

MAX_NAME_ATTEMPTS = 1000


def environment_store() -> ObjectStore:
    """The storage the environment configures (`STORAGE_TYPE`, `PNCP_DATA_DIR`, `BRONZE_BUCKET`, S3 settings)."""
    from pncp_assets.defs.environment import bronze_storage  # the one place that reads the environment

    return bronze_storage().object_store()


class StateManager(state.StateManager):
    """The document's `StateManager`: `StateManager()` on the storage the environment configures, or
    `StateManager(storage)`; its filter takes the caller's IDs as given, and `update_state` records one
    execution per call with the document's fields."""

    def __init__(self, storage: ObjectStore | None = None, **kwargs: Any):
        super().__init__(storage if storage is not None else environment_store(), **kwargs)
        self._last_stats: dict[tuple[str, dt.date], dict[str, Any]] = {}

    def record_key(self, source: str, id_field: str = ID_FIELD) -> RecordKey:
        """The caller's IDs as given: any non-empty text without spaces in `id_field` (a version layer adds
        `@dataAtualizacaoGlobal`)."""
        rule = any_id(id_field)
        return versions_key(rule) if as_layer(source).versioned else id_key(rule)

    def filter_new_records(
        self,
        source: str,
        date: str | dt.date | dt.datetime,
        records: Sequence[dict[str, Any]],
        id_field: str = ID_FIELD,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The records the day's state has not seen, and the stats of the filtering (the document's
        `new_records`, `already_processed`, `duplicates_filtered`, `filter_rate`, ...), remembered for the
        next `update_state` of the day. Records are named as `record_key` says; duplicates inside `records`
        keep the first copy; records without a usable ID come back in `stats["rejected_records"]`."""
        new, stats = super().filter_new_records(source, date, records, id_field)
        self._last_stats[(source, parse_day(date))] = stats
        if not new and records:
            self.log.warning("No new records to process (all duplicates)" if not stats["rejected"]
                             else f"No new records to process ({stats['rejected']} rejected, the rest duplicates)")
        return new, stats

    def update_state(
        self,
        source: str,
        date: str | dt.date | dt.datetime,
        new_ids: Iterable[str],
        execution_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add `new_ids` to the day's state by compare-and-swap, and record one execution entry: its
        `new_records` counts the IDs really added; `duplicates_filtered` and `filter_rate` come from
        `execution_metadata`, else from this manager's last filtering of the day."""
        incoming = list(new_ids)
        if incoming and (set(map(type, incoming)) != {str} or not all(incoming)):
            raise ValueError("new_ids must be non-empty strings")
        day = parse_day(date)
        filtered = {k: v for k, v in self._last_stats.pop((source, day), {}).items()
                    if k in ("input_records", "duplicates_filtered", "filter_rate")}
        metadata = {**filtered, **(execution_metadata or {})}

        def add(day_state: state.DayState) -> tuple[int, bool]:
            added = day_state.add_ids(incoming)
            day_state.record_execution(iso_utc(), len(added), metadata)
            return len(added), True

        after, added = self.transact(source, day, add)
        self.log.info(f"State updated: {added} new IDs added ({source} {day}: {after.total_processed} processed)")
        return after.copy().to_json()


class StorageClient(ObjectStore):
    """An `ObjectStore` (local or S3, in `.store`) with the document's three methods on top."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def get(self, key: str) -> StoredObject:
        return self.store.get(key)

    def version(self, key: str) -> str | None:
        return self.store.version(key)

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_version: str | None = None) -> str:
        return self.store.put(key, data, if_absent=if_absent, if_version=if_version)

    def list(self, prefix: str = "") -> list[str]:
        return self.store.list(prefix)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def sizes(self, prefix: str = "") -> dict[str, int]:
        return self.store.sizes(prefix)

    def describe(self) -> str:
        return self.store.describe()

    def upload_to_bronze(self, data: Any, source: str = "pncp", date: dt.datetime | dt.date | None = None,
                         format: str = "parquet") -> str:
        """Records (a list of dicts or a pandas DataFrame) as one new Bronze file of the day of `date`
        (Brasília time; default now); returns its key. Never replaces an object (module docstring)."""
        layer = as_layer(source)
        moment = to_brasilia(_as_datetime(date) if date is not None else utc_now())
        if format == "parquet":
            table = bronze.upload_table(layer.record, data, partition_key=layout.partition_key_for(moment))
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   b"pncp_assets.upload": b"original document's upload_to_bronze"})
            body = bronze.table_to_parquet(table)
            return self._put_new(lambda n: layout.upload_key(source, moment, n), body)
        if format == "json":
            records = bronze.upload_table(layer.record, data).column("_raw").to_pylist()
            body = ("[" + ",".join(records) + "]").encode("utf-8")
            return self._put_new(lambda n: layout.legacy_json_key(source, moment, n), body)
        raise ValueError(f"invalid format {format!r}: use 'parquet' or 'json'")

    def _put_new(self, key_for: Callable[[int], str], body: bytes) -> str:
        """`body` at the first free key of `key_for(0)`, `key_for(1)`, ...: written only if absent."""
        for attempt in range(MAX_NAME_ATTEMPTS):
            key = key_for(attempt)
            try:
                self.put(key, body, if_absent=True)
                return key
            except VersionConflict:
                continue
        raise RuntimeError(f"no free name for the upload after {MAX_NAME_ATTEMPTS} tries (last: {key})")

    def write_json_to_s3(self, key: str, obj: Any) -> str:
        """`obj` as JSON at `key` (whichever backend is configured); returns the version tag. Refuses the keys
        the pipeline owns: Bronze deltas, day states and archives, staged deltas."""
        if layout.is_pipeline_key(key):
            raise ValueError(f"{key} is the pipeline's (a delta, a day state, an archive or a staged delta): "
                             "write_json_to_s3 never replaces it")
        return self.put_json(key, obj)

    def read_json_from_s3(self, key: str) -> Any | None:
        """The JSON object at `key`, or None when there is none. A day state reads as the document's JSON
        whatever its stored form."""
        day = layout.day_of_state_key(key)
        if day is not None:
            source = key.split("/", 1)[0]
            loaded = StateManager(self.store).load_fresh(source, day)
            return loaded.state.to_json() if loaded.exists else None
        try:
            return self.get_json(key)
        except NotFound:
            return None


def _as_datetime(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise TypeError(f"date must be a datetime or a date, not {type(value).__name__}")


def get_storage_client() -> StorageClient:
    """The storage chosen by `STORAGE_TYPE` (`local`, `s3`, `minio`) and the rest of the environment."""
    return StorageClient(environment_store())


def upload_to_bronze(data: Any, source: str = "pncp", date: dt.datetime | None = None,
                     format: str = "parquet") -> str:
    return get_storage_client().upload_to_bronze(data, source, date, format)


def write_json_to_s3(key: str, obj: Any) -> str:
    return get_storage_client().write_json_to_s3(key, obj)


def read_json_from_s3(key: str) -> Any | None:
    return get_storage_client().read_json_from_s3(key)

