"""The call tracker and Crossbar's channel listings (docs/calls.md §1.7): calls in progress
before the start, calls that ended during a gap, and calls heard of no more, on a simulated
clock (the tool's clock is ``received_at`` and the listings' ``now``)."""

from __future__ import annotations

from typing import Any

from kazoo_tail.features.calls import ENDED_IN_GAP, CallTracker
from kazoo_tail.kazoo.events import Event
from tests.test_calls_tracker import T0, call_event, two_leg_call

ACCOUNT = "a" * 32
OTHER_ACCOUNT = "b" * 32


def leg(uuid: str, direction: str, answered: bool, other: str = "", **extra: Any) -> dict[str, Any]:
    """One item of GET /v2/accounts/{id}/channels as Kazoo 4.3 lists it."""
    item: dict[str, Any] = {
        "uuid": uuid,
        "direction": direction,
        "answered": answered,
        "timestamp": 63_900_000_000,
        "destination": "2002",
        **extra,
    }
    if other:
        item["other_leg"] = other
    return item


def heard(event: Event, at: float) -> Event:
    event.received_at = at
    event.data.setdefault("custom_channel_vars", {})["account_id"] = ACCOUNT
    return event


def test_a_listing_at_the_start_opens_the_calls_in_progress_with_unseen_times() -> None:
    tracker = CallTracker(stale_after=60)
    listing = [
        leg("in1", "inbound", True, "out1", authorizing_type="resource", resource_id="r1"),
        leg("out1", "outbound", True, "in1", authorizing_type="device", authorizing_id="d1"),
        leg("ring1", "inbound", False, caller_id_number="+15550001"),
    ]
    result = tracker.reconcile({ACCOUNT: listing}, asked_at=T0, now=T0 + 0.1)
    assert len(result.added) == 2 and not result.closed
    talking = next(call for call in tracker.live_calls if len(call.legs) == 2)
    ringing = next(call for call in tracker.live_calls if len(call.legs) == 1)
    assert talking.state == "talking" and talking.direction == "inbound"
    assert talking.talk_is_lower_bound
    # Answered before it was listed: its ring is unknown, not a lower bound of nothing.
    assert talking.ring_unknown and not talking.ring_is_lower_bound
    assert talking.talk_seconds(T0 + 62.1) == 62.0  # from the listing, not invented before it
    assert ringing.state == "ringing" and ringing.caller_number == "+15550001"
    assert ringing.ring_is_lower_bound and ringing.talk_seconds(T0 + 10) is None
    assert ringing.dialled == "2002"
    # Confirmed by the listing: not stale until stale_after has passed without news.
    assert not tracker.stale_calls(T0 + 60) and len(tracker.stale_calls(T0 + 61)) == 2


def test_events_after_the_listing_carry_on_the_seeded_call() -> None:
    tracker = CallTracker()
    tracker.reconcile(
        {ACCOUNT: [leg("x1", "inbound", True, "x2"), leg("x2", "outbound", True, "x1")]}, T0, T0
    )
    tracker.observe(
        heard(call_event("CHANNEL_DESTROY", "x2", T0 + 30, hangup_cause="NORMAL_CLEARING"), T0 + 30)
    )
    tracker.observe(
        heard(call_event("CHANNEL_DESTROY", "x1", T0 + 30, hangup_cause="NORMAL_CLEARING"), T0 + 30)
    )
    assert not tracker.live_calls
    (call,) = tracker.ended_calls
    assert call.cause == "NORMAL_CLEARING" and call.label == "#1"
    assert call.talk_is_lower_bound  # its answer was not seen


def test_after_a_gap_calls_no_longer_listed_end_during_the_gap_and_new_ones_are_added() -> None:
    tracker = CallTracker()
    for event in two_leg_call("g1", "g2", T0)[:5]:  # answered, its hangup never heard
        tracker.observe(heard(event, T0 + 5))
    for event in two_leg_call("k1", "k2", T0)[:5]:  # still there
        tracker.observe(heard(event, T0 + 5))
    listing = [
        leg("k1", "inbound", True, "k2"),
        leg("k2", "outbound", True, "k1"),
        leg("n1", "inbound", True, "n2"),
        leg("n2", "outbound", True, "n1"),
    ]
    result = tracker.reconcile({ACCOUNT: listing}, asked_at=T0 + 100, now=T0 + 100.2)
    (closed,) = result.closed
    assert closed.ids >= {"g1", "g2"} and closed.cause == ENDED_IN_GAP
    assert closed.state == "ended" and closed.end_unheard and closed.talk_is_lower_bound
    assert tracker.ended_calls == [closed]
    (added,) = result.added
    assert set(added.legs) == {"n1", "n2"}
    kept = next(call for call in tracker.live_calls if "k1" in call.legs)
    assert len(kept.legs) == 2 and kept.known_since is None  # heard from its start
    assert len(tracker.live_calls) == 2


def test_a_call_heard_of_just_before_or_after_the_request_is_not_closed() -> None:
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "new", T0 + 99), T0 + 99.5))
    tracker.observe(heard(call_event("CHANNEL_CREATE", "newer", T0 + 101), T0 + 101))
    result = tracker.reconcile({ACCOUNT: []}, asked_at=T0 + 100, now=T0 + 100.5)
    assert not result.closed and len(result.kept) == 2
    assert len(tracker.live_calls) == 2


def test_a_call_whose_hangup_was_heard_is_not_brought_back_by_a_listing() -> None:
    tracker = CallTracker()
    for event in two_leg_call("h1", "h2", T0):
        tracker.observe(heard(event, T0 + 10))
    listing = [leg("h1", "inbound", True, "h2"), leg("h2", "outbound", True, "h1")]
    result = tracker.reconcile({ACCOUNT: listing}, T0 + 20, T0 + 20)
    assert not result.added and not tracker.live_calls
    assert len(tracker.ended_calls) == 1


def test_only_the_listed_accounts_calls_are_judged() -> None:
    tracker = CallTracker()
    event = heard(call_event("CHANNEL_CREATE", "o1", T0), T0)
    event.data["custom_channel_vars"]["account_id"] = OTHER_ACCOUNT
    tracker.observe(event)
    result = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100)
    assert not result.closed and len(tracker.live_calls) == 1
    result = tracker.reconcile({OTHER_ACCOUNT: []}, T0 + 100, T0 + 100)
    assert len(result.closed) == 1


def test_a_listing_confirms_a_stale_call_and_fills_in_an_answer_missed() -> None:
    tracker = CallTracker(stale_after=30)
    tracker.observe(heard(call_event("CHANNEL_CREATE", "s1", T0), T0))
    (call,) = tracker.live_calls
    assert tracker.stale_calls(T0 + 31) == [call]
    tracker.reconcile({ACCOUNT: [leg("s1", "inbound", True)]}, T0 + 40, T0 + 40)
    assert tracker.live_calls == [call] and not tracker.stale_calls(T0 + 41)
    assert call.state == "talking" and call.talk_is_lower_bound
    assert not call.ring_is_lower_bound  # its start was heard
    assert call.talk_seconds(T0 + 50) == 10.0


def test_a_listing_of_legs_known_as_two_calls_merges_them() -> None:
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "m1", T0), T0))
    tracker.observe(
        heard(call_event("CHANNEL_CREATE", "m2", T0 + 1, call_direction="outbound"), T0)
    )
    assert len(tracker.live_calls) == 2
    listing = [leg("m1", "inbound", True, "m2"), leg("m2", "outbound", True, "m1")]
    result = tracker.reconcile({ACCOUNT: listing}, T0 + 1, T0 + 2)
    assert not result.added and not result.closed
    (call,) = tracker.live_calls
    assert set(call.legs) == {"m1", "m2"} and call.label == "#1"


def test_odd_items_in_a_listing_are_ignored() -> None:
    tracker = CallTracker()
    odd: list[Any] = [None, "x", {"uuid": 7}, {"direction": "inbound"}, {"uuid": ""}]
    result = tracker.reconcile({ACCOUNT: odd}, T0, T0)
    # A uuid that is not a string is shown as text, like any other server text.
    assert len(result.added) == 1 and set(result.added[0].legs) == {"7"}


def test_a_call_closed_for_a_listings_lack_of_it_but_heard_of_since_goes_on() -> None:
    tracker = CallTracker()
    for event in two_leg_call("w1", "w2", T0)[:5]:
        tracker.observe(heard(event, T0 + 5))
    (closed,) = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100).closed
    assert tracker.ended_calls == [closed]
    # A slow ecallmgr left it out: its next event says it is still there.
    tracker.observe(heard(call_event("CHANNEL_HOLD", "w1", T0 + 110), T0 + 110))
    assert tracker.live_calls == [closed] and not tracker.ended_calls
    assert closed.state == "held" and not closed.end_unheard and closed.cause == ""
    # A late event from before the close does not.
    tracker.reconcile({ACCOUNT: []}, T0 + 200, T0 + 200)
    tracker.observe(heard(call_event("CHANNEL_UNHOLD", "w1", T0 + 50), T0 + 201))
    assert tracker.ended_calls == [closed] and closed.cause == ENDED_IN_GAP


def test_a_leg_missing_from_a_listing_of_its_call_ends_so_that_the_call_can_end() -> None:
    tracker = CallTracker()
    for event in two_leg_call("p1", "p2", T0)[:5]:
        tracker.observe(heard(event, T0 + 5))
    # p2 hung up during the gap; p1 goes on (in a menu, say), no longer bridged.
    result = tracker.reconcile({ACCOUNT: [leg("p1", "inbound", True)]}, T0 + 100, T0 + 100)
    assert not result.closed
    (call,) = tracker.live_calls
    assert call.legs["p2"].cause == ENDED_IN_GAP and call.legs["p1"].ended is None
    tracker.observe(heard(call_event("CHANNEL_DESTROY", "p1", T0 + 120, hangup_cause="X"), 0))
    assert tracker.ended_calls == [call] and not tracker.live_calls


def test_a_listing_longer_than_the_tracker_keeps_is_bounded() -> None:
    tracker = CallTracker(max_calls=10)
    listing = [leg(f"many{n}", "inbound", True) for n in range(25)]
    tracker.reconcile({ACCOUNT: listing}, T0, T0)
    assert len(tracker.live_calls) == 10
