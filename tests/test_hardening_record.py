"""--record and replay against what a hostile server, a shared machine and a full disk do to
them (issue 10), and against a kill or a failed write (issue 20): real sockets on 127.0.0.1,
real files and FIFOs, the installed command."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kazoo_tail.features.record import Recorder, RecordError
from kazoo_tail.net.frames import OP_TEXT
from kazoo_tail.simulator import DEMO
from tests.conftest import (
    BIN,
    Running,
    ScriptedServer,
    kazoo_tail_env,
    login_args,
    run,
    tail_until_subscribed,
    wait_until,
)

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

    from kazoo_tail.simulator import Simulator

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


def recorded_texts(recording: Path) -> list[Any]:
    """What each line's frame says, JSON escapes undone."""
    lines = recording.read_text().splitlines()
    return [json.loads(json.loads(line)["text"]) for line in lines]


def test_a_torn_recording_is_appended_on_a_fresh_line_and_replayed_past(
    sim: Simulator, tmp_path: Path
) -> None:
    recording = tmp_path / "incident.jsonl"
    args = [*login_args(sim), "-b", "call.*.*", "--record", str(recording)]
    first = tail_until_subscribed(sim, *args, **PASSWORD)
    assert first.returncode == 0, first.stderr
    whole = recording.read_bytes()
    torn_line_number = whole.count(b"\n")  # the last line, the event, loses its second half
    last_line_start = whole.rstrip(b"\n").rfind(b"\n") + 1
    torn = whole[: (last_line_start + len(whole)) // 2]
    recording.write_bytes(torn)
    second = tail_until_subscribed(sim, *args, **PASSWORD)
    assert second.returncode == 0, second.stderr
    # The half line stands alone: the second session starts below it, not glued onto it.
    assert recording.read_bytes().startswith(torn + b"\n{")

    replayed = run("replay", str(recording))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == second.stdout  # the second session's event, whole
    assert replayed.stderr.count("\n") == 1
    assert f"{recording} line {torn_line_number} is not a recording line" in replayed.stderr


def test_a_reply_echoing_the_token_is_recorded_without_it_wherever_it_stands(
    sim: Simulator, scripted: ScriptedServer, tmp_path: Path
) -> None:
    token = sim.mint_token()
    escaped = "\\u0065" + token[1:]  # the same token to any JSON reader

    def echo_the_token(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            # request_id first, as some builds order it: "reply" is far from the start.
            ws.send(
                f'{{"request_id":"{request["request_id"]}","status":"error",'
                f'"data":{{"errors":["failed to authenticate token {request["auth_token"]}"],'
                f'"message":"failed to authenticate token {escaped}"}},"action":"reply"}}'
            )

    recording = tmp_path / "incident.jsonl"
    url = scripted(echo_the_token)
    result = run(
        "--ws-url", url, "-b", "call.*.*", "--record", str(recording), KAZOO_AUTH_TOKEN=token
    )
    assert result.returncode == 3, result.stderr
    assert token not in result.stderr
    [reply, *_] = recorded_texts(recording)
    assert reply["action"] == "reply" and reply["status"] == "error"
    assert "failed to authenticate token" in reply["data"]["errors"][0]
    assert token not in recording.read_text() and token not in str(recorded_texts(recording))


def test_a_full_disk_under_the_recording_is_one_sentence_naming_it(sim: Simulator) -> None:
    args = [*login_args(sim), "-b", "call.*.*", "--count", "1", "--record", "/dev/full"]
    # Every frame is written as it arrives: the subscription's reply is the first to fail.
    result = run(*args, **PASSWORD)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last == (
        "kazoo-tail: error: cannot write the recording /dev/full: No space left on device "
        "(this run recorded 0 frames)"
    )
    assert "unexpected" not in result.stderr


def test_a_recording_is_made_private_and_a_symbolic_link_is_not_followed(
    sim: Simulator, tmp_path: Path
) -> None:
    shared = tmp_path / "shared.jsonl"
    shared.write_text("")
    shared.chmod(0o644)
    args = [*login_args(sim), "-b", "call.*.*"]
    result = tail_until_subscribed(sim, *args, "--record", str(shared), **PASSWORD)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o600
    assert shared.read_text().count("\n") >= 2

    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(elsewhere)
    refused = run(*args, "--record", str(link), **PASSWORD)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"kazoo-tail: error: cannot write the recording {link}: it is a symbolic link, "
        f"which is not followed (give the file it points to)\n"
    )
    assert elsewhere.read_text() == "untouched\n"


def test_replaying_an_endless_line_is_an_error_not_all_memory() -> None:
    def little_memory() -> None:
        # Before the fix, a MemoryError within a second rather than the machine's memory.
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    completed = subprocess.run(
        [str(BIN), "replay", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        env=kazoo_tail_env(),
        preexec_fn=little_memory,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == (
        "kazoo-tail: error: /dev/zero is not a kazoo-tail recording: line 1 is longer than 64 MiB\n"
    )


# -- what was printed is in the file (issue 20) ----------------------------------------------


def recorded_msg_ids(recording: Path) -> list[str]:
    """The msg_id of every event frame in the file, in order."""
    ids = []
    for line in recording.read_bytes().splitlines():
        frame = json.loads(json.loads(line)["text"])
        if frame.get("action") == "event":
            ids.append(frame["data"]["msg_id"])
    return ids


def publish_calls(sim: Simulator, count: int, tag: str) -> list[str]:
    ids = [f"{tag}-{n}" for n in range(count)]
    for msg_id in ids:
        sim.publish(
            f"call.{DEMO.account_id}.CHANNEL_CREATE.{msg_id}",
            "CHANNEL_CREATE",
            {"call_id": msg_id, "msg_id": msg_id, "account_id": DEMO.account_id},
        )
    return ids


@pytest.mark.e2e
@pytest.mark.parametrize("printed", [1, 2, 7])
def test_every_event_printed_before_a_sigkill_is_in_the_recording(
    sim: Simulator, background: type[Running], tmp_path: Path, printed: int
) -> None:
    recording = tmp_path / "incident.jsonl"
    recording.write_bytes(b'{"received_at": 1.0, "text": "{}"}\n')  # a run before this one
    args = [*login_args(sim), "-b", "call.*.*", "--json", "--record", str(recording)]
    process = background(*args, **PASSWORD)
    process.wait_for_stderr("subscribed to")
    published = publish_calls(sim, printed, f"kill-{printed}")
    # Killed as soon as the lines are read: well within the idle tick (0.25 s) that flushed
    # the buffer the recording used to have.
    wait_until(lambda: len(process.stdout_lines) >= printed, what=lambda: process.stderr)
    process.process.send_signal(signal.SIGKILL)
    process.kill()
    shown = [json.loads(line)["data"]["msg_id"] for line in process.stdout_lines]
    assert shown[:printed] == published
    assert set(shown) <= set(recorded_msg_ids(recording))
    assert recording.read_bytes().startswith(b'{"received_at": 1.0, "text": "{}"}\n{')


# The file size limit the full-disk test runs under: large enough for whatever else the
# process writes (a coverage data file), so only the recording, filled close to it, hits it.
FILE_SIZE_LIMIT = 1 << 20


@pytest.mark.e2e
@pytest.mark.parametrize("torn", [False, True], ids=["after-a-whole-line", "after-a-torn-line"])
def test_a_recording_cut_by_the_file_size_limit_ends_with_its_last_whole_line(
    sim: Simulator, tmp_path: Path, torn: bool
) -> None:
    recording = tmp_path / "incident.jsonl"
    old_line = b'{"received_at": 1.0, "text": "{}"}\n'
    # A run before this one, ending 2,000 bytes short of the limit: room for the subscription's
    # reply, not for the event below, which is cut by the limit part way through.
    before = old_line * ((FILE_SIZE_LIMIT - 2000) // len(old_line))
    if torn:
        before += old_line[:20]
    recording.write_bytes(before)

    def file_size_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    args = [*login_args(sim), "-b", "call.*.*", "--json", "--record", str(recording)]
    process = subprocess.Popen(
        [str(BIN), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=kazoo_tail_env(**PASSWORD),
        preexec_fn=file_size_limit,
    )
    try:
        assert process.stderr is not None
        said = [process.stderr.readline().decode()]
        while "subscribed to" not in said[-1] and said[-1]:
            said.append(process.stderr.readline().decode())
        assert "subscribed to" in said[-1], "".join(said)
        sim.publish(
            f"call.{DEMO.account_id}.CHANNEL_CREATE.big",
            "CHANNEL_CREATE",
            {"call_id": "big", "msg_id": "big", "padding": "x" * 4000},
        )
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, stderr
    assert stdout == b""  # the event that could not be recorded was not printed either
    assert stderr.decode().splitlines()[-1] == (
        f"kazoo-tail: error: cannot write the recording {recording}: File too large; it ends "
        f"with its last whole line (this run recorded 1 frame)"
    )
    after = recording.read_bytes()
    fresh_line = b"\n" if torn else b""
    assert after.startswith(before + fresh_line + b'{"received_at":')
    assert after.endswith(b"\n")
    new_lines = after[len(before + fresh_line) :].splitlines()
    assert [json.loads(json.loads(line)["text"])["action"] for line in new_lines] == ["reply"]


def test_each_frame_is_in_the_file_as_soon_as_it_is_recorded(tmp_path: Path) -> None:
    recording = tmp_path / "incident.jsonl"
    recording.write_bytes(b'{"received_at": 1.0, "te')  # a run before this one, cut short
    recorder = Recorder(recording)
    try:
        recorder.frame(OP_TEXT, b'{"action":"event","name":"first"}', 2.5)
        # Nothing flushed, nothing closed: already the operating system's.
        assert recording.read_bytes() == (
            b'{"received_at": 1.0, "te\n'
            b'{"received_at":2.5,"text":"{\\"action\\":\\"event\\",\\"name\\":\\"first\\"}"}\n'
        )
        recorder.flush()
    finally:
        recorder.close()
    recorder.close()  # the tail and the board close it again on their way out


def test_a_fifo_whose_reader_left_is_reported_not_cut(tmp_path: Path) -> None:
    fifo = tmp_path / "to-gzip"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that opening it to write goes on
    recorder = Recorder(fifo)
    try:
        recorder.frame(OP_TEXT, b'{"action":"event"}', 2.5)
        assert os.read(reader, 1000) == b'{"received_at":2.5,"text":"{\\"action\\":\\"event\\"}"}\n'
        os.close(reader)
        with pytest.raises(RecordError) as raised:
            recorder.frame(OP_TEXT, b'{"action":"event"}', 3.5)
    finally:
        recorder.close()
    assert str(raised.value) == (
        f"cannot write the recording {fifo}: Broken pipe (this run recorded 1 frame)"
    )
