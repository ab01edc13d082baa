"""What a blackhole session produces: events from the server and notices about the link."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

# data.event_category -> binding module, for events whose subscribed_key says nothing useful.
_CATEGORY_KIND = {
    "call_event": "call",
    "configuration": "object",
    "fax": "fax",
    "conference": "conference",
}


@dataclass(slots=True)
class Event:
    """One ``action: event`` frame. ``raw`` is the frame as it came off the wire, or made
    standard JSON when it was not (a lone surrogate escape, NaN): what every output shows."""

    raw: bytes
    envelope: dict[str, Any]
    received_at: float
    # Which blackhole node delivered it, when the tail holds links to several.
    via: str | None = None
    # ``kind``, worked out once: the filter, the call tracker and the renderer all ask.
    _kind: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def name(self) -> str | None:
        value = self.envelope.get("name")
        return value if isinstance(value, str) else None

    @property
    def routing_key(self) -> str:
        value = self.envelope.get("routing_key")
        return value if isinstance(value, str) else ""

    @property
    def subscribed_key(self) -> str:
        value = self.envelope.get("subscribed_key")
        return value if isinstance(value, str) else ""

    @property
    def data(self) -> dict[str, Any]:
        value = self.envelope.get("data")
        return value if isinstance(value, dict) else {}

    @property
    def kind(self) -> str:
        """The binding module the event belongs to: call, object, fax, conference, or other."""
        kind = self._kind
        if kind is None:
            kind = self._kind = self._work_out_kind()
        return kind

    def _work_out_kind(self) -> str:
        module = self.subscribed_key.split(".", 1)[0]
        if module in ("call", "object", "fax", "conference", "presence"):
            return module
        category = self.data.get("event_category")
        return _CATEGORY_KIND.get(category, "other") if isinstance(category, str) else "other"

    def dedupe_key(self) -> tuple[str, str] | None:
        """Overlapping bindings deliver one event once per binding; these two fields name it."""
        msg_id = self.data.get("msg_id")
        if not isinstance(msg_id, str | int) or not self.routing_key:
            return None
        return (self.routing_key, str(msg_id))


class Deduplicator:
    """Remembers the last ``capacity`` event keys, so memory stays bounded on long runs."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def is_duplicate(self, event: Event) -> bool:
        key = event.dedupe_key()
        if key is None:
            return False
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False


class NoticeKind(enum.Enum):
    SUBSCRIBED = "subscribed"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    # How far a long subscribe round got (a rate-limited socket admits 10 a second).
    PROGRESS = "progress"
    BAD_FRAME = "bad-frame"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something about the connection worth telling the user (on stderr, never stdout)."""

    kind: NoticeKind
    message: str
    gap_seconds: float | None = field(default=None)
    # For a gap: the epoch times between which events may have been missed.
    gap_from: float | None = field(default=None)
    gap_to: float | None = field(default=None)
    # The node the notice is about, when the tail holds links to several.
    link: str | None = field(default=None)
    # For DISCONNECTED: whether no link is subscribed any more (always, with one link).
    cluster_down: bool = field(default=True)
    # For DISCONNECTED: why, in a few words ("connection refused").
    reason: str | None = field(default=None)


class Idle:
    """Yielded when nothing arrived for a moment, so the consumer can check its clocks."""

    __slots__ = ()


IDLE = Idle()
