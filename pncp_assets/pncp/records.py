"""The contratação record of `/v1/contratacoes/publicacao` and `/atualizacao`: its keys (the ID, and the
version key), the ID rule and its fields."""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pncp_assets.brasilia import TZ

T = TypeVar("T")

ID_FIELD = "numeroControlePNCP"

# {CNPJ 14}-1-{sequence 6}/{year}; the CNPJ becomes alphanumeric from 2026. ([0-9], not \d: \d would
# accept any Unicode digit.)
_ID = r"[0-9A-Z]{14}-1-[0-9]{6}/[0-9]{4}"
ID_PATTERN = re.compile(_ID)
_ID_LINES = re.compile(rf"(?:{_ID}\n)*")

MODALIDADE_NAMES: dict[int, str] = {
    1: "Leilão - Eletrônico", 2: "Diálogo Competitivo", 3: "Concurso", 4: "Concorrência - Eletrônica",
    5: "Concorrência - Presencial", 6: "Pregão - Eletrônico", 7: "Pregão - Presencial", 8: "Dispensa",
    9: "Inexigibilidade", 10: "Manifestação de Interesse", 11: "Pré-qualificação", 12: "Credenciamento",
    13: "Leilão - Presencial", 14: "Inaplicabilidade da Licitação", 15: "Chamada pública",
    16: "Concorrência - Eletrônica Internacional", 17: "Concorrência - Presencial Internacional",
    18: "Pregão - Eletrônico Internacional", 19: "Pregão - Presencial Internacional",
}


def id_problem(record: Any, id_field: str = ID_FIELD) -> str | None:
    """Why a record cannot be keyed (None when its ID is valid)."""
    if not isinstance(record, dict):
        return f"record is a {type(record).__name__}, not an object"
    value = record.get(id_field)
    if value is None:
        return f"missing {id_field}"
    if not isinstance(value, str):
        return f"{id_field} is a {type(value).__name__}, not a string"
    if not value:
        return f"empty {id_field}"
    if id_field == ID_FIELD and not ID_PATTERN.fullmatch(value):
        return f"{id_field} {value[:80]!r} does not match the PNCP mask CNPJ-1-NNNNNN/YYYY"
    return None


def all_valid_ids(ids: list[str]) -> bool:
    """True when every ID (strings) matches the mask: one regex pass over all of them, 3x faster
    than one match per ID on a large day."""
    return not ids or _ID_LINES.fullmatch("\n".join(ids) + "\n") is not None


def record_key(record: Any, id_field: str = ID_FIELD) -> str:
    """What makes a record distinct: its ID, or for a record without a valid ID its whole content (the
    same broken record on two pages, or in two passes of a sweep, is one record; two records sharing
    an empty or malformed ID are two)."""
    rid = record.get(id_field) if isinstance(record, dict) else None
    if isinstance(rid, str) and (id_field != ID_FIELD or ID_PATTERN.fullmatch(rid)):
        return rid
    return "\x00" + json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)  # never an ID


def first_copies(pages: Iterable[tuple[T, list[Any]]], id_field: str = ID_FIELD) -> list[tuple[Any, T]]:
    """Each distinct record once (the first copy seen), with the tag of the page it came from.

    Records without a usable ID are kept too (once each): the state rejects them, visibly, rather than
    losing them here.
    """
    seen: set[str] = set()
    out: list[tuple[Any, T]] = []
    for tag, records in pages:
        for record in records:
            key = record_key(record, id_field)
            if key not in seen:
                seen.add(key)
                out.append((record, tag))
    return out


# --- Times and versions ----------------------------------------------------------------------------

VERSION_FIELD = "_version_key"  # the Bronze column (and state entry) naming one version of a record
VERSION_TIME_FIELD = "dataAtualizacaoGlobal"  # moves with every change to the record, its items or documents


def api_time(value: Any) -> dt.datetime | None:
    """A PNCP timestamp (no offset: Brasília time) as an aware datetime; None when it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment


def version_problem(record: Any) -> str | None:
    """Why a record cannot be keyed as a version (None when it can)."""
    problem = id_problem(record)
    if problem is None and api_time(record.get(VERSION_TIME_FIELD)) is None:
        problem = f"{VERSION_TIME_FIELD} {str(record.get(VERSION_TIME_FIELD))[:40]!r} is not a timestamp"
    return problem


def version_key(record: dict[str, Any]) -> str:
    """`numeroControlePNCP@dataAtualizacaoGlobal` (Brasília wall time, ISO): one version of a record.
    Only for records `version_problem` accepts."""
    moment = api_time(record[VERSION_TIME_FIELD]).astimezone(TZ).replace(tzinfo=None)  # type: ignore[union-attr]
    return f"{record[ID_FIELD]}@{moment.isoformat()}"


@dataclass(frozen=True)
class RecordKey:
    """How a layer names a record: the Bronze column holding the name, why a record has none, and the
    name itself (for records without a problem)."""

    field: str
    problem: Callable[[Any], str | None]
    of: Callable[[dict[str, Any]], str]
    in_record: bool = False  # the name is the record's own `field` (an ID): `split` reads them all at once


def field_key(field: str) -> RecordKey:
    """Records named by one of their own fields (the ID by default)."""
    if field == ID_FIELD:
        return ID_KEY
    return RecordKey(field, functools.partial(id_problem, id_field=field), operator.itemgetter(field), True)


ID_KEY = RecordKey(ID_FIELD, id_problem, operator.itemgetter(ID_FIELD), True)
VERSION_KEY = RecordKey(VERSION_FIELD, version_problem, version_key)


# --- Filtering records against the IDs a day has seen ------------------------------------------


def filter_rate(duplicates: int, inputs: int) -> float:
    """`100 * duplicates / inputs`, rounded to 2 places; 0 when there is no input."""
    return round(100.0 * duplicates / inputs, 2) if inputs else 0.0


def split(
    records: Sequence[Any], seen: set[str], key: RecordKey = ID_KEY
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """Split records into (new, rejected, already processed count, repeated-in-input count), naming each
    record by `key` (its ID by default; a version key for versions). Duplicates keep the first copy."""
    if key.in_record:
        # The common case first: every record named by a valid ID, the new ones checked against the mask
        # all at once (IDs in the state were validated when they were added).
        ids = [r.get(key.field) if type(r) is dict else None for r in records]
        if set(map(type, ids)) <= {str} and all(ids):
            new, new_ids, already, in_input = _first_unseen(records, ids, seen)
            if key is not ID_KEY or all_valid_ids(new_ids):
                return new, [], already, in_input
    # Record by record, with the reason for each rejected one.
    rejected: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for record in records:
        problem = key.problem(record)
        if problem is None:
            kept.append(record)
        else:
            rejected.append({"reason": problem, "record": record})
    new, _, already, in_input = _first_unseen(kept, [key.of(r) for r in kept], seen)
    return new, rejected, already, in_input


def _first_unseen(
    records: Sequence[dict[str, Any]], keys: Sequence[str], seen: set[str]
) -> tuple[list[dict[str, Any]], list[str], int, int]:
    """(records whose key is not in `seen`, first copy of each; their keys; how many were in `seen`;
    how many repeated a key earlier in the input)."""
    new: list[dict[str, Any]] = []
    new_keys: list[str] = []
    already = in_input = 0
    taken: set[str] = set()
    for record, key in zip(records, keys, strict=True):
        if key in seen:
            already += 1
        elif key in taken:
            in_input += 1
        else:
            taken.add(key)
            new.append(record)
            new_keys.append(key)
    return new, new_keys, already, in_input


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


def format_filter_line(stats: dict[str, Any], changed: int | None = None) -> str:
    """The seed's log line; for versions (`changed`: how many contratações published before the hour
    have a new version) it names versions."""
    label, new = ("State filtering", "new") if changed is None else ("Version filtering", "new versions")
    line = (
        f"{label}: {stats['input_records']} input -> {stats['new_records']} {new} "
        f"({stats['duplicates_filtered']} duplicates filtered)"
    )
    if changed is not None:
        line += f", {changed} records changed"
    if stats["rejected"]:
        line += f", {stats['rejected']} rejected (invalid {ID_FIELD if changed is None else 'version key'})"
    return line
