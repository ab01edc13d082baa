"""Frames into events, sans I/O: parsing, second copies of a frame dropped, and bad frames
reported sparingly."""

from __future__ import annotations

import time
from collections.abc import Callable

from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
from kazoo_tail.kazoo.wire import BadFrame, Reply, parse_frame
from kazoo_tail.net.frames import OP_BINARY, OP_TEXT

BAD_FRAME_REPORT_INTERVAL = 10.0


class FrameCopies:
    """The last frames the links to a cluster's nodes received, exactly as received. Federated
    nodes send each event alike, so most second copies are dropped here, unparsed; a copy
    that differs (or comes later than this remembers) is still caught after parsing, by the
    event's routing key and msg_id."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._seen: dict[bytes, None] = {}

    def seen(self, payload: bytes) -> bool:
        seen = self._seen
        if payload in seen:
            return True
        seen[payload] = None
        if len(seen) > self.capacity:
            del seen[next(iter(seen))]
        return False


class Decoder:
    """Turns a text or binary message into an event, a reply, a notice, or nothing.

    It outlives connections, so bad frames are reported at most once per interval in all.
    (Duplicate events are dropped by the session, across links and reconnects.)
    """

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        copies: FrameCopies | None = None,
    ) -> None:
        # Shared by the links to several nodes: a frame another link already brought, byte
        # for byte, is dropped before it costs a parse.
        self._copies = copies
        # Only while the link is subscribed: a frame held back during a subscribe round may
        # never be shown, so it must not make another link's copy count as seen.
        self.sharing = False
        self._monotonic = monotonic
        self._unreported = 0
        self._reported_at = float("-inf")

    def decode(
        self, opcode: int, payload: bytes, received_at: float
    ) -> Event | Reply | Notice | None:
        if opcode == OP_BINARY:
            return self._bad_frame("a binary frame")
        if opcode != OP_TEXT:
            return None
        if self.sharing and self._copies is not None and self._copies.seen(payload):
            return None
        try:
            return parse_frame(payload, received_at)
        except BadFrame as exc:
            return self._bad_frame(str(exc))

    def _bad_frame(self, reason: str) -> Notice | None:
        now = self._monotonic()
        if now - self._reported_at < BAD_FRAME_REPORT_INTERVAL:
            self._unreported += 1
            return None
        notice = Notice(NoticeKind.BAD_FRAME, reason=reason, count=self._unreported)
        self._reported_at = now
        self._unreported = 0
        return notice
