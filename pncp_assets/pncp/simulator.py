"""A local PNCP API over real HTTP on loopback, for tests and the demo: the contratações
(`/v1/contratacoes/publicacao`, `/atualizacao`), the contratos (`/v1/contratos`, `/v1/contratos/atualizacao`)
and the atas (`/v1/atas/atualizacao`). Contratos and atas are signed out of the world's contratações (some
of a day long before any pipeline's start), and change after publication (amendments, cancellations).

    python -m pncp_assets.pncp.simulator --port 8765 --seed 1 [--now 2025-10-22T23:59:59] ...

It speaks the contract of the real API (docs/PNCP_API.md): its validation errors, its envelope, 204 with
no body when nothing matches, and, when switched on, its faults: HTML 429 bursts, transient 204s, 5xx,
slow answers, dropped connections, short pages, records inserted or removed mid-sweep, late records (hours
late, or backdated by days into a finished day), records withdrawn or moved to another publication day after
they were listed, the same record on two pages, malformed bodies. A clock decides what is visible: a query sees only
records published up to the simulated "now".

And the API's time, when switched on (`TimeModel`): each page takes a latency that grows with its rows, a
request beyond a ceiling of requests in flight answers 500 or 504, one that starts sooner than the minimum
interval after the previous start answers 429, slow spells multiply the latency and outage windows answer 503;
every duration is in the API's seconds, scaled by `time_scale` (0.1: everything ten times faster) from the
moment the simulator starts.

Control (for processes that did not start it): `GET /_sim/state`, `POST /_sim/config` with a JSON
object of `SimulatorConfig` fields (`now` as `YYYY-MM-DDTHH:MM:SS`, Brasília time), `GET /_sim/log`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pncp_assets.brasilia import TZ as BRASILIA
from pncp_assets.pncp.records import ID_PATTERN
from pncp_assets.pncp.synthetic import (
    SyntheticRecord,
    generate_atas,
    generate_contratos,
    generate_day,
    records_per_day,
)

CONTRATACOES, CONTRATOS, ATAS = "contratacoes", "contratos", "atas"
ID_FIELDS = {CONTRATACOES: "numeroControlePNCP", CONTRATOS: "numeroControlePNCP", ATAS: "numeroControlePNCPAta"}
# path -> (what it lists, whether by change: included or changed that day, each as it is now)
ROUTES: dict[str, tuple[str, bool]] = {
    "/v1/contratacoes/publicacao": (CONTRATACOES, False), "/v1/contratacoes/atualizacao": (CONTRATACOES, True),
    "/v1/contratos": (CONTRATOS, False), "/v1/contratos/atualizacao": (CONTRATOS, True),
    "/v1/atas/atualizacao": (ATAS, True),
}
ROUTES.update({f"/api/consulta{path}": route for path, route in list(ROUTES.items())})
OTHER = "other"  # a route given to the simulator (`routes`): a feed it does not generate itself
# A route's records: (day, the simulated now or None) -> what the endpoint lists for that day, in order.
RouteRecords = Callable[[dt.date, "dt.datetime | None"], list[dict[str, Any]]]
HTML_429 = (b"<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests"
            b"</h1></center><hr><center>nginx</center></body></html>")


@dataclass
class SimulatorConfig:
    seed: int = 0
    business_day_volume: int = 6000
    volume: int | None = None  # records per day whatever the weekday (overrides business_day_volume)
    now: dt.datetime | None = None  # Brasília wall time; None = everything published is visible
    live: bool = False  # the clock is the real Brasília time (for the UI demo): nothing from the future
    # Faults, all off by default. Rates are probabilities per request (deterministic from the seed).
    rate_limit_every: int = 0  # every N-th request starts a 429 burst ...
    rate_limit_burst: int = 3  # ... of this many requests
    transient_204_rate: float = 0.0  # a page with data answers 204 instead
    error_5xx_rate: float = 0.0
    drop_rate: float = 0.0  # the connection is closed without an answer
    slow_rate: float = 0.0
    slow_seconds: float = 0.0  # how long a slow answer takes (set it past the client's read timeout)
    short_page_rate: float = 0.0  # a page comes back with fewer rows than it should
    shift_every: int = 0  # every N-th request a new record is inserted (and, if shift_remove, one removed)
    shift_remove: bool = False
    late_fraction: float = 0.0  # share of records visible only `late_hours` after publication
    late_hours: float = 3.0
    late_hours_max: float | None = None  # if set, each late record's delay is drawn in [late_hours, this]
    # A late contratação's first dataAtualizacaoGlobal: near its publication, or the moment it was inserted
    # ("insertion"). With a delay of days, "insertion" puts its first version on a later day than its
    # publication. The real API's choice is not known: both are tried.
    late_updated_at: str = "publication"
    # Contratações withdrawn: this share of them leaves every listing `withdraw_after_days` after publication
    # (the day's totalRegistros falls).
    withdraw_fraction: float = 0.0
    withdraw_after_days: float = 1.0
    # Publication dates moved: this share of contratações, `move_after_days` after publication, is listed on
    # the day `move_by_days` later, its dataPublicacaoPncp (and dataAtualizacaoGlobal) changed then.
    move_fraction: float = 0.0
    move_after_days: float = 1.0
    move_by_days: int = 1
    # A page shows the next page's first record in place of its own last one, as when a record is
    # inserted between two page requests: the same record on two pages, and one missed by that pass.
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0  # a 200 whose body is broken in the way `malformed_kind` says
    # not_json (truncated) | html | not_utf8 | missing_fields | wrong_types | data_not_list | record_not_object
    malformed_kind: str = "not_json"
    huge_objeto_bytes: int = 0  # the day's first record gets an objetoCompra this many bytes long
    bad_ids: int = 0  # this many of the day's records carry a missing, empty, malformed or non-text ID
    empty_as_200: bool = False  # "nothing matches" as 200 with `"empty": true` instead of 204
    # Records change after publication (`/atualizacao`): this share of them, 1 to `updates_max` times
    # within `update_max_days` (see synthetic.updates_for). `/publicacao` shows the version current at
    # the clock too.
    update_fraction: float = 0.0
    update_max_days: float = 14.0
    updates_max: int = 3
    # Contratos and atas published a day, per contratação of that day (about 8,400 contratos a day on the
    # real API against 5,800 contratações). They change after publication with `update_fraction` too.
    contratos_ratio: float = 1.4
    atas_ratio: float = 0.25
    # The API's time (`TimeModel`); all off by default. Durations in the API's seconds, times `time_scale`.
    latency_s: float = 0.0  # a page's latency before its rows ...
    latency_per_row_s: float = 0.0  # ... plus this per row (about 3 s for 50 contratações, 5-8 s for 500 contratos)
    max_in_flight: int = 0  # a request arriving while this many are being answered gets 500 or 504 (0: no ceiling)
    min_start_interval_s: float = 0.0  # a request starting sooner than this after the previous start gets 429
    slow_spells: tuple[tuple[float, float, float], ...] = ()  # (from, to, factor): latency times factor
    outages: tuple[tuple[float, float], ...] = ()  # (from, to): every request answers 503
    time_scale: float = 1.0


@dataclass
class LoggedRequest:
    at: float  # time.monotonic() when the request arrived
    path: str
    params: dict[str, str]
    status: int
    rows: int
    duration_s: float
    in_flight: int = 1  # requests being answered when it arrived, itself included


class TimeModel:
    """The API's time: latency, the ceiling of requests in flight, the start rate, slow spells and outages, on
    a clock that starts with the simulator and runs `1 / time_scale` times as fast as the wall clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self.in_flight = 0
        self._last_start: float | None = None
        self._rng = random.Random("pncp-sim-time")

    def elapsed(self, config: SimulatorConfig) -> float:
        """Seconds of the API's time since the simulator started."""
        return (self._clock() - self.started) / config.time_scale

    def admit(self, config: SimulatorConfig) -> tuple[int | None, int]:
        """A request arrives: the status it is refused with (None: served), and how many are in flight with it.
        Every admitted request must be `release`d."""
        with self._lock:
            self.in_flight += 1
            in_flight = self.in_flight
            now = self.elapsed(config)
            too_soon = (config.min_start_interval_s and self._last_start is not None
                        and now - self._last_start < config.min_start_interval_s)
            self._last_start = now
        if any(start <= now < end for start, end in config.outages):
            return 503, in_flight
        if config.max_in_flight and in_flight > config.max_in_flight:
            return self._rng.choice((500, 504)), in_flight
        if too_soon:
            return 429, in_flight
        return None, in_flight

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def latency(self, config: SimulatorConfig, rows: int) -> float:
        """Wall seconds a page of `rows` takes now."""
        seconds = config.latency_s + rows * config.latency_per_row_s
        now = self.elapsed(config)
        for start, end, factor in config.slow_spells:
            if start <= now < end:
                seconds *= factor
        return seconds * config.time_scale


@dataclass
class _Day:
    records: list[SyntheticRecord]
    inserted: list[SyntheticRecord] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)


class PncpSimulator:
    """The simulator's state and logic, independent of HTTP."""

    def __init__(self, config: SimulatorConfig | None = None, routes: dict[str, RouteRecords] | None = None):
        """`routes`: further endpoints (path -> their records of a day), listed without modalidade in pages of up
        to 500 with the same contract and faults: how a test serves a feed of its own."""
        self.config = config or SimulatorConfig()
        self.routes = {path.removeprefix("/api/consulta"): records for path, records in (routes or {}).items()}
        self.log: list[LoggedRequest] = []
        self.time = TimeModel()
        self._days: dict[tuple[str, dt.date], _Day] = {}
        self._lock = threading.Lock()
        self._requests = 0
        self._burst_left = 0
        self._rng = random.Random(f"pncp-sim-faults:{self.config.seed}")
        # `/atualizacao` looks back over every day a change can come from: one answer per (day,
        # modalidade, clock) is computed once, not at every page.
        self._updated: dict[tuple[str, dt.date, int | None, dt.datetime | None], list[dict[str, Any]]] = {}

    # --- configuration -------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        with self._lock:
            if isinstance(changes.get("now"), str):
                changes["now"] = dt.datetime.fromisoformat(changes["now"])
            for name in ("slow_spells", "outages"):  # JSON lists, from `POST /_sim/config` or `--config`
                if name in changes:
                    changes[name] = tuple(tuple(window) for window in changes[name])
            data_changed = any(k in changes for k in ("seed", "business_day_volume", "volume", "late_fraction",
                                                      "late_hours", "late_hours_max", "late_updated_at",
                                                      "huge_objeto_bytes", "bad_ids",
                                                      "update_fraction", "update_max_days", "updates_max",
                                                      "contratos_ratio", "atas_ratio"))
            self.config = dataclasses.replace(self.config, **changes)
            if data_changed:
                self._days.clear()
                self._updated.clear()
                self._rng = random.Random(f"pncp-sim-faults:{self.config.seed}")

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    # --- data ----------------------------------------------------------------------------------

    def _day(self, day: dt.date, kind: str = CONTRATACOES) -> _Day:
        if (kind, day) not in self._days:
            c = self.config
            volume = c.volume if c.volume is not None else records_per_day(day, c.business_day_volume)
            if kind == CONTRATACOES:
                records = generate_day(day, c.seed, volume, c.late_fraction, c.late_hours, c.late_hours_max,
                                       c.update_fraction, c.update_max_days, c.updates_max, c.late_updated_at)
            elif kind == CONTRATOS:
                records = generate_contratos(day, c.seed, round(volume * c.contratos_ratio), self._contratacoes,
                                             c.update_fraction, c.update_max_days, c.updates_max, c.late_fraction,
                                             c.late_hours)
            else:
                records = generate_atas(day, c.seed, round(volume * c.atas_ratio), self._contratacoes,
                                        c.update_fraction, c.update_max_days)
            self._days[(kind, day)] = _Day(records)
            if kind == CONTRATACOES and c.huge_objeto_bytes and records:
                text = "Aquisição de material de consumo, conforme termo de referência. ".encode()
                huge = (text * (c.huge_objeto_bytes // len(text) + 1))[: c.huge_objeto_bytes]
                records[0].record["objetoCompra"] = huge.decode("utf-8", "ignore")
            id_field = ID_FIELDS[kind]
            for n, synthetic in enumerate(records[: c.bad_ids]):
                if n % 4 == 0:
                    del synthetic.record[id_field]
                else:
                    malformed = "PNCP-123" if kind == CONTRATACOES else "PNCP 123"  # off the mask; a space
                    synthetic.record[id_field] = ["", malformed, 12345][n % 4 - 1]
        return self._days[(kind, day)]

    def _contratacoes(self, day: dt.date) -> list[SyntheticRecord]:
        """The contratações of a day that contratos and atas can point at (those with a valid ID)."""
        ids = ((r, r.record.get("numeroControlePNCP")) for r in self._day(day).records)
        return [r for r, rid in ids if isinstance(rid, str) and ID_PATTERN.fullmatch(rid)]

    def now(self) -> dt.datetime | None:
        """The simulated Brasília wall time (naive), or None when everything published is visible."""
        if self.config.live:  # to the second: the answers of one second share the cached world
            return dt.datetime.now(BRASILIA).replace(tzinfo=None, microsecond=0)
        return self.config.now

    def _visible(self, day: dt.date, modalidade: int | None, now: dt.datetime | None,
                 kind: str = CONTRATACOES) -> list[SyntheticRecord]:
        d = self._day(day, kind)
        id_field = ID_FIELDS[kind]
        listed = [r for r in [*d.records, *d.inserted] if self._fate(r, now, kind) == "listed"]
        if kind == CONTRATACOES and self.config.move_fraction:  # those moved here from `move_by_days` before
            source = self._day(day - dt.timedelta(days=self.config.move_by_days), kind)
            listed += [self._moved(r) for r in source.records if self._fate(r, now, kind) == "moved"]
        return [r for r in listed
                if (now is None or r.visible_from <= now)
                and r.record.get(id_field) not in d.removed
                and (modalidade is None or r.record["modalidadeId"] == modalidade)]

    def _fate(self, r: SyntheticRecord, now: dt.datetime | None, kind: str) -> str:
        """Where a contratação is listed at `now`: on its day ("listed"), gone ("withdrawn"), or on a later day
        ("moved"); each record's fate drawn once from the seed and its ID. None: the end of time."""
        c = self.config
        if kind != CONTRATACOES or not (c.withdraw_fraction or c.move_fraction):
            return "listed"
        draw = random.Random(f"pncp-fate:{c.seed}:{r.record.get('numeroControlePNCP')}").random()
        for fate, share, after in (("withdrawn", c.withdraw_fraction, c.withdraw_after_days),
                                   ("moved", c.move_fraction, c.move_after_days)):
            if draw < share:
                return fate if now is None or r.published + dt.timedelta(days=after) <= now else "listed"
            draw -= share
        return "listed"

    def _moved(self, r: SyntheticRecord) -> SyntheticRecord:
        """A contratação as listed on the day its publication moved to."""
        c = self.config
        at = r.published + dt.timedelta(days=c.move_after_days)
        published = r.published + dt.timedelta(days=c.move_by_days)
        record = {**r.record, "dataPublicacaoPncp": published.strftime("%Y-%m-%dT%H:%M:%S"),
                  "dataAtualizacaoGlobal": at.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")}
        return dataclasses.replace(r, record=record, published=published, visible_from=max(r.visible_from, at),
                                   updates=tuple(u for u in r.updates if u.at > at))

    def visible_records(self, day: dt.date, modalidade: int | None = None, kind: str = CONTRATACOES
                        ) -> list[dict[str, Any]]:
        """What `/publicacao` (or `/v1/contratos`: `kind`) shows now for a day (and modalidade), in the
        API's order, each record as it is now."""
        now = self.now()  # read once: what is visible and which version shows agree
        rows = sorted(self._visible(day, modalidade, now, kind), key=lambda r: r.sort_key)
        return [r.version_at(now) for r in rows]

    def updated_records(self, day: dt.date, modalidade: int | None = None, kind: str = CONTRATACOES
                        ) -> list[dict[str, Any]]:
        """What `/atualizacao` (of `kind`) shows now for a day: the records included or changed that day,
        judged by `dataAtualizacaoGlobal`, each once and as it is now (changed again later, it has moved on)."""
        now = self.now()
        cached = self._updated.get((kind, day, modalidade, now))
        if cached is not None:
            return cached
        if len(self._updated) > 1024:  # a live clock makes a new key each answer: keep the cache bounded
            self._updated.clear()
        if modalidade is not None:  # one pass over the lookback days serves every modalidade
            every = self.updated_records(day, None, kind)
            self._updated[(kind, day, modalidade, now)] = [r for r in every if r["modalidadeId"] == modalidade]
            return self._updated[(kind, day, modalidade, now)]
        c = self.config
        lookback = math.ceil(c.update_max_days) + 1 if c.update_fraction else 1
        if c.late_fraction and c.late_updated_at == "insertion":  # first versions days after publication
            lookback = max(lookback, math.ceil((c.late_hours_max or c.late_hours) / 24) + 1)
        if c.move_fraction:  # a move is a change of the day it is made, listed on the day it moved to
            lookback = max(lookback, math.ceil(c.move_after_days) + 1)
        ahead = c.move_by_days if c.move_fraction else 0
        rows = []
        for back in range(lookback, -ahead - 1, -1):
            for r in self._visible(day - dt.timedelta(days=back), None, now, kind):
                version = r.version_at(now)
                if version["dataAtualizacaoGlobal"][:10] == day.isoformat():
                    rows.append((version["dataAtualizacaoGlobal"], r.sort_key, version))
        rows.sort(key=lambda row: row[:2])
        self._updated[(kind, day, None, now)] = [version for _, _, version in rows]
        return self._updated[(kind, day, None, now)]

    def all_records(self, day: dt.date, withdrawn: bool = False, kind: str = CONTRATACOES) -> list[dict[str, Any]]:
        """Every record of the day whatever the clock (for tests' expectations); `withdrawn=True` adds
        those removed mid-sweep (an earlier sweep may have seen them)."""
        d = self._day(day, kind)
        return [r.record for r in [*d.records, *d.inserted]
                if withdrawn or r.record.get(ID_FIELDS[kind]) not in d.removed]

    def _shift(self, day: dt.date, kind: str = CONTRATACOES) -> None:
        """A record published mid-sweep lands first in the order (pushing every other one a row down);
        optionally a record is withdrawn (pulling the rest up)."""
        d = self._day(day, kind)
        self._updated.clear()
        if not d.records:
            return  # an empty day has nothing to model a new record on
        template = d.records[self._rng.randrange(len(d.records))]
        record = json.loads(json.dumps(template.record))
        n = len(d.inserted) + 1
        id_field = ID_FIELDS[kind]
        if kind == CONTRATACOES:
            record["sequencialCompra"] = 900000 + n
            record[id_field] = f"{record['orgaoEntidade']['cnpj']}-1-{900000 + n:06d}/{record['anoCompra']}"
        elif kind == CONTRATOS:
            record["sequencialContrato"] = 900000 + n
            record[id_field] = f"{record['orgaoEntidade']['cnpj']}-2-{900000 + n:06d}/{record['anoContrato']}"
        else:
            record[id_field] = f"{record['numeroControlePNCPCompra']}-{90000 + n:05d}"
        published = min(self.now() or template.published, template.published)
        d.inserted.append(SyntheticRecord(record, published, published, -n))
        if self.config.shift_remove:
            d.removed.add(d.records[self._rng.randrange(len(d.records))].record.get(id_field))

    # --- requests ------------------------------------------------------------------------------

    def handle(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes, float, int]:
        """(status, headers, body, delay before answering, rows)."""
        other = self.routes.get(path.removeprefix("/api/consulta"))
        if path not in ROUTES and other is None:
            return (*_error(404, "Not Found", "Recurso não encontrado", path), 0.0, 0)
        kind, by_change = ROUTES.get(path, (OTHER, False))
        problem = _validate(query, kind)
        if problem is not None:
            status, message = problem
            error = "Bad Request" if status == 400 else "Unprocessable Entity"
            return (*_error(status, error, message, path), 0.0, 0)
        first = dt.datetime.strptime(query["dataInicial"], "%Y%m%d").date()
        last = dt.datetime.strptime(query["dataFinal"], "%Y%m%d").date()
        modalidade = int(query["codigoModalidadeContratacao"]) if kind == CONTRATACOES else None
        page = int(query["pagina"])
        size = int(query.get("tamanhoPagina", "50" if kind == CONTRATACOES else "500"))
        if kind != CONTRATACOES and last > first and page * size > DEEP_PAGE_ROWS:
            # Reported on the real contratos and atas endpoints: deep pages of a wide window fail.
            return (*_error(500, "Internal Server Error", "Erro na comunicacao com o banco de dados", path), 0.0, 0)
        c = self.config
        with self._lock:
            self._requests += 1
            n = self._requests
            if c.shift_every and n % c.shift_every == 0 and other is None:
                self._shift(first, kind)
            if self._burst_left > 0 or (c.rate_limit_every and n % c.rate_limit_every == 0):
                self._burst_left = (self._burst_left or c.rate_limit_burst) - 1
                return 429, {"Content-Type": "text/html"}, HTML_429, 0.0, 0
            roll = self._rng.random
            if c.drop_rate and roll() < c.drop_rate:
                return 0, {}, b"", 0.0, 0  # status 0: drop the connection
            slow = c.slow_seconds if c.slow_rate and roll() < c.slow_rate else 0.0
            if c.error_5xx_rate and roll() < c.error_5xx_rate:
                status = self._rng.choice([500, 502, 503, 504])
                return status, {"Content-Type": "text/html"}, f"<html>{status}</html>".encode(), slow, 0
            rows: list[dict[str, Any]] = []
            records_of = self.updated_records if by_change else self.visible_records
            if other is not None:
                now = self.now()

                def records_of(day: dt.date, _modalidade: int | None, _kind: str) -> list[dict[str, Any]]:
                    return other(day, now)
            day = first
            while day <= last:
                rows.extend(records_of(day, modalidade, kind))
                day += dt.timedelta(days=1)
            total = len(rows)
            pages = math.ceil(total / size) if total else 0
            if total == 0 or page > pages:
                if c.empty_as_200:
                    empty = {"data": [], "totalRegistros": total, "totalPaginas": pages, "numeroPagina": page,
                             "paginasRestantes": 0, "empty": True}
                    return 200, {"Content-Type": "application/json"}, json.dumps(empty).encode(), slow, 0
                return 204, {}, b"", slow, 0
            if c.transient_204_rate and roll() < c.transient_204_rate:
                return 204, {}, b"", slow, 0
            data = rows[(page - 1) * size: page * size]
            if c.duplicate_rate and page < pages and roll() < c.duplicate_rate:
                data = [*data[:-1], rows[page * size]]  # the next page's first record shows here too
            if c.short_page_rate and len(data) > 1 and roll() < c.short_page_rate:
                data = data[: self._rng.randrange(1, len(data))]
            malformed = c.malformed_rate and roll() < c.malformed_rate
        envelope: Any = {"data": data, "totalRegistros": total, "totalPaginas": pages, "numeroPagina": page,
                         "paginasRestantes": max(0, pages - page), "empty": False}
        if malformed:
            envelope = _malform(envelope, c.malformed_kind)
            if isinstance(envelope, bytes):
                return 200, {"Content-Type": "application/json"}, envelope, slow, 0
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        return 200, {"Content-Type": "application/json"}, body, slow, len(data)

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)


def _malform(envelope: dict[str, Any], kind: str) -> dict[str, Any] | bytes:
    if kind == "not_json":
        return b'{"data": [{"numeroControlePNCP": "trunc'
    if kind == "html":  # a gateway's maintenance page, served as a 200
        return b"<!DOCTYPE html><html><body><h1>Sistema em manuten\xc3\xa7\xc3\xa3o</h1></body></html>"
    if kind == "not_utf8":  # Latin-1 where UTF-8 is promised
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        return body.replace(b"{", b'{"aviso": "Licita\xe7\xe3o", ', 1)
    if kind == "wrong_types":
        return {**envelope, "totalRegistros": str(envelope["totalRegistros"]), "numeroPagina": None}
    if kind == "missing_fields":
        return {"data": envelope["data"]}
    if kind == "data_not_list":
        return {**envelope, "data": {"oops": 1}}
    if kind == "record_not_object":  # the page's first record garbled into a string
        data = envelope["data"]
        return {**envelope, "data": [f"<registro ilegível {envelope['numeroPagina']}>", *data[1:]]}
    raise ValueError(f"unknown malformed_kind {kind!r}")


def _error(status: int, error: str, message: str, path: str) -> tuple[int, dict[str, str], bytes]:
    body = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "status": status, "error": error, "message": message, "path": path}
    return status, {"Content-Type": "application/json"}, json.dumps(body, ensure_ascii=False).encode("utf-8")


DEEP_PAGE_ROWS = 5000  # contratos and atas: past this many rows of a window over one day, a 500


def _validate(q: dict[str, str], kind: str = CONTRATACOES) -> tuple[int, str] | None:
    required = ("dataInicial", "dataFinal", "codigoModalidadeContratacao", "pagina") if kind == CONTRATACOES else (
        "dataInicial", "dataFinal", "pagina")
    for name in required:
        if not q.get(name):
            return 400, f"Required request parameter '{name}' is not present"
    try:
        first = dt.datetime.strptime(q["dataInicial"], "%Y%m%d").date()
        last = dt.datetime.strptime(q["dataFinal"], "%Y%m%d").date()
    except ValueError:
        return 400, "Data inválida: use o formato yyyyMMdd"
    if last < first:
        return 422, "Data Final deve ser maior ou igual à Data Inicial"
    if (last - first).days > 365:
        return 422, "Período de consulta não pode ser maior que 365 dias"
    for name in ("codigoModalidadeContratacao", "pagina", "tamanhoPagina"):
        if name in q and not q[name].lstrip("-").isdigit():
            return 400, f"Parâmetro '{name}' inválido"
    if int(q["pagina"]) < 1:
        return 400, "Número de página inválido"
    largest = 50 if kind == CONTRATACOES else 500  # the live limits (the spec's 500 is wrong for contratações)
    if not 10 <= int(q.get("tamanhoPagina", str(largest))) <= largest:
        return 400, "Tamanho de página inválido"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed
    # ACK (about 40 ms per response on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and status != 204:
            self.wfile.write(body)

    def do_GET(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        sim = self.server.sim
        if url.path == "/_sim/log":
            body = json.dumps([dataclasses.asdict(e) for e in sim.log]).encode()
            return self._send(200, {"Content-Type": "application/json"}, body)
        if url.path == "/_sim/state":
            body = json.dumps(dataclasses.asdict(sim.config), default=str).encode()
            return self._send(200, {"Content-Type": "application/json"}, body)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        refused, in_flight = sim.time.admit(sim.config)
        try:
            if refused is not None:
                status, headers, body = _error(refused, HTTPStatus(refused).phrase, "", url.path)
                if refused in (429, 503):  # what the real API's gateway answers: an HTML page
                    headers, body = {"Content-Type": "text/html"}, HTML_429 if refused == 429 else b"<html>503</html>"
                delay, rows = sim.time.latency(sim.config, 0), 0
            else:
                status, headers, body, delay, rows = sim.handle(url.path, query)
                delay += sim.time.latency(sim.config, rows)
            if delay:
                time.sleep(delay)
        finally:
            sim.time.release()
        # Logged before answering, so a client that has its answer finds its request in the log.
        sim.record(LoggedRequest(started, url.path, query, status, rows, time.monotonic() - started, in_flight))
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(2)  # a dropped connection: no status line at all
            return
        try:
            self._send(status, headers, body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b"{}"
        try:
            if url.path == "/_sim/config":
                self.server.sim.configure(**json.loads(payload))
            elif url.path == "/_sim/reset_log":
                self.server.sim.reset_log()
            else:
                return self._send(404, {}, b"")
        except (TypeError, ValueError) as exc:
            return self._send(400, {"Content-Type": "text/plain"}, str(exc).encode())
        self._send(204, {}, b"")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: PncpSimulator


class RunningSimulator:
    """A simulator serving on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0,
                 routes: dict[str, RouteRecords] | None = None):
        self.sim = PncpSimulator(config, routes)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sim = self.sim
        # A short poll so that stop() returns at once (the default 0.5 s adds up over many tests).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="pncp-simulator", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RunningSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RunningSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pncp_assets.pncp.simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--volume", type=int, default=None, help="records per day (default: ~6000 on business days)")
    parser.add_argument("--now", default=None, help="simulated Brasília time YYYY-MM-DDTHH:MM:SS (default: no clock)")
    parser.add_argument("--live", action="store_true", help="the clock is the real Brasília time")
    parser.add_argument("--config", default=None, help="JSON object of further SimulatorConfig fields (faults)")
    args = parser.parse_args(argv)
    config = SimulatorConfig(seed=args.seed, volume=args.volume,
                             now=dt.datetime.fromisoformat(args.now) if args.now else None, live=args.live)
    running = RunningSimulator(config, port=args.port)
    if args.config:
        running.sim.configure(**json.loads(args.config))
    print(f"PNCP simulator on {running.base_url} (seed {args.seed}); Ctrl-C stops it", flush=True)
    try:
        running._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
