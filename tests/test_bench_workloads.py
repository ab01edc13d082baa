"""bench/fastserver.py's workloads are what their names say (issue 21's CPU table)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from bench.fastserver import FastServer


def decode(frame: bytes) -> dict[str, Any]:
    length, offset = frame[1] & 0x7F, 2
    if length == 126:
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    assert len(frame) - offset == length  # the header's length is the payload's
    message: dict[str, Any] = json.loads(frame[offset:])
    return message


@pytest.mark.parametrize(
    ("workload", "names"),
    [
        ("create-calls", {"CHANNEL_CREATE"}),
        ("calls", {"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY"}),
        ("never-hangup", {"CHANNEL_CREATE", "CHANNEL_ANSWER"}),
    ],
)
def test_call_workloads_are_distinct_calls_in_order(workload: str, names: set[str]) -> None:
    server = FastServer(0, workload=workload)
    server.stop()
    events = [decode(server.frame_bytes(n)) for n in range(300)]
    assert len({event["data"]["msg_id"] for event in events}) == 300
    per_call: dict[str, list[str]] = {}
    for event in events:
        assert event["routing_key"].endswith(event["data"]["call_id"])
        per_call.setdefault(event["data"]["call_id"], []).append(event["name"])
    assert len(per_call) == 300 // len(names)
    order = ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY"][: len(names)]
    assert all(seen == order for seen in per_call.values())
    # Ten calls at a time: the first ten calls' events come before any other call's.
    first = {event["data"]["call_id"] for event in events[: len(names) * 10]}
    assert len(first) == 10


def test_objects_are_docs_of_their_own() -> None:
    server = FastServer(0, workload="objects")
    server.stop()
    events = [decode(server.frame_bytes(n)) for n in range(90)]
    assert len({event["data"]["id"] for event in events}) == 90
    assert Counter(event["name"] for event in events) == {
        "doc_created": 30,
        "doc_edited": 30,
        "doc_deleted": 30,
    }
    assert {event["data"]["type"] for event in events} == {"user", "device", "callflow"}
    assert all(event["subscribed_key"] == "object.*.*" for event in events)
