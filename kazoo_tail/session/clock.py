"""The session's time: read and waited on through one object, so that reconnects, backoff,
dead links, gaps, renewal and the tool's own stalls can be tested on a simulated clock."""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar, runtime_checkable

# A clock that never steps and goes on while the machine is suspended: Linux's CLOCK_BOOTTIME;
# macOS's CLOCK_MONOTONIC counts sleep too. Elsewhere the monotonic clock, which may not.
_TIMELINE = getattr(time, "CLOCK_BOOTTIME", None) or (
    getattr(time, "CLOCK_MONOTONIC", None) if sys.platform == "darwin" else None
)


@runtime_checkable
class Waitable(Protocol):
    def fileno(self) -> int: ...


W = TypeVar("W", bound=Waitable)


class Clock:
    """Real time: ``monotonic`` for deadlines; ``timeline`` for gaps (it never steps, unlike
    the wall clock, and goes on through a suspend, unlike the monotonic clock); ``wall``
    (epoch) for what is told; and ``wait`` until a socket has something to read or
    ``timeout`` passes."""

    def monotonic(self) -> float:
        return time.monotonic()

    def timeline(self) -> float:
        return time.clock_gettime(_TIMELINE) if _TIMELINE is not None else time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, waitables: Sequence[W], timeout: float) -> list[W]:
        """The waitables that became readable (all of them, after an error: their next read
        says what is wrong)."""
        if timeout <= 0 and not waitables:
            return []
        if not waitables:
            time.sleep(timeout)
            return []
        try:
            readable, _, _ = select.select(waitables, [], [], timeout if timeout > 0 else 0.0)
        except (OSError, ValueError):
            return list(waitables)
        return readable


def readers(clock: Clock) -> tuple[Callable[[], float], Callable[[], float], Callable[[], float]]:
    """The clock's ``monotonic``, ``timeline`` and ``wall``, as the functions to call: for
    real time, the ``time`` module's own, without a method around each. The session reads
    them a few times per event, where a method call each was a tenth of its Python work."""
    if type(clock) is not Clock:
        return clock.monotonic, clock.timeline, clock.wall
    timeline: Callable[[], float] = (
        partial(time.clock_gettime, _TIMELINE) if _TIMELINE is not None else time.monotonic
    )
    return time.monotonic, timeline, time.time
