"""Release N threads at once against shared storage, as concurrent runs would be."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(n: int, target: Callable[[int], object]) -> list[BaseException]:
    """Call `target(i)` in n threads released together by a barrier; returns what they raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(i: int) -> None:
        barrier.wait()
        try:
            target(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
