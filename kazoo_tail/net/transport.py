"""The one websocket transport: websocket-client opens the connection (handshake, TLS,
proxies) and sends; frames are read from its socket with our own buffered ``FrameReader``.

websocket-client reads each frame with three select+recv calls, which cost more than
everything else per event; one ``recv`` here takes whatever the kernel has, many frames at a
time. Every failure is one sentence: ``ConnectFailed`` when opening (with whether a later try
may succeed), ``LinkLost`` once open.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from typing import Any
from urllib.parse import urljoin

import websocket

from kazoo_tail.errors import redact
from kazoo_tail.net.frames import FrameError, FrameReader
from kazoo_tail.net.tls import scheme_mismatch
from kazoo_tail.net.urls import shown_url, why_not_follow
from kazoo_tail.net.watchdog import Watchdog

# One recv() takes everything the kernel has buffered, up to this much, for many frames at once.
RECV_SIZE = 256 * 1024
# Statuses that send the upgrade elsewhere (websocket-client's list).
REDIRECTS = (301, 302, 303, 307, 308)
# The socket type, by a name the Transport.socket property does not hide.
_Socket = socket.socket


class LinkLost(Exception):
    """The open connection failed; the message is one sentence, and a reconnect may cure it.
    ``close_code`` is the server's, when it closed the connection with one. ``clean``: the
    connection ended in order (a close frame, or the end of the stream), so everything the
    server sent before its end was read; otherwise (silence, a reset) what came after the
    last frame read may be lost."""

    def __init__(
        self, sentence: str, close_code: int | None = None, *, clean: bool = False
    ) -> None:
        super().__init__(sentence)
        self.close_code = close_code
        self.clean = clean


class ConnectFailed(Exception):
    """The websocket could not be opened."""

    def __init__(self, sentence: str, retryable: bool) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.retryable = retryable


class Transport:
    """One open websocket. ``receive`` returns None when nothing arrived within a tick."""

    def __init__(self, ws: websocket.WebSocket, url: str, tick: float = 0.25) -> None:
        self.url = url
        # How long receive() waits before saying nothing arrived.
        self.tick = tick
        self._ws = ws
        self._reader = FrameReader()
        # Reads go into one buffer kept for the link's life: a fresh 256 KB bytes object per
        # recv() costs an mmap, an mremap and a munmap (and page faults) for every read, which
        # at a modest rate is one read per event.
        self._recv_buffer = memoryview(bytearray(RECV_SIZE))
        # Reads return at once when nothing is waiting, instead of waiting a tick (a driver
        # of several links waits on all their sockets at once instead).
        self.poll = False
        # In poll mode: the socket held no more than the last read took, so another read
        # would find nothing until the driver's wait finds it readable again (``woken``).
        # Asking the kernel (a select) before every read, and after the last, cost more than
        # the read itself at a modest rate, where every event comes alone.
        self.drained = False
        # Messages taken out of a batch but handed back by the link (``unread``): they come
        # before anything else read.
        self._backlog: list[tuple[int, bytes]] = []
        # The socket whose plain descriptor ``_read_now`` reads with readv (-1: not one that
        # can be read that way), worked out once, not on every read.
        self._read_sock: _Socket | None = None
        self._read_fd = -1

    @classmethod
    def open(cls, url: str, *, sslopt: dict[str, Any], timeout: float, tick: float) -> Transport:
        """Connect and upgrade within ``timeout`` in all (not per read: a server that answers
        101 and then a header line a second would hold each read just under it, for ever)."""
        ws = websocket.WebSocket(
            sslopt=sslopt,
            # Python's strict bytes.decode validates text frames; websocket-client's own
            # pure-Python UTF-8 check costs more than everything else per frame.
            skip_utf8_validation=True,
            enable_multithread=False,
        )
        ws.settimeout(timeout)
        with Watchdog(timeout) as watchdog:
            watchdog.watch(lambda: ws.sock)
            try:
                # Redirects are judged here: websocket-client would follow one to any host and
                # the token would follow it there.
                ws.connect(url, redirect_limit=0)  # type: ignore[no-untyped-call]
            except (OSError, websocket.WebSocketException) as exc:
                if watchdog.fired:
                    raise ConnectFailed(_too_slow(url, timeout), True) from None
                response = getattr(ws, "handshake_response", None)
                if response is not None and response.status in REDIRECTS:
                    raise ConnectFailed(_redirected(url, response.headers), False) from None
                sentence, retryable = connect_failure(url, exc)
                raise ConnectFailed(sentence, retryable) from None
        if watchdog.fired:  # it shut the socket down just as the upgrade finished
            ws.shutdown()  # type: ignore[no-untyped-call]
            raise ConnectFailed(_too_slow(url, timeout), True)
        # websocket-client 1.9.0 (the newest for Python 3.9) returns from a redirect it may not
        # follow as from an upgrade, with no websocket behind it; 1.9.2 raises, handled above.
        response = getattr(ws, "handshake_response", None)
        if response is not None and response.status in REDIRECTS:
            ws.shutdown()  # type: ignore[no-untyped-call]
            raise ConnectFailed(_redirected(url, response.headers), False)
        ws.settimeout(tick)
        return cls(ws, url, tick)

    @property
    def socket(self) -> socket.socket | None:
        sock: socket.socket | None = self._ws.sock
        return sock

    def receive(self) -> tuple[int, bytes] | None:
        """The next whole message as (opcode, payload), or None after a quiet tick."""
        if self._backlog:
            return self._backlog.pop(0)
        try:
            message = self._reader.next()
            while message is None:
                sock = self._ws.sock
                if sock is None:
                    raise LinkLost("the connection was closed", clean=True)
                if self.poll:
                    if self.drained:
                        return None
                    size = self._read_now(sock)
                    if size is None:
                        return None
                else:
                    size = sock.recv_into(self._recv_buffer)
                if not size:
                    raise LinkLost("the connection was closed without a close frame", clean=True)
                self._reader.feed(self._recv_buffer[:size])
                message = self._reader.next()
        # Before 3.10 a socket timeout is socket.timeout, an OSError but not a TimeoutError: a
        # quiet second on the link would read as a lost one.
        except (TimeoutError, socket.timeout):
            return None
        except FrameError as exc:
            raise LinkLost(f"the server sent {exc}") from None
        except OSError as exc:
            raise LinkLost(describe_error(exc)) from None
        return message

    def receive_all(self) -> list[tuple[int, bytes]]:
        """Every whole message there is without waiting, in order: those already read, else
        those one read takes (a read that ends inside a frame reads on while more is there);
        none when there are none. Poll mode only: at a modest rate this runs for every event,
        and one call a batch costs less than ``receive`` a message and one more to see none."""
        backlog = self._backlog
        if backlog:
            self._backlog = []
            return backlog
        reader = self._reader
        try:
            if reader.pending:
                messages = reader.take_all()
                if messages:
                    return messages
            while not self.drained:
                sock = self._ws.sock
                if sock is None:
                    raise LinkLost("the connection was closed", clean=True)
                size = self._read_now(sock)
                if size is None:
                    break
                if not size:
                    raise LinkLost("the connection was closed without a close frame", clean=True)
                reader.feed(self._recv_buffer[:size])
                messages = reader.take_all()
                if messages:
                    return messages
        except FrameError as exc:
            raise LinkLost(f"the server sent {exc}") from None
        except OSError as exc:
            raise LinkLost(describe_error(exc)) from None
        return []

    def unread(self, messages: list[tuple[int, bytes]]) -> None:
        """Hand back messages ``receive_all`` gave: they come first in the next read."""
        self._backlog[:0] = messages

    def woken(self) -> None:
        """The driver's wait found the socket readable: the next ``receive`` reads it."""
        self.drained = False

    def _read_now(self, sock: _Socket) -> int | None:
        """Read what the kernel holds without waiting, or None when it holds nothing.

        A plain socket with a timeout is non-blocking underneath, and its ``recv`` polls
        before every read: ``readv`` on its descriptor reads without that poll, and a read
        shorter than the buffer proves the socket drained (a wait on it sees anything that
        comes later). TLS reads at most one record at a time, so a short read proves
        nothing there, and a read with nothing decrypted would wait a tick (a blocking
        socket's, for ever): those are asked first."""
        if sock is not self._read_sock:
            plain = not isinstance(sock, ssl.SSLSocket) and sock.gettimeout() is not None
            self._read_sock, self._read_fd = sock, sock.fileno() if plain else -1
        if self._read_fd < 0:
            if not _readable(sock):
                self.drained = True
                return None
            return int(sock.recv_into(self._recv_buffer))
        try:
            size = os.readv(self._read_fd, [self._recv_buffer])
        except BlockingIOError:
            self.drained = True
            return None
        if size < RECV_SIZE:
            self.drained = True
        return size

    def send_text(self, message: str) -> None:
        self._guard(self._ws.send, message)

    def ping(self, payload: bytes = b"") -> None:
        self._guard(self._ws.ping, payload)

    def pong(self, payload: bytes) -> None:
        self._guard(self._ws.pong, payload)

    def close(self) -> None:
        """Say goodbye with close code 1000 (best effort, quickly)."""
        try:
            self._ws.send_close(websocket.STATUS_NORMAL)
        except Exception:  # noqa: BLE001 - the link may already be gone; nothing to report
            pass
        self.drop()

    def drop(self) -> None:
        self._ws.shutdown()  # type: ignore[no-untyped-call]

    def buffered(self) -> bool:
        """Whether bytes already read wait to be decoded (no system call)."""
        return bool(self._backlog) or self._reader.pending

    def data_waiting(self) -> bool:
        """Whether another frame is already buffered, so a flush can wait for it."""
        if self._backlog or self._reader.pending:
            return True
        sock = self._ws.sock
        return sock is not None and _readable(sock)

    @staticmethod
    def _guard(send: Any, payload: Any) -> None:
        try:
            send(payload)
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkLost(describe_error(exc)) from None


def _readable(sock: socket.socket) -> bool:
    """Whether a read would return at once (bytes, TLS bytes already decrypted, or an end)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True  # let the read say what is wrong
    return bool(readable)


def connect_failure(url: str, exc: BaseException) -> tuple[str, bool]:
    """Why the websocket could not be opened, as one sentence, and whether trying again later
    may help (a refused port or a 503 may; a certificate we do not trust will not)."""
    if not isinstance(exc, (ConnectionRefusedError, socket.gaierror, TimeoutError, socket.timeout)):
        # A wrong scheme is named as such: no CA bundle or retry cures it.
        mismatch = scheme_mismatch(url, exc)
        if mismatch is not None:
            return f"blackhole at {mismatch}", False
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS verification failed for {url} ({exc.verify_message}); "
            "pass --ca-bundle with the server's CA, or --insecure",
            False,
        )
    if isinstance(exc, ssl.SSLError):
        # A proxy restarting mid-handshake looks like this; a bad certificate does not.
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        return f"TLS handshake with {url} failed ({reason})", True
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = int(exc.status_code)
        hint = ""
        if status == 429:
            hint = " (too many connections from this address)"
        elif status == 400:
            hint = " (a proxy may be adding a Sec-WebSocket-Protocol header)"
        elif status >= 500:
            hint = " (blackhole or a proxy in front of it is failing)"
        text = f"blackhole at {url} refused the websocket upgrade with HTTP {status}{hint}"
        return text, status == 429 or status >= 500
    if isinstance(exc, (websocket.WebSocketAddressException, socket.gaierror)):
        reason = "the host name could not be resolved"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, (TimeoutError, socket.timeout, websocket.WebSocketTimeoutException)):
        reason = "timed out while connecting"
    else:
        reason = describe_error(exc)
    return f"cannot connect to blackhole at {url}: {reason}", True


def closed_by_server(payload: bytes) -> LinkLost:
    """The close frame the server sent, as the reason the link was lost."""
    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    return LinkLost(f"the server closed the connection{describe_close(payload)}", code, clean=True)


def _too_slow(url: str, timeout: float) -> str:
    return (
        f"cannot connect to blackhole at {url}: timed out while connecting "
        f"(the websocket upgrade did not finish within {timeout:g}s)"
    )


def _redirected(url: str, headers: dict[str, str]) -> str:
    """Why a redirected upgrade is not followed. The tail's status lines, its reconnects and
    doctor name the configured URL, so even a same-host redirect is the user's to adopt."""
    location = headers.get("location")
    if not location:
        return f"blackhole at {url} redirected the websocket upgrade without saying where"
    target = shown_url(urljoin(url, location))
    why = why_not_follow(url, target)
    if why is not None:
        return (
            f"blackhole at {url} redirected the websocket upgrade to {target}, {why}; "
            f"not following it, so the token does not go there (pass --ws-url {target} "
            "if that server is yours)"
        )
    return (
        f"blackhole at {url} redirected the websocket upgrade to {target}: "
        f"pass --ws-url {target} to connect there"
    )


def describe_close(payload: bytes) -> str:
    if len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        reason = payload[2:].decode("utf-8", "replace")
        return f" (code {code}{': ' + reason if reason else ''})"
    return " (no close code)"


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, BrokenPipeError):
        return "connection broken"
    if isinstance(exc, (TimeoutError, socket.timeout)):  # socket.timeout: before 3.10
        return "timed out"
    text = str(exc) or type(exc).__name__
    return redact(text)[:200]
