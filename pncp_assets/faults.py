"""Crash points for fault-injection tests. Inert unless `PNCP_FAULT_POINT` names them.

`PNCP_FAULT_POINT=mid_state_write` makes the process kill itself with SIGKILL at that point, as a node
dying or an OOM kill would: no `finally`, no flush, no Dagster failure event. With
`PNCP_FAULT_ACTION=raise`, or inside `with faults.injected(point):` (this thread only), the point raises
`InjectedCrash` instead, for in-process tests of the domain layer. The `mid_*` points first write the
first half of the object's bytes, a torn write that S3 would never show but a broken gateway or
filesystem might: the protocol must never take it for a whole file.
"""

from __future__ import annotations

import contextvars
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pncp_assets.storage import ObjectStore

ENV_POINT = "PNCP_FAULT_POINT"
ENV_ACTION = "PNCP_FAULT_ACTION"

# In the order a run reaches them.
POINTS = (
    "after_sweep",          # the day's sweep is stored; nothing of H is staged yet
    "mid_staging_write",    # the staged delta is half written
    "after_staging",        # the delta is stored (staged), the state does not name it yet
    "mid_state_write",      # the state file is half written
    "after_claim",          # the state names H's claim; the delta is not published
    "mid_delta_write",      # the published delta is half written
    "after_publish",        # the delta is published; the claim is not finalized
)


class InjectedCrash(BaseException):  # a crash, not an error: nothing should catch it
    """Raised at an armed point when PNCP_FAULT_ACTION=raise."""


_here: contextvars.ContextVar[str | None] = contextvars.ContextVar("pncp_fault_point", default=None)


@contextmanager
def injected(point: str | None) -> Iterator[None]:
    """Arm `point` (raise `InjectedCrash`) for code run in this context only, e.g. one of two threads."""
    token = _here.set(point)
    try:
        yield
    finally:
        _here.reset(token)


def armed(point: str) -> bool:
    return point == _here.get() or point in os.environ.get(ENV_POINT, "").split(",")


def crash(point: str) -> None:
    """Die here if the point is armed."""
    if not armed(point):
        return
    if point == _here.get() or os.environ.get(ENV_ACTION) == "raise":
        raise InjectedCrash(point)
    sys.stderr.write(f"fault injection: SIGKILL at {point}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def put(store: ObjectStore, key: str, data: bytes, point: str, **conditions: object) -> str:
    """`store.put`, torn in half and followed by a crash when the point is armed."""
    if armed(point):
        store.put(key, data[: len(data) // 2], **conditions)  # type: ignore[arg-type]
        crash(point)
    return store.put(key, data, **conditions)  # type: ignore[arg-type]
