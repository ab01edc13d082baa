"""Renderers: JSON lines as received, pretty lines per event kind, hostile text kept inert."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.wire import BadFrame, parse_frame
from kazoo_tail.output.jsonl import JsonLinesRenderer
from kazoo_tail.output.pretty import PrettyRenderer

from .conftest import SAMPLES, sample

HOSTILE = "\x1b]0;pwned\x07\x1b[31m[bold red]boom[/] \x9b2J\u202e\r\nend"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def pretty(event: Event, *, colour: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=colour,
        color_system="truecolor" if colour else None,
        width=200,
        highlight=False,
        markup=False,
    )
    PrettyRenderer(console).render(event)
    date, _, line = buffer.getvalue().partition("\n")
    assert re.fullmatch(r"(\x1b\[[0-9;]*m)?── \d{4}-\d\d-\d\d ──(\x1b\[[0-9;]*m)?", date), date
    return line


def event_of(envelope: dict[str, Any]) -> Event:
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    parsed = parse_frame(raw, 1_700_000_000.25)
    assert isinstance(parsed, Event)
    return parsed


def test_json_lines_are_the_frame_exactly_as_received() -> None:
    raw = (SAMPLES / "05_event_call_channel_create.json").read_bytes()
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    out = io.BytesIO()
    renderer = JsonLinesRenderer(out)
    event = parse_frame(compact, 0)
    assert isinstance(event, Event)
    renderer.render(event)
    assert out.getvalue() == compact + b"\n"


def test_json_lines_reencode_multiline_or_unsafe_frames_into_one_safe_line() -> None:
    raw = (SAMPLES / "05_event_call_channel_create.json").read_bytes()  # pretty-printed
    envelope = json.loads(raw)
    envelope["data"]["caller_id_name"] = "Zoë \x9b\u2028\x7f"
    for frame in (raw, json.dumps(envelope, ensure_ascii=False).encode()):
        event = parse_frame(frame, 0)
        assert isinstance(event, Event)
        out = io.BytesIO()
        JsonLinesRenderer(out).render(event)
        line = out.getvalue()
        assert line.count(b"\n") == 1 and line.isascii() and b"\x7f" not in line
        assert json.loads(line) == json.loads(frame)


def test_pretty_call_lines_show_direction_parties_call_and_hangup_cause() -> None:
    create = pretty(event_of(sample("05_event_call_channel_create.json")))
    # A phone's first leg, not bridged yet: where the call goes (to a carrier or to another
    # phone) is not known, whatever Kazoo's per-leg call_direction ("inbound") says.
    assert "CHANNEL_CREATE   ?  " in create and "inbound" not in create
    assert "user_wpxnx7am9w → *97" in create and "at6dmu4ffk97vnlp6qfq" in create
    destroy = pretty(event_of(sample("07_event_call_channel_destroy.json")))
    assert '356 "web phone" → *97 "Echo Test"' in destroy
    assert "NORMAL_CLEARING ring 0s talk 31s" in destroy
    assert destroy.count("\n") == 1


def test_pretty_object_fax_and_conference_lines() -> None:
    user = pretty(event_of(sample("08_event_object_doc_created_user.json")))
    assert "doc_created" in user and "user" in user and "d7a1b9e3c4f24f5a8e0b1c2d3e4f5a6b" in user
    fax = pretty(event_of(sample("09_event_fax_status.json")))
    assert "Sent Page 1 of 3" in fax and "202010-8b2e6f0a4c1d4e7f9a3b5c6d7e8f9a0b" in fax
    conference = pretty(
        event_of(
            {
                "action": "event",
                "subscribed_key": "conference.event.c1.*",
                "name": "event",
                "routing_key": "conference.event.add-member.a.c1.x",
                "data": {"event": "add-member", "conference_id": "c1", "participant_id": "12"},
            }
        )
    )
    assert "add-member" in conference and "c1" in conference and "participant 12" in conference


def test_unknown_events_fall_back_to_a_readable_summary() -> None:
    line = pretty(event_of({"action": "event", "routing_key": "x.y", "data": {"k": "v"}}))
    assert "x.y" in line and '"k":"v"' in line and "?" in line


def test_pretty_lines_are_coloured_when_asked() -> None:
    line = pretty(event_of(sample("06_event_call_channel_answer.json")), colour=True)
    assert "\x1b[" in line


def test_hostile_text_is_escaped_and_never_interpreted_as_markup() -> None:
    for name in ("05_event_call_channel_create.json", "08_event_object_doc_created_user.json"):
        envelope = sample(name)
        for key, value in list(envelope["data"].items()):
            if isinstance(value, str):
                envelope["data"][key] = HOSTILE
        envelope["name"] = HOSTILE
        output = pretty(event_of(envelope), colour=True)
        plain = ANSI.sub("", output)
        assert "\x1b]" not in output and "\x9b" not in output and "\u202e" not in output
        assert "\\x1b]0;pwned\\x07" in plain and "[bold red]boom[/]" in plain
        assert plain.count("\n") == 1 and "\r" not in plain


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.one_of(st.none(), st.text(), st.integers()),
    subscribed_key=st.one_of(
        st.sampled_from(["call.*.*", "object.*.*", "fax.status.*", "conference.event.c.*"]),
        st.text(),
        st.integers(),
    ),
    data=st.one_of(st.dictionaries(st.text(), json_values), json_values),
)
def test_any_event_renders_to_one_inert_line(name: Any, subscribed_key: Any, data: Any) -> None:
    envelope = {
        "action": "event",
        "name": name,
        "subscribed_key": subscribed_key,
        "routing_key": "r",
        "data": data,
    }
    event = event_of(envelope)
    output = pretty(event, colour=True)
    plain = ANSI.sub("", output)
    assert plain.endswith("\n") and plain.count("\n") == 1
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in plain[:-1])
    out = io.BytesIO()
    JsonLinesRenderer(out).render(event)
    assert json.loads(out.getvalue()) == json.loads(event.raw)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_frame_parses_or_is_reported_as_bad(frame: bytes) -> None:
    try:
        parse_frame(frame, 0)
    except BadFrame as exc:
        assert str(exc)


def test_no_color_keeps_bold_but_drops_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=200)
    PrettyRenderer(console).render(event_of(sample("07_event_call_channel_destroy.json")))
    output = buffer.getvalue()
    assert "\x1b[1m" in output  # bold survives
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]", output)  # no foreground colours
