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


@dataclass
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
        # Every event is asked, in every mode: the envelope is read here directly rather than
        # through the properties, which cost a call each.
        envelope = self.envelope
        data = envelope.get("data")
        msg_id = data.get("msg_id") if isinstance(data, dict) else None
        if not isinstance(msg_id, (str, int)):
            return None
        routing_key = envelope.get("routing_key")
        if not routing_key or not isinstance(routing_key, str):
            return None
        return (routing_key, msg_id if msg_id.__class__ is str else str(msg_id))


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
    # A link is subscribed to everything (again).
    SUBSCRIBED = "subscribed"
    # How far a long subscribe round got (a rate-limited socket admits 10 a second).
    PROGRESS = "progress"
    # A link was lost, or a try to open it again failed; the next try is ``delay`` away.
    DISCONNECTED = "disconnected"
    # A link that cannot go on (--no-reconnect, a certificate that will not verify) while
    # others are still subscribed.
    LINK_ENDED = "link-ended"
    # kazoo-tail itself did not run for ``stalled`` seconds (SIGSTOP, Ctrl-Z, a suspended
    # machine): its links are being checked.
    STALLED = "stalled"
    # Events between ``gap_from`` and ``gap_to`` may have been missed.
    GAP = "gap"
    BAD_FRAME = "bad-frame"


@dataclass(frozen=True)
class Notice:
    """A fact about the connection worth telling the user (on stderr, never stdout). It
    carries the facts only; ``kazoo_tail.output.notices.describe`` puts them into words."""

    kind: NoticeKind
    # The blackhole URL of the link the notice is about.
    url: str = ""
    # Its node label (host:port), when the tail holds links to several nodes.
    link: str | None = None
    # Whether the tail holds links to several nodes (the wording names who else is up).
    several: bool = False
    # DISCONNECTED, LINK_ENDED, BAD_FRAME: why, in a sentence from the transport.
    reason: str = ""
    # DISCONNECTED: the server's close code, when it sent one.
    close_code: int | None = None
    # DISCONNECTED: seconds until the next try.
    delay: float | None = None
    # DISCONNECTED: a failed try while the link was already down, and for how long it was.
    still_down: bool = False
    down_for: float | None = None
    # DISCONNECTED: False for a node never reached yet.
    reached: bool = True
    # DISCONNECTED, LINK_ENDED: the nodes still subscribed (several links only).
    still_up: tuple[str, ...] = ()
    # DISCONNECTED: whether the loss leaves no link subscribed (always, with one link that
    # was subscribed): only such a loss opens a gap.
    cluster_down: bool = True
    # GAP: the epoch times between which events may have been missed.
    gap_from: float | None = None
    gap_to: float | None = None
    # GAP: whether a link was (re)subscribed to end it; STALLED and GAP: the seconds the tool
    # itself did not run.
    reconnected: bool = False
    stalled: float = 0.0
    # SUBSCRIBED: (account id, binding) pairs.
    subscriptions: tuple[tuple[str, str], ...] = ()
    # PROGRESS: replies in, subscribes in all, the bucket's block a second, seconds to go.
    answered: int = 0
    total: int = 0
    block: int = 0
    seconds_left: float = 0.0
    # BAD_FRAME: bad frames ignored unreported before this one.
    count: int = 0

    @property
    def gap_seconds(self) -> float | None:
        if self.gap_from is None or self.gap_to is None:
            return None
        return max(0.0, self.gap_to - self.gap_from)

    @property
    def is_warning(self) -> bool:
        """Whether the notice is trouble (a loss, a gap), rather than news."""
        return self.kind not in (NoticeKind.SUBSCRIBED, NoticeKind.PROGRESS)


class Idle:
    """Yielded when nothing arrived for a moment, so the consumer can check its clocks."""

    __slots__ = ()


IDLE = Idle()
