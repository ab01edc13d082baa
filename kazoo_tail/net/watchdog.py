"""A total deadline for one blocking network call.

A socket timeout bounds each read, not the call: a server that sends a byte (or a header
line) just before every timeout holds a login or a websocket upgrade open for ever. When the
deadline passes, the watchdog shuts the call's sockets down, which wakes a blocked read at
once in any thread, with or without TLS; the caller then asks ``fired`` to name the cause.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

# After the deadline, sockets that appear later (a connect that was still under way) are shut
# down this often until the call gives up.
RESHUT_EVERY = 0.05

SocketSource = Callable[[], "socket.socket | None"]


class Watchdog:
    """``with Watchdog(seconds) as watchdog: watchdog.watch(lambda: conn.sock); ...``"""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sources: list[SocketSource] = []
        self._lock = threading.Lock()
        self._done = threading.Event()

    def watch(self, source: SocketSource) -> None:
        """Shut down whatever socket ``source`` returns at the time, once the deadline passes
        (it may return None while a connection is not yet made)."""
        with self._lock:
            self._sources.append(source)

    def __enter__(self) -> Watchdog:
        threading.Thread(target=self._run, name="kazoo-tail-watchdog", daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()

    def _run(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.fired = True
        while True:
            self._shut_down()
            if self._done.wait(RESHUT_EVERY):
                return

    def _shut_down(self) -> None:
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            sock = source()
            if sock is None:
                continue
            try:
                # The plain socket's shutdown, also for a TLS socket: ssl's own would drop its
                # TLS state under the reading thread's feet, which then fails with ValueError.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass  # already closed: nothing left to wake
