"""Bronze: the Parquet encoding of PNCP records, one `RecordSchema` per feed (their fields:
`schemas/`; the keys are `layout.py`'s).

Every row keeps the record exactly as the API sent it in `_raw` (JSON text) beside typed columns of
one explicit schema. A value of an unexpected type becomes null in its typed column (it is still in
`_raw`); an unknown field lives only in `_raw`. So every file has the identical schema, whatever the
API sends, and the whole `pncp/` prefix reads back as one dataset.

Money (`valorTotalEstimado`, `valorTotalHomologado`) is float64: the API sends JSON numbers, which every
JSON reader parses as IEEE doubles, so float64 holds exactly what was sent; `_raw` keeps the text.
Timestamps carry no offset in the API and are Brasília time; they are stored as
`timestamp[ms, tz=America/Sao_Paulo]`, i.e. true instants that every reader shows correctly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pncp_assets.brasilia import UTC, utc_now
from pncp_assets.pncp.records import ID_FIELD, VERSION_FIELD, api_time
from pncp_assets.schemas import Fields

# --- Schema ---------------------------------------------------------------------------------------

INGESTION_FIELDS: list[tuple[str, pa.DataType]] = [
    ("_raw", pa.string()),
    ("_ingested_at", pa.timestamp("ms", tz="UTC")),
    ("_partition_key", pa.string()),
    ("_modalidade", pa.int32()),  # null for feeds swept without a modalidade
    ("_pagina", pa.int32()),
]


# --- Coercion: a value of an unexpected type becomes null ----------------------------------------

def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else None
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return None


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:
            return None
    return None


def _as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _as_date(v: Any) -> dt.date | None:
    """`2025-10-22` (or a timestamp's date part) as a date."""
    if not isinstance(v, str) or len(v) > 40:
        return None
    try:
        return dt.date.fromisoformat(v[:10])
    except ValueError:
        return None


def _as_scalar_text(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    return v if isinstance(v, str) else json.dumps(v)


def _coercer(typ: pa.DataType) -> Callable[[Any], Any]:
    if pa.types.is_struct(typ):
        subs = [(typ.field(i).name, _coercer(typ.field(i).type)) for i in range(typ.num_fields)]

        def struct(v: Any) -> dict[str, Any] | None:
            return {name: conv(v.get(name)) for name, conv in subs} if isinstance(v, dict) else None

        return struct
    if pa.types.is_list(typ):
        item = _coercer(typ.value_type)

        def listing(v: Any) -> list[Any] | None:
            return [item(x) for x in v] if isinstance(v, list) else None

        return listing
    if pa.types.is_timestamp(typ):
        return api_time
    if pa.types.is_date(typ):
        return _as_date
    if pa.types.is_boolean(typ):
        return _as_bool
    if pa.types.is_integer(typ):
        return _as_int
    if pa.types.is_floating(typ):
        return _as_float
    return _as_str


@dataclass(frozen=True)
class Provenance:
    """Where a record came from: the query's modalidade (None: the endpoint takes none) and page."""

    modalidade: int | None = None
    pagina: int | None = None


class RecordSchema:
    """One feed's records in Bronze: the typed columns of its documented fields, then the ingestion columns;
    as versions, `_version_key` too. `name` tags the files (`pncp_assets.schema`: `contrato_publicacao.v1`)."""

    def __init__(self, name: str, fields: Fields, text_fields: frozenset[str] = frozenset()):
        self.name = name
        self.fields = fields
        self._coercers = {f: _as_scalar_text if f in text_fields else _coercer(t) for f, t in fields}
        columns = [pa.field(f, t) for f, t in [*fields, *INGESTION_FIELDS]]
        self.schema = pa.schema(columns, metadata={"pncp_assets.schema": f"{name}_publicacao.v1"})
        self.version_schema = pa.schema([*columns, pa.field(VERSION_FIELD, pa.string())],
                                        metadata={"pncp_assets.schema": f"{name}_atualizacao.v1"})

    def to_table(
        self,
        records: Sequence[dict[str, Any]],
        *,
        partition_key: str | None = None,
        provenance: Sequence[Provenance] | None = None,
        ingested_at: dt.datetime | None = None,
        version_keys: Sequence[str] | None = None,
    ) -> pa.Table:
        """Encode API records with `schema`, whatever types or extra fields they carry; with `version_keys`
        (one per record), as versions with `version_schema`."""
        if provenance is not None and len(provenance) != len(records):
            raise ValueError("provenance must have one entry per record")
        if version_keys is not None and len(version_keys) != len(records):
            raise ValueError("version_keys must have one entry per record")
        columns: dict[str, list[Any]] = {}
        for name, conv in self._coercers.items():
            columns[name] = [conv(r.get(name)) for r in records]
        columns["_raw"] = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
        stamp = (ingested_at or utc_now()).astimezone(UTC)
        columns["_ingested_at"] = [stamp] * len(records)
        columns["_partition_key"] = [partition_key] * len(records)
        prov = provenance or [Provenance()] * len(records)
        columns["_modalidade"] = [p.modalidade for p in prov]
        columns["_pagina"] = [p.pagina for p in prov]
        schema = self.schema
        if version_keys is not None:
            columns[VERSION_FIELD], schema = list(version_keys), self.version_schema
        arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)


# zstd by default: measured on a simulated day in 24 hourly files, 0.20 of the JSON size against Snappy's
# 0.31, and faster to write (bench/bench_bronze.py); pyarrow, pandas, polars, DuckDB and Spark read it.
CODECS = ("zstd", "snappy", "gzip", "none")
DEFAULT_CODEC = "zstd"


def validate_compression(codec: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"compression {codec!r} is not valid; use one of: {', '.join(CODECS)}")
    return codec


def table_to_parquet(table: pa.Table, compression: str = DEFAULT_CODEC) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=validate_compression(compression))
    return sink.getvalue()


def read_parquet(data: bytes, columns: Iterable[str] | None = None) -> pa.Table:
    # One small file: `ParquetFile`, not `read_table`, whose dataset machinery (and the pandas it imports)
    # costs a run 0.1 s and 30 MB for nothing here; and no thread pool (pyarrow 26's pool can abort the
    # process at exit, "terminate called without an active exception", measured here in about 4 of 10 short
    # processes that read with threads).
    return pq.ParquetFile(io.BytesIO(data)).read(columns=list(columns) if columns is not None else None,
                                                 use_threads=False)


def parquet_ids(data: bytes, id_field: str = ID_FIELD) -> list[str]:
    """The record IDs of one Bronze file (reads that column only)."""
    return read_parquet(data, columns=[id_field]).column(0).to_pylist()


def ids_of(data: bytes, key_field: str = ID_FIELD) -> list[str] | None:
    """The keys of a Parquet file, or None when it does not parse or has no such column (never trust a broken
    object)."""
    try:
        return [x for x in parquet_ids(data, key_field) if isinstance(x, str)]
    except Exception:
        return None


def concat_tables(tables: Sequence[pa.Table | None], schema: pa.Schema) -> pa.Table:
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return schema.empty_table()
    # A cast only where a schema differs (a file of an older writer): casting loads pyarrow.compute (8 MB).
    tables = [t if t.schema.equals(schema, check_metadata=True) else t.cast(schema) for t in tables]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def raw_records(table: pa.Table) -> list[dict[str, Any]]:
    """The records exactly as the API sent them, from the `_raw` column."""
    return [json.loads(text) for text in table.column("_raw").to_pylist()]


# --- Records handed over by a caller (the original document's upload) -------------------------------

def upload_table(record: RecordSchema, data: Any, *, partition_key: str | None = None,
                 ingested_at: dt.datetime | None = None) -> pa.Table:
    """A caller's records (a pandas DataFrame or a list of dicts) as one table: the layer's typed columns
    and `_raw` as for API records, then every other column the caller gave, with its own type (a DataFrame's
    dtypes, or what pyarrow infers from the values; a column of mixed values as JSON text). The schema keeps
    pandas' metadata for those columns, so that pandas reads them back with their dtypes."""
    if _is_frame(data):
        frame = data
        records = [{k: jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        names = [str(c) for c in frame.columns]
    elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
        records = [{k: jsonable(v) for k, v in r.items()} for r in data]
        names = list(dict.fromkeys(str(k) for r in data for k in r))
    else:
        raise TypeError(f"Bronze files take a list of dicts or a pandas DataFrame, not {type(data).__name__}")
    typed = {name for name, _ in record.fields}
    clashes = [n for n in names if n.startswith("_")]
    if clashes:
        raise ValueError(f"columns {clashes[:5]} start with '_': such names are Bronze's (_raw, ...)")
    extras = [n for n in names if n not in typed]
    table = record.to_table(records, partition_key=partition_key, ingested_at=ingested_at)
    if not extras:
        return table
    native = _native_columns(data, extras)
    metadata = {**(table.schema.metadata or {}), **(native.schema.metadata or {})}  # pandas' own, for a frame
    columns = [*table.columns, *native.columns]
    fields = [*table.schema, *native.schema]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=metadata))


def _is_frame(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("pandas") and hasattr(data, "to_dict") and hasattr(data, "columns")


def _native_columns(data: Any, names: list[str]) -> pa.Table:
    if _is_frame(data):
        frame = data[names]
        frame.columns = names
        return pa.Table.from_pandas(frame, preserve_index=False)
    arrays = []
    for name in names:
        values = [r.get(name) for r in data]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arrays.append(pa.array([None if v is None else json.dumps(jsonable(v), ensure_ascii=False)
                                    for v in values], type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def jsonable(value: Any) -> Any:
    """A caller's value as the API would have sent it in JSON: times and dates as ISO text, numpy and pandas
    scalars as Python ones, NaN and pandas' missing values (NaT, NA) as null; anything else as its text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN: missing
    pd = sys.modules.get("pandas")  # only a caller that loaded pandas can hand over its missing values
    if pd is not None and pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return jsonable(tolist())
    return str(value)
