"""Writing to a descriptor that may stop taking bytes (``2>&1 | less`` paused, a terminal held
by Ctrl-S, a stuck ssh) without the session loop ever waiting for it.

Each writer here owns a thread, the only one that blocks on the descriptor; the caller only
appends under a lock. The thread is started when there is something to write and ends when
everything is written, so an idle writer costs nothing.

- ``LineQueue`` (status lines on stderr): whole lines, in order, bounded. Past the bound the
  oldest lines not yet taken are dropped and counted; once the descriptor takes bytes again,
  one line, written where the dropped ones were, says how many.
- ``LatestWriter`` (the calls board's screen): pictures, each a whole screen. A picture not yet
  taken is replaced by the next one; other writes (entering and leaving the alternate screen)
  are kept, in order.

``drain()`` waits until everything is written (or the descriptor failed) on an Event, in
steps, so that Ctrl-C still interrupts the wait.
"""

from __future__ import annotations

import os
import select
import threading
from collections import deque
from collections.abc import Callable

MAX_LINES = 400
MAX_BYTES = 64 << 10
_WAIT_STEP = 0.25  # drain() wakes this often, so that a signal's handler runs


def write_all(fd: int, data: bytes) -> None:
    """Write every byte, waiting as long as the descriptor makes it (the writer thread's)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # someone made the descriptor non-blocking
            select.select([], [fd], [])
            continue
        view = view[written:]


class _Writer:
    """The thread, the lock and the "everything is written" event the writers share."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self._name = name
        self._lock = threading.Lock()
        self._running = False
        self._failed = False  # the descriptor refused a write: nothing more is tried
        self._idle = threading.Event()
        self._idle.set()

    @property
    def failed(self) -> bool:
        return self._failed

    def _wake(self) -> None:
        """Called with the lock held, after something was queued."""
        self._idle.clear()
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _next(self) -> bytes | None:
        """What to write next, taken from the queue (the lock held); None when nothing is."""
        raise NotImplementedError

    def _discard(self) -> None:
        """Drop everything queued (the lock held): the descriptor failed."""
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            with self._lock:
                data = None if self._failed else self._next()
                if data is None:
                    self._running = False
                    self._idle.set()
                    return
            try:
                write_all(self.fd, data)
            except OSError:  # closed, the reader gone, a full disk: as before, nothing to do
                with self._lock:
                    self._failed = True
                    self._discard()

    def drain(self) -> None:
        """Wait until everything queued is written, or the descriptor failed. The wait is
        in steps, so that Ctrl-C (or a terminating signal raised as an exception) ends it."""
        while not self._idle.wait(_WAIT_STEP):
            pass


class LineQueue(_Writer):
    """Whole lines for a descriptor, written by a thread; ``put`` never waits for it.

    At most ``max_lines`` lines and ``max_bytes`` bytes wait; a line that does not fit drops
    the oldest waiting ones (the newest say the most: the error a tail ended on, the
    summary). Once a write succeeds again, ``dropped_line(count)`` is written next, in the
    place of the lines dropped."""

    def __init__(
        self,
        fd: int,
        dropped_line: Callable[[int], bytes],
        *,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
        name: str = "kazoo-tail stderr",
    ) -> None:
        super().__init__(fd, name)
        self._dropped_line = dropped_line
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._unreported = 0  # dropped, not yet said
        self.dropped = 0  # dropped in all

    def put(self, line: bytes) -> None:
        with self._lock:
            if self._failed:
                return
            lines = self._lines
            while lines and (
                len(lines) >= self.max_lines or self._size + len(line) > self.max_bytes
            ):
                self._size -= len(lines.popleft())
                self._unreported += 1
                self.dropped += 1
            lines.append(line)
            self._size += len(line)
            self._wake()

    def _next(self) -> bytes | None:
        if self._unreported:
            count, self._unreported = self._unreported, 0
            return self._dropped_line(count)
        if self._lines:
            line = self._lines.popleft()
            self._size -= len(line)
            return line
        return None

    def _discard(self) -> None:
        self._lines.clear()
        self._size = self._unreported = 0


class LatestWriter(_Writer):
    """Screens for a terminal, written by a thread; ``put`` never waits for it.

    ``put(picture, latest=True)`` replaces a picture still waiting (each is a whole screen, so
    only the newest matters); ``put(data)`` is kept and written in order (control sequences:
    the alternate screen, the cursor). Nothing waits without bound: at most one picture, and
    the few control writes a board makes."""

    def __init__(self, fd: int, *, name: str = "kazoo-tail screen") -> None:
        super().__init__(fd, name)
        self._queue: deque[tuple[bytes, bool]] = deque()
        self.replaced = 0  # pictures never written, a newer one having come first

    def put(self, data: bytes, *, latest: bool = False) -> None:
        if not data:
            return
        with self._lock:
            if self._failed:
                return
            if latest and self._queue and self._queue[-1][1]:
                self._queue.pop()
                self.replaced += 1
            self._queue.append((data, latest))
            self._wake()

    def _next(self) -> bytes | None:
        return self._queue.popleft()[0] if self._queue else None

    def _discard(self) -> None:
        self._queue.clear()
