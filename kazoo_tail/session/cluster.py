"""Links to several blackhole nodes of one cluster at once, merged into one stream.

Every blackhole node receives every event (its AMQP listeners are federated), with the same
routing key and ``msg_id``: a tail holding links to two nodes loses nothing while one of them
restarts. Each link is a ``Session`` of its own (keepalive, backoff, reconnect, renewal),
driven by a thread of its own, since a link's handshake and reads block; the threads hand
their events over in batches, and one loop here merges them: each event once, whichever link
brought it first, and a gap announced only for a time when no link was subscribed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from kazoo_tail.errors import ConnectError, SubscribeError
from kazoo_tail.kazoo.events import IDLE, Deduplicator, Event, Idle, Notice, NoticeKind
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.net.urls import node_label
from kazoo_tail.session.session import Session

# A link hands over what it received at most this many items at a time (fewer when nothing
# more is waiting on its socket), so a flood costs one queue operation per batch, not per event.
BATCH = 256
# How long closing waits for each link to say goodbye (close 1000) from its own thread.
CLOSE_WAIT = 2.0


@dataclass
class LinkStats:
    """What one link did, for --summary."""

    url: str
    label: str
    subscribed: bool = False
    ever_subscribed: bool = False
    failed_before_subscribing: bool = False
    # The last moment this link was known to hear everything (epoch), while subscribed.
    last_heard: float | None = None
    up_since: float | None = None  # monotonic
    up_for: float = 0.0
    disconnects: int = 0
    first_delivered: int = 0
    ended: bool = False

    def uptime(self, now: float) -> float:
        return self.up_for + (now - self.up_since if self.up_since is not None else 0.0)


class _Ended:
    """A link's thread finished (the session ended)."""


ENDED = _Ended()


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
        self._dedupe = Deduplicator() if dedupe else None
        self.idle_tick = idle_tick
        self.max_reconnect_time = max_reconnect_time
        self.clock = clock
        self._queue: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # When every link had lost its subscriptions: the last moment one still heard all.
        self._down_from: float | None = None
        self._up_once = False

    def __iter__(self) -> Iterator[Event | Notice]:
        for item in self.events():
            if not isinstance(item, Idle):
                yield item

    def __enter__(self) -> ClusterSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(self) -> Iterator[Event | Notice | Idle]:
        self._start()
        try:
            next_tick = time.monotonic() + self.idle_tick
            while True:
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.idle_tick
                    self._check_deadline()
                    yield IDLE
                try:
                    index, payload = self._queue.get(timeout=max(0.0, next_tick - now))
                except queue.Empty:
                    continue
                if isinstance(payload, BaseException):
                    self._fail(index, payload)
                    continue
                if payload is ENDED:
                    self.links[index].ended = True
                    if all(link.ended for link in self.links):
                        return
                    continue
                assert isinstance(payload, list)
                yield from self._merge(index, payload)
        finally:
            self.close()

    def close(self) -> None:
        """Every link says goodbye (close 1000) from its own thread, quickly."""
        self._stopping.set()
        deadline = time.monotonic() + CLOSE_WAIT
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def data_waiting(self) -> bool:
        return not self._queue.empty()

    def down_for(self) -> float | None:
        """How long no link has been subscribed, after one had been."""
        return None if self._down_from is None else self.clock() - self._down_from

    # -- the links' threads -----------------------------------------------------------------

    def _start(self) -> None:
        if self._threads:
            return
        for index, session in enumerate(self.sessions):
            thread = threading.Thread(
                target=self._run_link,
                args=(index, session),
                name=f"kazoo-tail link {self.links[index].label}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _run_link(self, index: int, session: Session) -> None:
        put = self._queue.put
        batch: list[Event | Notice] = []
        try:
            for item in session.events():
                if self._stopping.is_set():
                    break
                if not isinstance(item, Idle):
                    batch.append(item)
                    if len(batch) < BATCH and session.data_waiting():
                        continue
                if batch:
                    put((index, batch))
                    batch = []
        except BaseException as exc:  # noqa: BLE001 - handed to the merging loop, raised there
            if batch:
                put((index, batch))
            put((index, exc))
        else:
            if batch:
                put((index, batch))
            put((index, ENDED))
        finally:
            session.close()

    # -- merging ----------------------------------------------------------------------------

    def _merge(self, index: int, items: list[Event | Notice]) -> Iterator[Event | Notice]:
        link = self.links[index]
        dedupe = self._dedupe
        for item in items:
            if isinstance(item, Event):
                if dedupe is not None and dedupe.is_duplicate(item):
                    continue
                item.via = link.label
                link.first_delivered += 1
                if link.subscribed:
                    link.last_heard = item.received_at
                yield item
            else:
                notice = self._notice(index, item)
                if notice is not None:
                    yield notice

    def _notice(self, index: int, notice: Notice) -> Notice | None:
        link = self.links[index]
        now = self.clock()
        if notice.kind is NoticeKind.SUBSCRIBED:
            link.subscribed = link.ever_subscribed = True
            link.last_heard = now
            link.up_since = time.monotonic()
            self._up_once = True
            if self._down_from is not None:
                gap_from, self._down_from = self._down_from, None
                return self._gap_notice(link, gap_from, now)
            return Notice(notice.kind, notice.message, link=link.label)
        if notice.kind is NoticeKind.RECONNECTED:
            # The link's own gap: the cluster's is told on SUBSCRIBED, when there was one.
            return None
        if notice.kind is NoticeKind.DISCONNECTED:
            was_subscribed = link.subscribed
            if link.subscribed:
                link.subscribed = False
                link.disconnects += 1
                if link.up_since is not None:
                    link.up_for += time.monotonic() - link.up_since
                    link.up_since = None
                if notice.gap_from is not None:
                    link.last_heard = notice.gap_from
            elif not link.ever_subscribed:
                link.failed_before_subscribing = True
                self._check_none_reachable(notice)
            others = [other.label for other in self.links if other.subscribed]
            if others:
                still = f"; still subscribed on {', '.join(others)}, so nothing is missed"
            elif was_subscribed and self._up_once:
                heard = [other.last_heard for other in self.links if other.last_heard]
                self._down_from = max(heard) if heard else now
                still = "; no node is subscribed now"
            else:
                still = ""
            return Notice(
                notice.kind,
                notice.message + still,
                gap_from=notice.gap_from,
                link=link.label,
                # Only a loss that leaves no node subscribed opens a gap (for --summary).
                cluster_down=not others and was_subscribed,
            )
        return Notice(
            notice.kind,
            notice.message,
            gap_seconds=notice.gap_seconds,
            gap_from=notice.gap_from,
            gap_to=notice.gap_to,
            link=link.label,
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

    def _check_none_reachable(self, notice: Notice) -> None:
        """Like a single link's first connect: when no node could be reached at all at the
        start, the tail ends (exit 4) rather than retry a wrong URL for ever."""
        if not self._up_once and all(link.failed_before_subscribing for link in self.links):
            raise ConnectError(
                f"cannot reach any of the {len(self.links)} blackhole nodes "
                f"({', '.join(link.url for link in self.links)}); the last said: "
                f"{notice.message}"
            )

    def _check_deadline(self) -> None:
        limit = self.max_reconnect_time
        down_for = self.down_for()
        if limit is not None and down_for is not None and down_for >= limit:
            raise ConnectError(
                f"gave up reconnecting after {down_for:.0f}s with no blackhole node subscribed "
                f"({', '.join(link.url for link in self.links)})"
            )

    def _fail(self, index: int, exc: BaseException) -> None:
        """A link ended with an error: most end the tail, named after their node."""
        link = self.links[index]
        link.ended = True
        if isinstance(exc, SubscribeError):
            accepted = [other.url for other in self.links if other.ever_subscribed]
            if accepted:
                raise SubscribeError(
                    f"blackhole node {link.url} rejected a subscription that "
                    f"{', '.join(accepted)} accepted: the nodes disagree, so they are probably "
                    f"not one cluster ({exc.message})"
                ) from None
            raise exc
        if isinstance(exc, ConnectError) and any(
            other.subscribed and not other.ended for other in self.links
        ):
            return  # --no-reconnect: this link is gone, the others go on
        raise exc
