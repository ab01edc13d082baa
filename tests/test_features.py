"""Debugging power, end to end on real event streams from the simulator: filters, fields, call
timelines, record and replay, summary, the binding catalogue and its completion, descendants."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from kazoo_tail.simulator import DEMO, Simulator

from .conftest import Result, Running, login_args
from .inprocess import run, tail_until_subscribed

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tail_calls(
    started: type[Running], sim: Simulator, *args: str, calls: int = 3, **env: str
) -> tuple[Result, list[list[object]]]:
    """Tail while the simulator places `calls` whole two-leg calls; returns what was printed.

    The calls are made up first, so the tail can end by --count on their last event instead of
    racing a --duration."""
    placed = [
        [
            item.event
            for item in sim.traffic.call(
                DEMO.account_id,
                start=time.time(),
                answered=bool(n),
                hangup_cause="NORMAL_CLEARING" if n else "USER_BUSY",
            )
        ]
        for n in range(calls)
    ]
    count = str(sum(len(call) for call in placed))
    process = started(
        *login_args(sim), "-b", "call.*.*", "--count", count, *args, **{**PASSWORD, **env}
    )
    process.wait_for_stderr("subscribed to")
    for call in placed:
        for event in call:
            sim.publish_event(event)
    return process.finish(), placed  # type: ignore[return-value]


def test_match_exclude_and_count_on_a_real_stream(busy_sim: Simulator) -> None:
    result = run(
        *login_args(busy_sim),
        "-b",
        "call.*.*",
        "-b",
        "object.*.*",
        "--match",
        "name=CHANNEL_*",
        "--match",
        "data.call_direction=inbound",
        "--exclude",
        "name=CHANNEL_DESTROY",
        "--count",
        "15",
        **PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    events = result.json_lines()
    assert len(events) == 15  # --count counts only what passes
    for event in events:
        assert event["name"].startswith("CHANNEL_") and event["name"] != "CHANNEL_DESTROY"
        assert event["data"]["call_direction"] == "inbound"


def test_grep_searches_the_event_text(busy_sim: Simulator) -> None:
    result = run(
        *login_args(busy_sim),
        "-b",
        "object.*.*",
        "--grep",
        '"type":"(user|device)"',
        "--count",
        "5",
        **PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    assert {e["data"]["type"] for e in result.json_lines()} <= {"user", "device"}


def test_call_id_follows_every_leg_of_one_call(sim: Simulator, started: type[Running]) -> None:
    placed = [
        item.event
        for item in sim.traffic.call(DEMO.account_id, start=time.time(), call_id="the-call")
    ]
    args = ["--call-id", "the-call", "--count", str(len(placed))]
    process = started(*login_args(sim), "-b", "call.*.*", *args, **PASSWORD)
    process.wait_for_stderr("subscribed to")
    sim.publish_call(call_id="other-call")  # first: had it shown, the-call's last would not
    for event in placed:
        sim.publish_event(event)
    result = process.finish()
    legs = {e.data["call_id"] for e in placed}
    assert len(legs) == 2  # the A leg and the bridged B leg
    shown = result.json_lines()
    assert {e["data"]["call_id"] for e in shown} == legs
    assert len(shown) == len(placed)


def test_fields_give_a_table_in_pretty_mode_and_reduced_json(
    sim: Simulator, started: type[Running]
) -> None:
    fields = "name,data.call_id,data.hangup_cause"
    pretty, placed = tail_calls(started, sim, "-o", "pretty", "--fields", fields, calls=1)
    header, *rows = (line.split() for line in pretty.stdout.splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", header[0])
    assert header[1:] == ["name", "call_id", "hangup_cause"]  # named by their last key
    rows = [r for r in rows if r != header]  # the header again, above a wider value
    assert [r[1] for r in rows] == [e.name for e in placed[0]]  # type: ignore[attr-defined]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d(\.\d{3})?", r[0]) for r in rows)
    assert all(len(r) in (3, 4) for r in rows) and rows[-1][3] == "USER_BUSY"
    as_json, _ = tail_calls(started, sim, "--fields", fields, calls=1)
    objects = as_json.json_lines()
    assert set(objects[0]) == {"name", "data"} and set(objects[0]["data"]) == {"call_id"}
    assert objects[-1]["data"]["hangup_cause"] == "USER_BUSY"


def test_call_timelines_group_legs_and_show_ring_and_talk_time(
    sim: Simulator, started: type[Running]
) -> None:
    result, placed = tail_calls(started, sim, "-o", "pretty", "--calls", calls=2)
    lines = [line for line in result.stdout.splitlines() if not line.startswith("── ")]
    assert all(re.match(r"#[12] +[┌│└] \d\d:\d\d:\d\d\.\d{3} ", line) for line in lines), lines
    headers = [line for line in lines if re.match(r"#\d +┌ ", line)]
    assert len(headers) == 2  # one per call, both legs under it
    assert sum(bool(re.match(r"#\d +│ ", line)) for line in lines) == sum(len(c) for c in placed)
    closing = [line for line in lines if re.match(r"#\d +└ ", line)]
    assert len(closing) == 2
    # The first call was not answered: ring time and its cause, no talk time.
    assert re.search(r"unanswered, ring \d+s  USER_BUSY", closing[0]), closing
    assert "talk" not in closing[0]
    assert re.search(r"answered, talk \d+s, ring \d+s  NORMAL_CLEARING", closing[1]), closing


def test_calls_needs_pretty_output(sim: Simulator) -> None:
    result = run(*login_args(sim), "-b", "call.*.*", "--calls", "--json", **PASSWORD)
    assert result.returncode == 2 and "--calls" in result.stderr


@pytest.mark.smoke
def test_a_replayed_recording_prints_what_the_live_tail_printed(
    busy_sim: Simulator, tmp_path: Path
) -> None:
    recording = tmp_path / "incident.jsonl"
    args = ["-b", "call.*.*", "-b", "call.CHANNEL_CREATE.*", "--count", "40"]
    live = run(*login_args(busy_sim), *args, "--record", str(recording), **PASSWORD)
    assert live.returncode == 0, live.stderr
    assert stat.S_IMODE(os.stat(recording).st_mode) == 0o600
    lines = recording.read_text().splitlines()
    assert all({"received_at", "text"} <= set(json.loads(line)) for line in lines)
    assert any('"action":"reply"' in json.loads(line)["text"] for line in lines)
    replayed = run("replay", str(recording), "--count", "40")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == live.stdout
    pretty_live = run("replay", str(recording), "-o", "pretty", "--color", "never")
    assert len(pretty_live.stdout.splitlines()) >= 40


def test_replay_filters_and_realtime(tmp_path: Path) -> None:
    recording = tmp_path / "r.jsonl"
    frames = [
        {
            "action": "event",
            "name": "CHANNEL_CREATE",
            "routing_key": "call.a.CHANNEL_CREATE.1",
            "subscribed_key": "call.*.*",
            "data": {"call_id": "1", "msg_id": "m1"},
        },
        {
            "action": "event",
            "name": "CHANNEL_DESTROY",
            "routing_key": "call.a.CHANNEL_DESTROY.1",
            "subscribed_key": "call.*.*",
            "data": {"call_id": "1", "msg_id": "m2"},
        },
    ]
    recording.write_text(
        "".join(
            json.dumps({"received_at": 1000.0 + n * 0.4, "text": json.dumps(f)}) + "\n"
            for n, f in enumerate(frames)
        )
        + json.dumps({"received_at": 1001.0, "opcode": 2, "bytes": "AAE="})
        + "\n"
    )
    only_destroy = run("replay", str(recording), "--match", "name=*DESTROY")
    assert [e["name"] for e in only_destroy.json_lines()] == ["CHANNEL_DESTROY"]
    assert "skipped 1 frame" in only_destroy.stderr
    timed = run("replay", str(recording), "--realtime")
    assert timed.returncode == 0 and len(timed.stdout.splitlines()) == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text("this is not a recording\n")
    result = run("replay", str(broken))
    assert result.returncode == 2 and "line 1" in result.stderr


def test_summary_counts_events_per_name_and_binding(sim: Simulator, started: type[Running]) -> None:
    result, placed = tail_calls(started, sim, "--summary", calls=2)
    total = sum(len(c) for c in placed)
    assert f"summary: {total} events in" in result.stderr
    assert re.search(r"\d+\s+CHANNEL_CREATE\s+call\.\*\.\*", result.stderr)
    assert "0 gaps" in result.stderr


def test_bindings_lists_the_servers_catalogue_and_feeds_completion(
    sim: Simulator, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = run("bindings", "--url", sim.crossbar_url)
    assert listed.returncode == 0, listed.stderr
    assert "call.CHANNEL_CREATE.{CALL_ID}" in listed.stdout.splitlines()
    assert "object.doc_created.user" in listed.stdout.splitlines()
    as_json = run("bindings", "--url", sim.crossbar_url, "-o", "json").json_lines()
    assert {item["module"] for item in as_json} >= {"call", "object", "fax", "conference"}
    builtin = run("bindings")
    assert builtin.returncode == 0 and "built-in catalogue" in builtin.stderr
    capsys.readouterr()
    completion = {
        "_KAZOO_TAIL_COMPLETE": "bash_complete",
        "COMP_WORDS": "kazoo-tail -b object.doc_created.",
        "COMP_CWORD": "2",
    }
    assert run(**completion).returncode == 0  # click writes the offers to sys.stdout
    out = capsys.readouterr().out
    offered = [line.split(",", 1)[1] for line in out.splitlines()]
    assert "object.doc_created.user" in offered and "object.doc_created.*" in offered
    assert all(o.startswith("object.doc_created.") for o in offered)


def test_descendants_are_subscribed_on_the_same_socket(sim: Simulator) -> None:
    result = tail_until_subscribed(
        sim, *login_args(sim), "-b", "call.*.*", "--descendants", **PASSWORD
    )
    assert result.returncode == 0, result.stderr
    for account in (DEMO.account_id, *DEMO.sub_account_ids):
        assert account in result.stderr
    assert sim.stats.connections == 1 and sim.stats.subscribes == 1 + len(DEMO.sub_account_ids)


def test_pretty_timestamps_are_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from kazoo_tail.kazoo.events import Event
    from kazoo_tail.kazoo.time import GREGORIAN_TO_UNIX
    from kazoo_tail.output.pretty import PrettyRenderer, TimelineRenderer, clock, event_time

    event = Event(b"", {"data": {"timestamp": 63769746600}}, 5.0)
    assert event_time(event) == 63769746600 - GREGORIAN_TO_UNIX
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock(event_time(event)))
    assert event_time(Event(b"", {"data": {}}, 5.0)) == 5.0

    # Kazoo stamps 2020-10-12 18:30:00 UTC and the event arrives 1.25 s later; in a zone
    # 5:30 east of UTC (a POSIX TZ, no tz database needed) both read just after midnight.
    envelope = {
        "action": "event",
        "subscribed_key": "call.*.*",
        "name": "CHANNEL_CREATE",
        "routing_key": "call.a.CHANNEL_CREATE.c1",
        "data": {"call_id": "c1", "timestamp": 63769746600},
    }
    arrived = Event(json.dumps(envelope).encode(), envelope, 1602527401.25)
    buffer = io.StringIO()
    try:
        with monkeypatch.context() as patch:
            patch.setenv("TZ", "XST-5:30")
            time.tzset()
            for calls in (False, True):
                console = Console(file=buffer, force_terminal=True, color_system="truecolor")
                pretty = PrettyRenderer(console, width=200)
                (TimelineRenderer(pretty) if calls else pretty).render(arrived)
    finally:
        time.tzset()
    output = buffer.getvalue()
    assert "\x1b[" in output  # coloured; the times must read the same once colour is gone
    date, line, date_again, header, leg = ANSI.sub("", output).splitlines()
    assert date == date_again == "── 2020-10-13 ──"  # the local date, past midnight there
    assert line.startswith("00:00:01.250 CHANNEL_CREATE")  # when it arrived, to the ms
    assert re.match(r"#1 +┌ 00:00:01\.250 call .* c1$", header)
    assert re.match(r"#1 +│ 00:00:01\.250 CHANNEL_CREATE", leg)


RECORDINGS = Path(__file__).parent / "recordings"


def test_rendering_of_the_spec_samples_is_unchanged() -> None:
    """Replaying a recording of the spec's sample events gives exactly the reviewed output.

    After an intended change of format, regenerate with
    COLUMNS=200 TZ=UTC kazoo-tail replay tests/recordings/samples.jsonl -o pretty --color never
    [--calls] (the width every test runs at, see conftest.py)
    """
    recording = str(RECORDINGS / "samples.jsonl")
    for extra, golden in (([], "samples.pretty.txt"), (["--calls"], "samples.calls.txt")):
        result = run("replay", recording, "-o", "pretty", "--color", "never", *extra, TZ="UTC")
        assert result.returncode == 0, result.stderr
        assert result.stdout == (RECORDINGS / golden).read_text()
    as_json = run("replay", recording, "--json").json_lines()
    assert [event["name"] for event in as_json] == [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_DESTROY",
        "doc_created",
        "status",
    ]
