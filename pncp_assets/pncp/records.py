"""PNCP records and their keys: the ID rule of each feed (`IdRule`), the version key
(`ID@dataAtualizacaoGlobal`), and the duplicate filter that names records by a layer's key."""

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

# A contratação: {CNPJ 14}-1-{sequence 6}/{year}; the CNPJ becomes alphanumeric from 2026. ([0-9], not
# \d: \d would accept any Unicode digit.)
_ID = r"[0-9A-Z]{14}-1-[0-9]{6}/[0-9]{4}"
ID_PATTERN = re.compile(_ID)
# The other feeds' IDs have masks too (a contrato `{CNPJ}-2-{seq}/{year}`), but PNCP documents none of
# them: any printable text without spaces, within a sane length, names a record.
_ANY_ID = r"[!-~À-ÿ]{1,200}"


@dataclass(frozen=True)
class IdRule:
    """A feed's record ID: the field holding it and the mask it must match."""

    field: str = ID_FIELD
    pattern: str = _ID

    @functools.cached_property
    def _one(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    @functools.cached_property
    def _lines(self) -> re.Pattern[str]:
        return re.compile(rf"(?:{self.pattern}\n)*")

    def problem(self, record: Any) -> str | None:
        """Why a record cannot be keyed (None when its ID is valid)."""
        if not isinstance(record, dict):
            return f"record is a {type(record).__name__}, not an object"
        value = record.get(self.field)
        if value is None:
            return f"missing {self.field}"
        if not isinstance(value, str):
            return f"{self.field} is a {type(value).__name__}, not a string"
        if not value:
            return f"empty {self.field}"
        if not self._one.fullmatch(value):
            mask = "the PNCP mask CNPJ-1-NNNNNN/YYYY" if self.pattern == _ID else "an ID (printable, no spaces)"
            return f"{self.field} {value[:80]!r} does not match {mask}"
        return None

    def valid(self, value: Any) -> bool:
        return isinstance(value, str) and self._one.fullmatch(value) is not None

    def all_valid(self, ids: list[str]) -> bool:
        """True when every ID (strings) matches: one regex pass over all of them, 3x faster than one
        match per ID on a large day."""
        return not ids or self._lines.fullmatch("\n".join(ids) + "\n") is not None


CONTRATACAO_ID = IdRule()


def any_id(field: str) -> IdRule:
    """An ID rule without a documented mask."""
    return IdRule(field, _ANY_ID)

MODALIDADE_NAMES: dict[int, str] = {
    1: "Leilão - Eletrônico", 2: "Diálogo Competitivo", 3: "Concurso", 4: "Concorrência - Eletrônica",
    5: "Concorrência - Presencial", 6: "Pregão - Eletrônico", 7: "Pregão - Presencial", 8: "Dispensa",
    9: "Inexigibilidade", 10: "Manifestação de Interesse", 11: "Pré-qualificação", 12: "Credenciamento",
    13: "Leilão - Presencial", 14: "Inaplicabilidade da Licitação", 15: "Chamada pública",
    16: "Concorrência - Eletrônica Internacional", 17: "Concorrência - Presencial Internacional",
    18: "Pregão - Eletrônico Internacional", 19: "Pregão - Presencial Internacional",
}


def record_key(record: Any, rule: IdRule = CONTRATACAO_ID) -> str:
    """What makes a record distinct: its ID, or for a record without a valid ID its whole content (the
    same broken record on two pages, or in two passes of a sweep, is one record; two records sharing
    an empty or malformed ID are two)."""
    rid = record.get(rule.field) if isinstance(record, dict) else None
    if rule.valid(rid):
        return rid  # type: ignore[return-value]
    return "\x00" + json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)  # never an ID


def first_copies(pages: Iterable[tuple[T, list[Any]]], rule: IdRule = CONTRATACAO_ID) -> list[tuple[Any, T]]:
    """Each distinct record once (the first copy seen), with the tag of the page it came from.

    Records without a usable ID are kept too (once each): the state rejects them, visibly, rather than
    losing them here.
    """
    seen: set[str] = set()
    out: list[tuple[Any, T]] = []
    for tag, records in pages:
        for record in records:
            key = record_key(record, rule)
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


def version_problem(record: Any, rule: IdRule = CONTRATACAO_ID) -> str | None:
    """Why a record cannot be keyed as a version (None when it can)."""
    problem = rule.problem(record)
    if problem is None and api_time(record.get(VERSION_TIME_FIELD)) is None:
        problem = f"{VERSION_TIME_FIELD} {str(record.get(VERSION_TIME_FIELD))[:40]!r} is not a timestamp"
    return problem


def version_key(record: dict[str, Any], id_field: str = ID_FIELD) -> str:
    """`ID@dataAtualizacaoGlobal` (Brasília wall time, ISO): one version of a record. Only for records
    `version_problem` accepts."""
    moment = api_time(record[VERSION_TIME_FIELD]).astimezone(TZ).replace(tzinfo=None)  # type: ignore[union-attr]
    return f"{record[id_field]}@{moment.isoformat()}"


@dataclass(frozen=True)
class RecordKey:
    """How a layer names a record: the Bronze column holding the name, why a record has none, and the
    name itself (for records without a problem)."""

    field: str
    problem: Callable[[Any], str | None]
    of: Callable[[dict[str, Any]], str]
    rule: IdRule = CONTRATACAO_ID  # the record's own ID
    in_record: bool = False  # the name is the record's own `field` (an ID): `split` reads them all at once


def id_key(rule: IdRule) -> RecordKey:
    """Records named by their ID."""
    return RecordKey(rule.field, rule.problem, operator.itemgetter(rule.field), rule, True)


def versions_key(rule: IdRule) -> RecordKey:
    """Versions named `ID@dataAtualizacaoGlobal` (column `_version_key`)."""
    return RecordKey(VERSION_FIELD, functools.partial(version_problem, rule=rule),
                     functools.partial(version_key, id_field=rule.field), rule)


def field_key(field: str) -> RecordKey:
    """Records named by one of their own fields (the contratação's ID by default)."""
    return ID_KEY if field == ID_FIELD else id_key(any_id(field))


ID_KEY = id_key(CONTRATACAO_ID)
VERSION_KEY = versions_key(CONTRATACAO_ID)


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
            if key.rule.all_valid(new_ids):
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


def format_filter_line(stats: dict[str, Any], changed: int | None = None, id_field: str = ID_FIELD) -> str:
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
        line += f", {stats['rejected']} rejected (invalid {id_field if changed is None else 'version key'})"
    return line
