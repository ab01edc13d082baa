"""How the tail reads its socket: once a wait finds it readable, every frame one read brought
is delivered before the loop waits again, and a read shorter than the buffer means the socket
was drained, so the transport does not ask the kernel again until the next wait finds it
readable. Over real sockets, against bench/fastserver.py's handshake and subscribe reply."""

from __future__ import annotations

import json
import queue
import select
import socket
from collections.abc import Sequence
from typing import TypeVar

from bench.fastserver import FastServer, frame
from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
from kazoo_tail.net.frames import OP_TEXT
from kazoo_tail.net.transport import Transport
from kazoo_tail.session.clock import Clock, Waitable
from kazoo_tail.session.resolve import ConnectionConfig
from kazoo_tail.session.session import Session
from kazoo_tail.session.subscriber import Subscription

ACCOUNT = "4b8c6fec4b2597882c0390202d195419"
W = TypeVar("W", bound=Waitable)


class SteeredServer(FastServer):
    """Handshake and subscribe reply as the bench's server; then it sends what the test puts
    in ``sends``, each item in one ``sendall`` (None closes the connection)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.sends: queue.Queue[bytes | None] = queue.Queue()

    def _stream(self, conn: socket.socket) -> None:
        try:
            while (chunk := self.sends.get(timeout=30)) is not None:
                conn.sendall(chunk)
        except (OSError, queue.Empty):
            pass
        finally:
            conn.close()


def event_frame(n: int) -> bytes:
    return frame(
        json.dumps(
            {
                "action": "event",
                "subscribed_key": "call.*.*",
                "name": "CHANNEL_CREATE",
                "routing_key": f"call.{ACCOUNT}.CHANNEL_CREATE.c{n}",
                "data": {"call_id": f"c{n}", "msg_id": str(n)},
            }
        ).encode()
    )


def wait_readable(transport: Transport) -> None:
    """The driver's part: wait until the socket is readable, then say so."""
    sock = transport.socket
    assert sock is not None
    assert select.select([sock], [], [], 10)[0], "nothing arrived"
    transport.woken()


def test_a_drained_socket_is_read_again_only_after_a_wait_finds_it_readable() -> None:
    server = SteeredServer().start()
    transport = Transport.open(server.url, sslopt={}, timeout=5, tick=0.25)
    transport.poll = True
    try:
        subscribe = {"action": "subscribe", "request_id": "r", "auth_token": "t", "data": {}}
        subscribe["data"] = {"account_id": ACCOUNT, "binding": "call.*.*"}
        transport.send_text(json.dumps(subscribe))
        wait_readable(transport)
        reply = transport.receive()
        assert reply is not None and b'"reply"' in reply[1]
        assert transport.receive() is None  # drained: nothing more was sent

        server.sends.put(event_frame(1) + event_frame(2) + event_frame(3))
        wait_readable(transport)
        got = [transport.receive() for _ in range(3)]
        assert [(op, json.loads(payload)["data"]["call_id"]) for op, payload in got] == [
            (OP_TEXT, "c1"),
            (OP_TEXT, "c2"),
            (OP_TEXT, "c3"),
        ]

        server.sends.put(event_frame(4))
        sock = transport.socket
        assert sock is not None
        assert select.select([sock], [], [], 10)[0]
        # The last read was short, so the socket was drained then: what came since waits
        # for the driver's wait to see it, at no cost to a loop turn before it.
        assert transport.receive() is None
        transport.woken()
        fourth = transport.receive()
        assert fourth is not None and json.loads(fourth[1])["data"]["call_id"] == "c4"
    finally:
        server.sends.put(None)
        transport.drop()
        server.stop()


class CountingClock(Clock):
    """Real time, counting the loop's waits."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, waitables: Sequence[W], timeout: float) -> list[W]:
        self.waits += 1
        return super().wait(waitables, timeout)


def session_on(server: SteeredServer, clock: Clock) -> Session:
    """A session subscribed to the server's calls, on the given clock."""
    return Session(
        ConnectionConfig(),
        [server.url],
        [Subscription(ACCOUNT, "call.*.*")],
        lambda refresh=False: "T",
        clock=clock,
    )


def test_frames_that_came_in_one_read_are_all_delivered_before_the_next_wait() -> None:
    server = SteeredServer().start()
    clock = CountingClock()
    session = session_on(server, clock)
    batch = b"".join(event_frame(n) for n in range(1, 6))
    waits_at: dict[str, int] = {}
    try:
        for item in session.events():
            if isinstance(item, Notice) and item.kind is NoticeKind.SUBSCRIBED:
                server.sends.put(batch)
            elif isinstance(item, Event):
                waits_at[item.data["call_id"]] = clock.waits
                if len(waits_at) == 5:
                    break
    finally:
        session.close()
        server.sends.put(None)
        server.stop()
    assert list(waits_at) == ["c1", "c2", "c3", "c4", "c5"]
    assert len(set(waits_at.values())) == 1, waits_at


class SteppedClock(CountingClock):
    """Real time, plus the time a test says the process was stopped (SIGSTOP)."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.stopped

    def timeline(self) -> float:
        return super().timeline() + self.stopped

    def wall(self) -> float:
        return super().wall() + self.stopped


def test_a_stall_between_frames_read_together_is_still_detected() -> None:
    """A stop while the frames of one read are delivered is the tool's own stall, told when
    the loop next turns (a link's step yields a batch of frames between turns)."""
    server = SteeredServer().start()
    clock = SteppedClock()
    session = session_on(server, clock)
    seen: list[str] = []
    try:
        for item in session.events():
            if isinstance(item, Notice) and item.kind is NoticeKind.SUBSCRIBED:
                server.sends.put(event_frame(1) + event_frame(2))
            elif isinstance(item, Event):
                seen.append(item.data["call_id"])
                if len(seen) == 1:
                    clock.stopped += 2.0
            elif isinstance(item, Notice) and item.kind is NoticeKind.STALLED:
                seen.append("stalled")
            if "stalled" in seen:
                break
    finally:
        session.close()
        server.sends.put(None)
        server.stop()
    assert seen == ["c1", "c2", "stalled"]
