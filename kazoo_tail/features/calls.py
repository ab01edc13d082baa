"""Calls as a person thinks of them: the legs of one call grouped, each call with a short label
and a colour slot of its own, its state decided by the events' own timestamps.

Blackhole dispatches every event from its own process, so a leg's events can arrive out of
order: a hangup before the answer, an unhold before the hold. A leg's state therefore moves
only to an event that happened later (by Kazoo's clock, then by the natural order of a call's
events when the clock, in whole seconds, cannot tell), and an event for a leg already hung up
joins the call it belonged to instead of opening a new one.

Used by the ``--calls`` timelines and the ``calls`` board; no rich, no click.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.time import unix_from_gregorian

# Where each event stands in a call's life, to order events whose timestamps are equal.
_RANK = {
    "CHANNEL_CREATE": 0,
    "CHANNEL_ANSWER": 1,
    "CHANNEL_BRIDGE": 2,
    "CHANNEL_HOLD": 3,
    "CHANNEL_UNHOLD": 4,
    "PARK_PARKED": 3,
    "PARK_RETRIEVED": 4,
    "CHANNEL_DESTROY": 9,
    "PARK_ABANDONED": 9,
}
_ENDINGS = {"CHANNEL_DESTROY", "PARK_ABANDONED"}
# Call attributes described from its first leg's events, and the fields they come from.
_DESCRIPTION = (
    ("caller_number", "caller_id_number"),
    ("caller_name", "caller_id_name"),
    ("callee_number", "callee_id_number"),
    ("callee_name", "callee_id_name"),
)
_HOLDS = {"CHANNEL_HOLD": True, "PARK_PARKED": True, "CHANNEL_UNHOLD": False}
_HOLDS["PARK_RETRIEVED"] = False

# Direction as the account sees it (docs/calls.md §2.4): the call's, not the leg's.
INBOUND, OUTBOUND, INTERNAL = "inbound", "outbound", "internal"
# The A-leg looks like a carrier's before routing has marked it (Kazoo 4.3's first event of a
# call from the PSTN carries only the account id): inbound, not yet confirmed.
MAYBE_INBOUND = "inbound?"
_ORIGINATIONS = {"offnet-origination", "onnet-origination"}
_TERMINATIONS = {"offnet-termination", "onnet-termination"}
_ON_NET = {"on-net", "onnet"}


@dataclass
class Origin:
    """What a call's events have shown of where it comes from and goes to."""

    outside: bool = False  # an A-leg (or a B-leg's copied inception) from a carrier
    inside: bool = False  # an A-leg from one of the account's own endpoints
    maybe_outside: bool = False  # a bare A-leg (4.3's carrier leg at CHANNEL_CREATE)
    to_resource: bool = False  # some leg goes to a carrier or another account
    to_endpoint: bool = False  # some B-leg goes to an endpoint of the account

    def note(self, data: dict[str, Any]) -> None:
        """Account for one event of one of the call's legs."""
        ccv = data.get("custom_channel_vars")
        if not isinstance(ccv, dict):
            ccv = {}
        # text(), called only for what is not a string (rarely): every event of every call
        # comes here, and a call per field showed in --calls' cost.
        get = ccv.get
        resource_type = get("resource_type", "")
        if resource_type.__class__ is not str:
            resource_type = text(ccv, "resource_type")
        authorizing = get("authorizing_type", "")
        if authorizing.__class__ is not str:
            authorizing = text(ccv, "authorizing_type")
        inception = get("inception", "")
        if inception.__class__ is not str:
            inception = text(ccv, "inception")
        direction = data.get("call_direction", "")
        if direction.__class__ is not str:
            direction = text(data, "call_direction")
        a_leg = direction == "inbound" and data.get("channel_is_loopback") not in (True, "true")
        if inception and inception not in _ON_NET:
            self.outside = True  # on 4.3 the B-legs carry the A-leg's inception too
        if a_leg:
            if resource_type in _ORIGINATIONS or authorizing == "resource":
                self.outside = True
            elif inception in _ON_NET or (authorizing and text(ccv, "authorizing_id")):
                self.inside = True
            elif text(ccv, "account_id") and not any(
                text(ccv, key) for key in ("authorizing_id", "owner_id", "username")
            ):
                self.maybe_outside = True
        if resource_type in _TERMINATIONS:
            self.to_resource = True
        elif direction == "outbound":
            if text(ccv, "resource_id"):
                self.to_resource = True
            elif authorizing and authorizing != "resource" and text(ccv, "authorizing_id"):
                self.to_endpoint = True

    def absorb(self, other: Origin) -> None:
        """What another call (merged into this one) showed counts for this one too."""
        for name in ("outside", "inside", "maybe_outside", "to_resource", "to_endpoint"):
            setattr(self, name, getattr(self, name) or getattr(other, name))

    def direction(self, ended: bool) -> str:
        """inbound, outbound, internal; inbound? while only likely; "" while not known."""
        if self.outside:
            return INBOUND
        if self.inside:
            if self.to_resource:
                return OUTBOUND
            if self.to_endpoint or ended:
                return INTERNAL
            return ""  # not yet bridged anywhere: to a carrier or to a phone, not known yet
        return MAYBE_INBOUND if self.maybe_outside else ""


def text(data: dict[str, Any], key: str) -> str:
    """A scalar field as text ("" when absent or not a scalar). Not yet safe to print."""
    value = data.get(key)
    if value.__class__ is str:  # nearly always: the fast way out, for every event
        return value
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def seconds(value: Any) -> float | None:
    """Kazoo's durations come as strings ("31"); None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def event_time(event: Event) -> float:
    """When the event happened by Kazoo's clock (whole seconds), else when it was received."""
    stamp = unix_from_gregorian(event.data.get("timestamp"))
    return event.received_at if stamp is None else stamp


def _created_time(data: dict[str, Any]) -> float | None:
    micros = data.get("channel_created_time")
    if isinstance(micros, int) and not isinstance(micros, bool) and 1e15 < micros < 3e16:
        return micros / 1e6  # microseconds, years 2001 to 2920
    return None


@dataclass
class Leg:
    call_id: str
    created: float
    direction: str = ""
    answered: float | None = None
    ended: float | None = None
    held: bool = False
    cause: str = ""
    # Kazoo's own counts from the hangup, when it gave them.
    ringing_seconds: float | None = None
    billing_seconds: float | None = None
    # Whose events (or listing) told of it: only that account's listing can miss it.
    account_id: str = ""
    # (time, rank) of the event that set the state: only a later one may change it.
    latest: tuple[float, int] = (float("-inf"), -1)
    # Known from a listing only, no event of it heard yet: its ``direction`` is the switch's
    # view as Crossbar lists it, and its ``created`` is the listing's time, not its start.
    listed_only: bool = False
    # Its ``answered`` is a listing's time (the tool's clock), its answer unheard.
    answer_listed: bool = False
    # Ended because a listing lacked it: when that listing was asked (the tool's clock). None
    # for a leg in progress or one whose hangup was heard.
    end_inferred_at: float | None = None


# Legs (call ids) one call may gather. A real call has a few (a ring group, transfers); more
# means bridge ids that chain unrelated calls, and each event would cost as much as its legs.
MAX_LEGS = 64


@dataclass
class Call:
    """One call: every leg bridged to another (``other_leg_call_id``, bridge events) together."""

    label: str
    colour: int
    created: float
    legs: dict[str, Leg] = field(default_factory=dict)
    # As the account sees it: inbound (from outside), outbound (to outside), internal;
    # "inbound?" while only likely, "" while not known yet (see Origin).
    direction: str = ""
    origin: Origin = field(default_factory=Origin)
    caller_number: str = ""
    caller_name: str = ""
    callee_number: str = ""
    callee_name: str = ""
    # Where an unanswered call was going: the dialled request's user part.
    dialled: str = ""
    # The latest of its events' times, by the events' clock. (Which call is dropped past
    # max_calls goes by arrival instead: see CallTracker.)
    last_seen: float = 0.0
    # Every call id that leads to this call: its legs, and legs named by them not yet heard
    # from. Kept so that a merge or a forget touches this call's ids only, not every one.
    ids: set[str] = field(default_factory=set)
    # The account whose events (or channel listing) told of the call; "" while not known.
    account_id: str = ""
    # When the tool last heard an event of the call, by its own clock (arrival), and when
    # Crossbar last listed it: what says the call is still there.
    heard_at: float = 0.0
    confirmed_at: float = 0.0
    # Set for a call first known from a channel listing: what happened before this moment
    # (its start, its answer) was not seen, so its times count from here and are lower bounds.
    known_since: float | None = None
    # When the tool heard its first answer (its own clock): the end of a ring counted, like
    # known_since, on the tool's clock.
    answer_heard_at: float | None = None
    # When the tool last heard a hangup of it (its own clock): a listing asked before then
    # cannot contradict that hangup.
    hangup_heard_at: float = float("-inf")
    # The latest moment its clocks were shown counting to (the tool's clock): a close whose
    # end is inferred never ends it earlier, so that a lower bound shown never goes down.
    shown_until: float = float("-inf")

    @property
    def answer_unseen(self) -> bool:
        """Found answered by a listing, its answer unheard: when it was answered is known only
        to be before that listing (the tool's clock), so its ring time is unknown."""
        return any(leg.answer_listed for leg in self.legs.values())

    @property
    def end_unheard(self) -> bool:
        """Closed (some leg) by a listing that no longer had it: when it ended is not known."""
        return any(leg.end_inferred_at is not None for leg in self.legs.values())

    @property
    def hangup_heard(self) -> bool:
        """Ended, every leg's hangup heard: no listing may bring it back."""
        return self.ended is not None and not self.end_unheard

    @property
    def answered(self) -> float | None:
        times = [leg.answered for leg in self.legs.values() if leg.answered is not None]
        return min(times) if times else None

    @property
    def ended(self) -> float | None:
        """When the last leg hung up, once every leg has."""
        if not self.legs or any(leg.ended is None for leg in self.legs.values()):
            return None
        return max(leg.ended for leg in self.legs.values() if leg.ended is not None)

    @property
    def state(self) -> str:
        """ringing, talking, held or ended."""
        if self.ended is not None:
            return "ended"
        if self.answered is None:
            return "ringing"
        live = [leg for leg in self.legs.values() if leg.ended is None]
        return "held" if any(leg.held for leg in live) else "talking"

    @property
    def cause(self) -> str:
        """The hangup cause of the leg that ended first (the one that hung up). A cause heard
        from Kazoo comes before one inferred from a listing, whose end (on the tool's clock)
        cannot be ordered against Kazoo's."""
        ended = sorted(
            (leg for leg in self.legs.values() if leg.ended is not None and leg.cause),
            key=lambda leg: (leg.end_inferred_at is not None, leg.ended or 0.0),
        )
        return ended[0].cause if ended else ""

    @property
    def ring_unknown(self) -> bool:
        """Whether its ring time cannot be told at all: answered before the tool heard of it
        (or before a listing found it answered), and no hangup with Kazoo's own count."""
        return self.answer_unseen and self._kazoo_ring() is None

    def _kazoo_ring(self) -> float | None:
        if self.ended is None:
            return None
        counted = [leg.ringing_seconds for leg in self.legs.values()]
        known = [value for value in counted if value is not None]
        return max(known) if known else None

    def ring_seconds(self, now: float) -> float:
        """From creation to the answer, or to the end (or now) for a call never answered.
        For a call whose start was not seen, from when the tool learnt of it, on the tool's
        own clock only (a lower bound); 0.0 when ``ring_unknown``."""
        kazoo = self._kazoo_ring()
        if kazoo is not None:
            return kazoo
        if self.answer_unseen:
            return 0.0  # ring_unknown: nothing can be counted
        if self.known_since is not None:
            # Kazoo's clock (a later event's channel_created_time) never meets the tool's.
            until = self.answer_heard_at or self._local_end() or now
            return max(0.0, until - self.known_since)
        until = self.answered or self.ended or now
        return max(0.0, until - self.created)

    def _local_end(self) -> float | None:
        """When it ended by the tool's clock: the inferred end (or, with a hangup heard, when
        the tool heard it); None while in progress."""
        if self.ended is None:
            return None
        inferred = [leg.ended for leg in self.legs.values() if leg.end_inferred_at is not None]
        heard = self.hangup_heard_at if self.hangup_heard_at > float("-inf") else None
        times = [t for t in (*inferred, heard) if t is not None]
        return max(times) if times else None

    def talk_seconds(self, now: float) -> float | None:
        """From the answer to the end (or now); None for a call never answered."""
        answered = self.answered
        if answered is None:
            return None
        counted = [leg.billing_seconds for leg in self.legs.values()]
        known = [value for value in counted if value is not None]
        if known and self.ended is not None:
            return max(known)
        if self.answer_unseen:
            # Its answer is the listing's time, the tool's clock: so is its end.
            return max(0.0, (self._local_end() or now) - answered)
        return max(0.0, (self.ended or now) - answered)

    @property
    def ring_is_lower_bound(self) -> bool:
        """Whether the ring time counts from when the tool learnt of the call, not its start
        (or it ended without its hangup heard)."""
        if self.ring_unknown or self._kazoo_ring() is not None:
            return False
        return self.known_since is not None or (self.end_unheard and self.answered is None)

    @property
    def talk_is_lower_bound(self) -> bool:
        """Whether the talk time counts from a listing that found it answered, not from the
        answer itself (or it ended without its hangup heard)."""
        if self.answered is None:
            return False
        return self.answer_unseen or self.end_unheard

    def last_sign_of_life(self) -> float:
        """When an event or a listing last said the call was there (the tool's clock)."""
        return max(self.heard_at, self.confirmed_at)

    def shown_at(self, now: float, stale: bool) -> float:
        """The moment (the tool's clock) its clocks are shown counting to at ``now``, noted so
        that an inferred end never comes before it: now while in progress, and once stale
        where they were when it went stale (its last sign of life, or what was shown since),
        so that a lower bound shown never goes down."""
        at = now if not stale else min(now, max(self.last_sign_of_life(), self.shown_until))
        if self.ended is None and at > self.shown_until:
            self.shown_until = at
        return at

    def is_stale(self, now: float, after: float | None) -> bool:
        """In progress, but neither heard of nor listed by Crossbar for ``after`` seconds: its
        state is no longer known."""
        if after is None or self.ended is not None:
            return False
        return now - self.last_sign_of_life() > after


# The hangup cause shown for a call that a listing after a gap no longer had, and for one
# that a listing asked for any other reason did not have.
ENDED_IN_GAP = "ended during the gap"
ENDED_UNHEARD = "ended unheard"
# A call heard of this close before a listing was asked is not closed for being absent from
# it: ecallmgr lists a carrier's leg only once routing has marked it (docs/calls.md §1.1).
RECENT_SECONDS = 2.0


@dataclass
class Reconciled:
    """What one round of channel listings did to the calls."""

    added: list[Call] = field(default_factory=list)
    closed: list[Call] = field(default_factory=list)
    # Not listed, but heard of too recently to be judged: worth asking about again.
    kept: list[Call] = field(default_factory=list)


@dataclass
class CallUpdate:
    """What one call event did: to which call and leg, and whether it opened or closed it."""

    call: Call
    leg: Leg
    name: str
    when: float
    opened: bool
    closed: bool
    # The event happened before the leg's latest known state (it arrived out of order).
    late: bool


class CallTracker:
    """Groups call events into calls, and hands out labels and colour slots.

    A colour slot is given to a new call from those no call in progress holds, the one left
    unused longest first, so that calls on screen together differ while the palette allows,
    and a call keeps its slot all its life. Memory is bounded: at most ``max_calls`` calls in
    progress (the one heard from least recently is dropped: its hangup was missed in a gap)
    and ``max_ended`` calls remembered after they ended, for their late events.

    An event costs the same whatever the number of calls live: calls in progress are kept in
    the order they were last heard from (by arrival, which unlike Kazoo's timestamps never
    goes back), so the stalest is the first; a colour is chosen among the palette's few slots.
    """

    def __init__(
        self,
        palette_size: int = 12,
        max_calls: int = 2048,
        max_ended: int = 2048,
        stale_after: float | None = None,
    ):
        """``stale_after``: seconds after which a call neither heard of nor listed by
        Crossbar counts as stale (its state unknown); None: never."""
        if palette_size < 1:
            raise ValueError("palette_size must be at least 1")
        self.stale_after = stale_after
        self.palette_size = palette_size
        self.max_calls = max_calls
        self.max_ended = max_ended
        self._call_of_leg: dict[str, Call] = {}
        # By id(call), the one heard from least recently first.
        self._live: OrderedDict[int, Call] = OrderedDict()
        self._ended: OrderedDict[int, Call] = OrderedDict()
        # Colour slot -> when it was last released (a counter), for least-recently-used.
        self._released: list[int] = [0] * palette_size
        self._held: list[int] = [0] * palette_size
        self._turn = 0
        self._calls_seen = 0

    @property
    def live_calls(self) -> list[Call]:
        """Calls in progress, the one heard from least recently first."""
        return list(self._live.values())

    @property
    def ended_calls(self) -> list[Call]:
        """Calls that ended, oldest first (at most ``max_ended``)."""
        return list(self._ended.values())

    def observe(self, event: Event) -> CallUpdate | None:
        """Account for one event; None when it is not about a call leg."""
        if event.kind != "call":
            return None
        data = event.data
        call_id = text(data, "call_id")
        if not call_id:
            return None
        name = event.name or text(data, "event_name")
        # event_time, with the data already in hand.
        stamp = unix_from_gregorian(data.get("timestamp"))
        when = event.received_at if stamp is None else stamp
        others = [
            other
            for other in (text(data, "other_leg_call_id"), _bridged_leg(data, call_id))
            if other and other != call_id
        ]
        created = _created_time(data) or when
        call, opened = self._call_for(call_id, others, created)
        # Before any merge below, which carries what it shows into the call that stays.
        call.origin.note(data)
        known = call.legs.get(call_id)
        if name not in _ENDINGS and known is not None and known.end_inferred_at is not None:
            # Closed because a listing lacked it (a slow ecallmgr's channels are left out
            # silently, docs/calls.md §1.1), yet heard of since: it goes on. Heard after that
            # listing was asked (the tool's clock), and later than the leg's own events
            # (Kazoo's clock, which orders a call's events only): not a late event.
            if event.received_at > known.end_inferred_at and when > known.latest[0]:
                self._reopen(call)
        # Whether the call had ended, before this event's leg (maybe new) is counted in it.
        ended_before = call.ended
        account = None
        leg = known  # reopening changes no leg's identity: one look-up per event
        if leg is None:
            account = _account_of(event)
            leg = call.legs[call_id] = Leg(call_id, created, account_id=account)
            leg.direction = text(data, "call_direction")
            if ended_before is not None and name not in _ENDINGS:
                inferred = [
                    other.end_inferred_at
                    for other in call.legs.values()
                    if other.end_inferred_at is not None
                ]
                if inferred and event.received_at > max(inferred) and when > call.last_seen:
                    self._reopen(call)  # a new leg of a call that goes on
                    ended_before = None
                elif inferred or when <= ended_before:
                    # A late event of a leg that hung up with its call (or went with it).
                    leg.ended = ended_before
                    leg.end_inferred_at = max(inferred) if inferred else None
                    leg.cause = ""
        elif leg.listed_only:
            # Heard at last: its own events describe it from now on.
            leg.listed_only = False
            leg.direction = text(data, "call_direction") or leg.direction
        # A leg (and its call) began no later than any of its events, whichever came first.
        if created < leg.created:
            leg.created = created
        if leg.created < call.created:
            call.created = leg.created
        for other in others:
            self._join(call, other)
        key = (when, _RANK.get(name, 5))
        late = key < leg.latest
        if not late:
            leg.latest = key
            if name in _HOLDS and leg.ended is None:
                leg.held = _HOLDS[name]
        if name == "CHANNEL_ANSWER":
            self._answer(call, leg, when, event.received_at)
        # A hangup heard always replaces an end inferred from a listing (cause, counts, time).
        heard_end = leg.ended is not None and leg.end_inferred_at is None
        if name in _ENDINGS and not (heard_end and leg.cause):
            leg.ended = when if not heard_end else min(when, leg.ended or when)
            leg.end_inferred_at = None
            leg.cause = text(data, "hangup_cause")
            leg.ringing_seconds = seconds(data.get("ringing_seconds"))
            leg.billing_seconds = seconds(data.get("billing_seconds"))
            if leg.billing_seconds and leg.answered is None:
                leg.answered = max(leg.created, when - leg.billing_seconds)
        self._describe(call, data, call_id)
        merged = self._call_of_leg.get(call_id, call)  # the call that stays, after a merge
        # Nothing below changes the call's legs: when it ended is worked out once.
        ended_now = call.ended
        call.direction = call.origin.direction(ended_now is not None)
        if merged is not call:
            merged.direction = merged.origin.direction(merged.ended is not None)
        if when > call.last_seen:
            call.last_seen = when
        stays = merged
        if event.received_at > stays.heard_at:
            stays.heard_at = event.received_at
        if not stays.account_id:
            stays.account_id = _account_of(event) if account is None else account
        if name in _ENDINGS and event.received_at > stays.hangup_heard_at:
            stays.hangup_heard_at = event.received_at
        closed = ended_before is None and ended_now is not None
        if closed:
            self._close(call)
        # Heard from last, so the last to be dropped (the call this leg is in, after merges).
        heard = id(self._call_of_leg.get(call_id, call))
        if heard in self._live:
            self._live.move_to_end(heard)
        self._bound()
        return CallUpdate(call, leg, name, when, opened, closed, late)

    def _call_for(self, call_id: str, others: list[str], created: float) -> tuple[Call, bool]:
        for leg in (call_id, *others):
            call = self._call_of_leg.get(leg)
            if call is not None and (call_id in call.ids or len(call.ids) < MAX_LEGS):
                self._call_of_leg[call_id] = call
                call.ids.add(call_id)
                return call, False
        self._calls_seen += 1
        call = Call(f"#{self._calls_seen}", self._take_colour(), created)
        self._call_of_leg[call_id] = call
        call.ids.add(call_id)
        self._live[id(call)] = call
        return call, True

    @staticmethod
    def _answer(call: Call, leg: Leg, when: float, received_at: float) -> None:
        """An answer heard. The legs' answer times stay on one clock: Kazoo's, once the
        call's start and an answer were heard; else the listing's, which it cannot join."""
        unseen = call.answer_unseen
        if unseen and call.known_since is None:
            for other in call.legs.values():  # the listing's time gives way to Kazoo's answer
                if other.answer_listed:
                    other.answered, other.answer_listed = when, False
            leg.answered = when
        elif unseen:
            if leg.answered is None:  # the call's answer (before a listing) is still unseen
                leg.answered, leg.answer_listed = call.answered, True
        elif leg.answered is None or when < leg.answered:
            leg.answered = when
            if call.known_since is not None and call.answer_heard_at is None:
                call.answer_heard_at = received_at  # ends a ring counted on the tool's clock

    def _join(self, call: Call, leg: str) -> None:
        """Another leg belongs to this call; a call it was counted under until now merges in."""
        other = self._call_of_leg.get(leg)
        if other is call:
            return
        if other is None:
            if len(call.ids) < MAX_LEGS:
                self._call_of_leg[leg] = call
                call.ids.add(leg)
            return
        if len(call.ids) + len(other.ids) > MAX_LEGS:
            return  # stale bridge ids chaining calls together: each stays its own
        keep, gone = (call, other) if call.created <= other.created else (other, call)
        for leg_id, leg_state in gone.legs.items():
            keep.legs.setdefault(leg_id, leg_state)
        for leg_id in gone.ids:
            if self._call_of_leg.get(leg_id) is gone:
                self._call_of_leg[leg_id] = keep
        keep.ids |= gone.ids
        keep.heard_at = max(keep.heard_at, gone.heard_at)
        keep.confirmed_at = max(keep.confirmed_at, gone.confirmed_at)
        keep.account_id = keep.account_id or gone.account_id
        since = [t for t in (keep.known_since, gone.known_since) if t is not None]
        keep.known_since = min(since) if since else None
        answers = [t for t in (keep.answer_heard_at, gone.answer_heard_at) if t is not None]
        keep.answer_heard_at = min(answers) if answers else None
        keep.hangup_heard_at = max(keep.hangup_heard_at, gone.hangup_heard_at)
        keep.shown_until = max(keep.shown_until, gone.shown_until)
        keep.origin.absorb(gone.origin)
        keep.direction = keep.origin.direction(keep.ended is not None)
        gone.ids = set()
        if self._live.pop(id(gone), None) is not None:
            self._release(gone.colour)
        self._ended.pop(id(gone), None)
        keep.created = min(keep.created, gone.created)
        if id(keep) not in self._live and keep.ended is None:
            self._ended.pop(id(keep), None)
            self._live[id(keep)] = keep
            self._hold(keep.colour)

    def stale_calls(self, now: float) -> list[Call]:
        """Calls in progress neither heard of nor listed for ``stale_after`` seconds."""
        return [call for call in self._live.values() if call.is_stale(now, self.stale_after)]

    def reconcile(
        self,
        listings: dict[str, list[dict[str, Any]]],
        asked_at: float,
        now: float,
        *,
        cause: str = ENDED_IN_GAP,
        all_listed: bool = True,
        recent: float = RECENT_SECONDS,
        gap_from: float | None = None,
        admit: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> Reconciled:
        """Account for Crossbar's channel listings (account id -> its items, docs/calls.md
        §1.7), asked at ``asked_at`` and answered at ``now`` (the tool's clock).

        ``gap_from``: when the gap this listing follows began (the tool's clock), if it does:
        a call in progress then was known to be up until then, which an inferred end does not
        come before. ``admit``: a predicate on a listed call's legs (the listing's items);
        a call it refuses is never added (the board's filters), though calls already known
        are still confirmed or closed. Every time compared here is on the tool's clock.

        Calls it lists are confirmed, the legs not yet known added (a call never heard of is
        opened, its start and answer unseen). A call in progress that no listing has is closed
        with ``cause``, unless an event of it came after, or just before, the request (ecallmgr
        may not have listed a leg that new, and a call that began since is not in the answer):
        those are returned as ``kept``. Calls whose hangup was heard stay ended whatever a
        listing says, and only the calls of the listed accounts are judged (of an unknown
        account, only when ``all_listed``).
        """
        result = Reconciled()
        listed: set[int] = set()
        listed_legs: set[str] = set()
        for account_id, items in listings.items():
            for group in _leg_groups(items):
                listed_legs.update(text(item, "uuid") for item in group)
                call = self._seed(account_id, group, asked_at, now, result, admit)
                if call is not None:
                    listed.add(id(call))
        # A call opened here may have merged into one already known: that one is not new.
        result.added = [call for call in result.added if id(call) in self._live]
        for call in list(self._live.values()):
            if id(call) in listed:
                if call.heard_at < asked_at - recent:
                    self._end_unlisted_legs(call, listings, listed_legs, cause, asked_at, gap_from)
                continue
            judged = call.account_id in listings if call.account_id else all_listed
            if not judged:
                continue
            if call.heard_at >= asked_at - recent:
                result.kept.append(call)
                continue
            self._end_unheard(call, cause, asked_at, gap_from)
            result.closed.append(call)
        self._bound()  # a listing may hold more calls than the tracker keeps
        return result

    def _seed(
        self,
        account_id: str,
        group: list[dict[str, Any]],
        asked_at: float,
        now: float,
        result: Reconciled,
        admit: Callable[[list[dict[str, Any]]], bool] | None,
    ) -> Call | None:
        """One group of listed legs (bridged together): confirm the call they are, reopen it
        if only a listing had closed it, or open it. None when it is left alone: a call
        whose hangup was heard, or heard after this listing was asked, or one not admitted."""
        uuids = [text(item, "uuid") for item in group]
        named = uuids + [text(item, "other_leg") for item in group]
        known = [self._call_of_leg.get(uuid) for uuid in named if uuid]
        calls: list[Call] = []
        for call in known:
            if call is not None and call not in calls:
                calls.append(call)
        for call in calls:
            # Listed before its hangup reached ecallmgr, or the other leg of a call whose
            # hangup was heard: a listing cannot contradict a hangup heard after it was asked
            # (the tool's clock), nor bring back a call every leg of which was heard to end.
            ended = call.ended is not None
            if ended and (call.hangup_heard or asked_at <= call.hangup_heard_at):
                return None
        for call in calls:
            # Closed by a listing that lacked it (a slow ecallmgr, docs/calls.md §1.1): one
            # asked since that has it says it goes on. One asked before says nothing new.
            inferred = [leg.end_inferred_at for leg in call.legs.values()]
            latest = max((t for t in inferred if t is not None), default=None)
            if call.ended is not None:
                if latest is None or asked_at <= latest:
                    return None
                self._reopen(call)
        if not calls and admit is not None and not admit(group):
            return None  # the board's filters: not a call to show (one known stays judged)
        calls = [call for call in map(self._call_of_leg.get, uuids) if call is not None]
        if not calls:
            # Legs not heard of, bridged to one that was: they join its call (no new label).
            calls = [call for call in map(self._call_of_leg.get, named) if call is not None]
        if calls:
            call = calls[0]
            for other in calls[1:]:
                if other is not call and other.ids:
                    self._join(call, next(iter(other.ids)))
            anchor = next((uuid for uuid in named if uuid in self._call_of_leg), "")
            call = self._call_of_leg.get(anchor, call)
        else:
            self._calls_seen += 1
            call = Call(f"#{self._calls_seen}", self._take_colour(), now, known_since=now)
            call.shown_until = now
            self._live[id(call)] = call
            result.added.append(call)
        call.confirmed_at = max(call.confirmed_at, now)
        call.account_id = call.account_id or account_id
        # The A-leg (the switch's inbound one) first: it describes the call.
        for item in sorted(group, key=lambda item: text(item, "direction") != "inbound"):
            self._seed_leg(call, account_id, item, asked_at, now)
            # A leg's other_leg may have merged this call into an older one.
            call = self._call_of_leg.get(text(item, "uuid"), call)
        call.direction = call.origin.direction(False)
        return call

    def _seed_leg(
        self, call: Call, account_id: str, item: dict[str, Any], asked_at: float, now: float
    ) -> None:
        call_id = text(item, "uuid")
        leg = call.legs.get(call_id)
        if leg is None:
            leg = call.legs[call_id] = Leg(
                call_id,
                now,
                direction=text(item, "direction"),
                account_id=account_id,
                listed_only=True,
            )
            self._call_of_leg[call_id] = call
            call.ids.add(call_id)
            if not call.caller_number:
                for attribute, key in _DESCRIPTION:  # 4.3 lists them; master does not
                    setattr(call, attribute, text(item, key))
                call.dialled = text(item, "destination")
        if leg.end_inferred_at is not None and asked_at > leg.end_inferred_at:
            # Ended only for a listing's lack of it; one asked since has it: it goes on.
            leg.ended, leg.cause, leg.end_inferred_at = None, "", None
        if item.get("answered") is True and leg.answered is None and leg.ended is None:
            # Answered before the tool heard it: the talk time is a lower bound from here, and
            # the ring time unknown (the answer came at some moment before; an upper bound
            # from it would set the tool's clock against Kazoo's creation time). A call whose
            # answer was heard keeps that one, on Kazoo's clock.
            answered = call.answered
            leg.answer_listed = answered is None or call.answer_unseen
            leg.answered = now if answered is None else answered
        if isinstance(item.get("is_onhold"), bool) and leg.ended is None:
            leg.held = item["is_onhold"]
        call.origin.note(_as_event_data(account_id, item))
        other = text(item, "other_leg")
        if other and other != call_id:
            self._join(call, other)

    def _end_unlisted_legs(
        self,
        call: Call,
        listings: dict[str, Any],
        listed_legs: set[str],
        cause: str,
        asked_at: float,
        gap_from: float | None,
    ) -> None:
        """A call listed, but without some of its legs (the one that hung up during a gap
        while the other goes on): those legs ended unheard, or the call would never end."""
        end = self._last_known_up(call, gap_from)
        for leg in call.legs.values():
            unlisted = leg.call_id not in listed_legs and leg.account_id in listings
            if leg.ended is None and unlisted:
                leg.ended = max(end, leg.answered or end)
                leg.cause = cause
                leg.end_inferred_at = asked_at

    def _last_known_up(self, call: Call, gap_from: float | None) -> float:
        """The last moment (the tool's clock) the call was known to be up: its last event
        heard or listing that had it, the start of the gap if it was up and not stale then,
        and never before what its clocks were already shown counting to."""
        last = call.last_sign_of_life()
        if gap_from is not None and not call.is_stale(gap_from, self.stale_after):
            last = max(last, gap_from)
        return max(last, call.shown_until)

    def _end_unheard(self, call: Call, cause: str, asked_at: float, gap_from: float | None) -> None:
        """Close a call whose hangup was never heard: at the last moment it was known to be
        there, which makes its times lower bounds."""
        last = self._last_known_up(call, gap_from)
        for leg in call.legs.values():
            if leg.ended is None:
                leg.ended = max(last, leg.answered or last)
                leg.cause = cause
                leg.end_inferred_at = asked_at
        call.direction = call.origin.direction(True)
        self._close(call)

    def _reopen(self, call: Call) -> None:
        """Legs a listing had closed go on (heard of since, or listed again); legs whose
        hangup was heard stay ended."""
        for leg in call.legs.values():
            if leg.end_inferred_at is not None:
                leg.ended, leg.cause, leg.end_inferred_at = None, "", None
        call.direction = call.origin.direction(False)
        if call.ended is None and self._ended.pop(id(call), None) is not None:
            self._live[id(call)] = call
            self._hold(call.colour)

    def _describe(self, call: Call, data: dict[str, Any], call_id: str) -> None:
        """Parties and direction come from the call's first leg, as its user dialled it."""
        if call.caller_number and len(call.legs) > 1:
            first = min(call.legs.values(), key=lambda leg: leg.created)
            if call_id != first.call_id:
                return
        get = data.get
        for attribute, key in _DESCRIPTION:
            value = get(key)
            if value:  # most events repeat what the call has; a str is the common case
                shown = value if value.__class__ is str else text(data, key)
                if shown:
                    setattr(call, attribute, shown)
        request = text(data, "request") or text(data, "to")
        if request:
            call.dialled = request.split("@", 1)[0]

    def _close(self, call: Call) -> None:
        if self._live.pop(id(call), None) is not None:
            self._release(call.colour)
        self._ended[id(call)] = call
        while len(self._ended) > self.max_ended:
            _, old = self._ended.popitem(last=False)
            self._forget(old)

    def _bound(self) -> None:
        while len(self._live) > self.max_calls:
            _, stale = self._live.popitem(last=False)
            self._release(stale.colour)
            self._forget(stale)

    def _forget(self, call: Call) -> None:
        for leg in call.ids:
            if self._call_of_leg.get(leg) is call:
                del self._call_of_leg[leg]

    def _take_colour(self) -> int:
        """A free slot, the one released longest ago first; with none free, the slot held by
        the fewest calls, then released longest ago."""
        held, released = self._held, self._released
        # The least (held, released, slot), compared as tuples without a call per slot.
        slot = min([(held[s], released[s], s) for s in range(self.palette_size)])[2]
        self._hold(slot)
        return slot

    def _hold(self, slot: int) -> None:
        self._held[slot] += 1

    def _release(self, slot: int) -> None:
        self._held[slot] = max(0, self._held[slot] - 1)
        self._turn += 1
        self._released[slot] = self._turn


def _account_of(event: Event) -> str:
    ccv = event.data.get("custom_channel_vars")
    account_id = text(ccv, "account_id") if isinstance(ccv, dict) else ""
    if account_id:
        return account_id
    parts = event.routing_key.split(".")  # call.{ACCOUNT_ID}.{EVENT}.{CALL_ID}
    return parts[1] if len(parts) > 2 and parts[0] == "call" else ""


def _leg_groups(items: list[Any]) -> list[list[dict[str, Any]]]:
    """The listed legs (each item one leg) grouped into calls by ``other_leg``, which links
    two bridged legs either way (docs/calls.md §1.7). Items without a uuid are left out."""
    legs = {text(item, "uuid"): item for item in items if isinstance(item, dict)}
    legs.pop("", None)
    parent = {uuid: uuid for uuid in legs}

    def root(uuid: str) -> str:
        while parent[uuid] != uuid:
            parent[uuid] = parent[parent[uuid]]
            uuid = parent[uuid]
        return uuid

    for uuid, item in legs.items():
        other = text(item, "other_leg")
        if other in parent:
            parent[root(uuid)] = root(other)
    groups: dict[str, list[dict[str, Any]]] = {}
    for uuid, item in legs.items():
        groups.setdefault(root(uuid), []).append(item)
    return list(groups.values())


def _as_event_data(account_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """A listed leg in the shape of a call event's data, for the direction's evidence: 4.3
    lists the CCVs it knows at the top level, master inside ``custom_channel_vars`` with
    Kazoo's own spelling (``Resource-Type``)."""
    ccv: dict[str, Any] = {"account_id": account_id}
    for key in ("authorizing_id", "authorizing_type", "owner_id", "username", "resource_id"):
        if text(item, key):
            ccv[key] = text(item, key)
    listed = item.get("custom_channel_vars")
    if isinstance(listed, dict):
        for key, value in listed.items():
            if isinstance(key, str):
                ccv.setdefault(key.lower().replace("-", "_"), value)
    return {
        "call_direction": text(item, "direction"),
        "channel_is_loopback": item.get("is_loopback") is True,
        "custom_channel_vars": ccv,
    }


def _bridged_leg(data: dict[str, Any], call_id: str) -> str:
    """The other leg a bridge names (``bridge_id`` in the event or its channel vars)."""
    for source in (data, data.get("custom_channel_vars")):
        if isinstance(source, dict):
            bridge = text(source, "bridge_id")
            if bridge and bridge != call_id:
                return bridge
    return ""
