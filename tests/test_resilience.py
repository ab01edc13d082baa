"""Never silently stop: faults injected through the simulator, over real sockets, with the
backoff shrunk by configuration so the suite stays fast."""

from __future__ import annotations

import array
import fcntl
import json
import os
import re
import signal
import subprocess
import termios
from urllib.parse import urlsplit

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from . import inprocess
from .conftest import BIN, Running, kazoo_tail_env, login_args, wait_until
from .inprocess import run, tail_until_subscribed

FAST = {
    "KAZOO_PASSWORD": DEMO.password,
    "KAZOO_TAIL_BACKOFF_INITIAL": "0.05",
    "KAZOO_TAIL_BACKOFF_CAP": "0.2",
    "KAZOO_TAIL_PING_TIMEOUT": "1",
}


def start(started: type[Running], simulator: Simulator, *args: str, **env: str) -> Running:
    process = started(*login_args(simulator), "-b", "call.*.*", *args, **{**FAST, **env})
    process.wait_for_stderr("subscribed to")
    return process


def publish(simulator: Simulator, msg_id: str) -> None:
    simulator.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.c-{msg_id}",
        "CHANNEL_CREATE",
        {"call_id": f"c-{msg_id}", "msg_id": msg_id, "account_id": DEMO.account_id},
    )


def resubscribed(process: Running, times: int = 2) -> bool:
    return sum("subscribed to" in line for line in process.stderr_lines) >= times


@pytest.mark.parametrize("fault", ["close-1001", "close-1011", "drop"])
def test_reconnects_resubscribes_and_reports_the_gap(
    sim: Simulator, started: type[Running], fault: str
) -> None:
    process = start(started, sim, "--count", "2")
    publish(sim, "before")
    # "before" has reached the client (and stdout) before the link goes.
    wait_until(lambda: any('"before"' in line for line in process.stdout_lines))
    if fault == "drop":
        sim.drop_connections()
    else:
        sim.close_connections(code=int(fault.split("-")[1]))
    wait_until(lambda: resubscribed(process))
    publish(sim, "after")
    result = process.finish()
    assert result.returncode == 0, result.stderr
    assert [e["data"]["msg_id"] for e in result.json_lines()] == ["before", "after"]
    assert "reconnecting in" in result.stderr
    stamp = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
    gap = re.search(
        rf"events from {stamp} to {stamp} \([\d.]+s\) may have been missed", result.stderr
    )
    assert gap is not None, result.stderr
    assert gap.group(1) <= gap.group(2)


def test_a_server_restart_with_new_keys_renews_the_token(started: type[Running]) -> None:
    first = Simulator(SimulatorConfig(event_rate=0, early_events=False)).start()
    ports = (urlsplit(first.crossbar_url).port or 0, urlsplit(first.blackhole_url).port or 0)
    crossbar_url, blackhole_url = first.crossbar_url, first.blackhole_url
    process = started(
        "--url",
        crossbar_url,
        "--ws-url",
        blackhole_url,
        "--account-name",
        "demo",
        "--username",
        "demo",
        "-b",
        "call.*.*",
        "--count",
        "1",
        **FAST,
    )
    process.wait_for_stderr("subscribed to")
    first.stop()
    process.wait_for_stderr("reconnecting in")  # the client saw the server go
    # Tries refused while the server is down are told as such, not as more lost connections.
    process.wait_for_stderr("still reconnecting (down ")
    refused = [line for line in process.stderr_lines if "still reconnecting" in line]
    assert refused[0].rstrip().endswith(": connection refused"), refused
    config = SimulatorConfig(
        event_rate=0, early_events=False, crossbar_port=ports[0], blackhole_port=ports[1]
    )
    with Simulator(config) as second:
        wait_until(lambda: resubscribed(process))
        publish(second, "after-restart")
        result = process.finish()
        assert second.stats.user_auth == 1  # the old token was refused and renewed
    assert result.returncode == 0, result.stderr
    lost = [line for line in result.stderr.splitlines() if " lost (" in line]
    assert len(lost) == 1 and "(the server closed the connection" in lost[0], result.stderr
    assert result.json_lines()[0]["data"]["msg_id"] == "after-restart"


def test_a_dead_link_is_noticed_by_pings(sim: Simulator, started: type[Running]) -> None:
    process = start(started, sim, "--ping-interval", "0.3", "--count", "1")
    sim.set_stalled(True)
    process.wait_for_stderr("no answer to a ping", timeout=10)
    sim.set_stalled(False)
    sim.drop_connections()  # the stalled socket is gone for good; a fresh one must work
    wait_until(lambda: resubscribed(process))
    publish(sim, "alive")
    result = process.finish()
    assert result.returncode == 0, result.stderr


def test_pings_keep_an_idle_socket_open(started: type[Running]) -> None:
    config = SimulatorConfig(
        event_rate=0, early_events=False, idle_timeout=1.0, advertise_ws_url=True
    )
    with Simulator(config) as simulator:
        process = start(started, simulator, "--ping-interval", "0.3", "--count", "1")
        # Ten pings 0.3 s apart: the socket has outlived the idle timeout three times over.
        wait_until(lambda: simulator.stats.ws_pings >= 10, timeout=30, what="ten pings")
        publish(simulator, "still-here")
        result = process.finish()
        assert result.returncode == 0, result.stderr
        assert "lost" not in result.stderr
        assert simulator.stats.connections == 1 and simulator.stats.ws_pings >= 5
        assert result.json_lines()[0]["data"]["msg_id"] == "still-here"


def test_an_idle_close_is_survived(started: type[Running]) -> None:
    config = SimulatorConfig(
        event_rate=0, early_events=False, idle_timeout=0.5, advertise_ws_url=True
    )
    with Simulator(config) as simulator:
        process = start(started, simulator, "--ping-interval", "60", "--count", "1")
        process.wait_for_stderr("may have been missed")  # closed for idling, and back

        def printed_one() -> bool:
            # Idle closes go on every 0.5 s, so one event may fall into a gap: publish until
            # the tail has one to end on.
            publish(simulator, "after-idle-close")
            return process.process.poll() is not None

        wait_until(printed_one, what="an event printed after an idle close")
        result = process.finish()
        assert result.returncode == 0, result.stderr
        assert "code 1000" in result.stderr and "may have been missed" in result.stderr
        assert simulator.stats.connections >= 2


def test_429_on_upgrade_backs_off_and_retries(sim: Simulator, started: type[Running]) -> None:
    process = start(started, sim, "--count", "1")
    sim.reject_upgrades(429, 3)
    sim.close_connections(code=1001)
    wait_until(lambda: resubscribed(process))
    assert "HTTP 429" in process.stderr
    publish(sim, "x")
    assert process.finish().returncode == 0
    assert sim.stats.rejected_upgrades == 3


def test_no_reconnect_and_max_reconnect_time_exit_4(sim: Simulator, started: type[Running]) -> None:
    once = start(started, sim, "--no-reconnect")
    sim.close_connections(code=1001)
    result = once.finish()
    assert result.returncode == 4 and "lost the connection" in result.stderr
    bounded = start(started, sim, "--max-reconnect-time", "1")
    sim.reject_upgrades(503, 1000)
    sim.close_connections(code=1001)
    result = bounded.finish()
    assert result.returncode == 4 and "gave up reconnecting" in result.stderr


def test_garbage_frames_are_reported_once_and_the_tail_goes_on(
    sim: Simulator, started: type[Running]
) -> None:
    process = start(started, sim, "--count", "1")
    for payload in ["not json", "[1,2,3]", '"string"', b"\x00\x01binary", "{" * 5000]:
        sim.send_raw(payload)
    sim.send_raw(json.dumps({"action": "event", "name": 42, "data": [1], "routing_key": None}))
    big = "x" * 3_000_000
    publish_big = {"call_id": "big", "msg_id": "big", "caller_id_name": big}
    sim.publish(f"call.{DEMO.account_id}.CHANNEL_CREATE.big", "CHANNEL_CREATE", publish_big)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])  # the odd-but-valid event was printed first
    reports = [line for line in result.stderr.splitlines() if "ignored" in line]
    assert len(reports) == 1 and "Traceback" not in result.stderr


def pipe_bytes(fd: int) -> int:
    """How many bytes are waiting in the pipe behind ``fd``, unread."""
    waiting = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, waiting)
    return waiting[0]


@pytest.mark.e2e
@pytest.mark.soak
def test_a_slow_reader_loses_nothing(busy_sim: Simulator) -> None:
    with subprocess.Popen(
        [str(BIN), *login_args(busy_sim), "-b", "call.*.*", "--count", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=kazoo_tail_env(**FAST),
    ) as process:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        capacity = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) if hasattr(fcntl, "F_GETPIPE_SZ") else 65536
        held: list[int] = []

        def blocked_on_a_full_pipe() -> bool:
            """Nobody reads: the pipe fills up, then holds still while the simulator publishes
            a hundred more events and the tail, far from its 300 lines, is still running: it
            is stuck writing to stdout."""
            before = pipe_bytes(fd)
            if before < capacity // 2:
                return False
            published = busy_sim.stats.events_published
            wait_until(lambda: busy_sim.stats.events_published >= published + 100)
            held[:] = [before]
            return pipe_bytes(fd) == before and process.poll() is None

        wait_until(blocked_on_a_full_pipe, timeout=60, what="the tail blocked on a full pipe")
        output = process.stdout.read()
        process.wait(10)
    lines = output.splitlines()
    assert process.returncode == 0 and len(lines) == 300
    assert all(json.loads(line)["action"] == "event" for line in lines)
    assert held[0] < len(output) and len(output) > capacity  # it could never all fit


# -- clean endings ---------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("sig", "code"),
    [
        pytest.param(signal.SIGINT, 130, marks=pytest.mark.smoke),
        (signal.SIGTERM, 143),
        (signal.SIGHUP, 129),
    ],
)
def test_signals_close_cleanly(
    busy_sim: Simulator, background: type[Running], sig: signal.Signals, code: int
) -> None:
    streaming = start(background, busy_sim)
    wait_until(lambda: len(streaming.stdout_lines) >= 3)  # the signal comes mid-stream
    streaming.process.send_signal(sig)
    result = streaming.finish()
    assert result.returncode == code
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    for line in result.stdout.splitlines():
        json.loads(line)  # nothing half-written
    wait_until(lambda: busy_sim.client_close_codes == [1000])


@pytest.mark.smoke
@pytest.mark.e2e
@pytest.mark.parametrize("quiet", [False, True])
def test_head_ends_the_tail_at_once_with_exit_0(
    sim: Simulator, busy_sim: Simulator, background: type[Running], quiet: bool
) -> None:
    """The tail has no --count or --duration: only its reader leaving can end it (a tail that
    failed to notice would run into the timeout)."""
    if not quiet:
        args = " ".join(f"'{a}'" for a in login_args(busy_sim))
        pipeline = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"{BIN} {args} -b 'call.*.*' | head -c 1 >/dev/null"],
            capture_output=True,
            text=True,
            timeout=20,
            env=kazoo_tail_env(**FAST),
        )
        returncode, stderr = pipeline.returncode, pipeline.stderr
    else:
        # Nothing to print: the reader leaves while the tail is subscribed and idle.
        read_end, write_end = os.pipe()
        process = background(*login_args(sim), "-b", "call.*.*", stdout=write_end, **FAST)
        os.close(write_end)  # the tail holds the only write end
        process.wait_for_stderr("subscribed to")
        os.close(read_end)
        result = process.finish()
        returncode, stderr = result.returncode, result.stderr
        assert result.stdout == ""
    assert returncode == 0, stderr
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


def test_two_bindings_survive_a_token_blackhole_rejects(
    sim: Simulator, isolated_env: object
) -> None:
    assert run("login", *login_args(sim), **FAST).returncode == 0
    sim.revoke_tokens()
    result = tail_until_subscribed(sim, "-b", "call.*.*", "-b", "object.*.*", **FAST)
    assert result.returncode == 0, result.stderr
    assert sim.stats.user_auth == 2


def test_duration_and_summary_hold_while_the_server_is_down(
    sim: Simulator, started: type[Running]
) -> None:
    # A backoff of at least six minutes: a tail held up by it would run into finish()'s timeout.
    slow = {"KAZOO_TAIL_BACKOFF_INITIAL": "3600", "KAZOO_TAIL_BACKOFF_CAP": "3600"}
    process = start(started, sim, "--duration", "2", "--summary", **slow)
    sim.reject_upgrades(503, 1000)
    sim.close_connections(code=1001)
    result = process.finish(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "reconnecting in" in result.stderr  # it was waiting out the backoff when it ended
    assert "1 gap" in result.stderr


def test_a_rejected_subscription_prints_no_event_first() -> None:
    config = SimulatorConfig(event_rate=0, early_events=True, advertise_ws_url=True)
    with Simulator(config) as simulator:
        result = run(
            *login_args(simulator),
            "-b",
            "call.*.*",
            "--account-id",
            DEMO.account_id,
            "--account-id",
            DEMO.other_account_id,
            **FAST,
        )
    assert result.returncode == 5 and result.stdout == ""


def test_bindings_on_monthly_databases_are_renewed_when_the_month_turns(sim: Simulator) -> None:
    """In process, with the month made to turn: the session must subscribe afresh."""
    from kazoo_tail.kazoo.catalog import uses_monthly_database
    from kazoo_tail.kazoo.events import Notice
    from kazoo_tail.output.notices import describe
    from kazoo_tail.session.resolve import ConnectionConfig
    from kazoo_tail.session.session import Session
    from kazoo_tail.session.subscriber import Subscription

    assert uses_monthly_database("object.*.fax") and uses_monthly_database("fax.object.*")
    assert uses_monthly_database("object.doc_created.*")
    assert not uses_monthly_database("object.*.user") and not uses_monthly_database("call.*.*")

    current = ["202611"]

    token = sim.mint_token()
    session = Session(
        ConnectionConfig(ping_interval=0.2, backoff_initial=0.05),
        [sim.blackhole_url],
        [Subscription(DEMO.account_id, "object.*.fax")],
        lambda refresh=False: token,
        month=lambda at: current[0],
    )
    subscribed = 0
    notices = []
    for item in session.events():
        if isinstance(item, Notice):
            notices.append(describe(item))
            if "subscribed to" in notices[-1]:
                subscribed += 1
                if subscribed == 1:
                    current[0] = "202612"  # the 1st of the month, 00:00 UTC
                else:
                    break
    session.close()
    assert subscribed == 2 and any("new month" in n for n in notices)
    assert sim.stats.connections == 2


def test_the_dead_link_deadline_follows_the_ping_interval(sim: Simulator) -> None:
    """--ping-interval 0.5 without --ping-timeout: a stalled node is given up after 1.5 s, not
    a fixed 10 s (the sentence names the deadline used; no wall clock is asserted)."""
    from kazoo_tail.session.resolve import ConnectionConfig

    assert ConnectionConfig(ping_interval=1).dead_link_after() == 3
    assert ConnectionConfig(ping_interval=30).dead_link_after() == 10
    assert ConnectionConfig(ping_interval=1, ping_timeout=7).dead_link_after() == 7
    args = ["--token", sim.mint_token(), "--ws-url", sim.blackhole_url, "-b", "call.*.*"]
    process = inprocess.Running(*args, "--ping-interval", "0.5", "--no-reconnect")
    try:
        process.wait_for_stderr("subscribed to")
        sim.set_stalled(True)
        result = process.finish(timeout=60)
    finally:
        sim.set_stalled(False)
        process.kill()
    assert result.returncode == 4, result.stderr
    assert "no answer to a ping within 1.5s" in result.stderr, result.stderr


def test_frames_that_show_nothing_do_not_stop_the_clock(
    sim: Simulator, started: type[Running]
) -> None:
    """One event, then its duplicate without end: nothing more is printed, yet --duration
    ends the tail, and the one event was flushed to stdout while the flood went on."""
    import threading

    process = start(started, sim, "--duration", "1")
    flooding = threading.Event()
    flooding.set()

    def flood() -> None:
        while flooding.is_set() and process.process.poll() is None:
            publish(sim, "the-same")

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        wait_until(lambda: process.stdout_lines, what="the one event, flushed mid-flood")
        result = process.finish(timeout=30)
    finally:
        flooding.clear()
        thread.join(10)
    assert result.returncode == 0, result.stderr
    assert [e["data"]["msg_id"] for e in result.json_lines()] == ["the-same"]
