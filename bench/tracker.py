"""The call tracker's cost per event, in one process, with many calls live.

    .venv/bin/python bench/tracker.py            # µs per event, best of 5 rounds
    .venv/bin/python bench/tracker.py --quick

Workloads (events built beforehand; only ``CallTracker.observe`` is timed):

- never hung up: a CHANNEL_CREATE for a new call every event, none ever ends (their hangups
  were lost, or the binding is CREATE-only): once ``max_calls`` (2,048) are live every event
  drops the stalest;
- answers while full: 2,048 calls live, then a CHANNEL_ANSWER for one of them at random each
  event (no call opens or closes);
- a few calls: calls of CREATE, ANSWER, DESTROY, a dozen live at a time.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from kazoo_tail.features.calls import CallTracker  # noqa: E402
from kazoo_tail.kazoo.events import Event  # noqa: E402
from kazoo_tail.kazoo.time import GREGORIAN_TO_UNIX  # noqa: E402

T0 = 1_780_000_000.0


def call_event(name: str, call_id: str, at: float, **data: Any) -> Event:
    body = {
        "call_id": call_id,
        "event_name": name,
        "timestamp": int(at) + GREGORIAN_TO_UNIX,
        "caller_id_number": "+14155550100",
        "callee_id_number": "+14155550199",
        "call_direction": "inbound",
        **data,
    }
    envelope = {"action": "event", "name": name, "subscribed_key": "call.*.*", "data": body}
    return Event(b"{}", envelope, received_at=T0)


def never_hung_up(count: int, offset: int = 0) -> list[Event]:
    return [
        call_event("CHANNEL_CREATE", f"lost-{offset + n}", T0 + (offset + n) / 1000)
        for n in range(count)
    ]


def answers(count: int, live: int) -> list[Event]:
    pick = random.Random(1)
    return [
        call_event("CHANNEL_ANSWER", f"lost-{pick.randrange(live)}", T0 + 10 + n / 1000)
        for n in range(count)
    ]


def short_calls(count: int) -> list[Event]:
    events = []
    for n in range(count // 3):
        at = T0 + n / 100
        call_id = f"short-{n}"
        events.append(call_event("CHANNEL_CREATE", call_id, at))
        events.append(call_event("CHANNEL_ANSWER", call_id, at + 0.05))
        events.append(
            call_event("CHANNEL_DESTROY", call_id, at + 0.12, hangup_cause="NORMAL_CLEARING")
        )
    # Interleave: a dozen calls in flight at once.
    return sorted(events, key=lambda event: event.data["timestamp"] * 10 + _rank(event))


def _rank(event: Event) -> int:
    return {"CHANNEL_CREATE": 0, "CHANNEL_ANSWER": 1}.get(event.name or "", 2)


def best_us(setup: Callable[[], tuple[CallTracker, list[Event]]], rounds: int) -> float:
    """Best of ``rounds``: µs per event of observe() over the workload's timed events."""
    results = []
    for _ in range(rounds):
        tracker, events = setup()
        observe = tracker.observe
        started = time.perf_counter()
        for event in events:
            observe(event)
        results.append((time.perf_counter() - started) / len(events) * 1e6)
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds")
    args = parser.parse_args()
    count = 2_000 if args.quick else 20_000
    rounds = 2 if args.quick else 5
    full = CallTracker().max_calls

    def filled() -> CallTracker:
        tracker = CallTracker()
        for event in never_hung_up(full):
            tracker.observe(event)
        return tracker

    print(f"CallTracker.observe, µs per event (best of {rounds} rounds of {count:,} events)")
    workloads: list[tuple[str, Callable[[], tuple[CallTracker, list[Event]]]]] = [
        (
            f"never hung up, {full:,} live (each event drops one)",
            lambda: (filled(), never_hung_up(count, offset=full)),
        ),
        (f"answers while {full:,} live", lambda: (filled(), answers(count, full))),
        ("short calls, a dozen live", lambda: (CallTracker(), short_calls(count))),
    ]
    for label, setup in workloads:
        print(f"  {label:<52} {best_us(setup, rounds):8.2f} µs", flush=True)


if __name__ == "__main__":
    main()
