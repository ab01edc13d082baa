"""Issue 12, item 8: --received-at, an opt-in top-level "received_at" on each JSON line (ISO
8601 UTC to the millisecond) for jq users, the default envelope unchanged; a replay carries the
time the recording says each frame was received."""

from __future__ import annotations

import calendar
import json
import re
import time
from pathlib import Path

from kazoo_tail.simulator import DEMO, Simulator

from .conftest import Running, login_args
from .inprocess import run

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def epoch(stamp: str) -> float:
    whole, millis = stamp[:-1].split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def tail_one_call(started: type[Running], sim: Simulator, *args: str) -> list[str]:
    placed = [item.event for item in sim.traffic.call(DEMO.account_id, start=time.time())]
    process = started(
        *login_args(sim), "-b", "call.*.*", "--count", str(len(placed)), *args, **PASSWORD
    )
    process.wait_for_stderr("subscribed to")
    for event in placed:
        sim.publish_event(event)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_received_at_leads_each_json_line_and_the_frame_follows_unchanged(
    sim: Simulator, started: type[Running], tmp_path: Path
) -> None:
    before = time.time()
    record = tmp_path / "calls.jsonl"
    lines = tail_one_call(started, sim, "--received-at", "--record", str(record))
    after = time.time()
    assert lines
    stamps = []
    for line in lines:
        assert line.startswith('{"received_at":"'), line
        event = json.loads(line)
        assert list(event)[0] == "received_at" and STAMP.fullmatch(event["received_at"])
        stamps.append(event["received_at"])
        # What follows is the frame as blackhole sent it, byte for byte.
        frame = "{" + line[len('{"received_at":"') + len(event["received_at"]) + 2 :]
        assert json.loads(frame) == {k: v for k, v in event.items() if k != "received_at"}
        assert {"action", "name", "routing_key", "data"} <= set(event)
    assert all(before - 0.001 <= epoch(s) <= after + 0.001 for s in stamps), stamps
    assert stamps == sorted(stamps)

    # A replay of what was recorded gives the same receive times, not the time of the replay.
    replayed = run("replay", str(record), "--received-at")
    assert replayed.returncode == 0, replayed.stderr
    assert [json.loads(line)["received_at"] for line in replayed.stdout.splitlines()] == stamps
    # Opt-in: without the flag, the envelope is as received.
    for line in tail_one_call(started, sim):
        assert line.startswith('{"action":') and "received_at" not in json.loads(line)


def test_replay_gives_the_recorded_time_in_utc_to_the_millisecond_with_fields_too(
    tmp_path: Path,
) -> None:
    frame = {"action": "event", "name": "CHANNEL_CREATE", "data": {"call_id": "c1"}}
    path = tmp_path / "one.jsonl"
    # 2025-11-28T01:00:00.123456 UTC; milliseconds are cut, not rounded, as utc_stamp does.
    entries = [{"received_at": 1764291600.123956, "text": json.dumps(frame)}]
    entries.append({"received_at": 1764291601.5, "text": json.dumps({**frame, "name": "X"})})
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))

    result = run("replay", str(path), "--received-at", TZ="America/New_York")
    assert result.returncode == 0 and not result.stderr, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["received_at"] == "2025-11-28T01:00:00.123Z"
    assert second["received_at"] == "2025-11-28T01:00:01.500Z"
    assert {k: v for k, v in first.items() if k != "received_at"} == frame

    fields = run("replay", str(path), "--received-at", "--fields", "data.call_id,nowhere")
    assert fields.stdout.splitlines() == [
        '{"received_at":"2025-11-28T01:00:00.123Z","data":{"call_id":"c1"}}',
        '{"received_at":"2025-11-28T01:00:01.500Z","data":{"call_id":"c1"}}',
    ]
    nothing = run("replay", str(path), "--received-at", "--fields", "nowhere")
    assert nothing.stdout.splitlines()[0] == '{"received_at":"2025-11-28T01:00:00.123Z"}'
