"""Frames into events, sans I/O: parsing, de-duplication, and bad frames reported sparingly."""

from __future__ import annotations

import time
from collections.abc import Callable

from kazoo_tail.kazoo.events import Deduplicator, Event, Notice, NoticeKind
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

    It outlives connections, so a duplicate delivered just before and just after a reconnect
    is still shown once, and bad frames are reported at most once per interval in all.
    """

    def __init__(
        self,
        *,
        dedupe: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        copies: FrameCopies | None = None,
    ) -> None:
        self._dedupe = Deduplicator() if dedupe else None
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
            item = parse_frame(payload, received_at)
        except BadFrame as exc:
            return self._bad_frame(str(exc))
        if isinstance(item, Event) and self._dedupe is not None:
            if self._dedupe.is_duplicate(item):
                return None
        return item

    def _bad_frame(self, reason: str) -> Notice | None:
        now = self._monotonic()
        if now - self._reported_at < BAD_FRAME_REPORT_INTERVAL:
            self._unreported += 1
            return None
        message = f"ignored {reason} from the server"
        if self._unreported:
            message += f" ({self._unreported} more bad frames ignored before it)"
        self._reported_at = now
        self._unreported = 0
        return Notice(NoticeKind.BAD_FRAME, message)
