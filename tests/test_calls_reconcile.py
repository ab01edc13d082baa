"""The call tracker and Crossbar's channel listings (docs/calls.md §1.7): calls in progress
before the start, calls that ended during a gap, and calls heard of no more, on a simulated
clock (the tool's clock is ``received_at`` and the listings' ``now``)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from kazoo_tail.features.calls import ENDED_IN_GAP, CallTracker
from kazoo_tail.kazoo.events import Event
from kazoo_tail.output.board import first_leg_id, render_board
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


# The review of issue 21's tracker (defects 1-8): each on a simulated clock, ``received_at``
# and the listings' times being the tool's clock, the events' timestamps Kazoo's.


def board_row(tracker: CallTracker, now: float, label: str) -> str:
    """The board's row for one call (live or hung up), as text, trailing blanks cut."""
    console = Console(width=120, height=20, record=True, color_system=None, file=io.StringIO())
    console.print(render_board(tracker, now, 120, 20, ""))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    return next(line for line in lines if line.startswith(label + " "))


def created_at(at: float) -> int:
    """channel_created_time as Kazoo sends it: microseconds."""
    return int(at * 1_000_000)


def test_a_listed_calls_ring_is_never_computed_from_the_listings_time() -> None:
    """Defect 1: a later event's channel_created_time does not make the ring exact."""
    tracker = CallTracker()
    tracker.reconcile(
        {ACCOUNT: [leg("r1", "inbound", True, "r2"), leg("r2", "outbound", True, "r1")]}, T0, T0
    )
    (call,) = tracker.live_calls
    hold = call_event("CHANNEL_HOLD", "r1", T0 + 30, channel_created_time=created_at(T0 - 1000))
    tracker.observe(heard(hold, T0 + 30))
    assert call.created == T0 - 1000  # its start, for ordering: but not for its ring
    assert call.ring_unknown and not call.ring_is_lower_bound
    assert board_row(tracker, T0 + 40, "#1").endswith("?  ≥0:40")


def test_a_listed_ringing_calls_ring_counts_on_the_tools_clock_only() -> None:
    """Defect 1, mixed clocks: Kazoo's clock a minute ahead does not stretch the ring."""
    tracker = CallTracker()
    tracker.reconcile({ACCOUNT: [leg("q1", "inbound", False)]}, T0, T0)
    (call,) = tracker.live_calls
    answer = call_event("CHANNEL_ANSWER", "q1", T0 + 70, channel_created_time=created_at(T0 + 40))
    tracker.observe(heard(answer, T0 + 10))
    assert call.state == "talking" and not call.ring_unknown
    assert call.ring_seconds(T0 + 99) == 10.0 and call.ring_is_lower_bound


def test_a_later_listing_reopens_a_call_only_a_listing_had_closed() -> None:
    """Defect 2: a slow ecallmgr's 200 answer left it out; the next one has it."""
    tracker = CallTracker()
    both = [leg("o1", "inbound", True, "o2"), leg("o2", "outbound", True, "o1")]
    tracker.reconcile({ACCOUNT: both}, T0, T0)
    (call,) = tracker.live_calls
    (closed,) = tracker.reconcile({ACCOUNT: []}, T0 + 10, T0 + 10).closed
    assert closed is call and call.state == "ended" and call.cause == ENDED_IN_GAP
    # A listing asked before that close (answered late) says nothing new.
    late = tracker.reconcile({ACCOUNT: both}, T0 + 5, T0 + 11)
    assert not late.added and call.state == "ended"
    again = tracker.reconcile({ACCOUNT: both}, T0 + 20, T0 + 20)
    assert not again.added and not again.closed
    assert tracker.live_calls == [call] and call.label == "#1" and call.state == "talking"
    assert call.cause == "" and not call.end_unheard and call.confirmed_at == T0 + 20
    # Its labels and colours are not spent on it twice.
    tracker.reconcile({ACCOUNT: [*both, leg("o3", "inbound", False)]}, T0 + 30, T0 + 30)
    assert sorted(c.label for c in tracker.live_calls) == ["#1", "#2"]


def test_a_heard_hangup_replaces_an_end_a_listing_inferred() -> None:
    """Defect 3: cause, counts and end time are Kazoo's once its hangup is heard."""
    tracker = CallTracker()
    for event in two_leg_call("d1", "d2", T0)[:5]:
        tracker.observe(heard(event, T0 + 5))
    (call,) = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100).closed
    assert call.cause == ENDED_IN_GAP
    for uuid in ("d2", "d1"):
        hangup = call_event(
            "CHANNEL_DESTROY", uuid, T0 + 43, hangup_cause="NORMAL_CLEARING", billing_seconds="40"
        )
        tracker.observe(heard(hangup, T0 + 101))
    assert call.cause == "NORMAL_CLEARING" and not call.end_unheard and call.hangup_heard
    assert call.ended == T0 + 43 and call.talk_seconds(T0 + 200) == 40.0
    assert not call.talk_is_lower_bound and tracker.ended_calls == [call]
    assert "NORMAL_CLEARING" in board_row(tracker, T0 + 200, "#1")


def test_a_listing_asked_before_a_heard_hangup_opens_nothing_for_its_other_leg() -> None:
    """Defect 4: B (unknown) listed with other_leg A, A's hangup heard after the request."""
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "A", T0), T0))
    tracker.observe(heard(call_event("CHANNEL_ANSWER", "A", T0 + 1), T0 + 1))
    tracker.observe(heard(call_event("CHANNEL_DESTROY", "A", T0 + 11, hangup_cause="X"), T0 + 11))
    (call,) = tracker.ended_calls
    only_b = [leg("B", "outbound", True, "A")]
    result = tracker.reconcile({ACCOUNT: only_b}, asked_at=T0 + 10, now=T0 + 12)
    assert not result.added and not tracker.live_calls and call.state == "ended"
    # Nor one asked after it: a call whose every hangup was heard stays ended.
    result = tracker.reconcile({ACCOUNT: only_b}, asked_at=T0 + 20, now=T0 + 20)
    assert not result.added and not tracker.live_calls and tracker.ended_calls == [call]
    tracker.reconcile({ACCOUNT: [leg("N", "inbound", False)]}, T0 + 30, T0 + 30)
    assert [c.label for c in tracker.live_calls] == ["#2"]  # no label burnt


def test_legs_listed_bridged_to_a_known_leg_join_its_call_without_a_new_label() -> None:
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "K", T0), T0))
    listing = [leg("U", "outbound", True, "K"), leg("V", "inbound", True)]
    result = tracker.reconcile({ACCOUNT: listing}, T0 + 10, T0 + 10)
    assert [set(call.legs) for call in result.added] == [{"V"}]
    known = next(call for call in tracker.live_calls if "K" in call.legs)
    assert set(known.legs) == {"K", "U"} and known.label == "#1" and known.state == "talking"
    assert result.added[0].label == "#2"


def test_the_call_id_shown_for_a_listed_call_is_its_inbound_leg() -> None:
    """Defect 5: listed legs share their created time; the A-leg is the switch's inbound."""
    for a_leg, b_leg in (("zz-a", "aa-b"), ("aa-a", "zz-b")):
        tracker = CallTracker()
        listing = [leg(b_leg, "outbound", True, a_leg), leg(a_leg, "inbound", True, b_leg)]
        tracker.reconcile({ACCOUNT: listing}, T0, T0)
        (call,) = tracker.live_calls
        assert first_leg_id(call) == a_leg
        # A B-leg heard of later does not take the column from the listed A-leg.
        tracker.observe(
            heard(call_event("CHANNEL_HOLD", b_leg, T0 + 5, call_direction="outbound"), T0 + 5)
        )
        assert first_leg_id(call) == a_leg


def test_inferred_ends_and_reopening_use_the_tools_clock_not_kazoos() -> None:
    """Defect 6: Kazoo's clock a minute behind the tool's."""
    tracker = CallTracker()
    for event in two_leg_call("c1", "c2", T0 - 60)[:5]:
        tracker.observe(heard(event, T0))
    listing = [leg("c1", "inbound", True, "c2"), leg("c2", "outbound", True, "c1")]
    tracker.reconcile({ACCOUNT: listing}, T0 + 50, T0 + 50)
    (call,) = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100).closed
    assert call.ended == T0 + 50  # the last listing that had it, on the tool's clock
    # Happened (by Kazoo) after its other events, heard after the close's listing: goes on,
    # though Kazoo's time is before the inferred end.
    tracker.observe(heard(call_event("CHANNEL_HOLD", "c1", T0 - 20), T0 + 110))
    assert tracker.live_calls == [call] and call.state == "held"
    # An event older than the call's own (by Kazoo) is late, whenever it arrives.
    tracker.reconcile({ACCOUNT: []}, T0 + 200, T0 + 200)
    tracker.observe(heard(call_event("CHANNEL_UNHOLD", "c1", T0 - 30), T0 + 210))
    assert call.state == "ended" and call.cause == ENDED_IN_GAP


def test_a_lower_bound_shown_never_goes_down_when_a_gap_closes_the_call() -> None:
    """Defect 7: the inferred end is the gap's start if the call was up then, never before
    what the board showed."""
    tracker = CallTracker(stale_after=120)
    for event in two_leg_call("l1", "l2", T0)[:5]:
        tracker.observe(heard(event, T0 + 3))
    assert board_row(tracker, T0 + 36, "#1").endswith("0:33")
    (call,) = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100, gap_from=T0 + 50).closed
    assert call.ended == T0 + 50 and board_row(tracker, T0 + 101, "#1").endswith("≥0:47")
    # Shown later than the gap's start (the board ticks on): the end is what was shown.
    tracker = CallTracker(stale_after=120)
    for event in two_leg_call("m1", "m2", T0)[:5]:
        tracker.observe(heard(event, T0 + 3))
    board_row(tracker, T0 + 80, "#1")
    (call,) = tracker.reconcile({ACCOUNT: []}, T0 + 100, T0 + 100, gap_from=T0 + 50).closed
    assert call.talk_seconds(T0 + 200) == 77.0


def test_an_unconfirmed_call_stops_where_it_was_shown_and_closes_there() -> None:
    """Defect 7: ≥0:12 shown, then unconfirmed, is never ≥0:00."""
    tracker = CallTracker(stale_after=10)
    tracker.reconcile({ACCOUNT: [leg("u1", "inbound", True)]}, T0, T0)
    assert board_row(tracker, T0 + 9, "#1").endswith("≥0:09")
    for later in (T0 + 12, T0 + 500):
        row = board_row(tracker, later, "#1")
        assert "unconfirmed" in row and row.endswith("≥0:09"), row
    (call,) = tracker.reconcile({ACCOUNT: []}, T0 + 600, T0 + 600).closed
    assert call.talk_seconds(T0 + 700) == 9.0
    assert board_row(tracker, T0 + 700, "#1").endswith("?  ≥0:09")


def test_a_ringing_call_a_listing_finds_answered_has_its_ring_unknown() -> None:
    """Defect 8: the answer is only known to be before the listing; the ring is shown as
    "?" since an upper bound would set the tool's clock against Kazoo's."""
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "e1", T0), T0))
    tracker.reconcile({ACCOUNT: [leg("e1", "inbound", True)]}, T0 + 20, T0 + 20)
    (call,) = tracker.live_calls
    assert call.state == "talking" and call.ring_unknown and call.talk_is_lower_bound
    assert board_row(tracker, T0 + 30, "#1").endswith("?  ≥0:10")


def test_admit_keeps_calls_out_of_the_board_but_still_judges_those_known() -> None:
    """The board's filters: a listed call not admitted is never added."""
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "f1", T0), T0))
    tracker.observe(heard(call_event("CHANNEL_CREATE", "f2", T0), T0))
    listing = [
        leg("f1", "inbound", True),
        leg("n1", "inbound", True, caller_id_number="+15550001"),
        leg("n2", "inbound", True, caller_id_number="+15550002"),
    ]

    def wanted(legs: list[dict[str, Any]]) -> bool:
        return any(item.get("caller_id_number") == "+15550002" for item in legs)

    result = tracker.reconcile({ACCOUNT: listing}, T0 + 10, T0 + 10, admit=wanted)
    assert [set(call.legs) for call in result.added] == [{"n2"}]
    assert [set(call.legs) for call in result.closed] == [{"f2"}]
    f1 = next(call for call in tracker.live_calls if "f1" in call.legs)
    assert f1.confirmed_at == T0 + 10 and f1.state == "talking"


def test_an_answer_heard_after_a_listing_found_it_puts_the_call_back_on_kazoos_clock() -> None:
    """Its start heard, its answer listed, then the answer itself arrives (late): the ring
    is exact again, from Kazoo's times only."""
    tracker = CallTracker()
    tracker.observe(heard(call_event("CHANNEL_CREATE", "j1", T0), T0))
    tracker.reconcile({ACCOUNT: [leg("j1", "inbound", True)]}, T0 + 20, T0 + 20)
    (call,) = tracker.live_calls
    assert call.ring_unknown
    tracker.observe(heard(call_event("CHANNEL_ANSWER", "j1", T0 + 4), T0 + 21))
    assert not call.ring_unknown and not call.talk_is_lower_bound
    assert call.ring_seconds(T0 + 30) == 4.0 and call.talk_seconds(T0 + 30) == 26.0


def test_a_leg_a_listing_left_out_is_back_when_a_later_listing_has_it() -> None:
    tracker = CallTracker()
    both = [leg("t1", "inbound", True, "t2"), leg("t2", "outbound", True, "t1")]
    tracker.reconcile({ACCOUNT: both}, T0, T0)
    (call,) = tracker.live_calls
    tracker.reconcile({ACCOUNT: both[:1]}, T0 + 10, T0 + 10)
    assert call.legs["t2"].cause == ENDED_IN_GAP and call.state == "talking"
    tracker.reconcile({ACCOUNT: both}, T0 + 20, T0 + 20)
    assert call.legs["t2"].ended is None and not call.end_unheard
