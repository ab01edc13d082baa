"""Opening a websocket without stopping the caller's clock.

websocket-client's handshake blocks for as long as the server takes, up to its timeout: a
reconnect target that accepts and never answers (or dribbles its headers) would hold the tail
past ``--duration``, past ``--max-reconnect-time``, and past its reader leaving. The handshake
runs in a thread instead, and the session keeps ticking while it waits; a handshake nobody
waits for any more is closed when it ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from kazoo_tail.net.transport import Transport


class Opening:
    """One handshake in progress: wait until it is ``done`` (its ``fileno`` turns readable),
    then take its ``result``; or ``abandon`` it."""

    def __init__(self, open_transport: Callable[[], Transport]) -> None:
        self._open = open_transport
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self._transport: Transport | None = None
        self._failure: BaseException | None = None
        # Readable once the handshake ended, so a loop can wait on it beside its sockets. The
        # thread writes and closes the write end; the reader closes the read end when done.
        self._wake, self._woken = os.pipe()
        threading.Thread(target=self._run, name="kazoo-tail handshake", daemon=True).start()

    def fileno(self) -> int:
        return self._wake

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> Transport:
        """The open transport, or the handshake's own exception (``ConnectFailed``) raised."""
        self._close_wake()
        if self._failure is not None:
            raise self._failure
        assert self._transport is not None
        return self._transport

    def abandon(self) -> None:
        """Nobody will use this handshake: close what it opened, now or when it ends."""
        with self._lock:
            self._abandoned = True
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.drop()
        self._close_wake()

    def _close_wake(self) -> None:
        wake, self._wake = self._wake, -1
        if wake >= 0:
            os.close(wake)

    def _run(self) -> None:
        try:
            transport = self._open()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as is
            self._failure = exc
        else:
            with self._lock:
                keep = not self._abandoned
                if keep:
                    self._transport = transport
            if not keep:
                transport.drop()
        self._done.set()
        try:
            os.write(self._woken, b".")
        except OSError:
            pass  # abandoned: nobody reads the other end any more
        finally:
            os.close(self._woken)
