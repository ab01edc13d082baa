"""The session driver on a simulated clock: reconnects, backoff, dead links, gaps, renewal and
the tool's own stalls, with no real time passing.

The node here is a small in-memory stand-in for blackhole behind the transport interface the
session uses (receive, send, ping), so that minutes of outage take microseconds; the wire
behaviour of the real transport is tested against real servers elsewhere."""

from __future__ import annotations

import calendar
import json
import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from kazoo_tail.errors import ConnectError
from kazoo_tail.kazoo.events import IDLE, Event, Idle, Notice, NoticeKind
from kazoo_tail.net.frames import OP_PONG, OP_TEXT
from kazoo_tail.net.transport import ConnectFailed, LinkLost
from kazoo_tail.output.notices import describe
from kazoo_tail.session.clock import Clock
from kazoo_tail.session.gaps import GapLedger, Window
from kazoo_tail.session.resolve import ConnectionConfig
from kazoo_tail.session.session import STALL_AFTER, TOKEN_CHECK_INTERVAL, Session, modb_period
from kazoo_tail.session.subscriber import Subscription

ACCOUNT = "4b8c6fec4b2597882c0390202d195419"
EPOCH = 1_800_000_000.0


class SimClock(Clock):
    """Time that moves only when the session waits, or a test says so. The timeline is the
    monotonic clock plus the time spent suspended; the wall clock is the timeline plus an
    offset that NTP may step."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.suspended = 0.0
        self.offset = EPOCH - self.mono

    def monotonic(self) -> float:
        return self.mono

    def timeline(self) -> float:
        return self.mono + self.suspended

    def wall(self) -> float:
        return self.timeline() + self.offset

    def wait(self, waitables: Sequence[Any], timeout: float) -> list[Any]:
        self.mono += max(timeout, 0.001)
        return []

    def stop(self, seconds: float) -> None:
        """The process is stopped (SIGSTOP): every clock moves on."""
        self.mono += seconds

    def suspend(self, seconds: float) -> None:
        """The machine sleeps: the monotonic clock stands still, the others do not."""
        self.suspended += seconds

    def step_wall(self, seconds: float) -> None:
        """NTP steps the wall clock."""
        self.offset += seconds


class FakeTransport:
    tick = 0.25
    poll = False
    socket = None

    def __init__(self, node: FakeNode, url: str) -> None:
        self.node = node
        self.url = url
        self.inbox: deque[tuple[int, bytes] | LinkLost] = deque()
        self.open = True
        self.drained = False

    def receive(self) -> tuple[int, bytes] | None:
        if self.inbox:
            item = self.inbox.popleft()
            if isinstance(item, LinkLost):
                self.open = False
                raise item
            return item
        if not self.open:
            raise LinkLost("the connection was closed", clean=True)
        return None

    def receive_all(self) -> list[tuple[int, bytes]]:
        """Every message up to the next loss, as one read would take them (the loss is
        raised by the call after, like a real socket's end after its last frames)."""
        taken: list[tuple[int, bytes]] = []
        while self.inbox and not isinstance(self.inbox[0], LinkLost):
            message = self.inbox.popleft()
            assert not isinstance(message, LinkLost)
            taken.append(message)
        self.drained = not self.inbox
        if not taken:
            self.receive()  # raises the loss, if that is what comes next
        return taken

    def unread(self, messages: list[tuple[int, bytes]]) -> None:
        self.inbox.extendleft(reversed(messages))

    def send_text(self, message: str) -> None:
        request = json.loads(message)
        if request.get("action") == "subscribe" and self.node.replies:
            reply = {
                "action": "reply",
                "request_id": request["request_id"],
                "status": "success",
                "data": {"subscribed": [request["data"]["binding"]]},
            }
            self.inbox.append((OP_TEXT, json.dumps(reply).encode()))

    def ping(self, payload: bytes = b"") -> None:
        if self.node.answers_pings:
            self.inbox.append((OP_PONG, payload))

    def pong(self, payload: bytes) -> None:
        pass

    def close(self) -> None:
        self.open = False

    def drop(self) -> None:
        self.open = False

    def data_waiting(self) -> bool:
        return bool(self.inbox)

    def buffered(self) -> bool:
        return bool(self.inbox)

    def event(self, n: int) -> None:
        frame = {
            "action": "event",
            "subscribed_key": "call.*.*",
            "name": "CHANNEL_CREATE",
            "routing_key": f"call.{ACCOUNT}.CHANNEL_CREATE.c{n}",
            "data": {"call_id": f"c{n}", "msg_id": str(n)},
        }
        self.inbox.append((OP_TEXT, json.dumps(frame).encode()))

    def reset(self) -> None:
        self.inbox.append(LinkLost("connection reset by the server"))

    def close_frame(self) -> None:
        self.inbox.append(
            LinkLost("the server closed the connection (code 1001)", 1001, clean=True)
        )


class Opened:
    def __init__(self, transport: FakeTransport | None, failure: ConnectFailed | None) -> None:
        self.transport = transport
        self.failure = failure

    done = True

    def result(self) -> Any:
        if self.failure is not None:
            raise self.failure
        return self.transport

    def abandon(self) -> None:
        pass


class FakeNode:
    """A blackhole node: it accepts connections (or refuses them), answers subscribes and
    pings, and its latest connection is ``current``."""

    def __init__(self, url: str = "ws://node-a:5555") -> None:
        self.url = url
        self.accepting = True
        self.replies = True
        self.answers_pings = True
        self.connections: list[FakeTransport] = []

    def connect(self, url: str) -> Opened:
        if not self.accepting:
            return Opened(
                None, ConnectFailed(f"cannot connect to blackhole at {url}: refused", True)
            )
        transport = FakeTransport(self, url)
        self.connections.append(transport)
        return Opened(transport, None)

    @property
    def current(self) -> FakeTransport:
        return self.connections[-1]


class SlowLogin:
    """A token source whose next call, once ``slow`` is set, takes ``seconds`` (a password
    prompt)."""

    def __init__(self, clock: SimClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.slow = False

    def __call__(self, *, refresh: bool = False) -> str:
        if self.slow:
            self.slow = False
            self.clock.stop(self.seconds)
        return "T"


def session_for(
    nodes: Sequence[FakeNode], clock: SimClock, binding: str = "call.*.*", **settings: Any
) -> tuple[Session, list[float]]:
    by_url = {node.url: node for node in nodes}
    renewals: list[float] = []
    config = ConnectionConfig(
        backoff_initial=settings.pop("backoff_initial", 0.5),
        backoff_cap=settings.pop("backoff_cap", 30.0),
        **settings,
    )
    session = Session(
        config,
        [node.url for node in nodes],
        [Subscription(ACCOUNT, binding)],
        lambda refresh=False: "T",
        keep_fresh=lambda: renewals.append(clock.wall()),
        clock=clock,
        connect=lambda url: by_url[url].connect(url),
        rng=random.Random(7),
    )
    return session, renewals


def one_link(
    **settings: Any,
) -> tuple[SimClock, FakeNode, Session, Iterator[Event | Notice | Idle]]:
    """A session of one link, subscribed."""
    clock, node = SimClock(), FakeNode()
    session, _ = session_for([node], clock, **settings)
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    return clock, node, session, items


def two_links() -> tuple[SimClock, FakeNode, FakeNode, Session, Iterator[Event | Notice | Idle]]:
    """A session of links to two nodes, both subscribed."""
    clock = SimClock()
    a, b = FakeNode("ws://node-a:5555"), FakeNode("ws://node-b:5555")
    session, _ = session_for([a, b], clock)
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    until(items, NoticeKind.SUBSCRIBED)
    return clock, a, b, session, items


def until(
    items: Iterator[Event | Notice | Idle], kind: NoticeKind, limit: int = 100_000
) -> list[Any]:
    """Everything the session yields up to and including the first notice of ``kind``."""
    seen: list[Any] = []
    for _ in range(limit):
        item = next(items)
        seen.append(item)
        if isinstance(item, Notice) and item.kind is kind:
            return seen
    raise AssertionError(
        f"no {kind} notice: {[describe(i) for i in seen if isinstance(i, Notice)]}"
    )


def notices(items: list[Any], kind: NoticeKind | None = None) -> list[Notice]:
    return [i for i in items if isinstance(i, Notice) and (kind is None or i.kind is kind)]


# -- the tool's own stalls ---------------------------------------------------------------------


def test_a_stop_the_link_lives_through_is_a_window_from_the_last_turn_to_the_pong() -> None:
    clock, node, session, items = one_link()
    node.current.event(1)
    seen = [next(items) for _ in range(5)]
    before = clock.wall()
    clock.stop(25.0)
    node.current.event(2)  # buffered by the kernel while the tool was stopped
    seen += until(items, NoticeKind.GAP)
    stalled = notices(seen, NoticeKind.STALLED)
    assert len(stalled) == 1 and stalled[0].stalled == pytest.approx(25.0, abs=0.3)
    gap = notices(seen, NoticeKind.GAP)[0]
    assert gap.gap_from is not None and gap.gap_to is not None
    assert gap.gap_from <= before and gap.gap_to >= before + 25.0
    assert not gap.reconnected and gap.stalled == pytest.approx(25.0, abs=0.3)
    assert [i.data["call_id"] for i in seen if isinstance(i, Event)] == ["c1", "c2"]
    assert "kazoo-tail itself did not read the connection for 25" in describe(gap)
    assert len(node.connections) == 1  # the link lived: no reconnect
    session.close()


def test_a_stop_during_which_the_node_killed_the_socket_counts_from_before_the_stop() -> None:
    """4.3 kills a socket whose send blocks: after SIGCONT the tool first reads what the kernel
    buffered, then the reset. The window starts when the loop last ran, not at the frames read
    after the resume, and it ends when the link is subscribed again."""
    clock, node, session, items = one_link()
    last_turn = clock.wall()
    clock.stop(25.0)
    for n in range(3):
        node.current.event(n)  # buffered before the kill
    node.current.reset()
    seen = until(items, NoticeKind.GAP)
    assert [n.kind for n in notices(seen)] == [
        NoticeKind.STALLED,
        NoticeKind.DISCONNECTED,
        NoticeKind.SUBSCRIBED,
        NoticeKind.GAP,
    ]
    assert [i.data["call_id"] for i in seen if isinstance(i, Event)] == ["c0", "c1", "c2"]
    gap = notices(seen, NoticeKind.GAP)[0]
    assert gap.gap_from is not None and gap.gap_to is not None
    assert gap.gap_from <= last_turn + 0.3 and gap.reconnected
    # Subscribed again at once, not a ping interval later.
    assert gap.gap_to - (last_turn + 25.0) < 1.0
    assert "and the connection was lost" in describe(gap)
    session.close()


def test_a_stopped_tool_pings_at_once_and_a_dead_link_is_found_within_the_ping_timeout() -> None:
    clock, node, session, items = one_link(ping_interval=30.0)
    node.answers_pings = False  # the node forgot the socket; nothing tells us so
    resumed = clock.wall() + 25.0
    clock.stop(25.0)
    until(items, NoticeKind.STALLED)
    lost = notices(until(items, NoticeKind.DISCONNECTED))[-1]
    assert lost.reason == "no answer to a ping within 10s"
    assert clock.wall() - resumed == pytest.approx(10.0, abs=0.5)
    session.close()


def test_a_suspended_machine_is_a_stall_though_the_monotonic_clock_stood_still() -> None:
    clock, node, session, items = one_link()
    before = clock.wall()
    clock.suspend(3600.0)
    seen = until(items, NoticeKind.GAP)
    assert notices(seen, NoticeKind.STALLED)[0].stalled == pytest.approx(3600.0, abs=0.3)
    gap = notices(seen, NoticeKind.GAP)[0]
    assert gap.gap_from is not None and gap.gap_to is not None
    assert gap.gap_from <= before and gap.gap_to >= before + 3600.0
    session.close()


def test_a_wall_clock_stepped_by_ntp_is_no_stall_and_hides_no_window() -> None:
    clock, node, session, items = one_link()
    clock.step_wall(+5.0)
    seen = [next(items) for _ in range(50)]
    clock.step_wall(-600.0)
    seen += [next(items) for _ in range(50)]
    assert not notices(seen, NoticeKind.STALLED)
    node.current.close_frame()
    gap = notices(until(items, NoticeKind.GAP))[-1]
    assert gap.gap_from is not None and gap.gap_to is not None
    assert 0 < gap.gap_to - gap.gap_from < 2.0
    assert abs(gap.gap_to - clock.wall()) < 1.0  # told on the wall clock of now
    session.close()


def test_a_consumer_that_holds_the_loop_up_opens_a_window_worded_as_such() -> None:
    clock, node, session, items = one_link()
    for n in range(400):
        node.current.event(n)
    seen = []
    for _ in range(400):
        item = next(items)
        seen.append(item)
        if isinstance(item, Event):
            clock.stop(0.005)  # 5 ms per event: a database insert
    stalled = notices(seen + until(items, NoticeKind.GAP), NoticeKind.STALLED)
    assert stalled and "or it was held up" in describe(stalled[0])
    session.close()


def test_an_outstanding_ping_at_the_stop_does_not_condemn_the_link() -> None:
    clock, node, session, items = one_link(ping_interval=1.0)
    node.answers_pings = False
    started = clock.wall()
    while clock.wall() < started + 1.5:  # a ping goes out and is not answered yet
        next(items)
    clock.stop(25.0)
    node.answers_pings = True
    seen = until(items, NoticeKind.GAP)
    assert not notices(seen, NoticeKind.DISCONNECTED), [describe(n) for n in notices(seen)]
    assert len(node.connections) == 1
    session.close()


def test_max_reconnect_time_waits_for_the_check_after_a_stall() -> None:
    clock, node, session, items = one_link(max_reconnect_time=20.0)
    clock.stop(25.0)
    seen = until(items, NoticeKind.GAP)
    assert not notices(seen, NoticeKind.DISCONNECTED)
    session.close()


def test_a_token_wait_while_another_link_streams_is_a_stall_for_that_link() -> None:
    """A login that takes 40 s (a password prompt) for one link's resubscribe keeps the loop
    from reading the other link too: that is a window, not an excuse."""
    clock = SimClock()
    a, b = FakeNode("ws://node-a:5555"), FakeNode("ws://node-b:5555")
    session, _ = session_for([a, b], clock)
    login = SlowLogin(clock, 40.0)
    session.tokens = login
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    until(items, NoticeKind.SUBSCRIBED)
    login.slow = True
    b.current.reset()
    seen = until(items, NoticeKind.GAP)
    assert notices(seen, NoticeKind.STALLED)[0].stalled == pytest.approx(40.0, abs=0.5)
    session.close()


def test_a_token_wait_while_no_link_streams_is_excused() -> None:
    clock, node = SimClock(), FakeNode()
    session, _ = session_for([node], clock)
    login = SlowLogin(clock, 40.0)
    login.slow = True
    session.tokens = login
    seen = until(session.events(), NoticeKind.SUBSCRIBED)
    assert not notices(seen, NoticeKind.STALLED)
    session.close()


def test_a_short_hiccup_is_not_a_stall() -> None:
    clock, node, session, items = one_link()
    clock.stop(STALL_AFTER * 0.8)
    node.current.event(1)
    seen = [next(items) for _ in range(50)]
    assert not notices(seen), [describe(n) for n in notices(seen)]
    session.close()


# -- frames read together (one read, one batch) -----------------------------------------------


class CountingClock(SimClock):
    """A SimClock that counts the loop's waits."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    def wait(self, waitables: Sequence[Any], timeout: float) -> list[Any]:
        self.waits += 1
        return super().wait(waitables, timeout)


def counted_link() -> tuple[CountingClock, FakeNode, Session, Iterator[Event | Notice | Idle]]:
    clock, node = CountingClock(), FakeNode()
    session, _ = session_for([node], clock)
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    return clock, node, session, items


def test_frames_read_together_are_all_delivered_before_the_next_wait() -> None:
    clock, node, session, items = counted_link()
    for n in range(5):
        node.current.event(n)
    node.current.inbox.append((OP_PONG, b"unasked"))  # a frame that shows nothing
    node.current.event(5)
    waits = clock.waits
    seen = [next(items) for _ in range(6)]
    assert [i.data["call_id"] for i in seen] == [f"c{n}" for n in range(6)]
    assert clock.waits == waits
    session.close()


def test_frames_read_at_one_instant_share_its_received_time_and_later_ones_have_their_own() -> None:
    clock, node, session, items = counted_link()
    node.current.event(1)
    node.current.event(2)
    first = [next(items), next(items)]
    read_at = clock.wall()
    assert [e.received_at for e in first] == [read_at, read_at]
    clock.stop(0.5)  # time passes (short of a stall) before the next frame is read
    node.current.event(3)
    third = next(i for i in items if i is not IDLE)
    assert isinstance(third, Event) and third.received_at == pytest.approx(read_at + 0.5)
    session.close()


def test_a_stall_while_the_consumer_holds_a_batch_is_told_after_the_batch() -> None:
    clock, node, session, items = counted_link()
    for n in range(3):
        node.current.event(n)
    first = next(items)
    assert isinstance(first, Event) and first.data["call_id"] == "c0"
    clock.stop(5.0)  # the consumer held the loop up in the middle of the batch
    seen = [first, *until(items, NoticeKind.GAP)]
    events = [i for i in seen if isinstance(i, Event)]
    # All the batch was read before the stop, and is shown, with its one read time.
    assert [e.data["call_id"] for e in events] == ["c0", "c1", "c2"]
    assert len({e.received_at for e in events}) == 1
    stalled = notices(seen, NoticeKind.STALLED)
    assert len(stalled) == 1 and stalled[0].stalled == pytest.approx(5.0, abs=0.3)
    assert seen.index(stalled[0]) > seen.index(events[-1])
    gap = notices(seen, NoticeKind.GAP)[0]
    assert gap.gap_from is not None and gap.gap_from <= events[0].received_at + 0.3
    session.close()


def test_a_stall_before_a_batch_is_told_before_it_and_every_frame_follows() -> None:
    clock, node, session, items = counted_link()
    next(items)  # an idle tick: the loop is waiting
    clock.stop(25.0)
    for n in range(4):
        node.current.event(n)  # buffered by the kernel while the tool was stopped
    seen = until(items, NoticeKind.GAP)
    seen += [next(items) for _ in range(4)]
    kinds = [i.kind if isinstance(i, Notice) else i.data["call_id"] for i in seen if i is not IDLE]
    assert kinds[0] is NoticeKind.STALLED
    assert [k for k in kinds if isinstance(k, str)] == ["c0", "c1", "c2", "c3"]
    session.close()


def test_a_close_after_events_in_one_read_delivers_them_first() -> None:
    clock, node, session, items = counted_link()
    node.current.event(1)
    node.current.event(2)
    node.current.close_frame()
    seen = until(items, NoticeKind.DISCONNECTED)
    assert [i.data["call_id"] for i in seen if isinstance(i, Event)] == ["c1", "c2"]
    session.close()


# -- reconnects, backoff, deadlines ------------------------------------------------------------


def test_failed_tries_back_off_and_say_still_reconnecting_then_the_gap_is_told() -> None:
    clock, node, session, items = one_link(backoff_initial=1.0, backoff_cap=8.0)
    node.current.event(1)
    for _ in range(5):
        next(items)
    heard = clock.wall()
    node.accepting = False
    node.current.reset()
    losses = []
    for _ in range(5):
        losses += notices(until(items, NoticeKind.DISCONNECTED))
    node.accepting = True
    gap = notices(until(items, NoticeKind.GAP))[-1]
    assert [n.still_down for n in losses] == [False, True, True, True, True]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0]
    assert all(c / 10 <= (n.delay or 0) <= c for n, c in zip(losses, ceilings))
    assert describe(losses[0]).startswith("connection to ws://node-a:5555 lost (connection reset")
    assert describe(losses[1]).startswith("still reconnecting (down ")
    assert gap.gap_from is not None and gap.gap_to is not None
    assert gap.gap_from <= heard + 0.3  # a reset: from the last frame heard
    assert gap.gap_to - heard == pytest.approx(sum(n.delay or 0 for n in losses), abs=0.5)
    session.close()


def test_the_backoff_keeps_growing_after_a_long_lived_connection_is_lost() -> None:
    clock, node, session, items = one_link(backoff_initial=1.0, backoff_cap=30.0)
    started = clock.wall()
    while clock.wall() < started + 60.0:
        next(items)
    node.accepting = False
    node.current.reset()
    losses = []
    for _ in range(6):
        losses += notices(until(items, NoticeKind.DISCONNECTED))
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert all(c / 10 <= (n.delay or 0) <= c for n, c in zip(losses, ceilings))
    assert sum(n.delay or 0 for n in losses) > 6.0
    session.close()


def test_close_during_iteration_ends_it() -> None:
    clock, node, session, items = one_link()
    session.close()
    assert list(items) == []


def test_max_reconnect_time_gives_up_on_simulated_time() -> None:
    clock, node, session, items = one_link(max_reconnect_time=60.0)
    lost_at = clock.wall()
    node.accepting = False
    node.current.reset()
    with pytest.raises(ConnectError, match=r"gave up reconnecting to ws://node-a:5555 after 60s"):
        for _ in range(100_000):
            next(items)
    assert clock.wall() - lost_at == pytest.approx(60.0, abs=0.5)


def test_a_first_connect_that_fails_ends_the_session() -> None:
    clock, node = SimClock(), FakeNode()
    node.accepting = False
    session, _ = session_for([node], clock)
    with pytest.raises(ConnectError, match="refused"):
        list(session.events())


def test_the_token_is_renewed_on_schedule_while_the_link_is_down() -> None:
    clock, node = SimClock(), FakeNode()
    session, renewals = session_for([node], clock, backoff_cap=300.0)
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    node.accepting = False
    node.current.reset()
    down_at = clock.wall()
    while clock.wall() - down_at < 10 * TOKEN_CHECK_INTERVAL:
        next(items)
    during = [at for at in renewals if at >= down_at]
    assert len(during) >= 9
    session.close()


# -- several links ------------------------------------------------------------------------------


def test_one_of_two_links_down_is_no_gap_and_both_down_is_one_window() -> None:
    clock, a, b, session, items = two_links()
    a.accepting = False
    a.current.reset()
    lost = notices(until(items, NoticeKind.DISCONNECTED))[-1]
    assert lost.still_up == ("node-b:5555",) and not lost.cluster_down
    assert "; still subscribed on node-b:5555" in describe(lost)
    for _ in range(200):
        assert not isinstance(item := next(items), Notice) or item.kind is not NoticeKind.GAP
    b.accepting = False
    b_lost_at = clock.wall()
    b.current.close_frame()  # a close frame: b heard everything until then
    lost = notices(until(items, NoticeKind.DISCONNECTED))[-1]
    assert lost.cluster_down and describe(lost).endswith("; no node is subscribed now")
    for _ in range(300):
        next(items)
    a.accepting = True
    gap = notices(until(items, NoticeKind.GAP))[-1]
    assert gap.gap_from == pytest.approx(b_lost_at, abs=0.3)
    assert "no node was subscribed meanwhile" in describe(gap)
    session.close()


def test_events_from_two_nodes_are_shown_once() -> None:
    clock, a, b, session, items = two_links()
    for n in range(5):
        a.current.event(n)
        b.current.event(n)
    shown = []
    for _ in range(100):
        item = next(items)
        if isinstance(item, Event):
            shown.append((item.data["call_id"], item.via))
    assert [call for call, _ in shown] == [f"c{n}" for n in range(5)]
    assert {via for _, via in shown} <= {"node-a:5555", "node-b:5555"}
    session.close()


# -- the month of monthly databases ------------------------------------------------------------


def utc(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


def test_the_month_period_turns_with_the_utc_month_and_again_twelve_hours_later() -> None:
    assert modb_period(utc("2026-11-30T23:59:59")) == "202611b"
    assert modb_period(utc("2026-12-01T00:00:00")) == "202612a"
    assert modb_period(utc("2026-12-01T11:59:59")) == "202612a"
    assert modb_period(utc("2026-12-01T12:00:00")) == "202612b"
    assert modb_period(utc("2026-12-15T03:00:00")) == "202612b"


def test_links_renew_monthly_bindings_one_at_a_time_so_no_gap_opens() -> None:
    clock = SimClock()
    clock.offset = utc("2026-12-01T11:58:00") - clock.mono
    a, b = FakeNode("ws://node-a:5555"), FakeNode("ws://node-b:5555")
    session, _ = session_for([a, b], clock, binding="object.*.fax")
    items = session.events()
    until(items, NoticeKind.SUBSCRIBED)
    until(items, NoticeKind.SUBSCRIBED)
    told = []
    while clock.wall() < utc("2026-12-01T12:03:00"):
        item = next(items)
        if isinstance(item, Notice):
            told.append(item)
    renewed = notices(told, NoticeKind.DISCONNECTED)
    assert [n.url for n in renewed] == ["ws://node-a:5555", "ws://node-b:5555"]
    assert all("a new month began" in n.reason for n in renewed)
    assert all(n.still_up for n in renewed) and not notices(told, NoticeKind.GAP)
    assert len(a.connections) == len(b.connections) == 2
    session.close()


# -- the ledger, alone --------------------------------------------------------------------------


def test_the_ledger_counts_nothing_before_the_first_subscribe() -> None:
    ledger = GapLedger(1)
    ledger.down(0, 5.0)
    ledger.stall(6.0, 9.0)
    ledger.up(0, 10.0)
    assert ledger.new_windows(11.0) == []


def test_the_ledger_merges_a_stall_and_an_outage_that_touch() -> None:
    ledger = GapLedger(1)
    ledger.up(0, 0.0)
    ledger.stall(10.0, 20.0)
    ledger.down(0, 10.0)
    assert ledger.open_since(21.0) == 10.0
    ledger.up(0, 22.0)
    assert ledger.new_windows(23.0) == [Window(10.0, 22.0, 10.0)]
    assert ledger.new_windows(24.0) == []  # never told twice


def test_the_ledger_finds_a_past_window_revealed_by_a_link_found_dead_late() -> None:
    ledger = GapLedger(2)
    ledger.up(0, 0.0)
    ledger.up(1, 0.0)
    ledger.down(1, 10.0)  # b lost at 10
    ledger.up(1, 20.0)  # and back at 20
    assert ledger.new_windows(21.0) == []  # a covered meanwhile, as far as anyone knew
    ledger.down(0, 15.0)  # a is found dead at 30: it last heard anything at 15
    assert ledger.new_windows(30.0) == [Window(15.0, 20.0, 0.0)]


def test_a_window_told_does_not_hide_an_earlier_one_revealed_later() -> None:
    ledger = GapLedger(2)
    ledger.up(0, 0.0)
    ledger.up(1, 0.0)
    ledger.down(1, 20.0)  # b lost at 20, back at 25
    ledger.up(1, 25.0)
    ledger.stall(30.0, 33.0)  # a stall, told at once
    assert ledger.new_windows(33.0) == [Window(30.0, 33.0, 3.0)]
    ledger.down(0, 15.0)  # a is found dead later: it last heard anything at 15
    assert ledger.new_windows(40.0) == [Window(20.0, 25.0, 0.0)]
