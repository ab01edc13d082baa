"""forward's long tests (the soak tier): an endpoint far slower than the stream (2 s a request
while a 4.3 node sends 200 events a second for 20 s, the installed command in a real process so
that its memory can be read), and Kazoo's own 2 s pause between attempts."""

from __future__ import annotations

import json
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kazoo_tail.simulator import DEMO

from .conftest import Running, login_args, wait_until
from .hook_receiver import Behaviour, HookReceiver

if TYPE_CHECKING:
    from kazoo_tail.simulator import Simulator

    from .inprocess import Running as InProcess

QUEUE = 256 << 10
# What the channel and parking hooks fire on (the object hook: every object event).
CALL_EVENTS = {"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_DESTROY"}
CALL_EVENTS |= {"PARK_PARKED", "PARK_RETRIEVED", "PARK_ABANDONED"}


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.e2e
@pytest.mark.soak
def test_a_slow_endpoint_under_200_events_a_second_for_20_seconds(
    busy_sim: Simulator, tmp_path: Path
) -> None:
    sim = busy_sim
    recording = tmp_path / "forward.jsonl"
    with HookReceiver(Behaviour(delay=2.0)) as receiver:
        process = Running(
            "forward",
            *login_args(sim),
            "--to",
            receiver.url,
            "--queue-size",
            f"{QUEUE >> 10}K",
            "--record",
            str(recording),
            "--summary",
            "--output",
            "json",
            KAZOO_PASSWORD=DEMO.password,
        )
        try:
            process.wait_for_stderr("subscribed to")
            published = sim.stats.events_published
            wait_until(lambda: sim.stats.events_published - published >= 4000, timeout=40)
            peak = peak_rss_kib(process.process.pid)
            process.process.send_signal(signal.SIGINT)
            assert process.process.wait(timeout=30) == 130
        finally:
            process.process.kill()
        requests = len(receiver.received)
    stats = sim.stats
    assert stats.frames_shed == 0 and stats.send_timeouts == 0, stats
    lines = [json.loads(line) for line in process.stdout_lines]
    finals = [line for line in lines if line["outcome"] != "retrying"]
    frames = [json.loads(line) for line in recording.read_text().splitlines()]
    events = [json.loads(frame["text"]) for frame in frames if "text" in frame]
    # The simulator sends no loopback legs.
    forwardable = [
        event["data"]["msg_id"]
        for event in events
        if event.get("action") == "event"
        and (event["name"] in CALL_EVENTS or event["subscribed_key"].startswith("object."))
    ]
    # Every event that reached the tool ends as exactly one line... Events are queued in the
    # order received; a frame is recorded as it is read, before its event is queued, so Ctrl-C
    # may leave the last few read (one read's batch at most) recorded with no line.
    lined = len(finals)
    assert sorted(line["event_id"] for line in finals) == sorted(forwardable[:lined])
    assert len(forwardable) - lined < 64, f"{len(forwardable) - lined} events with no line"
    outcomes = {line["outcome"] for line in finals}
    assert outcomes <= {"delivered", "dropped", "unsent", "failed"}, outcomes
    # Only the request in flight when stopped fails: it may have reached the endpoint.
    assert len([line for line in finals if line["outcome"] == "failed"]) <= 1
    # ... those delivered in the order they came, each once.
    delivered = [line["event_id"] for line in finals if line["outcome"] == "delivered"]
    order = {event_id: n for n, event_id in enumerate(forwardable)}
    assert delivered == sorted(delivered, key=order.__getitem__)
    assert len(delivered) == len(set(delivered)) >= 5
    assert requests >= len(delivered)
    # The queue stayed within its bound, and so did the process.
    summary = "".join(process.stderr_lines)
    assert "queue: at most" in summary, summary
    high = int(summary.split("queue: at most ")[1].split(" KiB")[0])
    assert high <= QUEUE >> 10
    assert peak < 150_000, f"peak RSS {peak} KiB"


@pytest.mark.soak
def test_an_endpoint_down_then_up_with_kazoos_own_pause(
    sim: Simulator, started: type[InProcess]
) -> None:
    """Kazoo's 2 s between attempts, not a test's shorter one: the second attempt reaches the
    endpoint that came back, at least 2 s after the first was refused."""
    with HookReceiver() as receiver:
        receiver.stop()
        running = started(
            "forward",
            *login_args(sim),
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "--count",
            "1",
            "--output",
            "json",
            KAZOO_PASSWORD=DEMO.password,
        )
        running.wait_for_stderr("subscribed to")
        sim.publish_object(doc_id="comes-back")
        wait_until(lambda: any('"retrying"' in line for line in running.stdout_lines))
        receiver.start()
        result = running.finish()
        (request,) = receiver.wait_for(1)
    first, last = result.json_lines()
    assert (first["outcome"], first["error"], first["retry_in"]) == (
        "retrying",
        "connection refused",
        2.0,
    )
    assert (last["outcome"], last["attempt"], last["status"]) == ("delivered", 2, 200)
    refused_at = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    delivered_at = datetime.fromisoformat(last["time"].replace("Z", "+00:00"))
    assert (delivered_at - refused_at).total_seconds() >= 2.0
