"""How hard the client presses the API: how many requests it keeps in flight, and how long PNCP has not answered.

`InFlightWindow` is additive increase, multiplicative decrease (TCP's answer to the same question): one more
request in flight after `grow_after` good answers in a row per request in flight (10 at two), up to `maximum`;
half as many (at least one) on a
429, a 5xx or a timeout. Requests started before a cut do not cut again: a burst of failures answering the
same crowded moment is one signal, not five.

`Availability` tracks whether PNCP answers at all: since when every answer has failed. A page failing alone is
told apart from an outage by the others' answers: theirs reset it, an outage's do not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class InFlightWindow:
    """At most `limit` requests in flight; the limit adapts to what the API answers (thread-safe)."""

    def __init__(self, start: int, maximum: int, grow_after: int = 5):
        if not (isinstance(maximum, int) and maximum >= 1):
            raise ValueError(f"the maximum of requests in flight must be a whole number >= 1, not {maximum!r}")
        if not (isinstance(start, int) and 1 <= start <= maximum):
            raise ValueError(f"the requests in flight at start must be between 1 and the maximum {maximum}, "
                             f"not {start!r}")
        self.limit, self.maximum, self.grow_after = start, maximum, grow_after
        self.in_flight = 0
        self.peak = 0  # the most requests that were in flight at once
        self.cuts = 0
        self._good_in_a_row = 0
        self._epoch = 0
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for a free place; returns the epoch to hand back to `release`."""
        with self._cond:
            self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self._epoch

    def release(self, epoch: int, ok: bool | None) -> None:
        """A request ended: `ok` True for a good answer, False for a 429, 5xx or timeout, None for neither (an
        answer that says nothing about the load, such as a malformed body)."""
        with self._cond:
            self.in_flight -= 1
            if ok is True:
                self._good_in_a_row += 1
                if self._good_in_a_row >= self.grow_after * self.limit and self.limit < self.maximum:
                    self.limit += 1
                    self._good_in_a_row = 0
            elif ok is False:
                self._good_in_a_row = 0
                if epoch == self._epoch:  # the first failure since the last cut: cut once
                    self.limit = max(1, self.limit // 2)
                    self.cuts += 1
                    self._epoch += 1
            self._cond.notify_all()


class Availability:
    """Since when PNCP has not answered well (None: it answers). A good answer ends that only if its request
    started after the failures began: a request admitted before an outage may still come back well after it
    began, and says nothing of now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.failing_since: float | None = None  # the clock's time of the first failure after PNCP answered well
        self.failing_since_wall: float | None = None  # the same moment, as a Unix time (for messages)
        self.announced = False  # an outage was declared

    def now(self) -> float:
        return self._clock()

    def good(self, started: float) -> tuple[float, float] | None:
        """A good answer to a request started at `started` (`now()`). Returns (when the outage began as a Unix
        time, seconds it lasted) if it ends an announced one."""
        with self._lock:
            if self.failing_since is None or started < self.failing_since:
                return None
            ended = None
            if self.announced and self.failing_since_wall is not None:
                ended = (self.failing_since_wall, self._clock() - self.failing_since)
            self.failing_since = self.failing_since_wall = None
            self.announced = False
            return ended

    def failed(self) -> None:
        with self._lock:
            if self.failing_since is None:
                self.failing_since, self.failing_since_wall = self._clock(), time.time()

    def failing_for(self) -> float:
        """Seconds since the first failure after PNCP last answered well (0 when it answers)."""
        with self._lock:
            return 0.0 if self.failing_since is None else self._clock() - self.failing_since

    def down_since(self, moment: float) -> bool:
        """Whether nothing started at or after `moment` (or later) has answered well: failing since then or before."""
        with self._lock:
            return self.failing_since is not None and self.failing_since <= moment

    def announce(self) -> bool:
        """Declare the outage; True only for the first call of an outage (who says it once)."""
        with self._lock:
            first = not self.announced and self.failing_since is not None
            self.announced = self.announced or first
            return first
