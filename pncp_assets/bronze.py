"""Bronze: the one owner of the storage key layout and of the Parquet encoding of PNCP records.

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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pncp_assets.brasilia import TZ, UTC, parse_day, to_brasilia, utc_now
from pncp_assets.pncp.records import ID_FIELD

# --- Key layout ---------------------------------------------------------------------------------

_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PARTITION_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}:00$")


def validate_source(source: str) -> str:
    """A source name is a lowercase identifier: it becomes a key prefix, so nothing path-like passes."""
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ValueError(f"invalid source {source!r}: use a lowercase name like 'pncp' (a-z, 0-9, _)")
    return source


def parse_partition_key(key: str) -> dt.datetime:
    """`2025-10-22-08:00` -> the aware start of that hour in Brasília time."""
    if not isinstance(key, str) or not _PARTITION_KEY.match(key):
        raise ValueError(f"invalid hourly partition key {key!r}: expected YYYY-MM-DD-HH:00")
    try:
        naive = dt.datetime.strptime(key, "%Y-%m-%d-%H:%M")
    except ValueError:
        raise ValueError(f"invalid hourly partition key {key!r}: not a real date and hour") from None
    return naive.replace(tzinfo=TZ)


def hours_by_day(partition_keys: Iterable[str]) -> dict[dt.date, list[str]]:
    """Hourly partition keys grouped by their Brasília day, days and hours in time order."""
    days: dict[dt.date, list[str]] = {}
    for key in sorted(partition_keys, key=parse_partition_key):
        days.setdefault(parse_partition_key(key).date(), []).append(key)
    return days


def partition_key_for(moment: dt.datetime) -> str:
    return to_brasilia(moment).strftime("%Y-%m-%d-%H:00")


def _day_path(day: dt.date) -> str:
    return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def day_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """The folder of a day's Bronze delta files: `pncp/year=YYYY/month=MM/day=DD/`."""
    return f"{validate_source(source)}/{_day_path(parse_day(day))}/"


def layer_prefix(source: str, layer: str, day: str | dt.date | dt.datetime) -> str:
    """A side layer's folder for a day (`_state`, `_raw`, `_rejected`): skipped by Hive readers, and holding
    no Parquet, so that glob readers of `pncp/**/*.parquet` skip it too."""
    if not layer.startswith("_"):
        raise ValueError(f"side layer {layer!r} must start with '_' so Hive readers skip it")
    return f"{validate_source(source)}/{layer}/{_day_path(parse_day(day))}/"


def bronze_key(source: str, moment: dt.datetime, extension: str = "parquet") -> str:
    """`pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HHMMSS.parquet` for a Brasília moment."""
    local = to_brasilia(moment)
    return f"{day_prefix(source, local)}{source}_{local:%Y%m%d_%H%M%S}.{extension}"


def delta_key(source: str, partition_key: str) -> str:
    """The Bronze delta of an hourly partition, named by the hour's start."""
    return bronze_key(source, parse_partition_key(partition_key))


def state_key(source: str, day: str | dt.date | dt.datetime) -> str:
    d = parse_day(day)
    return f"{layer_prefix(source, '_state', d)}state_{d:%Y%m%d}.json"


def is_delta_key(key: str) -> bool:
    return key.endswith(".parquet") and "/_" not in key and not key.startswith("_")


_DELTA_NAME = re.compile(r"^[a-z][a-z0-9_]*_(\d{8})_(\d{2})0000\.parquet$")


def partition_of_delta(key: str) -> str | None:
    """`.../pncp_20251022_080000.parquet` -> `2025-10-22-08:00` (None for any other file)."""
    match = _DELTA_NAME.match(key.rsplit("/", 1)[-1])
    if not match or not is_delta_key(key):
        return None
    day, hour = match.groups()
    return f"{day[:4]}-{day[4:6]}-{day[6:]}-{hour}:00"


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def staging_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """Where a day's staged deltas live: `_staging/pncp/year=YYYY/month=MM/day=DD/`, outside the dataset
    prefix, so that a reader of `pncp/**/*.parquet` never sees a delta that is not published."""
    return f"_staging/{validate_source(source)}/{_day_path(parse_day(day))}/"


def legacy_staging_prefix(source: str, day: str | dt.date | dt.datetime) -> str:
    """Where staged deltas lived before: `pncp/_staging/...` (claims may still name such keys)."""
    return layer_prefix(source, "_staging", day)


def staging_key(source: str, partition_key: str, run_id: str, at: dt.datetime | None = None) -> str:
    """A delta staged by one run: named by the partition, the time (for the grace period) and the run."""
    start = parse_partition_key(partition_key)
    safe_run = re.sub(r"[^A-Za-z0-9_-]", "", run_id)[:64] or "run"
    return (f"{staging_prefix(source, start)}{source}_{start:%Y%m%d_%H}0000"
            f".{_stamp(at or utc_now())}.{safe_run}.parquet")


def staged_at(key: str) -> dt.datetime | None:
    """When a staged delta was written (from its name); None if the name is not a staging name."""
    parts = key.rsplit("/", 1)[-1].split(".")
    try:
        return parse_stamp(parts[1]) if len(parts) == 4 else None
    except ValueError:
        return None


def raw_sweep_key(source: str, day: str | dt.date, started: dt.datetime) -> str:
    d = parse_day(day)
    return f"{layer_prefix(source, '_raw', d)}sweep_{d:%Y%m%d}_{_stamp(started)}.json.gz"


def raw_assignment_key(source: str, partition_key: str) -> str:
    """Which sweep served partition H (a small JSON pointer)."""
    start = parse_partition_key(partition_key)
    return f"{layer_prefix(source, '_raw', start)}partition_{start:%Y%m%d_%H}0000.json"


def rejected_key(source: str, partition_key: str) -> str:
    start = parse_partition_key(partition_key)
    return f"{layer_prefix(source, '_rejected', start)}{source}_{start:%Y%m%d_%H}0000.jsonl"


# --- Schema -----------------------------------------------------------------------------------

TIMESTAMP = pa.timestamp("ms", tz="America/Sao_Paulo")

ORGAO = pa.struct([
    ("cnpj", pa.string()), ("razaoSocial", pa.string()), ("poderId", pa.string()), ("esferaId", pa.string()),
])
UNIDADE = pa.struct([
    ("ufNome", pa.string()), ("ufSigla", pa.string()), ("municipioNome", pa.string()),
    ("codigoUnidade", pa.string()), ("nomeUnidade", pa.string()), ("codigoIbge", pa.string()),
])
AMPARO = pa.struct([("codigo", pa.int64()), ("nome", pa.string()), ("descricao", pa.string())])
FONTE = pa.struct([
    ("codigo", pa.int64()), ("nome", pa.string()), ("descricao", pa.string()), ("dataInclusao", TIMESTAMP),
])

# The 35 documented fields, in the API's usual order, with the types seen live (API_NOTES.md).
RECORD_FIELDS: list[tuple[str, pa.DataType]] = [
    ("numeroControlePNCP", pa.string()),
    ("srp", pa.bool_()),
    ("orgaoEntidade", ORGAO),
    ("anoCompra", pa.int64()),
    ("sequencialCompra", pa.int64()),
    ("dataInclusao", TIMESTAMP),
    ("dataPublicacaoPncp", TIMESTAMP),
    ("dataAtualizacao", TIMESTAMP),
    ("dataAtualizacaoGlobal", TIMESTAMP),
    ("numeroCompra", pa.string()),
    ("unidadeOrgao", UNIDADE),
    ("amparoLegal", AMPARO),
    ("dataAberturaProposta", TIMESTAMP),
    ("dataEncerramentoProposta", TIMESTAMP),
    ("informacaoComplementar", pa.string()),
    ("processo", pa.string()),
    ("objetoCompra", pa.string()),
    ("linkSistemaOrigem", pa.string()),
    ("linkProcessoEletronico", pa.string()),
    ("justificativaPresencial", pa.string()),
    ("unidadeSubRogada", UNIDADE),
    ("orgaoSubRogado", ORGAO),
    ("valorTotalEstimado", pa.float64()),
    ("valorTotalHomologado", pa.float64()),
    ("modalidadeId", pa.int64()),
    ("modalidadeNome", pa.string()),
    ("modoDisputaId", pa.int64()),
    ("modoDisputaNome", pa.string()),
    ("tipoInstrumentoConvocatorioCodigo", pa.int64()),
    ("tipoInstrumentoConvocatorioNome", pa.string()),
    ("situacaoCompraId", pa.int64()),
    ("situacaoCompraNome", pa.string()),
    ("usuarioNome", pa.string()),
    ("fontesOrcamentarias", pa.list_(FONTE)),
    # Newer and always null in the samples: its type is unknown, so any JSON scalar is kept as text.
    ("emendaParlamentar", pa.string()),
]

INGESTION_FIELDS: list[tuple[str, pa.DataType]] = [
    ("_raw", pa.string()),
    ("_ingested_at", pa.timestamp("ms", tz="UTC")),
    ("_partition_key", pa.string()),
    ("_modalidade", pa.int32()),
    ("_pagina", pa.int32()),
]

BRONZE_SCHEMA = pa.schema(
    [pa.field(name, typ) for name, typ in RECORD_FIELDS]
    + [pa.field(name, typ) for name, typ in INGESTION_FIELDS],
    metadata={"pncp_assets.schema": "contratacao_publicacao.v1"},
)


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


def _as_timestamp(v: Any) -> dt.datetime | None:
    if not isinstance(v, str) or len(v) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(v)
    except ValueError:
        return None
    return parsed.replace(tzinfo=TZ) if parsed.tzinfo is None else parsed


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
        return _as_timestamp
    if pa.types.is_boolean(typ):
        return _as_bool
    if pa.types.is_integer(typ):
        return _as_int
    if pa.types.is_floating(typ):
        return _as_float
    return _as_str


_COERCERS = {name: _coercer(typ) for name, typ in RECORD_FIELDS}
_COERCERS["emendaParlamentar"] = _as_scalar_text


@dataclass(frozen=True)
class Provenance:
    """Where a record came from: the query's modalidade and page."""

    modalidade: int | None = None
    pagina: int | None = None


def records_to_table(
    records: Sequence[dict[str, Any]],
    *,
    partition_key: str | None = None,
    provenance: Sequence[Provenance] | None = None,
    ingested_at: dt.datetime | None = None,
) -> pa.Table:
    """Encode API records with `BRONZE_SCHEMA`, whatever types or extra fields they carry."""
    if provenance is not None and len(provenance) != len(records):
        raise ValueError("provenance must have one entry per record")
    columns: dict[str, list[Any]] = {}
    for name, _ in RECORD_FIELDS:
        conv = _COERCERS[name]
        columns[name] = [conv(r.get(name)) for r in records]
    columns["_raw"] = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
    stamp = (ingested_at or utc_now()).astimezone(UTC)
    columns["_ingested_at"] = [stamp] * len(records)
    columns["_partition_key"] = [partition_key] * len(records)
    prov = provenance or [Provenance()] * len(records)
    columns["_modalidade"] = [p.modalidade for p in prov]
    columns["_pagina"] = [p.pagina for p in prov]
    arrays = [pa.array(columns[f.name], type=f.type) for f in BRONZE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=BRONZE_SCHEMA)


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def encode_parquet(records: Sequence[dict[str, Any]], **kwargs: Any) -> bytes:
    """Records -> Snappy Parquet bytes with the Bronze schema."""
    return table_to_parquet(records_to_table(records, **kwargs))


def read_parquet(data: bytes, columns: Iterable[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(data), columns=list(columns) if columns is not None else None)


def parquet_ids(data: bytes, id_field: str = ID_FIELD) -> list[str]:
    """The record IDs of one Bronze file (reads that column only)."""
    return read_parquet(data, columns=[id_field]).column(0).to_pylist()


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return BRONZE_SCHEMA.empty_table()
    return pa.concat_tables([t.cast(BRONZE_SCHEMA) for t in tables])


def raw_records(table: pa.Table) -> list[dict[str, Any]]:
    """The records exactly as the API sent them, from the `_raw` column."""
    return [json.loads(text) for text in table.column("_raw").to_pylist()]


# --- One Bronze file from records (the seed's upload) ----------------------------------------------

def write_bronze_file(store: Any, data: Any, source: str = "pncp", date: dt.datetime | None = None,
                      format: str = "parquet") -> str:
    """Write records (a DataFrame or a list of dicts) as one Bronze file on `store`; returns its key.

    The key is `pncp/year=YYYY/month=MM/day=DD/pncp_YYYYMMDD_HHMMSS.parquet` for `date` (Brasília
    time; default now). `format="json"` is the seed's legacy format: it is written under
    `pncp/_legacy_json/...` so that the Parquet dataset under `pncp/` stays readable as one.
    """
    records = _as_records(data)
    moment = to_brasilia(date or utc_now())
    if format == "parquet":
        key = bronze_key(source, moment)
        body = encode_parquet(records, partition_key=partition_key_for(moment))
    elif format == "json":
        name = bronze_key(source, moment, extension="json").rsplit("/", 1)[1]
        key = f"{layer_prefix(source, '_legacy_json', moment)}{name}"
        body = json.dumps(records, ensure_ascii=False, default=str).encode("utf-8")
    else:
        raise ValueError(f"invalid format {format!r}: use 'parquet' or 'json'")
    store.put(key, body)
    return key


def _as_records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise TypeError("Bronze files take a list of dicts or a pandas DataFrame")
        return data
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict):  # a pandas DataFrame: NaN/NaT become None, as in the API's JSON
        import pandas as pd

        frame = data.astype(object).where(pd.notna(data), None)
        return frame.to_dict(orient="records")
    raise TypeError(f"Bronze files take a list of dicts or a pandas DataFrame, not {type(data).__name__}")
