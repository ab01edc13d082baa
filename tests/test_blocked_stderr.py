"""A stderr nobody reads (``kazoo-tail ... 2>&1 | less`` with the pager paused) must not stop
the tail: status lines wait in a bounded queue written by a thread, and a reconnect is not
delayed by the "connection lost" line it has to say. The pipes here are real and full."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import threading

import pytest

from kazoo_tail.output.nonblocking import MAX_LINES, LatestWriter
from kazoo_tail.output.terminal import StatusWriter, drain_status_lines
from kazoo_tail.simulator import DEMO, Simulator

from .conftest import BIN, kazoo_tail_env, login_args, wait_until
from .test_resilience import FAST

# Only a hang fails these; no wall-clock bound is asserted.
GENEROUS = 30.0


def full_pipe() -> tuple[int, int, int]:
    """A pipe whose buffer is full: (read end, write end, bytes in it). The write end is
    blocking again, as a process's stderr is."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filled = 0
    try:
        while True:
            filled += os.write(write_end, b"." * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return read_end, write_end, filled


class Reader:
    """Reads a pipe to its end in a thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                self.data += chunk
        self.done.set()


def returns(call: object) -> None:
    """Run ``call`` in a thread and wait (generously) for it to return: a call blocked on
    stderr never would."""
    assert callable(call)
    finished = threading.Event()

    def run() -> None:
        call()
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    assert finished.wait(GENEROUS), "the call waited for stderr"


DROPPED = re.compile(r"kazoo-tail: warning: ([\d,]+) status lines? (?:were|was) not written")


def test_status_lines_never_wait_for_a_full_stderr_and_say_how_many_were_dropped() -> None:
    read_end, write_end, filled = full_pipe()
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115
    status = StatusWriter(stream, colour=False)
    told = MAX_LINES + 37

    def tell() -> None:
        for n in range(told):
            status.info(f"line {n}")
        status.warning("the last word")

    returns(tell)
    reader = Reader(read_end)  # the reader comes back
    status.drain()
    stream.close()
    assert reader.done.wait(GENEROUS)
    lines = bytes(reader.data[filled:]).decode().split("\n")
    assert lines.pop() == ""  # ends on a whole line
    numbered = [
        int(m.group(1)) for line in lines if (m := re.fullmatch(r"kazoo-tail: line (\d+)", line))
    ]
    counts = [int(m.group(1)) for line in lines if (m := DROPPED.match(line))]
    assert len(numbered) + len(counts) + 1 == len(lines), lines  # nothing else, nothing cut
    assert lines[-1] == "kazoo-tail: warning: the last word"
    # The count where the dropped lines were: the oldest waiting ones went. A writer thread
    # slow to start may take a first count (of the drops so far) before it blocks, and the
    # rest is counted right after it: the count lines are together, and add up.
    assert counts and sum(counts) == told - len(numbered) > 0
    at = next(i for i, line in enumerate(lines) if DROPPED.match(line))
    assert all(DROPPED.match(line) for line in lines[at : at + len(counts)])
    before, after = numbered[:at], numbered[at:]
    assert before == list(range(len(before)))
    assert after == list(range(told - len(after), told))
    assert len(after) + 1 <= MAX_LINES  # the bound held


def test_writers_on_one_stream_keep_its_lines_in_order() -> None:
    """The CLI makes a StatusWriter here and there (the command's, the error boundary's):
    they share one queue, so the error sentence still comes last."""
    read_end, write_end, filled = full_pipe()
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115
    first, second = StatusWriter(stream, colour=False), StatusWriter(stream, colour=False)
    returns(lambda: [first.info("one"), second.info("two"), first.error("three")])
    reader = Reader(read_end)
    drain_status_lines()
    stream.close()
    assert reader.done.wait(GENEROUS)
    assert bytes(reader.data[filled:]).decode().splitlines() == [
        "kazoo-tail: one",
        "kazoo-tail: two",
        "kazoo-tail: error: three",
    ]


def test_a_stderr_whose_reader_left_or_that_was_closed_raises_nothing() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115
    status = StatusWriter(stream, colour=False)
    status.warning("nobody reads this")  # EPIPE, in the writer thread
    status.drain()
    status.error("nor this")
    status.drain()
    stream.close()
    closed = StatusWriter(stream, colour=False)
    closed.error("a closed stream")  # ValueError, at once
    closed.drain()


def test_a_stream_without_a_descriptor_is_written_at_once() -> None:
    stream = io.StringIO()
    StatusWriter(stream, colour=False).info("here")
    assert stream.getvalue() == "kazoo-tail: here\n"


def test_a_waiting_picture_is_replaced_by_the_next_and_control_writes_are_kept() -> None:
    read_end, write_end, filled = full_pipe()
    screen = LatestWriter(write_end)
    returns(
        lambda: [
            screen.put(b"<enter>"),
            screen.put(b"<picture 1>", latest=True),
            screen.put(b"<picture 2>", latest=True),
            screen.put(b"<picture 3>", latest=True),
            screen.put(b"<leave>"),
        ]
    )
    reader = Reader(read_end)
    screen.drain()
    os.close(write_end)
    assert reader.done.wait(GENEROUS)
    assert bytes(reader.data[filled:]) == b"<enter><picture 3><leave>"
    assert screen.replaced == 2


class Publisher:
    """Numbered call events at a steady rate (the load under test, not a wait), until told."""

    def __init__(self, simulator: Simulator, rate: float = 200.0) -> None:
        self.simulator = simulator
        self.rate = rate
        self.published = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._publish, daemon=True)
        self.thread.start()

    def _publish(self) -> None:
        while not self.stopped.wait(1 / self.rate):
            n = self.published
            self.simulator.publish(
                f"call.{DEMO.account_id}.CHANNEL_CREATE.c-{n}",
                "CHANNEL_CREATE",
                {"call_id": f"c-{n}", "msg_id": f"m-{n}", "account_id": DEMO.account_id, "n": n},
            )
            self.published = n + 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(GENEROUS)


@pytest.mark.e2e
def test_a_blocked_2_to_1_pipe_does_not_delay_the_reconnect(sim: Simulator) -> None:
    """``kazoo-tail 2>&1 | less``, the pager paused: stdout and stderr share one full pipe
    while the node (4.3-like: it sheds past 50 queued frames) drops the link and events go on
    being published. The tail resubscribes at once, nothing is shed, and it ends on --count
    once the pipe is read again."""
    assert sim.config.kazoo_version == "4.3" and sim.config.max_queued_messages == 50
    read_end, write_end, filled = full_pipe()
    count = 200
    process = subprocess.Popen(
        [str(BIN), *login_args(sim), "-b", "call.*.*", "--count", str(count)],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=write_end,
        env=kazoo_tail_env(**FAST),
    )
    os.close(write_end)  # the tail holds the only write end
    publisher: Publisher | None = None
    try:
        wait_until(lambda: sim.stats.subscribes == 1, what="the first subscription")
        publisher = Publisher(sim)
        wait_until(lambda: publisher.published >= 50, what="events while the pipe is full")
        sim.drop_connections()
        # Saying "connection lost; reconnecting" into the full pipe does not hold it up.
        wait_until(lambda: sim.stats.subscribes == 2, timeout=5, what="resubscribed")
        resubscribed = publisher.published
        wait_until(lambda: publisher.published >= resubscribed + 50, what="more events")
        assert process.poll() is None  # the pipe is still full: it cannot have ended
        reader = Reader(read_end)  # the pager goes on
        assert process.wait(timeout=GENEROUS) == 0
        assert reader.done.wait(GENEROUS)
    finally:
        if publisher is not None:
            publisher.stop()
        if process.poll() is None:
            process.kill()
            process.wait()
    stats = sim.stats
    assert stats.frames_shed == 0 and stats.replies_shed == 0 and stats.send_timeouts == 0
    lines = bytes(reader.data[filled:]).decode().splitlines()
    events = [json.loads(line)["data"]["n"] for line in lines if line.startswith("{")]
    status = [line for line in lines if line.startswith("kazoo-tail: ")]
    assert len(events) + len(status) == len(lines), lines  # every line whole
    assert len(events) == count and events == sorted(set(events))
    assert any("reconnecting" in line for line in status), status
    assert sum("subscribed to" in line for line in status) == 2, status


def blocked_stderr_tail(
    sim: Simulator, *args: str
) -> tuple[subprocess.Popen[bytes], int, int, Reader]:
    """kazoo-tail with stderr on a full pipe and stdout on a pipe read here: returns the
    process, stderr's read end, the filler's size, and stdout's reader."""
    read_end, write_end, filled = full_pipe()
    out_read, out_write = os.pipe()
    process = subprocess.Popen(
        [str(BIN), *login_args(sim), "-b", "call.*.*", *args],
        stdin=subprocess.DEVNULL,
        stdout=out_write,
        stderr=write_end,
        env=kazoo_tail_env(**FAST),
    )
    os.close(write_end)
    os.close(out_write)
    return process, read_end, filled, Reader(out_read)


@pytest.mark.e2e
def test_the_last_lines_reach_a_blocked_stderr_before_the_tail_exits(sim: Simulator) -> None:
    """--summary's lines are written at the very end: the tail waits for stderr to take them."""
    process, read_end, filled, stdout = blocked_stderr_tail(sim, "--count", "1", "--summary")
    try:
        wait_until(lambda: sim.stats.subscribes == 1, what="subscribed")
        publish(sim, 1)
        wait_until(lambda: b'"n":1' in stdout.data, what="the event on stdout")
        assert process.poll() is None  # its status lines are not written yet: it waits
        stderr = Reader(read_end)
        assert process.wait(timeout=GENEROUS) == 0
        assert stderr.done.wait(GENEROUS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = bytes(stderr.data[filled:]).decode().splitlines()
    assert any("subscribed to" in line for line in lines), lines
    assert any("summary: 1 event in" in line for line in lines), lines


@pytest.mark.e2e
def test_the_error_sentence_reaches_a_blocked_stderr_with_its_exit_code() -> None:
    from .test_login_prompts import closed_port_url

    read_end, write_end, filled = full_pipe()
    process = subprocess.Popen(
        [
            str(BIN),
            "--url",
            closed_port_url(),
            "--account-name",
            "demo",
            "--username",
            "demo",
            "-b",
            "call.*.*",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
        env=kazoo_tail_env(**FAST),
    )
    os.close(write_end)
    stderr = Reader(read_end)
    try:
        assert process.wait(timeout=GENEROUS) == 4
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stderr.done.wait(GENEROUS)
    lines = bytes(stderr.data[filled:]).decode().splitlines()
    assert lines[-1].startswith("kazoo-tail: error: cannot connect"), lines


@pytest.mark.e2e
def test_ctrl_c_ends_the_wait_for_a_blocked_stderr(sim: Simulator) -> None:
    process, read_end, _, stdout = blocked_stderr_tail(sim, "--count", "1")
    try:
        wait_until(lambda: sim.stats.subscribes == 1, what="subscribed")
        publish(sim, 1)
        wait_until(lambda: b'"n":1' in stdout.data, what="the event on stdout")
        process.send_signal(signal.SIGINT)  # stderr is still not read
        assert process.wait(timeout=GENEROUS) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(read_end)


def publish(simulator: Simulator, n: int) -> None:
    simulator.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.c-{n}",
        "CHANNEL_CREATE",
        {"call_id": f"c-{n}", "msg_id": f"m-{n}", "account_id": DEMO.account_id, "n": n},
    )
