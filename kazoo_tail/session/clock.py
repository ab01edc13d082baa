"""The session's time: read and waited on through one object, so that reconnects, backoff,
dead links, gaps, renewal and the tool's own stalls can be tested on a simulated clock."""

from __future__ import annotations

import select
import time
from collections.abc import Sequence
from typing import Protocol


class Waitable(Protocol):
    def fileno(self) -> int: ...


class Clock:
    """Real time: ``monotonic`` for deadlines, ``wall`` (epoch) for what is told, and
    ``wait`` until a socket has something to read or ``timeout`` passes."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, sockets: Sequence[Waitable], timeout: float) -> None:
        if timeout <= 0:
            return
        if not sockets:
            time.sleep(timeout)
            return
        try:
            select.select(sockets, [], [], timeout)
        except (OSError, ValueError):
            pass  # a socket closed meanwhile: its next read says so
