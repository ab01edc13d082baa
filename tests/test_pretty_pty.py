"""Pretty lines in a real terminal (a pseudo-terminal of 80 and of 200 columns): what a call
line keeps as the terminal narrows (issue 21), for a device calling the PSTN and the PSTN
calling a device, with call ids as long as Kazoo makes them."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import termios
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from kazoo_tail.kazoo.time import GREGORIAN_TO_UNIX

from .conftest import BIN

START = 1796169598.0
OUT_A = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-1796169598-1234@10.1.1.1"
OUT_B = "9f8e7d6c-5b4a-4938-8271-6f5e4d3c2b1a-1796169598-4321@10.1.1.1"
IN_A = "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d-1796169599-5678@10.1.1.2"
IN_B = "3c2d1e0f-9a8b-4c7d-8e6f-5a4b3c2d1e0f"
ACCOUNT = "4b8c6fec4b2597882c0390202d195419"
DEVICE = {"account_id": ACCOUNT, "authorizing_type": "device", "authorizing_id": "d1"}
CARRIER_OUT = {"account_id": ACCOUNT, "resource_type": "offnet-termination", "resource_id": "r"}
CARRIER_IN = {
    "account_id": ACCOUNT,
    "inception": "+12125550147@203.0.113.5",
    "resource_type": "offnet-origination",
}
CALLER = "+4930123456789"  # the PSTN calling in
CALLEE = "+861065529988123"  # the PSTN called: 16 characters, the longest E.164 number


def frame(name: str, call_id: str, offset: float, **data: Any) -> str:
    body = {"call_id": call_id, "timestamp": int(START + offset) + GREGORIAN_TO_UNIX, **data}
    envelope = {
        "action": "event",
        "subscribed_key": "call.*.*",
        "name": name,
        "routing_key": f"call.{ACCOUNT}.{name}.{call_id}",
        "data": body,
    }
    return json.dumps({"received_at": START + offset, "text": json.dumps(envelope)})


def recording(path: Path) -> Path:
    """A device calls the PSTN (names on both ends); the PSTN calls a device."""
    out_a = {
        "call_direction": "inbound",
        "caller_id_number": "1001",
        "caller_id_name": "Grace Davis",
        "callee_id_number": CALLEE,
        "callee_id_name": "北京 办公室",
        "custom_channel_vars": DEVICE,
    }
    out_b = {**out_a, "call_direction": "outbound", "custom_channel_vars": CARRIER_OUT}
    in_a = {
        "call_direction": "inbound",
        "caller_id_number": CALLER,
        "caller_id_name": "Jürgen Müller",
        "callee_id_number": "1002",
        "custom_channel_vars": CARRIER_IN,
    }
    in_b = {**in_a, "call_direction": "outbound", "custom_channel_vars": DEVICE}
    lines = [
        frame("CHANNEL_CREATE", OUT_A, 0.1, **out_a),
        frame("CHANNEL_CREATE", OUT_B, 0.2, other_leg_call_id=OUT_A, **out_b),
        frame("CHANNEL_CREATE", IN_A, 0.3, **in_a),
        frame("CHANNEL_CREATE", IN_B, 0.4, other_leg_call_id=IN_A, **in_b),
        frame("CHANNEL_ANSWER", OUT_B, 1.0, other_leg_call_id=OUT_A, **out_b),
        frame("CHANNEL_ANSWER", IN_B, 1.1, other_leg_call_id=IN_A, **in_b),
        frame("CHANNEL_DESTROY", OUT_B, 9.0, hangup_cause="NORMAL_CLEARING", **out_b),
        frame("CHANNEL_DESTROY", OUT_A, 9.1, hangup_cause="NORMAL_CLEARING", **out_a),
        frame("CHANNEL_DESTROY", IN_B, 9.2, hangup_cause="NORMAL_CLEARING", **in_b),
        frame("CHANNEL_DESTROY", IN_A, 9.3, hangup_cause="NORMAL_CLEARING", **in_a),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def on_a_terminal(columns: int, *args: str) -> list[str]:
    """kazoo-tail's output on a pseudo-terminal of that width, read until it exits."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "TZ": "UTC"}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    try:
        process = subprocess.Popen(
            [str(BIN), *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
        _, errors = process.communicate(timeout=20)
        assert process.returncode == 0, errors
    finally:
        os.close(master)
    return shown.decode().replace("\r\n", "\n").splitlines()


@pytest.fixture
def replayed(tmp_path: Path) -> str:
    return str(recording(tmp_path / "two-calls.jsonl"))


def call_lines(lines: list[str]) -> dict[str, list[str]]:
    """The lines of each call, by its label."""
    calls: dict[str, list[str]] = {}
    for line in lines:
        label = re.search(r" (#\d+) ", line)
        if label:
            calls.setdefault(label.group(1), []).append(line)
    return calls


def elided(line: str, call_id: str) -> bool:
    """Whether the line shows the id with its middle cut: its start and its end."""
    match = re.search(r"#\d+ (\S+)…(\S+)", line)
    return bool(match) and call_id.startswith(match.group(1)) and call_id.endswith(match.group(2))


@pytest.mark.smoke
@pytest.mark.e2e
def test_at_80_columns_a_call_line_keeps_the_numbers_whole_and_the_id_elided(
    replayed: str,
) -> None:
    lines = on_a_terminal(80, "replay", replayed, "-o", "pretty", "--color", "never")
    print("\n".join(lines))
    assert all(cell_len(line) <= 80 for line in lines), lines
    calls = call_lines(lines)
    assert len(calls) == 2 and all(len(own) == 5 for own in calls.values()), calls
    for own in calls.values():
        for line in own:
            time, event, direction = line.split()[:3]
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", time), line
            assert event in ("CREATE", "ANSWER", "DESTROY"), line
            assert direction in ("out", "in", "?", "in?"), line
    outbound, inbound = calls["#1"], calls["#2"]
    assert all(
        f"1001 → {CALLEE}" in line or f'"Grace Davis" → {CALLEE}' in line for line in outbound
    )
    assert all(f"{CALLER} → 1002" in line for line in inbound), inbound
    legs = {OUT_A: outbound, OUT_B: outbound, IN_A: inbound, IN_B: inbound}
    for call_id, own in legs.items():
        assert any(elided(line, call_id) for line in own), (call_id, own)


@pytest.mark.e2e
def test_at_200_columns_ids_and_names_are_whole(replayed: str) -> None:
    lines = on_a_terminal(200, "replay", replayed, "-o", "pretty", "--color", "never")
    print("\n".join(lines))
    assert all(cell_len(line) <= 200 for line in lines), lines
    calls = call_lines(lines)
    for call_id, label in ((OUT_A, "#1"), (OUT_B, "#1"), (IN_A, "#2"), (IN_B, "#2")):
        own = [line for line in calls[label] if call_id[:8] in line]
        assert own and all(f"{label} {call_id}" in line for line in own), own
    assert any('1001 "Grace Davis" → +861065529988123 "北京 办公室"' in line for line in lines)
    hangups = [line for line in lines if "DESTROY" in line]
    assert len(hangups) == 4 and all("NORMAL_CLEARING" in line for line in hangups), hangups


@pytest.mark.e2e
def test_the_calls_closing_line_keeps_the_direction_at_80_columns(replayed: str) -> None:
    lines = on_a_terminal(80, "replay", replayed, "-o", "pretty", "--color", "never", "--calls")
    print("\n".join(lines))
    assert all(cell_len(line) <= 80 for line in lines), lines
    closing = [line for line in lines if line.split()[1:2] == ["└"]]
    assert [line.split()[0] for line in closing] == ["#1", "#2"]
    assert re.search(r"NORMAL_CLEARING  outbound( |$)", closing[0]), closing
    assert re.search(r"NORMAL_CLEARING  inbound( |$)", closing[1]), closing
    headers = [line for line in lines if line.split()[1:2] == ["┌"]]
    assert f"1001 → {CALLEE}" in headers[0] and f"{CALLER} → 1002" in headers[1], headers
