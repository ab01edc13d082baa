"""A blackhole session over a synchronous websocket-client connection that we own.

``BlackholeSession.events()`` connects, subscribes every (account, binding), and yields events
and notices. It keeps the link alive with websocket pings, notices a dead link, and reconnects
with capped, jittered backoff, telling the consumer how long each gap was. Exceptions reach the
caller (no callback app swallows them), so Ctrl-C and a closed stdout end it at once.
"""

from __future__ import annotations

import random
import select
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import websocket

from kazoo_tail.errors import AuthError, ConnectError, SubscribeError, redact
from kazoo_tail.kazoo.catalog import uses_monthly_database
from kazoo_tail.kazoo.events import IDLE, Deduplicator, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.wire import BadFrame, Reply, parse_frame, subscribe_message
from kazoo_tail.net.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, FrameError, FrameReader

# How many subscribes may await their reply at once: blackhole's per-socket bucket holds 100.
SUBSCRIBE_WINDOW = 20
# Server error texts that mean "your token", not "your binding" (blackhole-protocol.md §3).
TOKEN_ERRORS = ("failed to authenticate token", "authentication token required")
RATE_LIMIT_ERROR = "rate limiting threshold hit"
BAD_FRAME_REPORT_INTERVAL = 10.0
# Events that arrive before the subscribe replies are held back, up to this many.
EARLY_EVENTS_HELD = 1000
# One recv() takes everything the kernel has buffered, up to this much, for many frames at once.
RECV_SIZE = 256 * 1024


class TokenSource(Protocol):
    def __call__(self, *, refresh: bool = False) -> str: ...


@dataclass(frozen=True, slots=True)
class Subscription:
    account_id: str
    binding: str


@dataclass
class SessionSettings:
    url: str
    subscriptions: Sequence[Subscription]
    sslopt: dict[str, Any] = field(default_factory=dict)
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    connect_timeout: float = 10.0
    reply_timeout: float = 10.0
    reconnect: bool = True
    max_reconnect_time: float | None = None
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    # A connection that lived this long resets the backoff; shorter ones keep it growing.
    stable_after: float = 30.0
    dedupe: bool = True
    idle_tick: float = 0.25


class LinkLost(Exception):
    """The connection failed in a way that a reconnect may cure."""


class Backoff:
    """Exponential backoff with full jitter and a cap."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * (2**self.attempt))
        self.attempt += 1
        return self.rng.uniform(ceiling / 10, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class BlackholeSession:
    def __init__(
        self,
        settings: SessionSettings,
        token_source: TokenSource,
        on_frame: Callable[[int, bytes, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.token_source = token_source
        # Sees every text and binary frame as received (for --record), before any decoding.
        self.on_frame = on_frame
        self._ws: websocket.WebSocket | None = None
        self._dedupe = Deduplicator() if settings.dedupe else None
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_cap)
        self._reader = FrameReader()
        self._last_heard = time.time()
        self._subscribed_month: str | None = None
        self._bad_frames_unreported = 0
        self._bad_frame_reported_at = float("-inf")
        self._closing = False

    # -- public -----------------------------------------------------------------------------

    def events(self) -> Iterator[Event | Notice | Idle]:
        settings = self.settings
        lost_at: float | None = None
        ever_connected = False
        try:
            while True:
                try:
                    self._ws = self._connect(fatal=not ever_connected)
                    connected_at = time.monotonic()
                    yield from self._subscribe_all(self._ws)
                    if lost_at is not None:
                        gap = time.time() - lost_at
                        yield Notice(
                            NoticeKind.RECONNECTED,
                            f"reconnected to {settings.url} after a gap of {gap:.1f}s; events "
                            "in that gap may have been missed (blackhole cannot replay them)",
                            gap_seconds=gap,
                        )
                    ever_connected = True
                    lost_at = None
                    yield from self._stream(self._ws, connected_at)
                except LinkLost as exc:
                    self._drop()
                    if self._closing:
                        return
                    if not settings.reconnect:
                        raise ConnectError(
                            f"lost the connection to {settings.url}: {exc}"
                        ) from None
                    if lost_at is None:
                        lost_at = self._last_heard
                    down_for = time.time() - lost_at
                    limit = settings.max_reconnect_time
                    if limit is not None and down_for >= limit:
                        raise ConnectError(
                            f"gave up reconnecting to {settings.url} after {down_for:.0f}s: {exc}"
                        ) from None
                    delay = self._backoff.next_delay()
                    if limit is not None:
                        delay = max(0.0, min(delay, limit - down_for))
                    yield Notice(
                        NoticeKind.DISCONNECTED,
                        f"connection to {settings.url} lost ({exc}); reconnecting in {delay:.1f}s",
                    )
                    yield from self._wait(delay)
        finally:
            self.close()

    @staticmethod
    def month() -> str:
        """The month Kazoo files documents under (its monthly databases are named in UTC)."""
        return time.strftime("%Y%m", time.gmtime())

    def close(self) -> None:
        """Say goodbye with close code 1000 (best effort, quickly)."""
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is None:
            return
        try:
            ws.send_close(websocket.STATUS_NORMAL)
        except Exception:  # noqa: BLE001 - the link may already be gone; nothing to report
            pass
        ws.shutdown()  # type: ignore[no-untyped-call]

    # -- connecting -------------------------------------------------------------------------

    def _connect(self, *, fatal: bool) -> websocket.WebSocket:
        url = self.settings.url
        try:
            ws = websocket.create_connection(
                url,
                timeout=self.settings.connect_timeout,
                sslopt=self.settings.sslopt,
                # Python's strict bytes.decode validates text frames; websocket-client's own
                # pure-Python UTF-8 check costs more than everything else per frame.
                skip_utf8_validation=True,
                enable_multithread=False,
            )
        except (OSError, websocket.WebSocketException) as exc:
            sentence, retryable = connect_failure(url, exc)
            if retryable and not fatal:
                raise LinkLost(sentence) from None
            raise ConnectError(sentence) from None
        ws.settimeout(self.settings.idle_tick)
        self._reader = FrameReader()
        self._last_heard = time.time()
        return ws

    # -- subscribing ------------------------------------------------------------------------

    def _subscribe_all(self, ws: websocket.WebSocket) -> Iterator[Event | Notice | Idle]:
        """Subscribe everything; events that come first are held back until every reply is
        in, so that a rejected binding stops the tail before anything is printed."""
        token = self._token()
        queue = list(self.settings.subscriptions)
        pending: dict[str, tuple[Subscription, str]] = {}
        renewed = False
        early: list[Event | Notice] = []
        deadline = time.monotonic() + self.settings.reply_timeout
        while queue or pending:
            while queue and len(pending) < SUBSCRIBE_WINDOW:
                subscription = queue.pop(0)
                request_id = uuid.uuid4().hex
                pending[request_id] = (subscription, token)
                message = subscribe_message(
                    request_id, token, subscription.account_id, subscription.binding
                )
                self._send(ws, message)
            item = self._receive(ws)
            if isinstance(item, Reply):
                sent = pending.pop(item.request_id, None)
                if sent is None:
                    continue
                subscription, sent_with = sent
                deadline = time.monotonic() + self.settings.reply_timeout
                if item.ok:
                    continue
                error = item.errors[0]
                if error.startswith(TOKEN_ERRORS) and sent_with != token:
                    queue.insert(0, subscription)  # sent before the renewal; try again
                elif error.startswith(TOKEN_ERRORS) and not renewed:
                    renewed = True
                    token = self._token(refresh=True)
                    queue.insert(0, subscription)
                elif error.startswith(TOKEN_ERRORS):
                    raise AuthError(
                        f"blackhole at {self.settings.url} rejected a fresh token from Crossbar "
                        f"({redact(error)}); are the two URLs the same cluster?"
                    )
                elif error.startswith(RATE_LIMIT_ERROR):
                    self._sleep(1.0)
                    queue.insert(0, subscription)
                else:
                    raise SubscribeError(
                        f"blackhole rejected binding {subscription.binding!r} for account "
                        f"{subscription.account_id}: {redact(error)}"
                    )
            elif isinstance(item, Idle):
                if time.monotonic() > deadline:
                    raise LinkLost(
                        f"no reply to subscribe within {self.settings.reply_timeout:.0f}s"
                    )
                yield item
            elif item is not None:
                early.append(item)
                if len(early) >= EARLY_EVENTS_HELD:
                    yield from early  # a flood before the replies: show it rather than hold it
                    early.clear()
        monthly = [
            s.binding for s in self.settings.subscriptions if uses_monthly_database(s.binding)
        ]
        self._subscribed_month = self.month() if monthly else None
        yield Notice(NoticeKind.SUBSCRIBED, self._subscribed_summary())
        yield from early

    def _token(self, *, refresh: bool = False) -> str:
        """A token for (re)subscribing; Crossbar being down now is a reason to retry later."""
        try:
            return self.token_source(refresh=refresh)
        except ConnectError as exc:
            raise LinkLost(f"could not renew the token: {exc}") from None

    def _subscribed_summary(self) -> str:
        by_account: dict[str, list[str]] = {}
        for subscription in self.settings.subscriptions:
            by_account.setdefault(subscription.account_id, []).append(subscription.binding)
        parts = [
            f"{', '.join(bindings)} for account {account}"
            for account, bindings in by_account.items()
        ]
        return f"subscribed to {'; '.join(parts)} on {self.settings.url}"

    # -- streaming --------------------------------------------------------------------------

    def _stream(
        self, ws: websocket.WebSocket, connected_at: float
    ) -> Iterator[Event | Notice | Idle]:
        settings = self.settings
        next_ping = time.monotonic() + settings.ping_interval
        ping_sent_at: float | None = None
        stable = False
        while True:
            now = time.monotonic()
            if not stable and now - connected_at >= settings.stable_after:
                stable = True
                self._backoff.reset()
            if ping_sent_at is not None and now - ping_sent_at > settings.ping_timeout:
                raise LinkLost(f"no answer to a ping within {settings.ping_timeout:.0f}s")
            if now >= next_ping:
                if self._subscribed_month not in (None, self.month()):
                    raise LinkLost(
                        "a new month began, and bindings on monthly databases (faxes, "
                        "voicemail messages) must be made afresh"
                    )
                self._ping(ws)
                next_ping = now + settings.ping_interval
                if ping_sent_at is None:
                    ping_sent_at = now
            item = self._receive(ws)
            if isinstance(item, Idle):
                yield item
                continue
            ping_sent_at = None
            if item is not None and not isinstance(item, Reply):
                yield item

    def _receive(self, ws: websocket.WebSocket) -> Event | Reply | Notice | Idle | None:
        """One message, decoded; IDLE when nothing arrived within a tick."""
        try:
            message = self._reader.next()
            while message is None:
                data = ws.sock.recv(RECV_SIZE)  # type: ignore[union-attr]
                if not data:
                    raise LinkLost("the connection was closed without a close frame")
                self._reader.feed(data)
                message = self._reader.next()
        except TimeoutError:
            return IDLE
        except FrameError as exc:
            raise LinkLost(f"the server sent {exc}") from None
        except OSError as exc:
            raise LinkLost(describe_error(exc)) from None
        opcode, payload = message
        now = time.time()
        self._last_heard = now
        if self.on_frame is not None and opcode in (OP_TEXT, OP_BINARY):
            self.on_frame(opcode, payload, now)
        if opcode == OP_TEXT:
            try:
                item = parse_frame(payload, now)
            except BadFrame as exc:
                return self._bad_frame(str(exc))
            if isinstance(item, Event) and self._dedupe is not None:
                if self._dedupe.is_duplicate(item):
                    return None
            return item
        if opcode == OP_BINARY:
            return self._bad_frame("a binary frame")
        if opcode == OP_CLOSE:
            raise LinkLost(f"the server closed the connection{describe_close(payload)}")
        if opcode == OP_PING:
            self._pong(ws, payload)
        return None  # ping or pong: proof of life, nothing to show

    def _bad_frame(self, reason: str) -> Notice | None:
        """Report bad frames at most once per interval, counting the ones not reported."""
        now = time.monotonic()
        if now - self._bad_frame_reported_at < BAD_FRAME_REPORT_INTERVAL:
            self._bad_frames_unreported += 1
            return None
        message = f"ignored {reason} from the server"
        if self._bad_frames_unreported:
            message += f" ({self._bad_frames_unreported} more bad frames ignored before it)"
        self._bad_frame_reported_at = now
        self._bad_frames_unreported = 0
        return Notice(NoticeKind.BAD_FRAME, message)

    # -- small helpers ----------------------------------------------------------------------

    def _send(self, ws: websocket.WebSocket, message: str) -> None:
        try:
            ws.send(message)
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkLost(describe_error(exc)) from None

    def _pong(self, ws: websocket.WebSocket, payload: bytes) -> None:
        try:
            ws.pong(payload)
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkLost(describe_error(exc)) from None

    def _ping(self, ws: websocket.WebSocket) -> None:
        try:
            ws.ping()
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkLost(describe_error(exc)) from None

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.shutdown()  # type: ignore[no-untyped-call]

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def _wait(self, seconds: float) -> Iterator[Idle]:
        """Sleep in ticks, so the consumer can still notice its deadline or a closed stdout."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, self.settings.idle_tick))
            yield IDLE

    def data_waiting(self) -> bool:
        """Whether another frame is already buffered, so a flush can wait for it."""
        if self._reader.has_data():
            return True
        ws = self._ws
        if ws is None or ws.sock is None:
            return False
        sock = ws.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)


def connect_failure(url: str, exc: BaseException) -> tuple[str, bool]:
    """Why the websocket could not be opened, as one sentence, and whether trying again later
    may help (a refused port or a 503 may; a certificate we do not trust will not)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS verification failed for {url} ({exc.verify_message}); "
            "pass --ca-bundle with the server's CA, or --insecure",
            False,
        )
    if isinstance(exc, ssl.SSLError):
        # A proxy restarting mid-handshake looks like this; a bad certificate does not.
        return f"TLS handshake with {url} failed ({exc.reason})", True
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
    if isinstance(exc, websocket.WebSocketAddressException | socket.gaierror):
        reason = "the host name could not be resolved"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, TimeoutError | websocket.WebSocketTimeoutException):
        reason = "timed out while connecting"
    else:
        reason = describe_error(exc)
    return f"cannot connect to blackhole at {url}: {reason}", True


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
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return redact(text)[:200]
