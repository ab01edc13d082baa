"""The pretty tail as a person at a terminal sees it: columns that line up and fit 80, 120 and
200 columns, a colour per call shared by its legs, ring and talk time, date lines, and --calls
timelines that label every line and close every call.

The golden files in tests/samples (pretty_* and calls_*) are the real renderer's output for
one scenario; `cat` them to review (the _always ones carry the colours). After an intended
change of layout, regenerate with:  PRETTY_GOLDEN=write pytest tests/test_pretty_layout.py
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.time import GREGORIAN_TO_UNIX
from kazoo_tail.kazoo.wire import parse_frame
from kazoo_tail.output.console import make_pretty
from kazoo_tail.output.pretty import PrettyRenderer
from kazoo_tail.output.registry import ColourMode, RenderOptions

from .conftest import SAMPLES

ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDTHS = (80, 120, 200)
# 2026-12-01 23:59:58 UTC: the scenario crosses midnight.
START = 1796169598.0

A_LEG = "647aab2b-1c2d-4e5f-8a9b-0c1d2e3f4a5b@10.26.0.21"
B_LEG = "3f9e2d1c-0b8a-4765-9c4d-3e2f1a0b9c8d"
BUSY = "c4a1f7e2-5b3d-4c8e-9a6f-1d2e3f4a5b6c@192.168.100.200"
LATE = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def call_event(name: str, call_id: str, offset: float, **data: Any) -> dict[str, Any]:
    unix = START + offset
    body = {
        "call_id": call_id,
        "timestamp": int(unix) + GREGORIAN_TO_UNIX,
        "channel_created_time": int((START + data.pop("created", offset)) * 1e6),
        **data,
    }
    return {
        "action": "event",
        "subscribed_key": "call.*.*",
        "name": name,
        "routing_key": f"call.4b8c.{name}.{call_id}",
        "data": body,
        "_at": unix,
    }


def other_event(subscribed_key: str, name: str, offset: float, **data: Any) -> dict[str, Any]:
    return {
        "action": "event",
        "subscribed_key": subscribed_key,
        "name": name,
        "routing_key": f"{subscribed_key.split('.')[0]}.x.{name}",
        "data": data,
        "_at": START + offset,
    }


def scenario() -> list[dict[str, Any]]:
    """A bridged call (two legs) and an unanswered one overlapping it, across midnight, with
    a document, a fax, a conference and an unknown event in between."""
    # Channel vars as Kazoo sets them (docs/calls.md §3): a device calls the PSTN (outbound),
    # the PSTN calls a device (inbound), and a device's call that is never bridged (internal
    # once it ends; not known before).
    device = {
        "account_id": "4b8c6fec4b2597882c0390202d195419",
        "authorizing_type": "device",
        "authorizing_id": "d509114b66efabf32dfd78dc464b46dd",
        "owner_id": "699ed7e3d583e2577ac017c575f87262",
        "username": "user_wpxnx7am9w",
    }
    carrier_out = {
        "account_id": "4b8c6fec4b2597882c0390202d195419",
        "resource_type": "offnet-termination",
        "resource_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    }
    carrier_in = {
        "account_id": "4b8c6fec4b2597882c0390202d195419",
        "inception": "2002@192.168.100.200",
        "resource_type": "offnet-origination",
    }
    a = {
        "call_direction": "inbound",
        "caller_id_number": "1001",
        "caller_id_name": "Grace Davis",
        "custom_channel_vars": device,
    }
    b = {
        "call_direction": "outbound",
        "caller_id_number": "1001",
        "other_leg_call_id": A_LEG,
        "custom_channel_vars": carrier_out,
    }
    busy = {
        "call_direction": "inbound",
        "caller_id_number": "+4930123456",
        "caller_id_name": "Jürgen 日本語",
        "request": "2002@sip.example.com",
        "custom_channel_vars": carrier_in,
    }
    late = {"call_direction": "inbound", "caller_id_number": "1004", "custom_channel_vars": device}
    answered = {"callee_id_number": "+12125550147", "callee_id_name": "Front Desk"}
    return [
        call_event("CHANNEL_CREATE", A_LEG, 0.120, request="+12125550147@sip.example.com", **a),
        call_event("CHANNEL_CREATE", B_LEG, 0.300, **b, callee_id_number="+12125550147"),
        call_event("CHANNEL_CREATE", BUSY, 1.010, **busy),
        call_event("CHANNEL_ANSWER", B_LEG, 2.480, created=0.300, **b, **answered),
        call_event(
            "CHANNEL_ANSWER", A_LEG, 2.500, created=0.120, other_leg_call_id=B_LEG, **a, **answered
        ),
        call_event("CHANNEL_BRIDGE", A_LEG, 2.510, created=0.120, bridge_id=B_LEG, **a),
        other_event(
            "object.*.*",
            "doc_created",
            3.0,
            type="user",
            id="d7a1b9e3c4f24f5a8e0b1c2d3e4f5a6b",
            account_id="4b8c6fec4b2597882c0390202d195419",
        ),
        call_event(
            "CHANNEL_DESTROY",
            BUSY,
            4.250,
            created=1.010,
            hangup_cause="USER_BUSY",
            ringing_seconds="3",
            billing_seconds="0",
            **busy,
        ),
        other_event(
            "fax.status.*",
            "status",
            5.5,
            direction="outgoing",
            status="Sent Page 1 of 3",
            fax_state="send",
            job_id="202010-8b2e6f0a4c1d4e7f9a3b5c6d7e8f9a0b",
        ),
        other_event(
            "conference.event.c1.*",
            "event",
            6.0,
            event="add-member",
            conference_id="sales-standup-4b8c6fec",
            participant_id="12",
            caller_id_number="1003",
        ),
        call_event("CHANNEL_CREATE", LATE, 7.0, **late),
        other_event("skel.*.*", "mystery", 8.0, detail="x" * 300),
        call_event(
            "CHANNEL_DESTROY",
            B_LEG,
            33.700,
            created=0.300,
            hangup_cause="NORMAL_CLEARING",
            billing_seconds="31",
            ringing_seconds="2",
            **b,
            **answered,
        ),
        call_event(
            "CHANNEL_DESTROY",
            A_LEG,
            33.800,
            created=0.120,
            hangup_cause="NORMAL_CLEARING",
            billing_seconds="31",
            ringing_seconds="2",
            **a,
            **answered,
        ),
        call_event(
            "CHANNEL_DESTROY",
            LATE,
            40.0,
            created=7.0,
            hangup_cause="ORIGINATOR_CANCEL",
            **late,
        ),
    ]


def events() -> list[Event]:
    parsed = []
    for envelope in scenario():
        at = envelope.pop("_at")
        event = parse_frame(json.dumps(envelope).encode(), at)
        assert isinstance(event, Event)
        parsed.append(event)
    return parsed


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def render(width: int, colour: ColourMode, calls: bool = False, stream: Any = None) -> str:
    """The scenario through the real factory (kazoo_tail.output.console), at a fixed width."""
    buffer = io.StringIO()
    renderer = make_pretty(buffer, RenderOptions(colour=colour, calls=calls), width=width)
    for event in stream if stream is not None else events():
        renderer.render(event)
    return buffer.getvalue()


def plain_lines(text: str) -> list[str]:
    return ANSI.sub("", text).splitlines()


@pytest.mark.parametrize("calls", [False, True], ids=["pretty", "calls"])
@pytest.mark.parametrize("colour", ["never", "always"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_scenario_renders_as_reviewed(width: int, colour: ColourMode, calls: bool) -> None:
    golden = SAMPLES / f"{'calls' if calls else 'pretty'}_{width}_{colour}.txt"
    output = render(width, colour, calls)
    if os.environ.get("PRETTY_GOLDEN") == "write":
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")
    assert ("\x1b[" in output) == (colour == "always")


@pytest.mark.parametrize("calls", [False, True])
def test_no_line_is_longer_than_the_width_wide_characters_counted(calls: bool) -> None:
    for width in (*WIDTHS, 81, 99, 100, 101, 119, 121, 159, 160, 240):
        for colour in ("never", "always"):
            lines = plain_lines(render(width, colour, calls))
            longest = max(cell_len(line) for line in lines)
            assert longest <= width, (width, colour, [ln for ln in lines if cell_len(ln) > width])
    # Nothing is wrapped: as many lines at 80 as at 200.
    assert len(plain_lines(render(80, "never", calls))) == len(
        plain_lines(render(200, "never", calls))
    )


def test_ids_are_elided_in_the_middle_keeping_the_host() -> None:
    at_120 = plain_lines(render(120, "never"))
    create = next(line for line in at_120 if "CREATE" in line)
    assert re.search(r"#1 647aab2b\S*…\S*@10\.26\.0\.21(\s|$)", create), create
    assert A_LEG not in create
    assert A_LEG in "\n".join(plain_lines(render(200, "never")))


def test_the_columns_line_up() -> None:
    for width in WIDTHS:
        lines = [line for line in plain_lines(render(width, "never")) if "#" in line]
        # The label (the call column) starts at one place on every call line ...
        assert len({cell_len(line[: line.index(" #")]) for line in lines}) == 1, (width, lines)
        # ... and so does the cause on every hangup line.
        causes = [
            re.search(r"(USER_BUSY|NORMAL_CLEARING|ORIGINATOR_CANCEL)", line) for line in lines
        ]
        starts = {cell_len(match.string[: match.start()]) for match in causes if match}
        # At 80 columns the numbers and the id take the line, and the cause gives way.
        assert len(starts) == (0 if width == 80 else 1), (width, lines)


def colour_of_call_cell(line: str) -> str:
    """The colour code the call label ("#N") is painted with."""
    match = re.search(r"\x1b\[([0-9;]*)m#\d+ ", line)
    assert match, line
    return match.group(1)


def test_the_legs_of_a_call_share_a_colour_and_calls_together_do_not() -> None:
    lines = render(120, "always").splitlines()
    colour = {
        call_id: {colour_of_call_cell(line) for line in lines if call_id[:8] in ANSI.sub("", line)}
        for call_id in (A_LEG, B_LEG, BUSY)
    }
    assert len(colour[A_LEG]) == 1 and colour[A_LEG] == colour[B_LEG]
    assert colour[BUSY] != colour[A_LEG] and len(colour[BUSY]) == 1


def test_calls_whose_ids_hashed_alike_still_differ_in_colour() -> None:
    """The old colour was crc32(call id) % 12: two calls at once could share it."""
    ids = [f"call-{n}" for n in range(40)]
    first = ids[0]
    twin = next(
        other
        for other in ids[1:]
        if zlib.crc32(other.encode()) % 12 == zlib.crc32(first.encode()) % 12
    )
    stream = [
        parse_frame(json.dumps(call_event("CHANNEL_CREATE", call_id, n)).encode(), START + n)
        for n, call_id in enumerate((first, twin))
    ]
    lines = render(120, "always", stream=stream).splitlines()[1:]
    assert colour_of_call_cell(lines[0]) != colour_of_call_cell(lines[1])


def test_an_unanswered_hangup_has_ring_time_and_no_talk_time() -> None:
    for width in (120, 200):
        lines = plain_lines(render(width, "never"))
        busy = next(line for line in lines if "USER_BUSY" in line)
        assert re.search(r"USER_BUSY (ring |r)3s$", busy), busy
        cancelled = next(line for line in lines if "ORIGINATOR_CANCEL" in line)
        assert re.search(r"ORIGINATOR_CANCEL (ring |r)33s$", cancelled), cancelled
        answered = [line for line in lines if "NORMAL_CLEARING" in line]
        assert len(answered) == 2
        assert all(re.search(r"(ring 2s talk |r2s t)31s$", line) for line in answered), answered


def test_a_date_line_comes_first_and_whenever_the_date_changes() -> None:
    for calls in (False, True):
        lines = plain_lines(render(120, "never", calls))
        dates = [(n, line) for n, line in enumerate(lines) if line.startswith("── ")]
        assert [line for _, line in dates] == ["── 2026-12-01 ──", "── 2026-12-02 ──"]
        assert dates[0][0] == 0
        after_midnight = lines[dates[1][0] + 1]
        assert after_midnight.split()[2 if calls else 0].startswith("00:00:00"), after_midnight
        assert lines[dates[1][0] - 1].split()[2 if calls else 0].startswith("23:59:59")


def test_every_timeline_line_names_its_call_and_every_call_is_closed() -> None:
    for width in WIDTHS:
        lines = [line for line in plain_lines(render(width, "never", True)) if "──" not in line]
        calls = [line for line in lines if line.startswith("#")]
        # Four call events of kinds other than call: printed as plain lines, not under a call.
        assert len(lines) - len(calls) == 4
        for line in calls:
            mark = line.split()[1]
            assert mark in "┌│└", line
        labels = [line.split()[0] for line in calls]
        assert set(labels) == {"#1", "#2", "#3"}
        for name in set(labels):
            own = [line for line in calls if line.split()[0] == name]
            assert own[0].split()[1] == "┌" and own[-1].split()[1] == "└", own
            assert sum(line.split()[1] == "└" for line in own) == 1
        closing = {line.split()[0]: line for line in calls if line.split()[1] == "└"}
        # The call's direction as the account sees it: on the closing line, whole at 80
        # columns too (the count of legs after it gives way first), and on the event line
        # that made it known.
        assert re.search(
            r"ended answered, talk 31s, ring 2s  NORMAL_CLEARING  outbound( |$)", closing["#1"]
        )
        assert re.search(r"ended unanswered, ring 3s  USER_BUSY  inbound  1 leg", closing["#2"])
        assert re.search(
            r"ended unanswered, ring 33s  ORIGINATOR_CANCEL  internal( |$)", closing["#3"]
        )
        if width >= 120:
            assert closing["#1"].endswith("  outbound  2 legs"), closing["#1"]
            assert closing["#3"].endswith("  internal  1 leg"), closing["#3"]
        news = [line for line in calls if "  now " in line]
        assert [(line.split()[0], line.split()[3]) for line in news] == [
            ("#1", "CHANNEL_CREATE"),  # the B-leg to a carrier: outbound
            ("#3", "CHANNEL_DESTROY"),  # never bridged anywhere: internal
        ], news
        if width >= 120:
            assert [line.split()[-1] for line in news] == ["outbound", "internal"], news
        headers = {line.split()[0]: line.split()[4] for line in calls if line.split()[1] == "┌"}
        assert headers == {"#1": "?", "#2": "inbound", "#3": "?"}, headers
        # The busy call's hangup, between lines of the bridged call, is labelled as its own.
        busy = next(line for line in calls if "USER_BUSY" in line and "DESTROY" in line)
        assert busy.startswith("#2 ")
        assert all(line.startswith("#1 ") for line in calls if "CHANNEL_BRIDGE" in line)
        # Milliseconds are kept.
        assert all(re.match(r"#\d +. \d\d:\d\d:\d\d\.\d{3} ", line) for line in calls)


LONGEST = "+861065529988123"  # 16 characters: the longest E.164 number
SIXTY = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-1796169598-123@10.1.1.1"


def a_call(call_id: str = SIXTY, **data: Any) -> list[Event]:
    """A device's call to the PSTN: created, then hung up; names on both ends."""
    parties = {
        "caller_id_number": "+4930123456789",
        "caller_id_name": "Jürgen Müller",
        "callee_id_number": LONGEST,
        "callee_id_name": "北京 办公室",
        **data,
    }
    frames = [
        call_event("CHANNEL_CREATE", call_id, 0.0, **parties),
        call_event("CHANNEL_DESTROY", call_id, 1.5, hangup_cause="NO_ANSWER", **parties),
    ]
    return [parse_frame(json.dumps(frame).encode(), frame.pop("_at")) for frame in frames]


def test_numbers_stay_whole_and_the_id_is_whole_once_there_is_room() -> None:
    for width in range(80, 241):
        create, hangup = plain_lines(render(width, "never", stream=a_call()))[1:]
        for line in (create, hangup):
            assert cell_len(line) <= width, (width, line)
            assert f"+4930123456789 → {LONGEST}" in line or (
                f'+4930123456789 "Jürgen Müller" → {LONGEST} "北京 办公室"' in line
            ), (width, line)
            # Never less than 12 cells of id, cut in the middle.
            shown = re.search(r"#1 (\S+)", line)
            assert shown and cell_len(shown.group(1)) >= 12, (width, line)
            if SIXTY not in line:
                head, tail = shown.group(1).split("…")
                assert SIXTY.startswith(head) and SIXTY.endswith(tail), line
        # Whole once the line has room for it: to its end when nothing follows the id ...
        assert (SIXTY in create) == (width >= 138), (width, create)
        # ... and before the cause on a hangup line.
        assert (SIXTY in hangup) == (width >= 163), (width, hangup)
        if width >= 163:
            assert "NO_ANSWER" in hangup


def test_names_give_way_before_the_id() -> None:
    # At 160 columns the whole id fits, the names of both parties do not.
    create = plain_lines(render(160, "never", stream=a_call()))[1]
    assert SIXTY in create and "Jürgen" not in create, create
    create = plain_lines(render(240, "never", stream=a_call()))[1]
    assert SIXTY in create and '"Jürgen Müller"' in create and '"北京 办公室"' in create


def test_a_number_longer_than_e164_is_cut_and_the_other_kept() -> None:
    uri = "sip:conference-bridge-number-7@pbx.example.com"
    create = plain_lines(render(80, "never", stream=a_call(caller_id_number=uri)))[1]
    assert f"sip:conference-… → {LONGEST} " in create, create
    assert uri not in create and "…" in create.split("→")[0], create
    # Into a pipe nothing is cut.
    buffer = io.StringIO()
    piped_renderer = PrettyRenderer(Console(file=buffer, color_system=None), width=None)
    for event in a_call(caller_id_number=uri):
        piped_renderer.render(event)
    piped = buffer.getvalue().splitlines()[1]
    assert uri in piped and SIXTY in piped and "北京 办公室" in piped, piped
