"""Issue 10, the output items: server text that is not quite JSON, nested too deep, or built to
hide from or reorder a terminal, shown safely by every output and left valid for jq.

Each test runs kazoo-tail in-process (tests/inprocess.py), the installed one where the process's
own stdout encoding matters: a replay of a recording written here, and where the live path
matters, a tail of a raw websocket server on 127.0.0.1 sending the frames."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from kazoo_tail.output.terminal import sanitize

from . import conftest
from .conftest import ScriptedServer, have
from .inprocess import run

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

# A token that names its account (acc1) and is never checked by the raw servers here.
TOKEN = "eyJhbGciOiJub25lIn0.eyJhY2NvdW50X2lkIjoiYWNjMSJ9.x"
PRETTY = ("-o", "pretty", "--color", "never")
Runner = Callable[..., conftest.Result]


def call_frame(name: str, data: dict[str, Any]) -> str:
    """A call event as blackhole sends it; json.dumps writes a lone surrogate as its \\u
    escape and a NaN as NaN, just as a hostile server would."""
    call_id = data.setdefault("call_id", "c1")
    return json.dumps(
        {
            "action": "event",
            "subscribed_key": "call.*.*",
            "name": name,
            "routing_key": f"call.acc1.{name}.{call_id}",
            "data": data,
        }
    )


def recording(tmp_path: Path, *frames: str) -> str:
    path = tmp_path / "hostile.jsonl"
    lines = (json.dumps({"received_at": 1764291600.0 + n, "text": f}) for n, f in enumerate(frames))
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def replay(path: str, *args: str, run_with: Runner = run, **env: str) -> str:
    """What replay prints, date lines left out; as into a pipe with no COLUMNS, nothing is
    elided, so that each test can look for the whole of what it sent."""
    result = run_with("replay", path, *args, TZ="UTC", **{"COLUMNS": "", **env})
    assert result.returncode == 0 and not result.stderr, (args, result.stderr)
    return without_dates(result.stdout)


def without_dates(text: str) -> str:
    return re.sub(r"(?m)^(──|--) \d{4}-\d\d-\d\d (──|--)\n", "", text)


def tail_scripted(
    scripted: ScriptedServer,
    *frames: str,
    args: tuple[str, ...] = (),
    run_with: Runner = run,
    **env: str,
) -> str:
    """A live tail of a server that accepts the subscribe, then sends ``frames``."""

    def script(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        reply = {"action": "reply", "request_id": request["request_id"], "status": "success"}
        ws.send(json.dumps({**reply, "data": {"subscribed": ["call.*.*"]}}))
        for frame in frames:
            ws.send(frame)
        for _ in ws:
            pass

    url = scripted(script)
    common = ("--ws-url", url, "-b", "call.*.*", "--count", str(len(frames)))
    result = run_with(*common, *args, **{"KAZOO_AUTH_TOKEN": TOKEN, "COLUMNS": "", **env})
    assert result.returncode == 0, result.stderr
    return without_dates(result.stdout)


def strict_json(line: str) -> Any:
    """What a strict consumer (jq, or any standard JSON parser) makes of a line. orjson is
    one: it refuses NaN, Infinity and lone surrogates, and it parses 1,024 levels deep."""
    return orjson.loads(line)


def assert_jq_accepts(text: str) -> None:
    if have("jq"):
        jq = subprocess.run(["jq", "-c", "."], input=text, capture_output=True, text=True)
        assert jq.returncode == 0, jq.stderr


def test_a_lone_surrogate_is_shown_escaped_by_every_output_and_json_stays_valid(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    """Item 12: "\\ud800" with no partner made pretty, --calls, --fields and replay die of
    UnicodeEncodeError, and --json passed it to jq, which aborts on it."""
    lone_high = call_frame("CHANNEL_CREATE", {"caller_id_name": "\ud800", "msg_id": "1"})
    # Upper-case hex, a lone low surrogate, and a valid pair in the same frame.
    mixed = call_frame("CHANNEL_ANSWER", {"caller_id_name": "x\udc00y 😀", "msg_id": "2"}).replace(
        "\\udc00", "\\uDC00"
    )
    # An escaped backslash before "ud800" is the six characters, not a surrogate.
    literal = call_frame("CHANNEL_DESTROY", {"caller_id_name": "\\ud800 😀", "msg_id": "3"})
    path = recording(tmp_path, lone_high, mixed, literal)

    for args in (PRETTY, (*PRETTY, "--fields", "name,data.caller_id_name")):
        # Without the --fields table's header lines, which begin with the date.
        shown = [s for s in replay(path, *args).splitlines() if not s.startswith("2025-11-28")]
        assert [("\\ud800" in line, "\\udc00" in line) for line in shown] == [
            (True, False),
            (False, True),
            (True, False),
        ], (args, shown)
        assert shown[1].count("😀") == 1 and shown[2].count("😀") == 1
    timelines = replay(path, *PRETTY, "--calls").splitlines()
    header = timelines[0]
    assert re.match(r"#1 +┌ \S+ call .* c1$", header) and '"\\ud800"' in header, timelines

    for stdout in (
        replay(path, "--json"),
        replay(path, "--fields", "name,data.caller_id_name"),
        tail_scripted(scripted, lone_high, mixed, literal, args=("--json",)),
    ):
        names = [strict_json(line)["data"]["caller_id_name"] for line in stdout.splitlines()]
        assert names == ["\\ud800", "x\\udc00y 😀", "\\ud800 😀"]
        assert_jq_accepts(stdout)


@pytest.mark.e2e  # PYTHONIOENCODING: the process's own stdout encoding
def test_text_an_ascii_stdout_cannot_encode_is_shown_escaped(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    """Item 12, the same death by another road: on a stdout whose encoding is narrower than
    Unicode (an ASCII or latin-1 locale), the first emoji a server sent ended pretty output
    with UnicodeEncodeError."""
    frame = call_frame("CHANNEL_CREATE", {"caller_id_name": "Zoë 😀", "msg_id": "1"})
    path = recording(tmp_path, frame)
    shown = '"Zo\\xeb \\U0001f600"'
    ascii = {"run_with": conftest.run, "PYTHONIOENCODING": "ascii"}
    assert shown in replay(path, *PRETTY, **ascii)
    assert shown in tail_scripted(scripted, frame, args=PRETTY, **ascii)
    timeline = replay(path, *PRETTY, "--calls", **ascii).splitlines()
    assert re.match(r"#1 +\+ \S+ call .* c1$", timeline[0]), timeline
    assert re.match(r"#1 +\| ", timeline[1]), timeline
    assert shown in timeline[0]


def nested(depth: int) -> str:
    """JSON text of an object ``depth`` levels deep, written out (json.dumps would recurse)."""
    return '{"a":' * (depth - 1) + '{"a":"bottom"' + "}" * depth


def test_a_value_nested_a_thousand_deep_is_shown_not_a_recursion_error(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    """Item 13: --fields name,data and --match on that path died with RecursionError."""
    depth = 1010
    frame = call_frame("CHANNEL_CREATE", {"msg_id": "1", "deep": "HERE"})
    frame = frame.replace('"HERE"', nested(depth))
    # Of no kind pretty knows, so that its data is shown as JSON.
    other = frame.replace('"call.*.*"', '"x.y"').replace('"msg_id": "1"', '"msg_id": "2"')
    path = recording(tmp_path, frame, other)

    bottom = ["a"] * (depth - 1)
    for args in (("--fields", "name,data"), ("--match", "data.deep.a.a=*bottom*", "--json")):
        lines = replay(path, *args).splitlines()
        assert len(lines) == 2, args
        value = strict_json(lines[0])["data"]["deep"]
        for key in bottom:
            value = value[key]
        assert value == {"a": "bottom"}, args
    table = replay(
        path, *PRETTY, "--fields", "name,data.deep,data.call_id", COLUMNS="200"
    ).splitlines()
    rows = table[1:]  # after the header
    assert len(rows) == 2 and all(row.endswith("}}}  c1") for row in rows), table
    assert all(row.count('{"a":') > 10 and "…" in row and len(row) <= 200 for row in rows)
    pretty = replay(path, *PRETTY, "--exclude", "data.deep=x").splitlines()
    assert len(pretty) == 2 and pretty[1].count('{"a":') > 10  # the start of it, not an apology
    # Where a name or a call id is expected (--call-id follows the legs an event names).
    no_name = frame.replace('"name": "CHANNEL_CREATE", ', "").replace('"deep"', '"event_name"')
    leg = frame.replace('"deep"', '"other_leg_call_id"').replace('"msg_id": "1"', '"msg_id": "3"')
    path = recording(tmp_path, no_name, leg)
    assert [line.split()[1] for line in replay(path, *PRETTY).splitlines()] == [
        "?",
        "CHANNEL_CREATE",
    ]
    assert len(replay(path, "--call-id", "c1").splitlines()) == 2

    def refuse_deeply(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        reply = {"action": "reply", "request_id": request["request_id"], "status": "error"}
        ws.send(json.dumps(reply)[:-1] + ',"data":{"errors":[' + nested(depth) + "]}}")

    url = scripted(refuse_deeply)
    result = run("--ws-url", url, "-b", "call.*.*", KAZOO_AUTH_TOKEN=TOKEN)
    assert result.returncode not in (0, 1) and "RecursionError" not in result.stderr
    assert result.stderr.count("\n") == 1 and '{"a":{"a":' in result.stderr, result.stderr
    assert len(result.stderr) < 500  # the server's text is quoted, not all of it


INVISIBLE = [0x061C, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x206A), 0xFEFF]


def test_zero_width_and_bidi_marks_are_shown_escaped_not_obeyed(tmp_path: Path) -> None:
    """Also seen: U+200B, U+200E/F, U+061C and their family passed the sanitiser, so server
    text could hide itself or reorder what the terminal shows."""
    marks = "".join(chr(code) for code in INVISIBLE)
    frame = call_frame(f"CHANNEL_CREATE{marks}", {"caller_id_name": f"Zoë{marks}日本"})
    path = recording(tmp_path, frame)
    escapes = "".join(f"\\u{code:04x}" for code in INVISIBLE)
    for args in (PRETTY, (*PRETTY, "--calls"), (*PRETTY, "--fields", "name,data.caller_id_name")):
        # Not a terminal and no COLUMNS: nothing is elided, the escapes show whole.
        result = run("replay", path, *args, "--summary", COLUMNS="")
        assert result.returncode == 0, result.stderr
        for shown in (result.stdout, result.stderr):
            assert not set(map(chr, INVISIBLE)) & set(shown), (args, shown)
        assert f"Zoë{escapes}日本" in result.stdout and f"CHANNEL_CREATE{escapes}" in result.stderr
    assert sanitize("\ud800 \udfff") == "\\ud800 \\udfff"  # a lone surrogate from anywhere else


def test_nan_and_infinity_become_null_so_json_output_stays_json(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    """Also seen: a frame with NaN or Infinity was printed raw in --json though it is not JSON.
    Such a number becomes null, as JavaScript's JSON.stringify writes it: the event is still
    shown, and a string that merely says NaN is left alone."""
    values = {"x": float("nan"), "y": [float("inf"), float("-inf")], "z": 'NaN "Infinity"'}
    frame = call_frame("CHANNEL_CREATE", {"msg_id": "1", **values})
    # A number beyond a double is valid JSON text; parsed, it is an infinity to write as null.
    huge = call_frame("CHANNEL_ANSWER", {"msg_id": "2", "x": 1.5}).replace("1.5", "1e400")
    path = recording(tmp_path, frame, huge)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    for stdout in (
        replay(path, "--json"),
        replay(path, "--fields", "data.x,data.y,data.z"),
        tail_scripted(scripted, frame, args=("--json",)),
    ):
        data = json.loads(stdout.splitlines()[0], parse_constant=refuse)["data"]
        assert (data["x"], data["y"], data["z"]) == (None, [None, None], 'NaN "Infinity"')
        assert_jq_accepts(stdout)
    fields = replay(path, "--fields", "data.x").splitlines()
    assert fields == ['{"data":{"x":null}}', '{"data":{"x":null}}']
    row = replay(path, *PRETTY, "--fields", "data.x,data.y").splitlines()[1]
    assert row.split()[1:] == ["null", "[null,null]"]
