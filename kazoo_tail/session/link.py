"""One open connection to blackhole: a transport, a decoder, and the subscribe round driven
over them. The tail's reconnecting session and doctor's checks both work through a Link."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kazoo_tail.errors import AuthError, ConnectError, SubscribeError, redact
from kazoo_tail.kazoo.events import IDLE, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.wire import Reply
from kazoo_tail.net.frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT
from kazoo_tail.net.transport import LinkLost, Transport, closed_by_server
from kazoo_tail.session.decoder import Decoder
from kazoo_tail.session.subscriber import SubscribeRound, Subscription

# Events that arrive before the subscribe replies are held back, up to this many.
EARLY_EVENTS_HELD = 1000
# A subscribe round that takes longer than this says how far it got, then every so often.
PROGRESS_AFTER = 2.0
PROGRESS_EVERY = 5.0

FrameObserver = Callable[[int, bytes, float], None]
# The most of a server's error text an error message quotes: it is meant to be one line.
QUOTED_AT_MOST = 300


def _bounded(text: str) -> str:
    return text if len(text) <= QUOTED_AT_MOST else f"{text[:QUOTED_AT_MOST]}..."


class TokenSource(Protocol):
    """Hands out a valid token; ``refresh`` means the server just refused the last one."""

    def __call__(self, *, refresh: bool = False) -> str: ...


@dataclass
class Subscribed:
    """How a subscribe round ended, with the events that arrived before its replies."""

    round: SubscribeRound
    held: list[Event | Notice] = field(default_factory=list)


def run_to_end(steps: Generator[object, None, Subscribed]) -> Subscribed:
    """Drive a subscribe round to its end, ignoring what it yields on the way (doctor)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            outcome: Subscribed = done.value
            return outcome


class Link:
    def __init__(
        self,
        transport: Transport,
        decoder: Decoder,
        *,
        on_frame: FrameObserver | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        timeline: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.url = transport.url
        self.decoder = decoder
        # Sees every text and binary frame as received (for --record), before any decoding.
        self.on_frame = on_frame
        self.clock = clock
        self.monotonic = monotonic
        self.timeline = timeline
        # When the last frame was read, on the session's timeline (see session/clock.py).
        self.last_heard = timeline()
        # The payload of the last pong read (a ping's answer proves the link alive).
        self.last_pong: bytes | None = None
        self.events_seen = 0

    def receive(self) -> Event | Reply | Notice | Idle | None:
        """One message, decoded; IDLE when nothing arrived within a tick, None for frames that
        show nothing (pings, pongs, duplicates, bad frames not reported this time)."""
        message = self.transport.receive()
        if message is None:
            return IDLE
        opcode, payload = message
        now = self.clock()
        self.last_heard = self.timeline()
        if opcode in (OP_TEXT, OP_BINARY):
            if self.on_frame is not None:
                self.on_frame(opcode, payload, now)
            item = self.decoder.decode(opcode, payload, now)
            if isinstance(item, Event):
                self.events_seen += 1
            return item
        if opcode == OP_CLOSE:
            raise closed_by_server(payload)
        if opcode == OP_PING:
            self.transport.pong(payload)
        elif opcode == OP_PONG:
            self.last_pong = payload
        return None

    def receive_many(self) -> list[Event | Reply | Notice | None]:
        """Every message there is without waiting, decoded, in order (none: nothing came);
        None for frames that show nothing. They were read at one instant, and share its
        received time. A batch ends at a pong (``last_pong`` is then its payload, for the
        caller to judge before the frames after it) and before a close frame that follows
        others (they are delivered before the close is raised); the rest is read next.

        This is the streaming session's read, once per batch of frames: at a modest rate,
        once per event, where a call and a clock read per frame were half the Python work."""
        transport = self.transport
        messages = transport.receive_all()
        items: list[Event | Reply | Notice | None] = []
        if not messages:
            return items
        now = self.clock()
        self.last_heard = self.timeline()
        decode, on_frame = self.decoder.decode, self.on_frame
        for index, (opcode, payload) in enumerate(messages):
            if opcode == OP_TEXT or opcode == OP_BINARY:
                if on_frame is not None:
                    on_frame(opcode, payload, now)
                item = decode(opcode, payload, now)
                if item.__class__ is Event:
                    self.events_seen += 1
                items.append(item)
                continue
            if opcode == OP_CLOSE:
                if items:
                    transport.unread(messages[index:])
                    return items
                raise closed_by_server(payload)
            items.append(None)
            if opcode == OP_PING:
                transport.pong(payload)
            elif opcode == OP_PONG:
                self.last_pong = payload
                if index + 1 < len(messages):
                    transport.unread(messages[index + 1 :])
                    return items
        return items

    def subscribe(
        self,
        subscriptions: Sequence[Subscription],
        tokens: TokenSource,
        *,
        reply_timeout: float,
        held: list[Event | Notice] | None = None,
        stop_on_rejection: bool = True,
        rate_limit_retries: int | None = None,
    ) -> Generator[Idle | Notice | Event, None, Subscribed]:
        """Subscribe everything, yielding ticks (even while frames pour in, so the caller can
        watch its deadline and its reader) and progress when it takes a while.

        Events that come first are held back in ``held`` until every reply is in, so that a
        rejected binding stops the tail before anything is shown; the caller owns that list
        and shows what it holds if the link is lost meanwhile. A flood of them before the
        replies is shown rather than held without bound.
        """
        started = self.monotonic()
        round_ = SubscribeRound(
            subscriptions,
            self._token(tokens),
            now=started,
            reply_timeout=reply_timeout,
            rate_limit_retries=rate_limit_retries,
        )
        outcome = Subscribed(round_, held if held is not None else [])
        tick = self.transport.tick
        next_tick = started + tick
        next_progress = started + PROGRESS_AFTER
        while not round_.done:
            if round_.wants_token:
                round_.use_token(self._renewed_token(tokens, round_.token_error or ""))
            now = self.monotonic()  # after a renewal, which may have taken a while
            for message in round_.to_send(now):
                self.transport.send_text(message)
            # Replies already buffered are read before any is declared overdue.
            if not self.transport.data_waiting() and round_.timed_out(now):
                raise LinkLost(
                    f"no reply to a subscribe within {reply_timeout:g}s, "
                    f"even after sending it again"
                )
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                yield Notice(
                    NoticeKind.PROGRESS,
                    url=self.url,
                    answered=round_.answered,
                    total=round_.total,
                    block=round_.bucket.block,
                    seconds_left=round_.seconds_left(now),
                )
            if now >= next_tick:
                next_tick = now + tick
                yield IDLE
            item = self.receive()
            if isinstance(item, Reply):
                round_.on_reply(item, self.monotonic())
                if stop_on_rejection and round_.rejected:
                    break
            elif isinstance(item, Idle):
                next_tick = self.monotonic() + tick
                yield item
            elif item is not None:
                outcome.held.append(item)
                if len(outcome.held) >= EARLY_EVENTS_HELD:
                    shown = list(outcome.held)
                    outcome.held.clear()
                    yield from shown
        if round_.token_refused is not None:
            raise AuthError(
                f"blackhole at {self.url} rejected a fresh token from Crossbar "
                f"({redact(round_.token_refused)}); are the two URLs the same cluster?"
            )
        if stop_on_rejection and round_.rejected:
            first = round_.rejected[0]
            raise SubscribeError(
                f"blackhole rejected binding {first.subscription.binding!r} for account "
                f"{first.subscription.account_id}: {_bounded(redact(first.error))}"
            )
        return outcome

    def request(self, message: str, request_id: str, timeout: float, what: str) -> Reply:
        """Send one message and wait for the reply with its request_id."""
        self.transport.send_text(message)
        deadline = self.monotonic() + timeout
        while True:
            item = self.receive()
            if isinstance(item, Reply) and item.request_id == request_id:
                return item
            if isinstance(item, Idle) and self.monotonic() > deadline:
                raise LinkLost(f"no reply to {what} within {timeout:g} s: blackhole seems hung")

    def ping_round_trip(self, timeout: float) -> float:
        """Seconds from a websocket ping frame to its pong."""
        payload = uuid.uuid4().hex[:16].encode()
        started = time.perf_counter()
        self.transport.ping(payload)
        deadline = self.monotonic() + timeout
        while True:
            message = self.transport.receive()
            if message is None:
                if self.monotonic() > deadline:
                    raise LinkLost(
                        f"no pong to a websocket ping within {timeout:g} s: blackhole seems hung"
                    )
                continue
            opcode, data = message
            self.last_heard = self.timeline()
            if opcode == OP_PONG and data == payload:
                return time.perf_counter() - started
            if opcode == OP_CLOSE:
                raise closed_by_server(data)
            if opcode == OP_PING:
                self.transport.pong(data)
            if opcode in (OP_TEXT, OP_BINARY) and isinstance(
                self.decoder.decode(opcode, data, self.clock()), Event
            ):
                self.events_seen += 1

    def _renewed_token(self, tokens: TokenSource, error: str) -> str:
        try:
            return self._token(tokens, refresh=True)
        except AuthError as exc:
            raise AuthError(
                f"blackhole at {self.url} rejected the token ({redact(error)}), "
                f"and no other could be had: {exc.message}"
            ) from None

    def _token(self, tokens: TokenSource, *, refresh: bool = False) -> str:
        """A token for (re)subscribing; Crossbar being down now is a reason to retry later."""
        try:
            return tokens(refresh=refresh)
        except ConnectError as exc:
            raise LinkLost(f"could not renew the token: {exc}") from None
