"""The tool's own stall (SIGSTOP, Ctrl-Z, a closed laptop lid) is a gap like any other: on a
4.3-like node that sheds and kills a socket whose send blocks, every event produced while the
tool was stopped is either printed once or inside an announced window that covers the stop,
and the tool is subscribed and printing again soon after SIGCONT.

A subprocess test: it needs a real process to stop."""

from __future__ import annotations

import calendar
import json
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from tests.conftest import Running, login_args, wait_until
from tests.test_blocked_stdout import publish_numbered

pytestmark = pytest.mark.e2e

RATE = 1000.0  # events a second while the tool is stopped
WINDOW = re.compile(
    r"events from (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z to "
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z \([\d.]+s\) may have been missed"
)


@pytest.fixture(
    params=[
        pytest.param((2.0, 0.0), id="until-killed"),
        # The issue's measurement: 4.3's own 5 s send timeout, stopped for 25 s.
        pytest.param((5.0, 25.0), id="25s", marks=pytest.mark.soak),
    ]
)
def node_43(request: pytest.FixtureRequest) -> Iterator[tuple[Simulator, float]]:
    """4.3's limits (50 queued frames, a socket whose send blocks this long is killed), and
    how long to keep the tool stopped (0: until the node kills its socket)."""
    send_timeout, stop = request.param
    config = SimulatorConfig(
        event_rate=0,
        early_events=False,
        advertise_ws_url=True,
        seed=3,
        max_queued_messages=50,
        send_timeout=send_timeout,
    )
    with Simulator(config) as simulator:
        yield simulator, stop


def publish(simulator: Simulator, n: int) -> float:
    """Publish call event number ``n``; when it was produced (epoch)."""
    produced = time.time()
    publish_numbered(simulator, n)
    return produced


def epoch(stamp: str) -> float:
    whole, millis = stamp.split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def printed_numbers(process: Running) -> list[int]:
    return [json.loads(line)["data"]["n"] for line in list(process.stdout_lines)]


def test_a_stopped_tail_announces_a_window_that_covers_the_stop(
    node_43: tuple[Simulator, float], background: type[Running]
) -> None:
    node_43, stop = node_43
    process = background(
        *login_args(node_43),
        "-b",
        "call.*.*",
        "--json",
        KAZOO_PASSWORD=DEMO.password,
        KAZOO_TAIL_BACKOFF_INITIAL="0.05",
        KAZOO_TAIL_BACKOFF_CAP="0.2",
    )
    process.wait_for_stderr("subscribed to")
    produced: dict[int, float] = {}
    produced[0] = publish(node_43, 0)
    wait_until(lambda: printed_numbers(process) == [0], what="the first event printed")

    stopped_at = time.time()
    os.kill(process.process.pid, signal.SIGSTOP)
    try:
        # Events keep coming while the tool is stopped, until the node gives its socket up.
        n, started = 1, time.monotonic()
        while node_43.stats.send_timeouts == 0 or time.monotonic() < started + stop:
            assert n < 60_000, "the node never gave up the stopped tool's socket"
            ahead = started + n / RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # the pace of the load under test, not a wait
            produced[n] = publish(node_43, n)
            n += 1
        for _ in range(20):  # and a few after the kill, which nobody can deliver
            produced[n] = publish(node_43, n)
            n += 1
    finally:
        continued_at = time.time()
        os.kill(process.process.pid, signal.SIGCONT)
    assert node_43.stats.frames_shed > 0  # the node did shed: nothing hides the loss

    process.wait_for_stderr("did not read the connection for")
    wait_until(
        lambda: sum("subscribed to" in line for line in process.stderr_lines) >= 2,
        timeout=30,
        what="subscribed again after the stop",
    )
    last = n
    produced[last] = publish(node_43, last)
    wait_until(lambda: last in printed_numbers(process), what="an event after the stop printed")
    process.process.send_signal(signal.SIGINT)
    result = process.finish()
    assert result.returncode == 130, result.stderr

    windows = [(epoch(a), epoch(b)) for a, b in WINDOW.findall(result.stderr)]
    assert windows, result.stderr
    # One window covers the whole stop, and it ends once the tool is subscribed again.
    covering = [(a, b) for a, b in windows if a <= stopped_at and b >= continued_at]
    assert covering, (stopped_at, continued_at, windows, result.stderr)
    assert covering[0][1] - continued_at < 10, "not subscribed within the ping timeout"
    numbers = printed_numbers(process)
    assert len(numbers) == len(set(numbers)), "an event was printed twice"
    missing = [n for n in produced if n not in numbers]
    assert missing, "nothing was lost: the test did not make the node shed"
    outside = [n for n in missing if not any(a <= produced[n] <= b for a, b in windows)]
    assert not outside, f"lost outside every announced window: {outside[:10]}"
