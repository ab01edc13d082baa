"""Links to several blackhole nodes of one cluster at once, merged into one stream.

Every blackhole node receives every event (its AMQP listeners are federated), with the same
routing key and ``msg_id``: a tail holding links to two nodes loses nothing while one of them
restarts. Each link is a ``Session`` of its own (keepalive, backoff, reconnect, renewal), all
driven by one loop here: the sessions run in ``poll`` mode, so a read returns at once when
nothing is waiting and a wait (a backoff, a handshake) is handed back as a ``Pause``, and the
loop waits on every link's socket at once. Threads were measured first: the GIL handoffs
between a thread per link cost two thirds of the throughput. The loop merges what the links
bring: each event once, whichever link brought it first, and a gap announced only for a time
when no link was subscribed.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from kazoo_tail.errors import ConnectError, SubscribeError
from kazoo_tail.kazoo.events import IDLE, Deduplicator, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.net.urls import node_label
from kazoo_tail.session.session import Pause, Session

# A link is stepped at most this many items in a row, so a flood on one cannot starve another.
BATCH = 256
# A link with nothing to read is still stepped this often: its pings, subscribe pacing and
# timeouts run on those steps.
HOUSEKEEPING = 0.05
# Events remembered to drop the other nodes' copies (about 10 MB at most).
DEDUPE_WINDOW = 32768
# The outages remembered per link, to work out when none was subscribed.
KEPT_OUTAGES = 32
# While a handshake is under way, the loop looks at it this often.
HANDSHAKE_POLL = 0.02


@dataclass
class LinkStats:
    """What the loop knows of one link."""

    url: str
    label: str
    subscribed: bool = False
    ever_subscribed: bool = False
    failed_before_subscribing: bool = False
    # The last moment this link was known to hear everything (epoch), while subscribed.
    last_heard: float | None = None
    ended: bool = False
    # Its outages since the first subscribe: [from, to], to None while it lasts.
    downs: list[list[float | None]] = field(default_factory=list)
    last_failure: str = ""


class _Driven:
    """One session as the loop steps it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.steps: Iterator[Event | Notice | Idle | Pause] | None = session.steps()
        self.pause: Pause | None = None
        self.due = 0.0

    def ready(self, now: float) -> bool:
        if self.steps is None:
            return False
        pause = self.pause
        if pause is not None:
            if now < pause.until and not (pause.opening is not None and pause.opening.done):
                return False
            self.pause = None
            return True
        return now >= self.due or self.session.data_waiting()


class ClusterSession:
    """The same interface as ``Session`` (``events``, ``close``, ``data_waiting``), over one
    ``Session`` per node."""

    def __init__(
        self,
        sessions: Sequence[Session],
        *,
        dedupe: bool = True,
        idle_tick: float = 0.25,
        max_reconnect_time: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = list(sessions)
        self.links = [LinkStats(s.settings.url, node_label(s.settings.url)) for s in sessions]
        # Wide enough for one node lagging seconds behind another at thousands of events/s.
        self._dedupe = Deduplicator(DEDUPE_WINDOW) if dedupe else None
        self.idle_tick = idle_tick
        self.max_reconnect_time = max_reconnect_time
        self.clock = clock
        self._driven = [_Driven(session) for session in self.sessions]
        self._current: _Driven | None = None
        # Since when no link is subscribed (a gap still open), for --max-reconnect-time.
        self._down_from: float | None = None
        # The first subscribe of any link: no gap is counted before it.
        self._first_up: float | None = None
        # The end of the last gap told: none is told twice.
        self._told_until = 0.0

    def __iter__(self) -> Iterator[Event | Notice]:
        for item in self.events():
            if not isinstance(item, Idle):
                yield item

    def __enter__(self) -> ClusterSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(self) -> Iterator[Event | Notice | Idle]:
        try:
            next_tick = time.monotonic() + self.idle_tick
            while True:
                progressed = False
                now = time.monotonic()
                for index, driven in enumerate(self._driven):
                    if not driven.ready(now):
                        continue
                    driven.due = now + HOUSEKEEPING
                    for item in self._step(index, driven):
                        progressed = True
                        yield item
                if all(link.ended for link in self.links):
                    return
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.idle_tick
                    self._check_deadline()
                    yield IDLE
                if not progressed:
                    self._wait(next_tick)
        finally:
            self.close()

    def close(self) -> None:
        """Every link says goodbye (close 1000)."""
        for driven in self._driven:
            steps, driven.steps = driven.steps, None
            if steps is not None and hasattr(steps, "close"):
                steps.close()
            driven.session.close()

    def data_waiting(self) -> bool:
        """Whether the link being read has more already (asked after every event, so only
        that link is asked: the others are looked at on the loop's next round anyway)."""
        driven = self._current
        return driven is not None and driven.steps is not None and driven.session.data_waiting()

    def down_for(self) -> float | None:
        """How long no link has been subscribed, after one had been."""
        return None if self._down_from is None else self.clock() - self._down_from

    # -- the loop ---------------------------------------------------------------------------

    def _step(self, index: int, driven: _Driven) -> Iterator[Event | Notice]:
        """Up to a batch of what one link has now, merged."""
        assert driven.steps is not None
        self._current = driven
        link, dedupe = self.links[index], self._dedupe
        for _ in range(BATCH):
            try:
                item = next(driven.steps)
            except StopIteration:
                driven.steps = None
                self.links[index].ended = True
                return
            except Exception as exc:
                driven.steps = None
                ended = self._fail(index, exc)
                if ended is not None:
                    yield ended
                return
            if isinstance(item, Pause):
                driven.pause = item
                return
            if isinstance(item, Idle):
                return  # nothing more waiting on this link now
            if isinstance(item, Event):  # inline: this is the path every event takes
                if dedupe is not None and dedupe.is_duplicate(item):
                    continue
                item.via = link.label
                if link.subscribed:
                    link.last_heard = item.received_at
                yield item
            else:
                yield from self._notice(index, item)

    def _wait(self, next_tick: float) -> None:
        """Until a link has something to read, or a pause, housekeeping or the tick is due."""
        now = time.monotonic()
        until = next_tick
        sockets = []
        for driven in self._driven:
            if driven.steps is None:
                continue
            if driven.pause is not None:
                until = min(until, driven.pause.until)
                if driven.pause.opening is not None:
                    until = min(until, now + HANDSHAKE_POLL)
                continue
            until = min(until, driven.due)
            sock = driven.session.socket()
            if sock is not None:
                sockets.append(sock)
        timeout = max(0.0, until - now)
        if not timeout:
            return
        if sockets:
            try:
                select.select(sockets, [], [], timeout)
            except (OSError, ValueError):
                pass  # a socket closed meanwhile: its next step says so
        else:
            time.sleep(timeout)

    # -- merging ----------------------------------------------------------------------------

    def _notice(self, index: int, notice: Notice) -> Iterator[Notice]:
        link = self.links[index]
        now = self.clock()
        if notice.kind is NoticeKind.SUBSCRIBED:
            link.subscribed = link.ever_subscribed = True
            link.last_heard = now
            if self._first_up is None:
                self._first_up = now
                for other in self.links:  # the others cover nothing until they subscribe
                    if other is not link:
                        other.downs.append([now, None])
            elif link.downs and link.downs[-1][1] is None:
                link.downs[-1][1] = now
            gaps = list(self._new_gaps(link))
            if not gaps:
                yield Notice(notice.kind, notice.message, link=link.label)
            yield from gaps
            return
        if notice.kind is NoticeKind.RECONNECTED:
            return  # the link's own gap: the cluster's are worked out from every link's
        if notice.kind is NoticeKind.DISCONNECTED:
            was_subscribed = link.subscribed
            if link.subscribed:
                link.subscribed = False
                down_from = self._outage_start(notice, now)
                link.last_heard = down_from
                if self._first_up is not None:
                    link.downs.append([max(down_from, self._first_up), None])
                    del link.downs[:-KEPT_OUTAGES]
            elif not link.ever_subscribed:
                link.failed_before_subscribing = True
                link.last_failure = notice.reason or notice.message
                self._check_none_reachable()
            others = [other.label for other in self.links if other.subscribed]
            if others:
                still = f"; still subscribed on {', '.join(others)}"
            elif was_subscribed:
                still = "; no node is subscribed now"
            else:
                still = ""
            yield Notice(
                notice.kind,
                notice.message + still,
                gap_from=notice.gap_from,
                link=link.label,
                # Only a loss that leaves no node subscribed opens a gap (for --summary).
                cluster_down=not others and was_subscribed,
            )
            # A link found dead late (it had stopped answering) may reveal a time, now past,
            # when no node was subscribed after all.
            yield from self._new_gaps(link)
            return
        yield Notice(
            notice.kind,
            notice.message,
            gap_seconds=notice.gap_seconds,
            gap_from=notice.gap_from,
            gap_to=notice.gap_to,
            link=link.label,
        )

    @staticmethod
    def _outage_start(notice: Notice, now: float) -> float:
        """When a lost link stopped hearing everything. A socket that ended (a close frame, or
        closed outright) delivered all that was sent before its end, in order: it heard all
        until now. A link that went silent (no pong, no reply) or was reset may have missed
        what came after its last frame."""
        ended_cleanly = (notice.reason or "").startswith(
            ("the server closed the connection", "the connection was closed")
        )
        if ended_cleanly or notice.gap_from is None:
            return now
        return notice.gap_from

    def _new_gaps(self, link: LinkStats) -> Iterator[Notice]:
        """Gaps not told yet: the times since the last one told when every link was down,
        that have ended; one still open sets ``_down_from`` (for --max-reconnect-time)."""
        self._down_from = None
        for gap_from, gap_to in self._all_down():
            if gap_to is None:
                self._down_from = gap_from
            elif gap_to > self._told_until:
                self._told_until = gap_to
                yield self._gap_notice(link, gap_from, gap_to)

    def _all_down(self) -> list[tuple[float, float | None]]:
        """The stretches, since the first subscribe, when no link was subscribed; the last one
        open (None) if no link is subscribed now."""
        if self._first_up is None:
            return []
        since = max(self._told_until, self._first_up)
        points = {since, self.clock()}
        for link in self.links:
            for start, end in link.downs:
                points.update(p for p in (start, end) if p is not None and p > since)
        ordered = sorted(points)
        stretches: list[tuple[float, float | None]] = []
        for before, after in zip(ordered, ordered[1:], strict=False):
            middle = (before + after) / 2
            if all(self._down_at(link, middle) for link in self.links):
                if stretches and stretches[-1][1] == before:
                    stretches[-1] = (stretches[-1][0], after)
                else:
                    stretches.append((before, after))
        if stretches and all(not link.subscribed for link in self.links):
            last_from, last_to = stretches[-1]
            if last_to == ordered[-1]:
                stretches[-1] = (last_from, None)
        return stretches

    @staticmethod
    def _down_at(link: LinkStats, moment: float) -> bool:
        return any(
            start is not None and start <= moment and (end is None or moment < end)
            for start, end in link.downs
        )

    def _gap_notice(self, link: LinkStats, gap_from: float, gap_to: float) -> Notice:
        gap = max(0.0, gap_to - gap_from)
        return Notice(
            NoticeKind.RECONNECTED,
            f"reconnected to {link.url}; events from {utc_stamp(gap_from)} to "
            f"{utc_stamp(gap_to, round_up=True)} ({gap:.1f}s) may have been missed (no node "
            "was subscribed meanwhile; blackhole cannot replay them)",
            gap_seconds=gap,
            gap_from=gap_from,
            gap_to=gap_to,
            link=link.label,
        )

    def _check_none_reachable(self) -> None:
        """Like a single link's first connect: when no node could be reached at all at the
        start, the tail ends (exit 4) rather than retry a wrong URL for ever. A link that is
        connected now (subscribing, however slowly) can still get there."""
        connected = any(d.session.socket() is not None for d in self._driven)
        if (
            self._first_up is None
            and not connected
            and all(link.failed_before_subscribing for link in self.links)
        ):
            reasons = "; ".join(f"{link.url} ({link.last_failure})" for link in self.links)
            raise ConnectError(
                f"cannot reach any of the {len(self.links)} blackhole nodes: {reasons}"
            )

    def _check_deadline(self) -> None:
        limit = self.max_reconnect_time
        down_for = self.down_for()
        if limit is not None and down_for is not None and down_for >= limit:
            raise ConnectError(
                f"gave up reconnecting after {down_for:.0f}s with no blackhole node subscribed "
                f"({', '.join(link.url for link in self.links)})"
            )

    def _fail(self, index: int, exc: BaseException) -> Notice | None:
        """A link ended with an error. Most errors end the tail, named after their node; a
        link that cannot go on (--no-reconnect, a certificate that will not verify) while
        another is subscribed is told, and the others go on."""
        link = self.links[index]
        link.ended = True
        link.subscribed = False
        if isinstance(exc, SubscribeError):
            accepted = [other.url for other in self.links if other.ever_subscribed]
            if accepted:
                raise SubscribeError(
                    f"blackhole node {link.url} rejected a subscription that "
                    f"{', '.join(accepted)} accepted: the nodes disagree, so they are probably "
                    f"not one cluster ({exc.message})"
                ) from None
            raise exc
        others = [other.label for other in self.links if other.subscribed]
        if isinstance(exc, ConnectError) and others:
            return Notice(
                NoticeKind.DISCONNECTED,
                f"{exc.message}; not trying {link.url} again, going on with {', '.join(others)}",
                link=link.label,
                cluster_down=False,
            )
        raise exc
