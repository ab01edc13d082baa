"""The call tracker: legs grouped, state by the events' own clock, colours apart."""

from __future__ import annotations

import random
from typing import Any

from kazoo_tail.features.calls import CallTracker
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.time import GREGORIAN_TO_UNIX

T0 = 1_780_000_000.0


def call_event(name: str, call_id: str, at: float, **data: Any) -> Event:
    body = {
        "call_id": call_id,
        "event_name": name,
        "timestamp": int(at) + GREGORIAN_TO_UNIX,
        "caller_id_number": "1001",
        "callee_id_number": "2002",
        "call_direction": "inbound",
        **data,
    }
    envelope = {"action": "event", "name": name, "subscribed_key": "call.*.*", "data": body}
    return Event(b"{}", envelope, received_at=T0 + 100)


def two_leg_call(a: str, b: str, start: float, answered: bool = True) -> list[Event]:
    events = [
        call_event("CHANNEL_CREATE", a, start),
        call_event("CHANNEL_CREATE", b, start + 1, other_leg_call_id=a),
    ]
    if answered:
        events += [
            call_event("CHANNEL_ANSWER", b, start + 3),
            call_event("CHANNEL_ANSWER", a, start + 3, other_leg_call_id=b),
            call_event("CHANNEL_BRIDGE", a, start + 3, other_leg_call_id=b),
        ]
    cause = "NORMAL_CLEARING" if answered else "NO_ANSWER"
    billed = "10" if answered else "0"
    events += [
        call_event("CHANNEL_DESTROY", b, start + 13, hangup_cause=cause, billing_seconds=billed),
        call_event("CHANNEL_DESTROY", a, start + 13, hangup_cause=cause, billing_seconds=billed),
    ]
    return events


def test_both_legs_are_one_call_that_closes_once() -> None:
    tracker = CallTracker()
    updates = [tracker.observe(event) for event in two_leg_call("a1", "b1", T0)]
    assert all(update is not None for update in updates)
    calls = {id(update.call) for update in updates if update}
    assert len(calls) == 1
    assert [u.opened for u in updates if u] == [True] + [False] * 6
    assert [u.closed for u in updates if u] == [False] * 6 + [True]
    call = updates[0].call if updates[0] else None
    assert call is not None and call.label == "#1" and call.state == "ended"
    assert call.talk_seconds(T0 + 99) == 10.0
    assert call.ring_seconds(T0 + 99) == 3.0
    assert call.cause == "NORMAL_CLEARING"


def test_an_unanswered_call_has_ring_time_and_no_talk_time() -> None:
    tracker = CallTracker()
    for event in two_leg_call("a1", "b1", T0, answered=False):
        tracker.observe(event)
    (call,) = tracker.ended_calls
    assert call.talk_seconds(T0 + 99) is None
    assert call.ring_seconds(T0 + 99) == 13.0


def test_state_follows_the_events_clock_not_their_arrival() -> None:
    events = two_leg_call("a1", "b1", T0)
    tracker = CallTracker()
    for event in [events[0], events[1], events[-1], events[2]]:  # a hangup before an answer
        tracker.observe(event)
    (live,) = tracker.live_calls
    assert live.state == "talking"  # b answered, and a (not b) has not hung up yet
    hold = call_event("CHANNEL_HOLD", "a1", T0 + 5)
    unhold = call_event("CHANNEL_UNHOLD", "a1", T0 + 6)
    tracker.observe(unhold)
    update = tracker.observe(hold)
    assert update is not None and update.late
    assert live.state == "talking"


def test_any_arrival_order_gives_the_same_call() -> None:
    rng = random.Random(7)
    for _ in range(50):
        events = two_leg_call("a1", "b1", T0)
        rng.shuffle(events)
        tracker = CallTracker()
        labels = {u.call.label for u in map(tracker.observe, events) if u}
        # The b leg's create names a; until it arrives, b may look like a call of its own that
        # is merged in: one call remains either way, and it ended.
        assert tracker.live_calls == []
        (call,) = tracker.ended_calls
        assert set(call.legs) == {"a1", "b1"}
        assert call.label in labels and call.state == "ended"


def test_calls_in_progress_together_never_share_a_colour_while_the_palette_allows() -> None:
    tracker = CallTracker(palette_size=4)
    for n in range(4):
        tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0))
    assert sorted(call.colour for call in tracker.live_calls) == [0, 1, 2, 3]
    # One ends; the next new call takes its colour, the only one free.
    tracker.observe(call_event("CHANNEL_DESTROY", "c2", T0 + 1, hangup_cause="NORMAL_CLEARING"))
    update = tracker.observe(call_event("CHANNEL_CREATE", "c9", T0 + 2))
    assert update is not None and update.call.colour == 2


def test_the_colour_left_unused_longest_is_given_first() -> None:
    tracker = CallTracker(palette_size=3)
    for n in range(3):
        tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0))
    for n in (1, 0):
        tracker.observe(call_event("CHANNEL_DESTROY", f"c{n}", T0 + 1, hangup_cause="X"))
    update = tracker.observe(call_event("CHANNEL_CREATE", "new", T0 + 2))
    assert update is not None and update.call.colour == 1  # released before colour 0


def test_a_late_event_joins_the_call_it_belonged_to() -> None:
    tracker = CallTracker()
    for event in two_leg_call("a1", "b1", T0):
        tracker.observe(event)
    late = tracker.observe(call_event("CHANNEL_ANSWER", "a1", T0 + 3))
    assert late is not None and late.call.label == "#1" and not late.opened and late.late


def test_memory_is_bounded_for_calls_whose_hangup_was_missed() -> None:
    tracker = CallTracker(max_calls=10, max_ended=5)
    for n in range(100):
        tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0 + n))
    assert len(tracker.live_calls) == 10
    assert sorted(next(iter(call.legs)) for call in tracker.live_calls) == sorted(
        f"c{n}" for n in range(90, 100)
    )


def test_a_stale_bridge_id_does_not_chain_every_call_into_one() -> None:
    """Untrusted or odd streams can name one bridge id on every call; the call it leads to
    gathers at most MAX_LEGS legs, after which calls stay their own, so an event costs a
    bounded number of legs, not all of them."""
    from kazoo_tail.features.calls import MAX_LEGS

    tracker = CallTracker()
    for n in range(500):
        tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0 + n, bridge_id="stale"))
    calls = tracker.live_calls
    assert max(len(call.legs) for call in calls) <= MAX_LEGS
    assert len(calls) >= 500 - MAX_LEGS


def test_legs_named_but_never_heard_from_are_forgotten_with_their_call() -> None:
    """A B leg named by other_leg_call_id that never sends an event of its own (not
    subscribed, filtered) must not stay in memory after its call is gone."""
    tracker = CallTracker(max_ended=16)
    for n in range(2000):
        a = f"a{n}"
        tracker.observe(call_event("CHANNEL_CREATE", a, T0 + n, other_leg_call_id=f"b{n}"))
        tracker.observe(call_event("CHANNEL_DESTROY", a, T0 + n + 1, hangup_cause="NO_ANSWER"))
    assert len(tracker.ended_calls) == 16
    assert len(tracker._call_of_leg) <= 2 * 16  # the remembered calls' ids only


def test_a_late_event_of_an_unseen_leg_leaves_an_ended_call_ended() -> None:
    """A ring group's third leg, created before the hangup, heard of only after it."""
    tracker = CallTracker()
    for event in two_leg_call("a1", "b1", T0):
        tracker.observe(event)
    late = tracker.observe(call_event("CHANNEL_CREATE", "c1", T0 + 2, other_leg_call_id="a1"))
    assert late is not None and late.call.label == "#1" and not late.opened and not late.closed
    assert late.call.state == "ended" and tracker.live_calls == []
    assert late.call.talk_seconds(T0 + 99) == 10.0


def _calls_made(tracker: CallTracker, event: Event) -> int:
    """Function calls (Python and builtin) made while the tracker observes one event."""
    import sys

    made = 0

    def count(frame: Any, what: str, arg: Any) -> None:
        nonlocal made
        if what in ("call", "c_call"):
            made += 1

    sys.setprofile(count)
    try:
        tracker.observe(event)
    finally:
        sys.setprofile(None)
    return made


def test_an_events_work_does_not_grow_with_the_calls_live() -> None:
    """Issue 21: with 2,048 calls live whose hangups never came, each new call used to scan
    every live call for the stalest (one key call per live call). The work for one event is
    counted in function calls: the same with 64 calls live as with 2,048, each tracker full
    (so that each new call drops one)."""
    few = CallTracker(max_calls=64)
    full = CallTracker(max_calls=2048)
    for tracker in (few, full):
        for n in range(tracker.max_calls + 10):
            tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0 + n / 1000))
    assert len(few.live_calls) == 64 and len(full.live_calls) == 2048
    for n in range(3):  # a new call (one more dropped from each), then an answer
        # An event apiece: an Event works out its kind once, for whichever asks first.
        new = [call_event("CHANNEL_CREATE", f"new{n}", T0 + 10 + n) for _ in range(2)]
        assert _calls_made(full, new[0]) <= _calls_made(few, new[1]) + 2
        answer = [call_event("CHANNEL_ANSWER", f"c{n + 60}", T0 + 20 + n) for _ in range(2)]
        assert _calls_made(full, answer[0]) <= _calls_made(few, answer[1]) + 2


def test_the_call_dropped_is_the_one_heard_from_least_recently() -> None:
    """Staleness is by arrival, which never goes back: an event that arrives late with an old
    timestamp still counts as the call being heard from now."""
    tracker = CallTracker(max_calls=3)
    for n in range(3):
        tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0 + n))
    # c0 heard from again, by an event stamped before c1 and c2 were created.
    tracker.observe(call_event("CHANNEL_ANSWER", "c0", T0 + 0.5))
    tracker.observe(call_event("CHANNEL_CREATE", "c3", T0 + 3))
    assert [next(iter(call.legs)) for call in tracker.live_calls] == ["c2", "c0", "c3"]
    # A new call stamped before every other is not dropped the moment it opens.
    update = tracker.observe(call_event("CHANNEL_CREATE", "old", T0 - 60))
    assert update is not None and update.call in tracker.live_calls
    assert [next(iter(call.legs)) for call in tracker.live_calls] == ["c0", "c3", "old"]


def test_colours_are_given_as_before_with_many_calls_live() -> None:
    """The slot given is the free one released longest ago, else the one held by fewest
    calls, then released longest ago."""

    def by_scan(held: list[int], released: list[int]) -> int:
        return min(range(len(held)), key=lambda s: (held[s], released[s], s))

    pick = random.Random(7)
    tracker = CallTracker(palette_size=5, max_calls=40, max_ended=8)
    live: list[str] = []
    for n in range(3000):
        if live and pick.random() < 0.45:
            gone = live.pop(pick.randrange(len(live)))
            tracker.observe(call_event("CHANNEL_DESTROY", gone, T0 + n, hangup_cause="X"))
            continue
        expected = by_scan(list(tracker._held), list(tracker._released))
        update = tracker.observe(call_event("CHANNEL_CREATE", f"c{n}", T0 + n))
        assert update is not None and update.opened and update.call.colour == expected
        live.append(f"c{n}")
        del live[:-40]  # the tracker drops the stalest past max_calls
