"""A blackhole session that stays up: connect, subscribe every (account, binding), stream, and
reconnect with capped, jittered backoff, telling the consumer how long each gap was.

``Session.events()`` yields events, notices and idle ticks from one synchronous loop, so
exceptions reach the caller (no callback app swallows them) and Ctrl-C or a closed stdout end
it at once. It keeps the link alive with websocket pings, notices a dead link, renews the token
before it expires, and resubscribes bindings on monthly databases when the UTC month turns.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from kazoo_tail.errors import AuthError, ConnectError
from kazoo_tail.kazoo.catalog import uses_monthly_database
from kazoo_tail.kazoo.events import IDLE, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.kazoo.wire import Reply
from kazoo_tail.net.transport import ConnectFailed, LinkLost, Transport
from kazoo_tail.session.decoder import Decoder, FrameCopies
from kazoo_tail.session.link import FrameObserver, Link, Subscribed, TokenSource
from kazoo_tail.session.opening import Opening
from kazoo_tail.session.subscriber import Subscription

# The status line names up to this many accounts; past it, it counts them.
SUMMARY_ACCOUNTS = 3
# The close code of a blackhole handler that crashed on what it was sent.
CLOSE_SERVER_ERROR = 1011
# The same crash while subscribing this many times in a row ends the tail (exit 3).
CRASHES_BEFORE_GIVING_UP = 3


@dataclass
class SessionSettings:
    """Where to connect, what to subscribe, and how to stay connected: already resolved."""

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
    # How often to check whether the token needs renewing before it expires.
    token_check_interval: float = 30.0
    # A first connect that fails ends the session (a wrong URL is exit 4 at once); one of
    # several links to a cluster retries instead, while the others may be up.
    first_connect_fatal: bool = True
    # Never block: reads return at once when nothing is waiting, and waits (a backoff, a
    # handshake) are yielded as ``Pause`` for a driver of several sessions to wait on at once.
    poll: bool = False


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


@dataclass(frozen=True, slots=True)
class Pause:
    """Nothing to do before ``until`` (monotonic) or before ``opening`` ends, whichever is
    first: ``Session.events`` sleeps; a driver of several sessions waits on all at once."""

    until: float
    opening: Opening | None = None


def utc_month() -> str:
    """The month Kazoo files documents under (its monthly databases are named in UTC)."""
    return time.strftime("%Y%m", time.gmtime())


class Session:
    def __init__(
        self,
        settings: SessionSettings,
        tokens: TokenSource,
        *,
        on_frame: FrameObserver | None = None,
        keep_fresh: Callable[[], None] | None = None,
        month: Callable[[], str] = utc_month,
        copies: FrameCopies | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.on_frame = on_frame
        # Renews the token in the background while it still can be (TokenProvider.keep_fresh).
        self.keep_fresh = keep_fresh
        self.month = month
        self._link: Link | None = None
        self._decoder = Decoder(dedupe=settings.dedupe, copies=copies)
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_cap)
        self._subscribed_month: str | None = None
        self._closing = False
        self._next_renewal_check = time.monotonic() + settings.token_check_interval

    def __iter__(self) -> Iterator[Event | Notice]:
        """Events and notices only, for callers with no clock of their own to check."""
        for item in self.events():
            if not isinstance(item, Idle):
                yield item

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(self) -> Iterator[Event | Notice | Idle]:
        """Everything the session has to say, with an idle tick whenever nothing arrived for a
        moment (outside poll mode, ``steps`` waits where it must and yields no ``Pause``)."""
        return cast(Iterator[Event | Notice | Idle], self.steps())

    def steps(self) -> Iterator[Event | Notice | Idle | Pause]:
        """``events``; in poll mode its waits are left to the caller as ``Pause``. The token
        is kept fresh all along, outages included (``_renew_if_due``): a reconnect hours from
        now must not find it expired with no password at hand.

        A gap runs from the last frame heard on a fully subscribed link to the moment every
        subscription is back; events heard in between (on a link lost while subscribing) are
        shown, but do not end it, since some bindings were not in place yet.
        """
        settings = self.settings
        gap_from: float | None = None
        # A handshake that once succeeded proves the URL: later failures to connect are retried.
        ever_opened = False
        held: list[Event | Notice] = []
        # Why each of the last connections in a row was closed by a crash while subscribing.
        crashes: list[str] = []
        try:
            while True:
                subscribing = False
                try:
                    link = yield from self._connect(
                        fatal=settings.first_connect_fatal and not ever_opened, gap_from=gap_from
                    )
                    ever_opened = True
                    connected_at = time.monotonic()
                    subscribing = True
                    yield from self._renewing(
                        link.subscribe(
                            settings.subscriptions,
                            self.tokens,
                            reply_timeout=settings.reply_timeout,
                            held=held,
                        )
                    )
                    subscribing = False
                    crashes.clear()
                    self._subscribed_month = self.month() if self._uses_monthly() else None
                    yield Notice(NoticeKind.SUBSCRIBED, self._subscribed_summary())
                    shown, held = held, []
                    yield from shown
                    if gap_from is not None:
                        yield self._gap_notice(gap_from, time.time())
                    gap_from = None
                    self._decoder.sharing = True
                    try:
                        yield from self._stream(link, connected_at)
                    finally:
                        self._decoder.sharing = False
                except LinkLost as exc:
                    last_heard = self._link.last_heard if self._link is not None else None
                    self._drop()
                    # What arrived before the link was lost is shown, not thrown away.
                    shown, held = held, []
                    yield from shown
                    if self._closing:
                        return
                    self._count_crash(crashes, exc if subscribing else None)
                    if not settings.reconnect:
                        raise ConnectError(
                            f"lost the connection to {settings.url}: {exc}"
                        ) from None
                    # Once the connection is down, each failed try is told as a failure to
                    # come back, not as one more connection lost.
                    still_down = gap_from is not None
                    if gap_from is None:
                        gap_from = last_heard if last_heard is not None else time.time()
                    down_for = time.time() - gap_from
                    limit = settings.max_reconnect_time
                    if limit is not None and down_for >= limit:
                        raise ConnectError(
                            f"gave up reconnecting to {settings.url} after {down_for:.0f}s: {exc}"
                        ) from None
                    delay = self._backoff.next_delay()
                    if limit is not None:
                        delay = max(0.0, min(delay, limit - down_for))
                    if not ever_opened:  # a cluster's node that was never reached
                        message = f"{exc}; trying again in {delay:.1f}s"
                    elif still_down:
                        # The news first: a status line cut at 80 columns still says it.
                        message = (
                            f"still reconnecting (down {down_for:.0f}s, next try in "
                            f"{delay:.1f}s): {exc}"
                        )
                    else:
                        message = (
                            f"connection to {settings.url} lost ({exc}); "
                            f"reconnecting in {delay:.1f}s"
                        )
                    yield Notice(
                        NoticeKind.DISCONNECTED,
                        message,
                        gap_from=gap_from,
                        reason=str(exc),
                    )
                    yield from self._wait(delay)
        finally:
            self.close()

    def _gap_notice(self, gap_from: float, gap_to: float) -> Notice:
        gap = gap_to - gap_from
        return Notice(
            NoticeKind.RECONNECTED,
            f"reconnected to {self.settings.url}; events from {utc_stamp(gap_from)} to "
            f"{utc_stamp(gap_to, round_up=True)} ({gap:.1f}s) may have been missed "
            "(blackhole cannot replay them)",
            gap_seconds=gap,
            gap_from=gap_from,
            gap_to=gap_to,
        )

    def close(self) -> None:
        """Say goodbye with close code 1000 (best effort, quickly)."""
        self._closing = True
        link, self._link = self._link, None
        if link is not None:
            link.transport.close()

    def data_waiting(self) -> bool:
        """Whether another frame is already buffered, so a flush can wait for it."""
        link = self._link
        return link is not None and link.transport.data_waiting()

    def socket(self) -> socket.socket | None:
        """The open link's socket, for a driver of several sessions to wait on."""
        link = self._link
        return link.transport.socket if link is not None else None

    # -- internals --------------------------------------------------------------------------

    def _connect(
        self, *, fatal: bool, gap_from: float | None
    ) -> Generator[Idle | Pause, None, Link]:
        """Open a link, ticking while the handshake takes its time; a reconnect (``gap_from``
        set) gives up when --max-reconnect-time runs out, even mid-handshake."""
        settings = self.settings
        opening = Opening(
            lambda: Transport.open(
                settings.url,
                sslopt=settings.sslopt,
                timeout=settings.connect_timeout,
                tick=settings.idle_tick,
            )
        )
        try:
            while not opening.done:
                self._renew_if_due(time.monotonic())
                limit = settings.max_reconnect_time
                if gap_from is not None and limit is not None:
                    down_for = time.time() - gap_from
                    if down_for >= limit:
                        raise ConnectError(
                            f"gave up reconnecting to {settings.url} after {down_for:.0f}s: "
                            "the websocket handshake was still not answered"
                        )
                yield from self._pause(time.monotonic() + settings.idle_tick, opening)
            transport = opening.result()
        except ConnectFailed as exc:
            if exc.retryable and not fatal:
                raise LinkLost(exc.sentence) from None
            raise ConnectError(exc.sentence) from None
        except BaseException:
            opening.abandon()  # the consumer stopped (its deadline, its reader) or gave up
            raise
        transport.poll = settings.poll
        self._link = Link(transport, self._decoder, on_frame=self.on_frame)
        return self._link

    def _count_crash(self, crashes: list[str], lost: LinkLost | None) -> None:
        """Blackhole's handler crashes (close 1011) on what it cannot parse, most often a
        token without the claims it needs (``iss``): the same crash on every attempt to
        subscribe will not cure itself, so after a few it ends the tail rather than retry
        forever."""
        if lost is None or lost.close_code != CLOSE_SERVER_ERROR:
            crashes.clear()
            return
        if crashes and crashes[-1] != str(lost):
            crashes.clear()
        crashes.append(str(lost))
        if len(crashes) >= CRASHES_BEFORE_GIVING_UP:
            raise AuthError(
                f"blackhole at {self.settings.url} crashed (close code 1011) on each of "
                f"{len(crashes)} attempts to subscribe: it most likely cannot read the token "
                "(one from another cluster or auth provider?)"
            )

    def _stream(self, link: Link, connected_at: float) -> Iterator[Event | Notice | Idle]:
        settings = self.settings
        next_ping = time.monotonic() + settings.ping_interval
        next_tick = time.monotonic() + settings.idle_tick
        ping_sent_at: float | None = None
        stable = False
        while True:
            now = time.monotonic()
            if now >= next_tick:
                # Even while frames that show nothing pour in (server pings, duplicates), the
                # consumer gets its tick: deadlines, a reader gone and flushing depend on it.
                next_tick = now + settings.idle_tick
                yield IDLE
            if now >= self._next_renewal_check:
                self._renew_if_due(now)
            if not stable and now - connected_at >= settings.stable_after:
                stable = True
                self._backoff.reset()
            if ping_sent_at is not None and now - ping_sent_at > settings.ping_timeout:
                raise LinkLost(f"no answer to a ping within {settings.ping_timeout:g}s")
            if now >= next_ping:
                if self._subscribed_month not in (None, self.month()):
                    raise LinkLost(
                        "a new month began, and bindings on monthly databases (faxes, "
                        "voicemail messages) must be made afresh"
                    )
                link.transport.ping()
                next_ping = now + settings.ping_interval
                if ping_sent_at is None:
                    ping_sent_at = now
            item = link.receive()
            if isinstance(item, Idle):
                next_tick = time.monotonic() + settings.idle_tick
                yield item
                continue
            ping_sent_at = None
            if item is not None and not isinstance(item, Reply):
                yield item

    def _uses_monthly(self) -> bool:
        return any(uses_monthly_database(s.binding) for s in self.settings.subscriptions)

    def _subscribed_summary(self) -> str:
        """One readable line, however many accounts: they are counted, not listed, past three."""
        by_account: dict[str, tuple[str, ...]] = {}
        for subscription in self.settings.subscriptions:
            by_account[subscription.account_id] = (
                *by_account.get(subscription.account_id, ()),
                subscription.binding,
            )
        url = self.settings.url
        if len(by_account) <= SUMMARY_ACCOUNTS:
            parts = [
                f"{', '.join(bindings)} for account {account}"
                for account, bindings in by_account.items()
            ]
            return f"subscribed to {'; '.join(parts)} on {url}"
        accounts = list(by_account)
        shown = f"{accounts[0]} and {len(accounts) - 1} more"
        binding_sets = set(by_account.values())
        if len(binding_sets) == 1:
            bindings = ", ".join(binding_sets.pop())
            return f"subscribed to {bindings} for {len(accounts)} accounts ({shown}) on {url}"
        count = len(self.settings.subscriptions)
        return f"subscribed to {count} bindings for {len(accounts)} accounts ({shown}) on {url}"

    def _drop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.transport.drop()

    def _wait(self, seconds: float) -> Iterator[Idle | Pause]:
        """Wait in ticks, so the consumer can still notice its deadline or a closed stdout."""
        until = time.monotonic() + seconds
        while (now := time.monotonic()) < until:
            self._renew_if_due(now)
            yield from self._pause(min(until, now + self.settings.idle_tick))

    def _pause(self, until: float, opening: Opening | None = None) -> Iterator[Idle | Pause]:
        """A wait until ``until`` (monotonic) or ``opening``'s end: handed to the driver in
        poll mode, else waited here, and an idle tick yielded for the consumer's clocks."""
        if self.settings.poll:
            yield Pause(until, opening)
            return
        left = until - time.monotonic()
        if opening is not None:
            opening.wait(max(0.0, left))
        elif left > 0:
            time.sleep(left)
        yield IDLE

    def _renew_if_due(self, now: float) -> None:
        if now >= self._next_renewal_check and self.keep_fresh is not None:
            self._next_renewal_check = now + self.settings.token_check_interval
            self.keep_fresh()

    def _renewing(
        self, steps: Generator[Idle | Notice | Event, None, Subscribed]
    ) -> Generator[Idle | Notice | Event, None, Subscribed]:
        """A subscribe round's items, passed on, with the token kept fresh on its idle ticks (a
        round paced by the rate limit can take minutes)."""
        try:
            while True:
                try:
                    item = next(steps)
                except StopIteration as done:
                    outcome: Subscribed = done.value
                    return outcome
                if isinstance(item, Idle):
                    self._renew_if_due(time.monotonic())
                yield item
        finally:
            steps.close()
