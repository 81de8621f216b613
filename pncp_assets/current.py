"""The current view: the latest version of every contratação (or contrato, or ata) over a range of days,
from Bronze alone.

    from pncp_assets.current import current_view
    table = current_view("data/bronze", "2025-10-01", "2025-10-31")                    # contratações
    table = current_view("data/bronze", "2025-10-01", "2025-10-31", feed="contratos")  # or "atas"

It unions the feed's first-seen records (`pncp/`, `pncp_contratos/`; day = publication day) and its
versions (`pncp_versions/`, `pncp_contratos_versions/`, `pncp_atas_versions/`; day = the day of the change)
whose folder day lies in [first, last], and keeps one row per record ID: the one with the latest
`dataAtualizacaoGlobal`. So it is the latest state known of every record published or changed in the range;
a change after `last` is not in it (widen `last` to today for the latest of all). The columns are the
feed's record schema (the version key is dropped).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from pncp_assets import bronze, layout
from pncp_assets.brasilia import parse_day
from pncp_assets.layers import Layer, feeds
from pncp_assets.pncp.records import ID_FIELD, VERSION_TIME_FIELD

FEEDS: dict[str, tuple[Layer, ...]] = feeds()  # each feed's layers, first seen and versions


def current_view(bronze_root: str, first: str | dt.date, last: str | dt.date,
                 filesystem: pafs.FileSystem | None = None, feed: str = "contratacoes") -> pa.Table:
    """The latest version of every record of `feed` (contratacoes, contratos or atas) of the days
    [first, last] under `bronze_root` (a local path, or `bucket` with an S3 `filesystem`, or an
    `s3://bucket` URI)."""
    if feed not in FEEDS:
        raise ValueError(f"feed {feed!r} is not one of {', '.join(FEEDS)}")
    first_day, last_day = parse_day(first), parse_day(last)
    if last_day < first_day:
        raise ValueError(f"last day {last_day} is before first day {first_day}")
    year, month, day = (ds.field(name) for name in layout.DAY_FIELDS)
    day_number = year * 10000 + month * 100 + day
    in_range = (day_number >= _number(first_day)) & (day_number <= _number(last_day))
    tables = []
    layers = FEEDS[feed]
    schema = layers[0].record.schema
    for layer in layers:
        try:
            dataset = ds.dataset(f"{bronze_root.rstrip('/')}/{layer.source}", format="parquet",
                                 partitioning="hive", filesystem=filesystem)
        except FileNotFoundError:
            continue  # a layer not written yet
        if layout.DAY_FIELDS[0] not in dataset.schema.names:
            continue  # nothing under it yet
        # No thread pool: see bronze.read_parquet.
        tables.append(dataset.to_table(columns=schema.names, filter=in_range, use_threads=False))
    return latest_versions(bronze.concat_tables(tables, schema), layers[0].id_field)


def latest_versions(table: pa.Table, id_field: str = ID_FIELD) -> pa.Table:
    """One row per record ID: the one with the latest dataAtualizacaoGlobal (a row without one loses to any
    row with one), in ID order."""
    if table.num_rows == 0:
        return table
    # A missing time ranks below every real one (null placement per key needs pyarrow 25).
    times = table.column(VERSION_TIME_FIELD)
    oldest = pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.UTC), type=times.type)
    keys = pa.table({"id": table.column(id_field), "time": pc.fill_null(times, oldest)})
    order = pc.sort_indices(keys, sort_keys=[("id", "ascending"), ("time", "descending")])
    ranked = table.take(order)
    ids = ranked.column(id_field).combine_chunks()
    previous = pa.concat_arrays([pa.nulls(1, pa.string()), ids.slice(0, len(ids) - 1)])
    first_of_id = pc.fill_null(pc.not_equal(ids, previous), True)
    return ranked.filter(first_of_id)


def _number(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day
