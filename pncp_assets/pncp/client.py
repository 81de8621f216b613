"""The PNCP consultation client: a complete sweep of a day, or a clear failure, never a partial sweep.

What the real API does and how the client copes (docs/PNCP_API.md):
- one endpoint per client (`Endpoint`): the contratações' take one modalidade per request, so a sweep
  loops over them; the contratos' and atas' have no modalidade, one list per day;
- every page from 1 to `totalPaginas` (no page cap), as many rows a page as the endpoint allows (50 for
  contratações, 500 for contratos and atas: fewer requests for the same records), the day in `yyyyMMdd`
  Brasília time;
- at least `request_interval_s` between two requests (one every 2 s runs clean on the real API);
- 429 (HTML, no Retry-After), 5xx, timeouts, dropped connections, a 200 that is not JSON or not a
  well-formed envelope: retried with exponential backoff and jitter (tenacity), then the sweep fails
  naming the modalidade and page;
- 400 / 422: not retried; the error carries the server's message and the request's parameters;
- a record that is not an object, or has no valid ID, is kept as it came (the commit quarantines it);
- a body must be UTF-8 JSON no larger than `max_response_bytes` (32 MiB: a full page is about 100 KB,
  so only a broken or hostile answer comes near it); a bigger one is refused while it downloads, and
  the sweep fails naming the modalidade and page instead of holding it in memory;
- 204 or `"empty": true` on page 1: the modalidade has nothing that day (confirmed once more first,
  because the real API sometimes answers a false 204); 204 on a later page: transient, retried;
- a short page (fewer rows than the totals promise) is re-requested and the fullest answer kept;
- records move across pages while paging: the sweep deduplicates by ID and, when the distinct count
  falls short of `totalRegistros`, sweeps the modalidade again (up to `max_passes`) before reporting
  the shortfall;
- a page takes seconds to answer, so up to `max_in_flight` requests are in flight at once (pages of a list,
  and several modalidades), still `request_interval_s` apart at their starts; how many adapts to the answers
  (`inflight.InFlightWindow`). Pages are kept in the order a one-at-a-time sweep would have them;
- an outage (no good answer from any request) is waited out for up to `outage_bound_s` from its first failure,
  saying so in the log, then the sweep fails with `PncpUnavailable` ("PNCP unavailable since ...").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests
import tenacity

from pncp_assets.brasilia import iso_utc, parse_day, span
from pncp_assets.pncp.inflight import Availability, InFlightWindow
from pncp_assets.pncp.records import CONTRATACAO_ID, MODALIDADE_NAMES, IdRule, first_copies, record_key


@dataclass(frozen=True)
class Endpoint:
    """A consultation endpoint swept day by day: its path, the ID of its records, whether it takes one
    modalidade per request, and the largest page it serves."""

    path: str
    id_rule: IdRule = CONTRATACAO_ID
    by_modalidade: bool = True
    page_size: int = 50

    def __post_init__(self) -> None:
        if not (isinstance(self.path, str) and self.path.startswith("/") and " " not in self.path):
            raise ValueError(f"endpoint path {self.path!r} must be an absolute URL path like '/v1/contratos'")
        if not isinstance(self.id_rule, IdRule):
            raise ValueError(f"endpoint {self.path}: id_rule must be an IdRule, not {self.id_rule!r}")
        if not (isinstance(self.page_size, int) and self.page_size > 0):
            raise ValueError(f"endpoint {self.path}: page_size must be a positive integer")

    @property
    def label(self) -> str:  # "contratacoes/publicacao", "contratos", "atas/atualizacao"
        return self.path.removeprefix("/v1/")


PAGE_SIZE = 50
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
ENVELOPE_FIELDS = ("data", "totalRegistros", "totalPaginas", "numeroPagina")


ANY_COUNT = -1  # a `settled` count that page 1 always matches: count only, whatever PNCP's count now


class PncpError(RuntimeError):
    """Base of the client's errors."""


class PncpRequestError(PncpError):
    """The API refused the request (400/422): retrying would not help."""

    def __init__(self, status: int, message: str, params: dict[str, Any]):
        self.status, self.server_message, self.params = status, message, params
        super().__init__(f"PNCP answered {status}: {message!r} for {params}")


class TransientError(PncpError):
    """A failure worth retrying (429, 5xx, timeout, dropped connection, garbled or short answer)."""


class MalformedResponse(TransientError):
    """A 200 whose body is not a well-formed envelope; the message says what was wrong."""


class ResponseTooLarge(PncpError):
    """A body over the size cap: not retried (the same page would be as big again)."""


class SweepError(PncpError):
    """A modalidade could not be swept completely; the message names the modalidade and page."""

    def __init__(self, message: str, modalidade: int | None, pagina: int):
        self.modalidade, self.pagina = modalidade, pagina
        super().__init__(message)


class PncpUnavailable(SweepError):
    """No request had a good answer for `outage_bound_s`: PNCP is down, not one page (`since`: the UTC time of
    the first failure, `seconds`: how long it has failed)."""

    def __init__(self, message: str, modalidade: int | None, pagina: int, since: dt.datetime, seconds: float):
        self.since, self.seconds = since, seconds
        super().__init__(message, modalidade, pagina)


class SweepAborted(PncpError):
    """Another list of the same sweep failed: this one stops too (the sweep fails with that one's error)."""


@dataclass
class Page:
    """One page as asked and as answered (`modalidade` None: the endpoint takes none)."""

    modalidade: int | None
    pagina: int
    status: int
    fetched_at: str
    records: list[dict[str, Any]]
    total_registros: int
    total_paginas: int
    attempts: int = 1


@dataclass
class ModalidadeReport:
    """What sweeping one modalidade (or an endpoint's one list, `modalidade` None) took."""

    modalidade: int | None
    pages: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0  # answers 429 (rate limited)
    server_errors: int = 0  # answers 5xx
    short_pages_rerequested: int = 0
    short_pages_unresolved: int = 0
    records_seen: int = 0
    distinct_ids: int = 0
    total_registros: int = 0
    shortfall: int = 0
    passes: int = 0
    counted_only: bool = False  # page 1 only: its totalRegistros was the settled count (`sweep_day(settled=)`)

    def line(self) -> str:
        what = _what(self.modalidade)
        if self.modalidade is not None:
            what += f" ({MODALIDADE_NAMES.get(self.modalidade, '?')})"
        if self.counted_only:
            return f"{what}: {self.total_registros} totalRegistros, unchanged: page 1 only"
        text = (f"{what}: {self.pages} pages, {self.distinct_ids} distinct records "
                f"of {self.total_registros} totalRegistros, {self.requests} requests, {self.retries} retries")
        if self.short_pages_rerequested:
            text += f", {self.short_pages_rerequested} short pages re-requested"
        if self.shortfall:
            text += f", SHORTFALL {self.shortfall} records ({self.short_pages_unresolved} pages stayed short)"
        return text


@dataclass
class SweepResult:
    """Every page fetched for a day, and a report per modalidade."""

    day: dt.date
    pages: list[Page] = field(default_factory=list)
    reports: dict[int | None, ModalidadeReport] = field(default_factory=dict)
    id_rule: IdRule = CONTRATACAO_ID

    def records(self) -> list[tuple[dict[str, Any], Page]]:
        """Each distinct record once (the first copy seen), with the page it came from."""
        return first_copies(((page, page.records) for page in self.pages), self.id_rule)

    def totals(self) -> dict[str, int]:
        return sum_reports(vars(r) for r in self.reports.values())


REPORT_TOTALS = ("pages", "requests", "retries", "throttled", "server_errors", "short_pages_rerequested",
                 "records_seen", "distinct_ids", "total_registros", "shortfall")


def sum_reports(reports: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Per-modalidade reports (as dicts) added up into the sweep's totals."""
    reports = list(reports)
    return {k: sum(int(r.get(k, 0)) for r in reports) for k in REPORT_TOTALS}


class _Pacer:
    """At least `interval` seconds between the starts of any two requests (thread-safe)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval, self._clock, self._sleep = interval, clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._clock()
            self._next = now + self.interval

    def settle(self) -> None:
        """Wait until the next request would be allowed, without taking that turn."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)


class PncpClient:
    def __init__(
        self,
        base_url: str,
        *,
        request_interval_s: float = 2.0,
        modalidades: tuple[int, ...] = tuple(range(1, 20)),
        max_attempts: int = 8,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 90.0,
        short_page_retries: int = 3,
        empty_confirmations: int = 1,
        max_passes: int = 3,
        page_size: int | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        session: requests.Session | None = None,
        logger: logging.Logger | Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        endpoint: Endpoint,
        progress_every_s: float = 30.0,
        max_in_flight: int = 1,
        start_in_flight: int | None = None,
        outage_bound_s: float = 0.0,
        on_outage: Callable[[dt.datetime, float | None], None] | None = None,
    ):
        """`max_in_flight` 1 and `outage_bound_s` 0 ask one page at a time and fail a page after its own
        `max_attempts`; the pipeline's settings (`PncpApi`) ask up to 3 at once and ride out 30 min of outage.
        `on_outage(since, None)` is called when an outage is declared, `on_outage(since, seconds)` when it ends."""
        if not isinstance(endpoint, Endpoint):  # the feeds declare theirs (`layers.py`)
            raise TypeError(f"endpoint must be an Endpoint, not {endpoint!r}")
        self.endpoint = endpoint
        self.base_url = base_url.rstrip("/")
        self.modalidades = modalidades
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.short_page_retries = short_page_retries
        self.empty_confirmations = empty_confirmations
        self.max_passes = max_passes
        self.page_size = page_size or endpoint.page_size
        self.max_response_bytes = max_response_bytes
        self.session = session or requests.Session()
        self.log = _SerialLog(logger or logging.getLogger(__name__))
        self._sleep = sleep
        self._pacer = _Pacer(request_interval_s, sleep=sleep)
        self.progress_every_s = progress_every_s
        self.window = InFlightWindow(start_in_flight or min(2, max_in_flight), max_in_flight)
        if outage_bound_s < 0:
            raise ValueError("outage_bound_s must be >= 0")
        self.outage_bound_s = outage_bound_s
        self.availability = Availability()
        self._on_outage = on_outage
        self._abort = threading.Event()  # set when one list of a sweep failed: the others stop
        self._tally = threading.Lock()  # reports are counted from several threads
        self._last_outage_line = 0.0

    # --- one request ---------------------------------------------------------------------------

    def _get(self, params: dict[str, Any]) -> requests.Response:
        try:
            with self.session.get(f"{self.base_url}{self.endpoint.path}", params=params, timeout=self.timeout,
                                  stream=True) as response:
                response._content = self._read_capped(response)  # what .json() / .text then read
                return response
        except requests.Timeout as exc:
            raise TransientError(f"timeout after {self.timeout[1]:.0f}s ({type(exc).__name__})") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"connection failed: {type(exc).__name__}") from exc

    def _read_capped(self, response: requests.Response) -> bytes:
        cap = self.max_response_bytes
        too_large = ResponseTooLarge(f"response body over the {cap / 2**20:g} MiB cap (max_response_bytes)")
        if int(response.headers.get("Content-Length") or 0) > cap:
            raise too_large
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=1 << 16):
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, response: requests.Response, params: dict[str, Any]) -> dict[str, Any] | None:
        """The envelope, None for "no content", or an error."""
        status = response.status_code
        if status == 204:
            return None
        if status in (400, 422) or (400 <= status < 500 and status not in (408, 429)):
            raise PncpRequestError(status, _server_message(response), params)
        if status == 429:
            raise TransientError("429 rate limited")
        if status != 200:
            raise TransientError(f"HTTP {status}")
        try:
            text = response.content.decode("utf-8")  # the contract is UTF-8: no guessing of encodings
        except UnicodeDecodeError as exc:
            raise MalformedResponse(f"HTTP 200 whose body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        try:
            envelope = json.loads(text)
        except ValueError:
            raise MalformedResponse(f"HTTP 200 whose body is not JSON: {text[:80]!r}") from None
        return validate_envelope(envelope, self.page_size)

    def _request(self, params: dict[str, Any]) -> requests.Response:
        """One request in the window of requests in flight; what it answered adapts the window and tells
        whether PNCP is up."""
        epoch = self.window.acquire()
        self._pacer.wait()
        started = self.availability.now()
        try:
            response = self._get(params)
        except TransientError:  # a timeout or a dropped connection
            self.window.release(epoch, False)
            self.availability.failed()
            raise
        except BaseException:
            self.window.release(epoch, None)
            raise
        status = response.status_code
        overloaded = status == 429 or status >= 500
        self.window.release(epoch, False if overloaded else (True if status in (200, 204) else None))
        if overloaded:
            self.availability.failed()
        else:
            ended = self.availability.good(started)
            if ended is not None:
                self._outage_ended(*ended)
        return response

    def _outage_declared(self, exc: BaseException | None) -> None:
        since = self._since()
        self.log.warning(
            f"PNCP unavailable since {since:%Y-%m-%d %H:%M:%S} UTC: no good answer for "
            f"{span(self.availability.failing_for())} ({exc}). Waiting for it up to {span(self.outage_bound_s)} "
            f"in all (PNCP_OUTAGE_BOUND_MINUTES), each request retried at most every {self.backoff_max_s:g} s")
        self._last_outage_line = time.monotonic()
        if self._on_outage is not None:
            self._on_outage(since, None)

    def _outage_progress(self, last: str, wait_s: float) -> None:
        """During a declared outage, a line a minute at most (every request retries: one line each would flood)."""
        with self._tally:
            if time.monotonic() - self._last_outage_line < 60:
                return
            self._last_outage_line = time.monotonic()
        self.log.warning(f"PNCP still unavailable since {self._since():%H:%M:%S} UTC: "
                         f"{span(self.availability.failing_for())} of up to {span(self.outage_bound_s)} "
                         f"(last: {last}); next retry in {wait_s:.0f}s")

    def _outage_ended(self, since_wall: float, seconds: float) -> None:
        since = dt.datetime.fromtimestamp(since_wall, dt.UTC).replace(microsecond=0)
        self.log.info(f"PNCP answering again: unavailable since {since:%Y-%m-%d %H:%M:%S} UTC for "
                      f"{span(seconds)}, ridden out")
        if self._on_outage is not None:
            self._on_outage(since, seconds)

    def _since(self) -> dt.datetime:
        wall = self.availability.failing_since_wall or time.time()
        return dt.datetime.fromtimestamp(wall, dt.UTC).replace(microsecond=0)

    def _retry_sleep(self, seconds: float) -> None:
        if self._sleep is time.sleep:
            self._abort.wait(seconds)  # wakes at once when another list of the sweep failed
        else:
            self._sleep(seconds)

    def _count(self, report: ModalidadeReport, name: str, n: int | bool = 1) -> None:
        if n:
            with self._tally:
                setattr(report, name, getattr(report, name) + int(n))

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`fn` of each item, in the items' order; at most `max_in_flight` at once (the window holds the
        requests themselves). The first failure stops the rest, and is the one raised."""
        if self.window.maximum == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=min(len(items), self.window.maximum), thread_name_prefix="pncp")
        try:
            futures = [pool.submit(fn, item) for item in items]
            wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.done() and f.exception() for f in futures):
                self._abort.set()
                pool.shutdown(wait=True, cancel_futures=True)
                errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
                raise next((e for e in errors if not isinstance(e, SweepAborted)), errors[0])
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def fetch_page(self, day: dt.date, modalidade: int | None, pagina: int, report: ModalidadeReport) -> Page:
        """One page, retried on transient failures; `status` 204 and no records when there is no content."""
        params: dict[str, Any] = {"dataInicial": f"{day:%Y%m%d}", "dataFinal": f"{day:%Y%m%d}"}
        if modalidade is not None:
            params["codigoModalidadeContratacao"] = modalidade
        params.update(pagina=pagina, tamanhoPagina=self.page_size)
        what = _what(modalidade)

        def attempt() -> Page:
            if self._abort.is_set():
                raise SweepAborted(f"{what} page {pagina}: stopped, another list of the sweep failed")
            self._count(report, "requests")
            response = self._request(params)
            self._count(report, "throttled", response.status_code == 429)
            self._count(report, "server_errors", response.status_code >= 500)
            envelope = self._parse(response, params)
            if envelope is None or envelope.get("empty") is True or not envelope["data"]:
                if pagina > 1:
                    raise TransientError(f"no content on page {pagina} (a false empty)")
                return Page(modalidade, pagina, response.status_code, iso_utc(), [], 0, 0)
            return Page(modalidade, pagina, 200, iso_utc(), envelope["data"], envelope["totalRegistros"],
                        envelope["totalPaginas"])

        first_failure: list[float] = []

        def stop(state: tenacity.RetryCallState) -> bool:
            if self._abort.is_set():
                return True
            if not first_failure:
                first_failure.append(self.availability.now())
            failing = self.availability.failing_for()
            # An outage: nothing started since this page first failed answered well (a page failing alone sees
            # the others' good answers reset it), and it began at least `outage_bound_s` ago: stop, whatever the
            # attempts.
            outage = bool(self.outage_bound_s and self.availability.down_since(first_failure[0]))
            if outage and failing >= self.outage_bound_s:
                return True
            # Said once, when it outlasts the page's own attempts or a minute (half the bound, if shorter).
            if outage and (state.attempt_number >= self.max_attempts or failing >= min(60.0, self.outage_bound_s / 2)) \
                    and self.availability.announce():
                self._outage_declared(state.outcome.exception() if state.outcome else None)
            if state.attempt_number < self.max_attempts:
                return False
            return not outage  # past its own attempts: only an outage is waited out (bound 0: none is)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self._count(report, "retries")
            exc = state.outcome.exception() if state.outcome else None
            wait_s = state.next_action.sleep if state.next_action else 0.0
            if state.attempt_number < self.max_attempts:
                self.log.warning(f"{what} page {pagina}: {exc}; retry {state.attempt_number} "
                                 f"of {self.max_attempts - 1} in {wait_s:.1f}s")
            else:
                self._outage_progress(f"{what} page {pagina}: {exc}", wait_s)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=tenacity.wait_random_exponential(multiplier=self.backoff_initial_s, max=self.backoff_max_s),
            stop=stop,
            sleep=self._retry_sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            page = retrying(attempt)
        except TransientError as exc:
            attempts = retrying.statistics.get("attempt_number", self.max_attempts)
            failing = self.availability.failing_for()
            since = self.availability.failing_since_wall
            if self.outage_bound_s and failing >= self.outage_bound_s and since is not None:
                when = dt.datetime.fromtimestamp(since, dt.UTC).replace(microsecond=0)
                raise PncpUnavailable(
                    f"PNCP unavailable since {when:%Y-%m-%d %H:%M:%S} UTC: no good answer for {span(failing)}, "
                    f"past the {span(self.outage_bound_s)} this run waits (PNCP_OUTAGE_BOUND_MINUTES); last: "
                    f"{self.endpoint.label} {what} page {pagina} of {day:%Y%m%d}: {exc}", modalidade, pagina,
                    when, failing) from exc
            raise SweepError(
                f"{self.endpoint.label}: {what} page {pagina} of {day:%Y%m%d} still failing after "
                f"{attempts} attempts: {exc}", modalidade, pagina) from exc
        except ResponseTooLarge as exc:
            raise SweepError(f"{self.endpoint.label}: {what} page {pagina} of {day:%Y%m%d}: {exc}", modalidade,
                             pagina) from exc
        page.attempts = retrying.statistics.get("attempt_number", 1)
        return page

    # --- a page, with short-page handling --------------------------------------------------------

    def _full_page(self, day: dt.date, modalidade: int | None, pagina: int, total: int,
                   report: ModalidadeReport) -> Page:
        page = self.fetch_page(day, modalidade, pagina, report)
        total = max(total, page.total_registros)
        expected = min(self.page_size, total - (pagina - 1) * self.page_size)
        tries = 0
        while len(page.records) < expected and tries < self.short_page_retries:
            tries += 1
            self._count(report, "short_pages_rerequested", tries == 1)
            again = self.fetch_page(day, modalidade, pagina, report)
            if len(again.records) > len(page.records):
                page = again
        if len(page.records) < expected:
            self._count(report, "short_pages_unresolved")
            self.log.warning(f"{_what(modalidade)} page {pagina}: still {len(page.records)} rows of "
                             f"{expected} after {tries} re-requests")
        return page

    # --- the sweep -----------------------------------------------------------------------------

    def sweep_modalidade(self, day: dt.date, modalidade: int | None,
                         settled: int | None = None) -> tuple[list[Page], ModalidadeReport]:
        """Every page of one modalidade (None: the endpoint's one list) of a day; only page 1 when its
        totalRegistros equals `settled` (a count already known complete: nothing new to fetch)."""
        report = ModalidadeReport(modalidade)
        pages: list[Page] = []
        ids: set[str] = set()
        for _ in range(self.max_passes):
            report.passes += 1
            first = self._full_page(day, modalidade, 1, 0, report)
            confirmations = 0
            while not first.records and confirmations < self.empty_confirmations:
                confirmations += 1
                first = self._full_page(day, modalidade, 1, 0, report)
            pages.append(first)
            total, last_page = first.total_registros, first.total_paginas
            if settled is not None and report.passes == 1 and settled in (total, ANY_COUNT):
                report.counted_only, report.total_registros = True, total
                report.pages, report.records_seen = int(bool(first.records)), len(first.records)
                report.distinct_ids = len({record_key(r, self.endpoint.id_rule) for r in first.records})
                return pages, report
            fetched = 1
            while fetched < last_page:  # pages 2.. at once, in order
                batch = self._map(lambda pagina, total=total: self._full_page(day, modalidade, pagina, total, report),
                                  range(fetched + 1, last_page + 1))
                pages.extend(batch)
                fetched = last_page
                # Totals grow while paging when records are published mid-sweep: follow them.
                total = max(total, *(page.total_registros for page in batch))
                last_page = max(last_page, *(page.total_paginas for page in batch))
            for page in pages:
                ids.update(record_key(r, self.endpoint.id_rule) for r in page.records)
            report.total_registros = total
            if len(ids) >= total:
                break
            self.log.warning(f"{_what(modalidade)}: {len(ids)} distinct of {total} after pass "
                             f"{report.passes}: sweeping it again (records moved across pages)")
        report.pages = sum(1 for p in pages if p.records)
        report.records_seen = sum(len(p.records) for p in pages)
        report.distinct_ids = len(ids)
        report.shortfall = max(0, report.total_registros - len(ids))
        return pages, report

    def count_day(self, date: str | dt.date | dt.datetime) -> dict[int | None, int]:
        """PNCP's count of each modalidade of a day, from page 1 of each: modalidade -> totalRegistros."""
        lists: tuple[int | None, ...] = self.modalidades if self.endpoint.by_modalidade else (None,)
        result = self.sweep_day(date, {m: ANY_COUNT for m in lists})
        return {m: r.total_registros for m, r in result.reports.items()}

    def wait_out_interval(self) -> None:
        """Return only once the pacing interval since the last request has passed, so that whoever talks
        to PNCP next (another run, once this one releases the `pncp_api` pool) keeps the spacing too."""
        self._pacer.settle()

    def sweep_day(self, date: str | dt.date | dt.datetime,
                  settled: Mapping[int | None, int] | None = None) -> SweepResult:
        """Every configured modalidade of a Brasília day (or the day's one list), every page; fails rather
        than return a partial sweep. `settled`: modalidade -> a count known complete (the completeness
        ledger's); a modalidade whose page 1 still gives that count (any count, for `ANY_COUNT`) is not fetched
        further (`counted_only`)."""
        day = parse_day(date)
        settled = settled or {}
        result = SweepResult(day, id_rule=self.endpoint.id_rule)
        started = time.monotonic()
        lists: tuple[int | None, ...] = self.modalidades if self.endpoint.by_modalidade else (None,)
        self.log.info(f"Sweeping PNCP {self.endpoint.label} {day:%Y-%m-%d}: "
                      + (f"{len(lists)} modalidades" if self.endpoint.by_modalidade else "one list")
                      + (f", up to {self.window.maximum} requests in flight" if self.window.maximum > 1 else ""))
        self._abort.clear()
        self.window.peak = 0
        progress = {"done": 0, "last_line": started}

        def one(modalidade: int | None) -> tuple[list[Page], ModalidadeReport]:
            pages, report = self.sweep_modalidade(day, modalidade, settled.get(modalidade))
            # Progress at most every `progress_every_s`, anything unusual always: a line is an event-log
            # write, and one per modalidade cost a run more than the sweep's own parsing (README "What a
            # run costs"). Every modalidade's report is in the stored sweep.
            unusual = report.retries or report.short_pages_rerequested or report.shortfall
            with self._tally:
                progress["done"] += 1
                done = progress["done"]
                due = unusual or time.monotonic() - progress["last_line"] >= self.progress_every_s
                if due:
                    progress["last_line"] = time.monotonic()
            if due:
                self.log.info(f"{report.line()} [{done} of {len(lists)}]")
            return pages, report

        for modalidade, (pages, report) in zip(lists, self._map(one, lists), strict=True):
            result.pages.extend(pages)
            result.reports[modalidade] = report
        t = result.totals()
        counted = sum(r.counted_only for r in result.reports.values())
        self.log.info(f"Swept {day:%Y-%m-%d}: {t['distinct_ids']} distinct records of {t['total_registros']} "
                      f"totalRegistros in {t['pages']} pages, {t['requests']} requests, {t['retries']} retries, "
                      f"{time.monotonic() - started:.1f}s"
                      + (f", up to {self.window.peak} in flight (now {self.window.limit} of at most "
                         f"{self.window.maximum})" if self.window.maximum > 1 else "")
                      + (f" ({counted} of {len(lists)} unchanged since the day was complete: page 1 only)"
                         if counted else ""))
        return result


class _SerialLog:
    """A logger called from the sweep's threads one call at a time (Dagster's writes an event per line)."""

    def __init__(self, log: logging.Logger | Any):
        self._log, self._lock = log, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._log, name)
        if name not in ("debug", "info", "warning", "error"):
            return method

        def serial(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return serial


def _what(modalidade: int | None) -> str:
    return "The day's list" if modalidade is None else f"Modalidade {modalidade}"


def validate_envelope(envelope: Any, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Check the envelope's shape; `MalformedResponse` names what was wrong."""
    if not isinstance(envelope, dict):
        raise MalformedResponse(f"envelope is a {type(envelope).__name__}, not an object")
    missing = [name for name in ENVELOPE_FIELDS if name not in envelope]
    if missing:
        raise MalformedResponse(f"envelope lacks {', '.join(missing)}")
    if not isinstance(envelope["data"], list):
        raise MalformedResponse(f"envelope's data is a {type(envelope['data']).__name__}, not a list")
    for name in ("totalRegistros", "totalPaginas", "numeroPagina"):
        value = envelope[name]
        if type(value) is not int or value < 0:
            raise MalformedResponse(f"envelope's {name} is {value!r}, not a count")
    # A record that is not an object is kept, not refused: the state quarantines it in `_rejected/`
    # with the reason, and one broken record does not hold back the page's good ones.
    if envelope["totalPaginas"] != math.ceil(envelope["totalRegistros"] / page_size) and envelope["data"]:
        raise MalformedResponse(
            f"envelope's totalPaginas {envelope['totalPaginas']} disagrees with totalRegistros "
            f"{envelope['totalRegistros']}")
    return envelope


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:500]
    except ValueError:
        pass
    return response.text[:500] or response.reason or ""

