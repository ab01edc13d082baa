"""The session: the one driver of links to blackhole, whether to one node or to several.

One link is a cluster of one. Every link has its own state (waiting to try, opening,
subscribing, streaming, ended) and is stepped by one synchronous loop that waits on every
link's socket at once, so exceptions reach the caller and Ctrl-C or a closed stdout end it at
once. (Threads were measured first: the GIL handoffs between a thread per link cost two
thirds of the throughput.) The loop keeps each link alive with websocket pings, notices a
dead one, reconnects with capped, jittered backoff, renews the token before it expires, and
resubscribes bindings on monthly databases when the month turns (``modb_period``).

Every node of a cluster receives every event (its AMQP listeners are federated) with the
same routing key and ``msg_id``: events are merged, each shown once, whichever link brought it
first. One gap ledger (``gaps.py``) works out, from every link's outages and from the tool's
own stalls, the windows in which events may have been missed; the notices carry those facts
as data, put into words by ``kazoo_tail.output.notices``. The clock is injected
(``clock.py``), so all of this is tested on simulated time.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kazoo_tail.errors import AuthError, ConnectError, KazooTailError, SubscribeError
from kazoo_tail.kazoo.catalog import uses_monthly_database
from kazoo_tail.kazoo.events import IDLE, Deduplicator, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.wire import Reply
from kazoo_tail.net.transport import ConnectFailed, LinkLost, Transport
from kazoo_tail.net.urls import node_label
from kazoo_tail.session.clock import Clock, Waitable, readers
from kazoo_tail.session.decoder import Decoder, FrameCopies
from kazoo_tail.session.gaps import GapLedger, Window
from kazoo_tail.session.link import FrameObserver, Link, Subscribed, TokenSource
from kazoo_tail.session.opening import Opening
from kazoo_tail.session.subscriber import Subscription

if TYPE_CHECKING:
    from kazoo_tail.session.resolve import ConnectionConfig

# A link is stepped at most this many items in a row, so a flood on one cannot starve another.
BATCH = 256
# A link that is subscribing is stepped this often even with nothing to read: its pacing and
# reply deadlines run on those steps.
HOUSEKEEPING = 0.05
# While a handshake is under way, the loop looks at it this often.
HANDSHAKE_POLL = 0.02
# The consumer gets an idle tick at least this often, for its own clocks (--duration, a
# reader gone, flushing).
IDLE_TICK = 0.25
REPLY_TIMEOUT = 10.0
# A connection that lived this long resets the backoff; shorter ones keep it growing.
STABLE_AFTER = 30.0
# How often to check whether the token needs renewing before it expires.
TOKEN_CHECK_INTERVAL = 30.0
# The loop not running for this long beyond what it chose to wait is the tool's own stall
# (SIGSTOP, Ctrl-Z, a suspended machine): the server may have shed events meanwhile.
STALL_AFTER = 1.0
# Events remembered to drop a second copy: from overlapping bindings on one link; from the
# other nodes too with several (about 10 MB at most), wide enough for one node lagging
# seconds behind another at thousands of events a second.
DEDUPE_ONE_LINK = 4096
DEDUPE_SEVERAL_LINKS = 32768
# With several links, each renews its monthly bindings this long after the one before it.
MONTH_STAGGER = 60.0
# The close code of a blackhole handler that crashed on what it was sent.
CLOSE_SERVER_ERROR = 1011
# The same crash while subscribing this many times in a row ends the tail (exit 3).
CRASHES_BEFORE_GIVING_UP = 3


class Backoff:
    """Exponential backoff with jitter and a cap: the ceiling doubles from ``initial`` to
    ``cap``, and each delay is drawn between a tenth of the ceiling and the ceiling."""

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


def modb_period(at: float) -> str:
    """Which month blackhole binds a monthly database's documents to, as far as a client can
    know: blackhole takes it from the node's local date when the subscribe arrives
    (docs/protocol.md §8.5), and the node's time zone is not told. The period turns with the
    UTC month, and again twelve hours later, once every zone's month has turned (the last,
    UTC-12, turns at 12:00 UTC on the 1st): a renewal at each turn binds the new month on
    every node by then."""
    moment = time.gmtime(at)
    half = "a" if moment.tm_mday == 1 and moment.tm_hour < 12 else "b"
    return f"{moment.tm_year:04d}{moment.tm_mon:02d}{half}"


class Handshake(Protocol):
    """A websocket being opened without stopping the loop (``opening.Opening``)."""

    @property
    def done(self) -> bool: ...

    def result(self) -> Transport: ...

    def abandon(self) -> None: ...


Connect = Callable[[str], Handshake]


@dataclasses.dataclass(eq=False)
class _Runner:
    """One link as the loop steps it."""

    index: int
    url: str
    label: str | None
    backoff: Backoff
    decoder: Decoder
    state: str = "waiting"  # waiting, opening, subscribing, streaming, ended
    retry_at: float = 0.0
    opening: Handshake | None = None
    link: Link | None = None
    steps: Generator[Idle | Notice | Event, None, Subscribed] | None = None
    held: list[Event | Notice] = dataclasses.field(default_factory=list)
    due: float = 0.0
    ever_opened: bool = False
    ever_subscribed: bool = False
    # A try to open it failed before any handshake of any link succeeded.
    failed_unreached: bool = False
    last_failure: str = ""
    # Lost and not back yet: a failed try is then "still reconnecting", not one more loss.
    down: bool = False
    # Why each of the last connections in a row was closed by a crash while subscribing.
    crashes: list[str] = dataclasses.field(default_factory=list)
    connected_at: float = 0.0
    next_ping: float = 0.0
    ping_sent_at: float | None = None
    # After a stall: the payload of the ping whose pong proves the link alive again.
    checking: bytes | None = None
    check_sent: bool = False
    month: str | None = None
    # Its socket was found readable, or its last step stopped before reading all there was.
    readable: bool = False


class Session:
    """Events, notices and idle ticks from links to one or several blackhole nodes, merged.

    ``events()`` yields them; iterating the session yields events and notices only. Nothing
    is connected until then; ``close()`` (or the context manager) says goodbye on every link.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        urls: Sequence[str],
        subscriptions: Sequence[Subscription],
        tokens: TokenSource,
        *,
        keep_fresh: Callable[[], None] | None = None,
        on_frame: FrameObserver | None = None,
        clock: Clock | None = None,
        connect: Connect | None = None,
        month: Callable[[float], str] = modb_period,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.urls = list(urls)
        self.subscriptions = list(subscriptions)
        self.tokens = tokens
        # Renews the token in the background while it still can be (TokenProvider.keep_fresh).
        self.keep_fresh = keep_fresh
        self.on_frame = on_frame
        self.clock = clock or Clock()
        self.connect = connect or self._open
        self.month = month
        self.ping_timeout = config.dead_link_after()
        several = len(self.urls) > 1
        self.several = several
        copies = FrameCopies() if several and config.dedupe else None
        self._dedupe = (
            Deduplicator(DEDUPE_SEVERAL_LINKS if several else DEDUPE_ONE_LINK)
            if config.dedupe
            else None
        )
        self._runners = [
            _Runner(
                index,
                url,
                node_label(url) if several else None,
                Backoff(config.backoff_initial, config.backoff_cap, rng),
                Decoder(copies=copies, monotonic=self.clock.monotonic),
            )
            for index, url in enumerate(self.urls)
        ]
        self.ledger = GapLedger(len(self._runners))
        self._uses_monthly = any(uses_monthly_database(s.binding) for s in self.subscriptions)
        self._current: _Runner | None = None
        self._closing = False
        # Before any link subscribed: since when every try has failed (--max-reconnect-time).
        self._failing_since: float | None = None
        self._next_renewal = self.clock.monotonic() + TOKEN_CHECK_INTERVAL
        # The last turn of the loop: when it began (both clocks) and how long it chose to wait.
        self._turn = (self.clock.monotonic(), self.clock.timeline(), 0.0)
        # Time spent where the loop is known to wait (a login asking for a password), which
        # is not the tool's own stall.
        self._excused = 0.0
        self._ping_counter = 0

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
        moment. (The loop itself, not a generator around it: each layer is resumed for every
        event.)"""
        return self._loop()

    def close(self) -> None:
        """Every link says goodbye with close code 1000 (best effort, quickly)."""
        self._closing = True
        for runner in self._runners:
            self._drop(runner, goodbye=True)
            runner.state = "ended"

    def data_waiting(self) -> bool:
        """Whether the link being read has another frame already read (asked after every
        event, so it costs no system call: a flush can wait for that frame's render)."""
        runner = self._current
        link = runner.link if runner is not None else None
        return link is not None and link.transport.buffered()

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> Iterator[Event | Notice | Idle]:
        # At a modest rate every event takes a turn of its own: the turn's Python work is
        # much of the tail's, so the common case (a streaming link, no stall) calls little.
        clock = self.clock
        monotonic, timeline, _ = readers(clock)
        runners = self._runners
        next_tick = monotonic() + IDLE_TICK
        self._turn = (monotonic(), timeline(), 0.0)
        try:
            while not self._closing:
                now, moment = monotonic(), timeline()
                then, then_moment, waited = self._turn
                self._turn = (now, moment, 0.0)
                # The stall check (``_stalled``), on both clocks, only called when it may be one.
                late = now - then
                if moment - then_moment > late:
                    late = moment - then_moment
                late -= waited
                if late > STALL_AFTER:
                    yield from self._stalled(now, moment, then_moment, late)
                self._excused = 0.0
                progressed = False
                for runner in runners:
                    link = runner.link
                    if runner.state == "streaming" and link is not None:
                        # _ready's test for a streaming link, inline: asked for every event.
                        if not (runner.readable or now >= runner.due or link.transport.buffered()):
                            continue
                    elif not self._ready(runner, now):
                        continue
                    runner.due = now + HOUSEKEEPING
                    self._current = runner
                    steps = (
                        self._step_streaming(runner, now)
                        if runner.state == "streaming"
                        else self._step(runner, now)
                    )
                    for item in steps:
                        progressed = True
                        yield item
                for runner in runners:
                    if runner.state != "ended":
                        break
                else:
                    return
                now = monotonic()
                if now >= next_tick:
                    next_tick = now + IDLE_TICK
                    self._renew_if_due(now)
                    self._check_deadline()
                    yield IDLE
                    now = monotonic()  # the consumer ran meanwhile
                # A step ends once its link has nothing more to read (or after a batch): the loop
                # turns again at once only when a link is ready now, else it waits. One turn per
                # event at a modest rate, not two.
                if progressed:
                    for runner in runners:
                        link = runner.link
                        if runner.state == "streaming" and link is not None:
                            if runner.readable or now >= runner.due or link.transport.buffered():
                                break
                        elif self._ready(runner, now):
                            break
                    else:
                        progressed = False
                if not progressed:
                    timeout, waitables = self._wait_plan(next_tick, now)
                    self._turn = (self._turn[0], self._turn[1], timeout)
                    for waitable in clock.wait(list(waitables), timeout):
                        woken = waitables.get(waitable)
                        if woken is not None:
                            woken.readable = True
                            if woken.link is not None:
                                woken.link.transport.drained = False  # as ``woken()``, inline
        finally:
            self.close()

    def _ready(self, runner: _Runner, now: float) -> bool:
        state = runner.state
        if state == "waiting":
            return now >= runner.retry_at
        if state == "opening":
            return runner.opening is not None and runner.opening.done
        if state == "ended" or runner.link is None:
            return False
        return now >= runner.due or runner.readable or runner.link.transport.buffered()

    def _wait_plan(self, next_tick: float, now: float) -> tuple[float, dict[Waitable, _Runner]]:
        """How long to wait, and on what: until a link has something to read, or a retry, a
        handshake's end, a link's housekeeping or the tick is due."""
        until = next_tick
        waitables: dict[Waitable, _Runner] = {}
        for runner in self._runners:
            if runner.state == "waiting":
                until = min(until, runner.retry_at)
            elif runner.state == "opening":
                if isinstance(runner.opening, Waitable):
                    waitables[runner.opening] = runner
                else:
                    until = min(until, now + HANDSHAKE_POLL)
            elif runner.link is not None:
                if runner.due < until:
                    until = runner.due
                sock = runner.link.transport.socket
                if sock is not None:
                    waitables[sock] = runner
        # No min() or max() calls: this is planned once per event at a modest rate.
        return (until - now if until > now else 0.0), waitables

    def _step(self, runner: _Runner, now: float) -> Iterator[Event | Notice]:
        if runner.state == "waiting":
            if self._closing:
                return
            runner.opening = self.connect(runner.url)
            runner.state = "opening"
            return
        if runner.state == "opening":
            yield from self._opened(runner, now)
        if runner.state == "subscribing":
            yield from self._step_subscribing(runner)
        elif runner.state == "streaming":
            yield from self._step_streaming(runner, now)

    def _open(self, url: str) -> Handshake:
        config = self.config
        from kazoo_tail.net.tls import websocket_sslopt

        sslopt = websocket_sslopt(config.verify)
        return Opening(
            lambda: Transport.open(
                url, sslopt=sslopt, timeout=config.connect_timeout, tick=IDLE_TICK
            )
        )

    def _opened(self, runner: _Runner, now: float) -> Iterator[Event | Notice]:
        opening, runner.opening = runner.opening, None
        assert opening is not None
        try:
            transport = opening.result()
        except ConnectFailed as exc:
            runner.state = "waiting"
            yield from self._connect_failed(runner, exc)
            return
        transport.poll = True
        monotonic, timeline, wall = readers(self.clock)
        runner.link = Link(
            transport,
            runner.decoder,
            on_frame=self.on_frame,
            clock=wall,
            monotonic=monotonic,
            timeline=timeline,
        )
        runner.readable = True
        runner.ever_opened = True
        runner.connected_at = now
        runner.state = "subscribing"
        runner.held = []
        runner.steps = runner.link.subscribe(
            self.subscriptions, self._token, reply_timeout=REPLY_TIMEOUT, held=runner.held
        )

    def _step_subscribing(self, runner: _Runner) -> Iterator[Event | Notice]:
        steps = runner.steps
        assert steps is not None
        for _ in range(BATCH):
            try:
                item = next(steps)
            except StopIteration:
                runner.steps = None
                yield from self._subscribed(runner)
                return
            except LinkLost as exc:
                runner.steps = None
                yield from self._lost(runner, exc, subscribing=True)
                return
            except KazooTailError as exc:
                runner.steps = None
                yield from self._end(runner, exc)
                return
            if isinstance(item, Idle):
                runner.readable = False
                return
            if isinstance(item, Event):
                yield from self._deliver(runner, item)
            else:
                yield self._about(runner, item)

    def _step_streaming(self, runner: _Runner, now: float) -> Iterator[Event | Notice]:
        link = runner.link
        assert link is not None
        transport = link.transport
        try:
            if (
                runner.ping_sent_at is not None
                and now - runner.ping_sent_at > self.ping_timeout
                # What is already waiting is read before the answer is declared overdue.
                and not transport.data_waiting()
            ):
                raise LinkLost(f"no answer to a ping within {self.ping_timeout:g}s")
            if runner.checking is not None and not runner.check_sent:
                transport.ping(runner.checking)
                runner.check_sent = True
                runner.ping_sent_at = now  # the deadline counts from the resume
            if now >= runner.next_ping:
                if runner.month not in (None, self._month_of(runner)):
                    raise LinkLost(
                        "a new month began, and bindings on monthly databases (faxes, "
                        "voicemail messages) must be made afresh",
                        clean=True,
                    )
                transport.ping()
                runner.next_ping = now + self.config.ping_interval
                if runner.ping_sent_at is None:
                    runner.ping_sent_at = now
            dedupe, label = self._dedupe, runner.label
            left = BATCH
            while left > 0:
                # A batch: every frame one read took (see Link.receive_many), their received
                # time read once. The stall check runs once per turn, before the read: frames
                # read at one instant cannot have a stall between them.
                # Typed loosely: the class test below narrows as isinstance would, without
                # the call.
                items: list[Any] = link.receive_many()
                if not items:
                    runner.readable = False
                    break
                checking = runner.checking
                if checking is None:
                    runner.ping_sent_at = None  # any frame proves the link alive
                for item in items:
                    left -= 1
                    if item.__class__ is Event:  # inline: this is the path every event takes
                        if dedupe is not None and dedupe.is_duplicate(item):
                            continue
                        if label is not None:
                            item.via = label
                        yield item
                    elif item is not None and not isinstance(item, Reply):
                        yield self._about(runner, item)
                # A batch ends at a pong: the one that answers the check after a stall
                # proves the link alive from here on.
                if checking is not None and link.last_pong == checking:
                    yield from self._checked(runner)
                if transport.drained:
                    # All one read took is shown; anything left over (a partial frame, a
                    # close after events) is buffered, which ``_ready`` sees.
                    runner.readable = False
                    break
        except LinkLost as exc:
            yield from self._lost(runner, exc, subscribing=False)
            return
        deadline = (
            runner.ping_sent_at + self.ping_timeout if runner.ping_sent_at is not None else None
        )
        runner.due = min(runner.next_ping, deadline) if deadline is not None else runner.next_ping

    def _month_of(self, runner: _Runner) -> str:
        """The month period for this link: with several, each turns a little after the one
        before it, so that they renew one at a time and another link covers meanwhile."""
        return self.month(self.clock.wall() - runner.index * MONTH_STAGGER)

    def _deliver(self, runner: _Runner, event: Event) -> Iterator[Event]:
        if self._dedupe is not None and self._dedupe.is_duplicate(event):
            return
        if runner.label is not None:
            event.via = runner.label
        yield event

    def _about(self, runner: _Runner, notice: Notice) -> Notice:
        """A link's own notice (progress, a bad frame), naming the link."""
        return dataclasses.replace(notice, url=runner.url, link=runner.label, several=self.several)

    def _notice(self, runner: _Runner, kind: NoticeKind, **facts: Any) -> Notice:
        return Notice(kind, url=runner.url, link=runner.label, several=self.several, **facts)

    def _show_held(self, runner: _Runner) -> Iterator[Event | Notice]:
        """What arrived before the subscribe round ended, shown, never thrown away."""
        shown, runner.held = runner.held, []
        for item in shown:
            if isinstance(item, Event):
                yield from self._deliver(runner, item)
            else:
                yield self._about(runner, item)

    # -- a link's turns -----------------------------------------------------------------------

    def _subscribed(self, runner: _Runner) -> Iterator[Event | Notice]:
        now, moment = self.clock.monotonic(), self.clock.timeline()
        runner.state = "streaming"
        runner.ever_subscribed = True
        runner.down = False
        runner.crashes.clear()
        runner.month = self._month_of(runner) if self._uses_monthly else None
        runner.next_ping = now + self.config.ping_interval
        runner.ping_sent_at = None
        runner.checking = None
        runner.decoder.sharing = True
        self.ledger.up(runner.index, moment)
        self._failing_since = None
        yield self._notice(
            runner,
            NoticeKind.SUBSCRIBED,
            subscriptions=tuple((s.account_id, s.binding) for s in self.subscriptions),
        )
        yield from self._show_held(runner)
        yield from self._windows(runner, moment, reconnected=True)

    def _checked(self, runner: _Runner) -> Iterator[Notice]:
        """The pong after a stall came: the link lived through it, and covers again."""
        runner.checking = None
        runner.ping_sent_at = None
        moment = self.clock.timeline()
        self.ledger.up(runner.index, moment)
        yield from self._windows(runner, moment, reconnected=False)

    def _windows(self, runner: _Runner, now: float, *, reconnected: bool) -> Iterator[Notice]:
        for window in self.ledger.new_windows(now):
            yield self._gap_notice(runner, window, reconnected=reconnected)

    def _gap_notice(self, runner: _Runner, window: Window, *, reconnected: bool) -> Notice:
        # The ledger counts on the timeline; the window is told on the wall clock of now.
        to_wall = self.clock.wall() - self.clock.timeline()
        return self._notice(
            runner,
            NoticeKind.GAP,
            gap_from=window.start + to_wall,
            gap_to=window.end + to_wall,
            reconnected=reconnected,
            stalled=window.stalled,
        )

    def _lost(
        self, runner: _Runner, exc: LinkLost, *, subscribing: bool
    ) -> Iterator[Notice | Event]:
        moment, now = self.clock.timeline(), self.clock.monotonic()
        link = runner.link
        was_up = runner.state == "streaming"
        if was_up:
            # A socket that ended (a close frame, or closed outright) delivered all that was
            # sent before its end, in order. A link that went silent (no pong, no reply) or
            # was reset may have missed what came after its last frame.
            since = moment if exc.clean or link is None else link.last_heard
            self.ledger.down(runner.index, since)
            if now - runner.connected_at >= STABLE_AFTER:
                runner.backoff.reset()  # a connection that lived: the next try is quick
        self._drop(runner)
        runner.state = "waiting"
        yield from self._show_held(runner)
        if self._closing:
            runner.state = "ended"
            return
        self._count_crash(runner, exc if subscribing else None)
        runner.last_failure = str(exc)
        if not self.config.reconnect:
            yield from self._end(
                runner, ConnectError(f"lost the connection to {runner.url}: {exc}")
            )
            return
        still_down = runner.down
        runner.down = True
        if not self.ledger.started and self._failing_since is None:
            self._failing_since = moment
        left = self._check_deadline()
        delay = runner.backoff.next_delay()
        if left is not None:
            delay = min(delay, left)  # the last try comes before the deadline, not after
        down_for = self._down_for(moment)
        runner.retry_at = now + delay
        still_up = self._still_up()
        yield self._notice(
            runner,
            NoticeKind.DISCONNECTED,
            reason=str(exc),
            close_code=exc.close_code,
            delay=delay,
            still_down=still_down,
            down_for=down_for if down_for is not None else 0.0,
            reached=runner.ever_opened,
            still_up=still_up,
            cluster_down=was_up and not still_up,
        )
        # A link found dead late (it had stopped answering) may reveal a time, now past,
        # when no link covered after all.
        yield from self._windows(runner, moment, reconnected=True)

    def _connect_failed(self, runner: _Runner, exc: ConnectFailed) -> Iterator[Notice | Event]:
        runner.last_failure = exc.sentence
        if not exc.retryable:
            yield from self._end(runner, ConnectError(exc.sentence))
            return
        if not any(other.ever_opened for other in self._runners):
            # Like a first connect: when no node could be reached at all, the tail ends
            # (exit 4) rather than retry a wrong URL for ever. A handshake that once
            # succeeded proves the URL: later failures are retried.
            runner.failed_unreached = True
            if all(r.failed_unreached or r.state == "ended" for r in self._runners):
                if not self.several:
                    raise ConnectError(exc.sentence)
                reasons = "; ".join(f"{r.url} ({r.last_failure})" for r in self._runners)
                raise ConnectError(
                    f"cannot reach any of the {len(self._runners)} blackhole nodes: {reasons}"
                )
        yield from self._lost(runner, LinkLost(exc.sentence), subscribing=False)

    def _end(self, runner: _Runner, error: KazooTailError) -> Iterator[Notice]:
        """A link cannot go on. Most errors end the tail, named after their node; a link that
        cannot go on (--no-reconnect, a certificate that will not verify) while another is
        subscribed is told, and the others go on."""
        if runner.state == "streaming":
            self.ledger.down(runner.index, self.clock.timeline())
        self._drop(runner)
        runner.state = "ended"
        if isinstance(error, SubscribeError):
            accepted = [r.url for r in self._runners if r.ever_subscribed and r is not runner]
            if accepted:
                raise SubscribeError(
                    f"blackhole node {runner.url} rejected a subscription that "
                    f"{', '.join(accepted)} accepted: the nodes disagree, so they are probably "
                    f"not one cluster ({error.message})"
                ) from None
            raise error
        still_up = self._still_up()
        if isinstance(error, ConnectError) and still_up:
            yield self._notice(
                runner,
                NoticeKind.LINK_ENDED,
                reason=error.message,
                still_up=still_up,
                cluster_down=False,
            )
            return
        raise error

    def _count_crash(self, runner: _Runner, lost: LinkLost | None) -> None:
        """Blackhole's handler crashes (close 1011) on what it cannot parse, most often a
        token without the claims it needs (``iss``): the same crash on every attempt to
        subscribe will not cure itself, so after a few it ends the tail rather than retry
        forever."""
        crashes = runner.crashes
        if lost is None or lost.close_code != CLOSE_SERVER_ERROR:
            crashes.clear()
            return
        if crashes and crashes[-1] != str(lost):
            crashes.clear()
        crashes.append(str(lost))
        if len(crashes) >= CRASHES_BEFORE_GIVING_UP:
            raise AuthError(
                f"blackhole at {runner.url} crashed (close code 1011) on each of "
                f"{len(crashes)} attempts to subscribe: it most likely cannot read the token "
                "(one from another cluster or auth provider?)"
            )

    def _drop(self, runner: _Runner, *, goodbye: bool = False) -> None:
        steps, runner.steps = runner.steps, None
        if steps is not None:
            steps.close()
        opening, runner.opening = runner.opening, None
        if opening is not None:
            opening.abandon()
        link, runner.link = runner.link, None
        runner.decoder.sharing = False
        runner.checking = None
        runner.check_sent = False
        if link is not None:
            if goodbye:
                link.transport.close()
            else:
                link.transport.drop()

    # -- the whole session's clocks -----------------------------------------------------------

    def _stalled(
        self, now: float, moment: float, then_moment: float, late: float
    ) -> Iterator[Notice]:
        """The loop did not read its links for ``late`` seconds since its last turn (at
        ``then_moment`` on the timeline), beyond the wait it chose (the loop works that out
        on both clocks, and calls this only when it is over STALL_AFTER): the process was
        stopped (SIGSTOP, Ctrl-Z) or the machine suspended (which stops the monotonic clock
        but not the timeline), or the consumer held it up. Meanwhile the server may have shed
        what it could not send, so the window counts from when the loop last ran, not from
        the frames the kernel buffered and the loop reads afterwards; every subscribed link
        is checked at once with a ping, whose deadline counts from now. Waiting for a token
        (a login asking for a password) is excused while no link is streaming, since then no
        link is there to miss anything."""
        streaming = [r for r in self._runners if r.state == "streaming" and r.link is not None]
        if not streaming:
            late -= self._excused
        if late <= STALL_AFTER:
            return
        # The window itself counts from the last turn (the links' outages below); the stall
        # is how long the loop did not run beyond what it chose to wait.
        self.ledger.stall(moment - late, moment)
        for runner in streaming:
            self.ledger.down(runner.index, then_moment)
            self._ping_counter += 1
            runner.checking = f"kazoo-tail {os.getpid()} {self._ping_counter}".encode()
            runner.check_sent = False
            runner.ping_sent_at = None  # a ping sent before the stop is not judged by it
            runner.due = now
        self._next_renewal = now
        yield Notice(NoticeKind.STALLED, several=self.several, stalled=late, count=len(streaming))

    def _token(self, *, refresh: bool = False) -> str:
        """A token from the provider, the time it took (a login may ask for a password)
        excused from the stall check."""
        started = self.clock.monotonic()
        try:
            return self.tokens(refresh=refresh)
        finally:
            self._excused += self.clock.monotonic() - started

    def _renew_if_due(self, now: float) -> None:
        if now >= self._next_renewal and self.keep_fresh is not None:
            self._next_renewal = now + TOKEN_CHECK_INTERVAL
            self.keep_fresh()

    def _still_up(self) -> tuple[str, ...]:
        if not self.several:
            return ()
        return tuple(
            r.label or r.url
            for r in self._runners
            if r.state == "streaming" and self.ledger.covering(r.index)
        )

    def _down_for(self, moment: float) -> float | None:
        """How long no link has covered: since the ledger's open window, or, before any link
        subscribed, since the first failure. A link being checked after a stall is not known
        to be lost, so it is given until its ping's deadline."""
        if any(r.checking is not None for r in self._runners):
            return None
        since = self.ledger.open_since(moment) if self.ledger.started else self._failing_since
        return None if since is None else moment - since

    def _check_deadline(self) -> float | None:
        """--max-reconnect-time, the one place it is judged (on the loop's ticks and at each
        loss): raise when it has run out, else return the seconds left (None: no limit, or
        no outage). A handshake that never ends counts; a subscribe round under way does not
        (its replies have their own deadline, and a loss checks again)."""
        limit = self.config.max_reconnect_time
        if limit is None or any(r.state == "subscribing" for r in self._runners):
            return None
        down_for = self._down_for(self.clock.timeline())
        if down_for is None:
            return None
        if down_for >= limit:
            raise self._gave_up(down_for)
        return limit - down_for

    def _gave_up(self, down_for: float) -> ConnectError:
        if self.several:
            return ConnectError(
                f"gave up reconnecting after {down_for:.0f}s with no blackhole node subscribed "
                f"({', '.join(self.urls)})"
            )
        runner = self._runners[0]
        why = (
            "the websocket handshake was still not answered"
            if runner.state == "opening"
            else runner.last_failure
        )
        return ConnectError(f"gave up reconnecting to {runner.url} after {down_for:.0f}s: {why}")
