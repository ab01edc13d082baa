"""A stdout nobody reads (``| less`` paused, a slow ``jq``) must not stop the tail reading its
websocket: Kazoo 4.3's blackhole drops every frame for a socket whose queue holds more than
50. The installed kazoo-tail runs against the simulator with that limit, its stdout on a pipe
the test leaves unread while it publishes."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import Running, login_args, wait_until
from .test_resilience import FAST, pipe_bytes

pytestmark = pytest.mark.e2e  # pipes and file descriptors: the real process

PAD = "x" * 4000  # ~4.3 KB frames: a few thousand are more than any kernel buffers on the way


@pytest.fixture
def shedding_sim() -> Iterator[Simulator]:
    """Like ``sim``, with 4.3's outbound limit (passed explicitly: it may become the default)."""
    config = SimulatorConfig(
        event_rate=0, early_events=False, advertise_ws_url=True, seed=7, max_queued_messages=50
    )
    with Simulator(config) as simulator:
        yield simulator


def publish_numbered(simulator: Simulator, n: int) -> int:
    """Publish call event number ``n``, padded to ~4.3 KB; how many sockets queued it."""
    return simulator.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.c-{n}",
        "CHANNEL_CREATE",
        {
            "call_id": f"c-{n}",
            "msg_id": f"m-{n}",
            "account_id": DEMO.account_id,
            "n": n,
            "pad": PAD,
        },
    )


def publish_at_rate(simulator: Simulator, count: int, rate: float = 1000.0) -> int:
    """Publish ``count`` numbered call events at ``rate`` a second (the load under test, not a
    wait); returns how many the server queued rather than shed."""
    queued = 0
    started = time.monotonic()
    for n in range(count):
        ahead = started + n / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        queued += publish_numbered(simulator, n)
    return queued


class PipeReader:
    """Reads a pipe's read end in a thread, once told to."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> PipeReader:
        self.thread.start()
        return self

    def _read(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                self.data += chunk

    def lines(self) -> int:
        return self.data.count(b"\n")

    def numbers(self) -> list[int]:
        return [json.loads(line)["data"]["n"] for line in bytes(self.data).splitlines()]


def unread_stdout(
    background: type[Running], simulator: Simulator, *args: str
) -> tuple[Running, int]:
    read_end, write_end = os.pipe()
    process = background(*login_args(simulator), "-b", "call.*.*", *args, stdout=write_end, **FAST)
    os.close(write_end)  # the tail holds the only write end
    process.wait_for_stderr("subscribed to")
    return process, read_end


def dropped_on_stderr(stderr: str) -> int:
    return sum(int(n.replace(",", "")) for n in re.findall(r"dropped ([\d,]+) events?", stderr))


def test_an_unread_stdout_loses_nothing_on_a_server_that_sheds(
    shedding_sim: Simulator, background: type[Running]
) -> None:
    """2,000 events (~8.6 MB) at 500/s while stdout is not read at all: 1 MiB in memory, the
    rest in the spill file, and the server never has more than 50 queued. (At 1,000/s, 50
    queued is 50 ms: a tail traced by coverage on a loaded 2-core machine was once descheduled
    that long, and the server shed through no fault of the tail's.)"""
    count = 2000
    process, read_end = unread_stdout(
        background, shedding_sim, "--count", str(count), "--buffer-size", "1M"
    )
    queued = publish_at_rate(shedding_sim, count, rate=500.0)
    assert queued == count, f"the server shed {count - queued} events: the socket was not read"
    assert process.process.poll() is None  # still holding events stdout has not taken
    reader = PipeReader(read_end).start()
    result = process.finish()
    reader.thread.join(10)
    assert result.returncode == 0, result.stderr
    assert reader.numbers() == list(range(count))  # each exactly once, in order
    assert "go to a temporary file" in result.stderr
    assert "dropped" not in result.stderr and "lost" not in result.stderr


def test_a_tiny_buffer_drops_whole_events_and_says_how_many(
    shedding_sim: Simulator, background: type[Running]
) -> None:
    process, read_end = unread_stdout(
        background, shedding_sim, "--buffer-size", "64K", "--spill-size", "0"
    )
    queued = publish_at_rate(shedding_sim, 400)  # ~1.7 MB: 64 KiB + a pipe's worth get through
    reader = PipeReader(read_end).start()  # the buffer empties: the episode is over, reported

    def accounted() -> bool:
        return reader.lines() + dropped_on_stderr(process.stderr) == queued

    wait_until(
        accounted,
        what=lambda: f"{reader.lines()} lines and {process.stderr!r} for {queued} events",
    )
    process.process.send_signal(signal.SIGINT)
    result = process.finish()
    reader.thread.join(10)
    assert result.returncode == 130
    numbers = reader.numbers()  # whole lines only
    dropped = dropped_on_stderr(result.stderr)
    assert dropped > 0 and len(numbers) + dropped == queued
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert "because the 64 KiB buffer was full and spilling to disk is off" in result.stderr
    assert "Traceback" not in result.stderr


def test_pings_keep_flowing_while_stdout_is_blocked(
    shedding_sim: Simulator, background: type[Running]
) -> None:
    """With a dead-link deadline of 1 s, a tail stuck writing to stdout would stop pinging and
    reconnect; this one goes on pinging on the same connection."""
    process, read_end = unread_stdout(background, shedding_sim, "--ping-interval", "0.25")
    publish_at_rate(shedding_sim, 300)  # ~1.3 MB, far more than the pipe holds
    wait_until(lambda: pipe_bytes(read_end) > 0, what="stdout written to")
    pings = shedding_sim.stats.ws_pings
    wait_until(
        lambda: shedding_sim.stats.ws_pings >= pings + 8,
        what="pings while stdout is not read",
    )
    assert process.process.poll() is None and shedding_sim.stats.connections == 1
    assert "lost" not in process.stderr
    os.close(read_end)  # the reader leaves: the tail ends quietly
    result = process.finish()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error" not in result.stderr


def test_a_stdout_that_cannot_be_written_is_one_sentence_and_exit_1(
    sim: Simulator, background: type[Running]
) -> None:
    with open("/dev/full", "wb") as full:
        process = background(
            *login_args(sim), "-b", "call.*.*", "--count", "1", stdout=full.fileno(), **FAST
        )
    process.wait_for_stderr("subscribed to")
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.c-1",
        "CHANNEL_CREATE",
        {"call_id": "c-1", "msg_id": "m-1", "account_id": DEMO.account_id},
    )
    result = process.finish()
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "kazoo-tail: error: cannot write to stdout: No space left on device"
    )
