"""Issue 12, item 2: --fields in pretty mode is an aligned table with a header row and the
event's time first, fitted to the terminal from 80 columns up, values elided in the middle and
never wrapped, server text escaped. Piped (-o json) it stays the reduced JSON object.

The golden files are the replay of the spec samples at 80 and 120 columns, reviewed by eye;
after an intended change of format, regenerate them with
COLUMNS=80 TZ=UTC kazoo-tail replay tests/recordings/samples.jsonl -o pretty --fields FIELDS
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.wire import parse_frame
from kazoo_tail.output.terminal import sanitize
from kazoo_tail.simulator import DEMO, Simulator

from .conftest import SAMPLES, Running, login_args
from .inprocess import run

RECORDINGS = Path(__file__).parent / "recordings"
FIELDS = "name,data.call_id,data.caller_id_name,data.hangup_cause,data.custom_channel_vars.owner_id"
PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def event(data: dict[str, Any], received_at: float = 1764291600.25, **envelope: Any) -> Event:
    frame = {"action": "event", "name": "CHANNEL_CREATE", **envelope, "data": data}
    parsed = parse_frame(json.dumps(frame).encode(), received_at)
    assert isinstance(parsed, Event)
    return parsed


def table(width: int, paths: list[str], *events: Event) -> list[str]:
    from kazoo_tail.output.fields import FieldsTableRenderer

    out = io.BytesIO()
    renderer = FieldsTableRenderer(out, paths, width=lambda: width)
    for one in events:
        renderer.render(one)
    return out.getvalue().decode().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_in_colour_headers_are_bold_times_dim_and_a_calls_rows_in_its_colour(width: int) -> None:
    recording = str(RECORDINGS / "samples.jsonl")
    args = ("replay", recording, "-o", "pretty", "--fields", FIELDS, "--color", "always")
    result = run(*args, COLUMNS=str(width), TZ="UTC", TERM="xterm-256color")
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert result.stdout == (SAMPLES / f"fields_{width}_color.txt").read_text(encoding="utf-8")
    # Without its escape codes it is the table --color never prints.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert plain == (SAMPLES / f"fields_{width}.txt").read_text(encoding="utf-8")


def test_legs_of_one_call_share_a_colour_and_calls_at_once_do_not(utc: None) -> None:
    from rich.console import Console

    from kazoo_tail.output.fields import FieldsTableRenderer
    from kazoo_tail.output.pretty import Painter

    out = io.BytesIO()
    painter = Painter(Console(file=io.StringIO(), force_terminal=True, color_system="256"))
    renderer = FieldsTableRenderer(out, ["data.call_id"], width=lambda: 80, painter=painter)
    for data in (
        {"call_id": "a-leg"},
        {"call_id": "other-call"},
        {"call_id": "b-leg", "other_leg_call_id": "a-leg"},
    ):
        renderer.render(event({**data, "event_category": "call_event"}))
    rows = [row for row in out.getvalue().decode().splitlines() if "call_id" not in row]
    colours = [re.findall(r"\x1b\[([0-9;]*)m(?:a-leg|other-call|b-leg)", row)[0] for row in rows]
    assert colours[0] == colours[2] != colours[1], rows
    assert all(row.startswith("\x1b[2m") for row in rows)  # the time, dim


@pytest.mark.parametrize("width", [80, 120])
def test_the_spec_samples_make_the_reviewed_table(width: int) -> None:
    recording = str(RECORDINGS / "samples.jsonl")
    args = ("replay", recording, "-o", "pretty", "--fields", FIELDS)
    result = run(*args, COLUMNS=str(width), TZ="UTC")
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert result.stdout == (SAMPLES / f"fields_{width}.txt").read_text(encoding="utf-8")
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= width for line in lines)
    # The header first, the date over the time; each column starts where its header does.
    assert lines[0].startswith("2020-10-12    name ")
    starts = [lines[0].index(label) for label in ("call_id", "owner_id")]
    assert all(lines[1][at - 2 : at] == "  " and lines[1][at] != " " for at in starts)


def test_a_live_tail_at_80_columns_fits_and_piped_json_is_unchanged(
    sim: Simulator, started: type[Running]
) -> None:
    placed = [item.event for item in sim.traffic.call(DEMO.account_id, start=time.time())]
    fields = "name,data.call_id,data.callee_id_number"
    for output in ("pretty", "json"):
        process = started(
            *login_args(sim), "-b", "call.*.*", "-o", output, "--fields", fields,
            "--count", str(len(placed)), COLUMNS="80", **PASSWORD,
        )  # fmt: skip
        process.wait_for_stderr("subscribed to")
        for one in placed:
            sim.publish_event(one)
        result = process.finish()
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        if output == "json":
            assert [json.loads(line)["name"] for line in lines] == [e.name for e in placed]
            continue
        assert all(cell_len(line) <= 80 for line in lines), lines
        header = lines[0].split()
        assert header[1:] == ["name", "call_id", "callee_id_number"]
        rows = [line for line in lines if line.split()[0] != header[0]]
        assert [row.split()[1] for row in rows] == [e.name for e in placed]


def test_server_text_is_escaped_and_wide_characters_are_elided_by_cells(utc: None) -> None:
    hostile = "\x1b[31mred\r\n\u202eevil"
    wide = "日本語の名前" * 10  # 120 cells
    lines = table(80, ["data.caller_id_name", "data.callee_id_name"], event({
        "caller_id_name": hostile, "callee_id_name": wide,
    }))  # fmt: skip
    assert len(lines) == 2 and all(cell_len(line) <= 80 for line in lines)
    row = lines[1]
    assert not any(ord(c) < 0x20 or c == "\u202e" for c in row), row
    assert row.startswith("01:00:00.250  \\x1b[31mred\\x0d\\x0a\\u202eevil  日本語")
    # An elided wide value keeps both ends and never splits a character.
    callee = row.split("  ")[-1]
    assert callee.startswith("日本語") and callee.endswith("の名前") and "…" in callee
    caller = "\\x1b[31mred\\x0d\\x0a\\u202eevil"
    assert cell_len(callee) == 80 - 12 - 2 - len(caller) - 2  # the rest, after the caller's 29


def test_widths_grow_with_wider_values_and_the_header_follows_each_change(utc: None) -> None:
    def call(call_id: str, cause: str = "", at: float = 1764291600.0) -> Event:
        return event({"call_id": call_id, "hangup_cause": cause}, at)

    lines = table(
        80,
        ["data.call_id", "data.hangup_cause"],
        call("a1"),
        call("b2"),  # as wide: no new header
        call("c3", "NORMAL_CLEARING"),  # wider: the columns move, so the header comes again
        call("d4", "USER_BUSY"),
        call("e5", at=1764291600.0 + 86400),  # a new day: the header, with the new date
    )
    assert lines == [
        "2025-11-28    call_id  hangup_cause",
        "01:00:00.000  a1",
        "01:00:00.000  b2",
        "2025-11-28    call_id  hangup_cause",
        "01:00:00.000  c3       NORMAL_CLEARING",
        "01:00:00.000  d4       USER_BUSY",
        "2025-11-29    call_id  hangup_cause",
        "01:00:00.000  e5",
    ]


def test_the_terminal_is_shared_out_fairly_and_followed_when_resized(utc: None) -> None:
    from kazoo_tail.output.fields import FieldsTableRenderer

    long_id = "x" * 30 + "-middle-" + "y" * 30
    one = event({"call_id": long_id, "other_leg_call_id": long_id, "hangup_cause": "NORMAL"})
    out = io.BytesIO()
    columns = [80]
    renderer = FieldsTableRenderer(
        out,
        ["data.call_id", "data.other_leg_call_id", "data.hangup_cause"],
        width=lambda: columns[0],
    )
    renderer.render(one)
    columns[0] = 200
    renderer.render(one)
    renderer.render(one)
    narrow_header, narrow, wide_header, wide, again = out.getvalue().decode().splitlines()
    assert cell_len(narrow) <= 80 and cell_len(narrow_header) <= 80
    # The short column keeps what it needs; the two long ones split the rest, ends kept.
    time_cell, first, second, cause = narrow.split()
    assert cause == "NORMAL" and cell_len(first) == cell_len(second)
    assert first.startswith("xxxx") and first.endswith("yyyy") and "…" in first
    assert wide.split()[1:] == [long_id, long_id, "NORMAL"] and again == wide
    assert wide_header.split()[1:] == ["call_id", "other_leg_call_id", "hangup_cause"]
    # Too narrow for whole headers: they give way to the values first.
    assert narrow_header.split()[1:] == ["call_id", "other_leg_call_id", "hang…use"]


def test_headers_are_the_shortest_ending_that_tells_paths_apart() -> None:
    from kazoo_tail.output.fields import column_labels, elide_middle

    paths = ["name", "data.custom_channel_vars.owner_id", "data.owner_id", "data.call_id", "name"]
    assert column_labels(paths) == [
        "name",
        "custom_channel_vars.owner_id",
        "data.owner_id",
        "call_id",
        "name",
    ]
    assert elide_middle("abcdefghij", 5) == "ab…ij"
    assert elide_middle("abcdefghij", 10) == "abcdefghij"
    assert elide_middle("日本語日本語", 7) == "日…本語"  # never half a character


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(st.lists(st.text(max_size=120), min_size=6, max_size=6), min_size=1, max_size=6),
    columns=st.integers(min_value=1, max_value=6),
    width=st.sampled_from([80, 120, 200]),
)
def test_any_values_make_lines_that_fit_and_carry_no_control_character(
    rows: list[list[str]], columns: int, width: int
) -> None:
    paths = [f"data.f{n}" for n in range(columns)]
    events = [event({f"f{n}": value for n, value in enumerate(row)}) for row in rows]
    for line in table(width, paths, *events):
        assert cell_len(line) <= width, line
        assert line == sanitize(line), line
