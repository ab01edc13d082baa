"""Direction as the account sees it (docs/calls.md §2.4), end to end on the simulator's calls:
a device calling the PSTN is outbound, the PSTN calling a device inbound, a device calling
another internal, in the tracker, pretty lines and --calls. Kazoo's own ``call_direction`` is
the switch's view of one leg (``inbound`` for every A-leg), which the old code showed."""

from __future__ import annotations

import json
import time

import pytest

from kazoo_tail.features.calls import CallTracker
from kazoo_tail.kazoo.events import Event
from kazoo_tail.simulator import DEMO, Simulator
from kazoo_tail.simulator.traffic import Event as SimEvent

from .conftest import Running, login_args

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
KINDS = ("outbound", "inbound", "internal")


def placed_calls(sim: Simulator) -> dict[str, list[SimEvent]]:
    """One answered call of each kind, as the simulator makes them (time-ordered)."""
    return {
        kind: [
            item.event
            for item in sim.traffic.call(
                DEMO.account_id, start=time.time(), answered=True, call_id=f"dir-{kind}", kind=kind
            )
        ]
        for kind in KINDS
    }


def parsed(event: SimEvent) -> Event:
    """The event as the tail parses it off the wire."""
    envelope = {
        "action": "event",
        "subscribed_key": "call.*.*",
        "name": event.name,
        "routing_key": event.routing_key,
        "data": event.data,
    }
    return Event(json.dumps(envelope).encode(), envelope, received_at=time.time())


@pytest.mark.parametrize("kind", KINDS)
def test_the_tracker_tells_the_direction_as_the_account_sees_it(sim: Simulator, kind: str) -> None:
    events = placed_calls(sim)[kind]
    tracker = CallTracker()
    seen = []
    for event in events:
        update = tracker.observe(parsed(event))
        assert update is not None
        seen.append(update.call.direction)
    # Every A-leg is inbound to the switch, whatever the call is for the account.
    assert events[0].data["call_direction"] == "inbound"
    assert seen[-1] == kind
    # Known once the B-leg is heard from (the carrier's A-leg alone is likely inbound), and
    # never changed after: the first answer resting on Kazoo's markers is kept.
    first = {"outbound": "", "inbound": "inbound?", "internal": ""}[kind]
    assert seen == [first] + [kind] * (len(seen) - 1), seen


def tail(
    started: type[Running], sim: Simulator, *args: str
) -> tuple[str, dict[str, list[SimEvent]]]:
    calls = placed_calls(sim)
    count = str(sum(len(events) for events in calls.values()))
    process = started(
        *login_args(sim), "-b", "call.*.*", "--count", count, "-o", "pretty", *args, **PASSWORD
    )
    process.wait_for_stderr("subscribed to")
    for events in calls.values():
        for event in events:
            sim.publish_event(event)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    return result.stdout, calls


def test_pretty_lines_show_the_calls_direction(sim: Simulator, started: type[Running]) -> None:
    out, calls = tail(started, sim)
    for kind, events in calls.items():
        legs = {event.data["call_id"] for event in events}
        lines = [line.split() for line in out.splitlines() if any(leg in line for leg in legs)]
        assert len(lines) == len(events), out
        # time, event, direction: the A-leg's first event before anything tells, then the call's.
        directions = [line[2] for line in lines]
        first = "inbound?" if kind == "inbound" else "?"
        assert directions == [first] + [kind] * (len(lines) - 1), (kind, out)


def test_calls_timelines_show_the_calls_direction(sim: Simulator, started: type[Running]) -> None:
    out, calls = tail(started, sim, "--calls")
    lines = out.splitlines()
    for kind in calls:
        label = next(line.split()[0] for line in lines if f"dir-{kind}" in line)
        own = [line for line in lines if line.split()[0] == label]
        header, closing = own[0], own[-1]
        assert header.split()[1] == "┌" and closing.split()[1] == "└", own
        assert header.split()[4] == ("inbound?" if kind == "inbound" else "?"), header
        assert closing.endswith(f"  {kind}  2 legs"), closing
        news = [line for line in own if "  now " in line]
        assert len(news) == 1 and news[0].endswith(f"now {kind}"), own
