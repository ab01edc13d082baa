"""Issue 10's defects in the session's own loop: deadlines held mid-handshake, a server that
crashes on every subscribe, and signals (end-to-end, over real sockets)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection

from kazoo_tail.simulator import DEMO, Simulator

from . import inprocess
from .conftest import BIN, Result, Running, ScriptedServer, kazoo_tail_env, login_args, wait_until
from .inprocess import run, tail_until_subscribed

FAST = {
    "KAZOO_PASSWORD": DEMO.password,
    "KAZOO_TAIL_BACKOFF_INITIAL": "0.05",
    "KAZOO_TAIL_BACKOFF_CAP": "0.2",
    # A handshake may take an hour: only the user's own deadlines can end one early.
    "KAZOO_TAIL_CONNECT_TIMEOUT": "3600",
}
TOKEN = "eyJhbGciOiJub25lIn0.eyJhY2NvdW50X2lkIjoiYWNjMSJ9.x"


def shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already ended by the other side


class Relay:
    """A TCP listener in front of the simulator's blackhole. While ``forward`` is set it
    relays connections to it; after that it accepts and then stalls them: ``silent`` ones
    read and never answer, the others answer ``101`` and then dribble a header line at a
    time, without ever ending the headers."""

    def __init__(self, target: tuple[str, int], *, silent: bool) -> None:
        self.target = target
        self.silent = silent
        self.forward = True
        self.stalled = 0
        self._forwarded: list[socket.socket] = []
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Stop relaying, and end the connections relayed so far."""
        self.forward = False
        for sock in self._forwarded:
            shut(sock)

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for sock in self._forwarded:
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            handler = self._relay if self.forward else self._stall
            threading.Thread(target=handler, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        self._forwarded += [client, upstream]
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        shut(source)
        shut(sink)

    def _stall(self, client: socket.socket) -> None:
        self.stalled += 1
        with client:
            client.recv(65536)  # the upgrade request
            if not self.silent:
                client.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
            while not self._closing.wait(0.2):
                try:
                    if not self.silent:
                        client.sendall(b"X-Still-Coming: yes\r\n")
                except OSError:
                    return


@pytest.fixture(params=["silent", "dribbling"])
def relay(request: pytest.FixtureRequest, sim: Simulator) -> Iterator[Relay]:
    host, port = sim.blackhole_url.removeprefix("ws://").split(":")
    relay = Relay((host, int(port)), silent=request.param == "silent")
    yield relay
    relay.close()


def tail_through(started: type[Running], sim: Simulator, relay: Relay, *args: str) -> Running:
    process = started(*login_args(sim), "--ws-url", relay.url, "-b", "call.*.*", *args, **FAST)
    process.wait_for_stderr("subscribed to")
    return process


@pytest.mark.parametrize(
    ("deadline", "code", "said"),
    [
        (("--max-reconnect-time", "1"), 4, ["gave up reconnecting", "handshake"]),
        (("--duration", "4", "--summary"), 0, ["reconnecting in", "1 gap"]),
    ],
    ids=["max-reconnect-time", "duration"],
)
def test_a_deadline_ends_a_reconnect_stuck_in_its_handshake(
    sim: Simulator,
    started: type[Running],
    relay: Relay,
    deadline: tuple[str, ...],
    code: int,
    said: list[str],
) -> None:
    process = tail_through(started, sim, relay, *deadline)
    relay.cut()
    wait_until(lambda: relay.stalled >= 1, what="a reconnect reaching the stalled target")
    result = process.finish(timeout=60)
    assert result.returncode == code, result.stderr
    assert all(text in result.stderr for text in said), result.stderr


def test_duration_ends_a_first_connect_stuck_in_its_handshake(
    sim: Simulator, started: type[Running], relay: Relay
) -> None:
    relay.forward = False
    process = started(
        "--ws-url", relay.url, "-b", "call.*.*", "--duration", "1", KAZOO_AUTH_TOKEN=TOKEN, **FAST
    )
    result = process.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    assert relay.stalled == 1 and result.stdout == ""


def test_a_blackhole_that_crashes_on_every_subscribe_ends_the_tail_with_exit_3(
    scripted: ScriptedServer, started: type[Running]
) -> None:
    """Blackhole's handler crashes (1011) on a token it cannot read, e.g. one without
    ``iss``; a reconnect sends the same token and meets the same crash, so a few in a row
    end the tail instead of retrying for ever."""
    connections: list[str] = []

    def crash_on_the_token(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        connections.append(request["data"]["binding"])
        ws.close(1011, "")

    process = started(
        "--ws-url",
        scripted(crash_on_the_token),
        "-b",
        "call.*.*",
        KAZOO_AUTH_TOKEN=TOKEN,
        **FAST,
    )
    result = process.finish(timeout=60)
    assert result.returncode == 3, result.stderr
    assert "crashed (close code 1011) on each of 3 attempts" in result.stderr
    assert "cannot read the token" in result.stderr
    assert connections == ["call.*.*"] * 3


# -- stdout that cannot be written ---------------------------------------------------------


def shell(command: str) -> Result:
    completed = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=kazoo_tail_env()
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


RECORDING = Path(__file__).parent / "recordings" / "samples.jsonl"
# Every kind of stdout writer: click's own help, the catalogue, doctor's report, a replay
# (straight to stdout), a live tail (through the spool) and sockets (text over the buffer).
STDOUT_WRITERS = {
    "--help": "--help",
    "--version": "--version",
    "tail --help": "tail --help",
    "bindings": "bindings",
    "bindings pretty": "bindings -o pretty",
    "doctor": "doctor {login}",
    "replay": f"replay {RECORDING}",
    "replay pretty": f"replay {RECORDING} -o pretty",
    "tail": "{login} -b 'call.*.*'",
    "sockets": "sockets {login} -o json",
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("redirect", "reason"),
    [(">&-", "it was closed when kazoo-tail started (>&-)"), ("> /dev/full", "No space")],
    ids=["closed", "full"],
)
@pytest.mark.parametrize("command", list(STDOUT_WRITERS))
def test_stdout_closed_or_full_is_one_sentence_and_exit_1_for_every_command(
    busy_sim: Simulator, started: type[Running], command: str, redirect: str, reason: str
) -> None:
    """Started with stdout closed (``>&-``) or full: no AttributeError or OSError, no
    "Exception ignored" at exit (exit 120), and no socket or file takes stdout's number."""
    if redirect.endswith("/dev/full") and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    login = " ".join(login_args(busy_sim))
    if command == "sockets":  # a live socket for it to list
        started(*login_args(busy_sim), "-b", "call.*.*", **FAST).wait_for_stderr("subscribed")
    args = STDOUT_WRITERS[command].format(login=login)
    result = shell(f"KAZOO_PASSWORD={DEMO.password} {BIN} {args} {redirect}")
    assert result.returncode == 1, result.stderr
    assert f"kazoo-tail: error: cannot write to stdout: {reason}" in result.stderr
    assert "unexpected" not in result.stderr and "Exception ignored" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_secret_on_the_command_line_is_warned_about_and_one_from_the_environment_is_not() -> None:
    target = ["--ws-url", "ws://127.0.0.1:9", "--url", "http://127.0.0.1:9", "-b", "call.*.*"]
    for flag, variable in [("--token", "KAZOO_AUTH_TOKEN"), ("--api-key", "KAZOO_API_KEY")]:
        on_argv = run(*target, flag, "0123456789abcdef", "--no-reconnect")
        assert f"warning: {flag} on the command line can be read by every user" in on_argv.stderr
        assert f"set {variable} instead" in on_argv.stderr
        hidden = run(*target, "--no-reconnect", **{variable: "0123456789abcdef"})
        assert "warning" not in hidden.stderr and hidden.returncode == on_argv.returncode


def test_a_first_link_lost_while_subscribing_is_retried_like_any_other() -> None:
    """The first handshake succeeded, so the URL is right: the link lost during its subscribe,
    and then a 503 on the next upgrade, are an outage to ride out, not a fatal exit 4."""
    from websockets.http11 import Response
    from websockets.sync.server import serve

    upgrades: list[int] = []

    def gatekeeper(ws: ServerConnection, request: object) -> Response | None:
        upgrades.append(len(upgrades) + 1)
        return ws.respond(503, "restarting\n") if len(upgrades) == 2 else None

    def blackhole(ws: ServerConnection) -> None:
        for message in ws:
            if len(upgrades) == 1:
                ws.close(1001, "going away")  # lost mid-subscribe
                return
            request = json.loads(message)
            reply = {"action": "reply", "request_id": request["request_id"], "status": "success"}
            ws.send(json.dumps({**reply, "data": {"subscribed": [request["data"]["binding"]]}}))

    with serve(blackhole, "127.0.0.1", 0, process_request=gatekeeper) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        process = inprocess.Running(
            "--ws-url", url, "-b", "call.*.*", KAZOO_AUTH_TOKEN=TOKEN, **FAST
        )
        try:
            process.wait_for_stderr("subscribed to", timeout=30)
        finally:
            process.kill()
    assert upgrades == [1, 2, 3] and "HTTP 503" in process.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_replay_ends_on_sigterm_and_sighup_like_a_tail(
    tmp_path: Path, background: type[Running], sig: signal.Signals, code: int
) -> None:
    """doctor, sockets and replay unwind on SIGTERM and SIGHUP as the tail does: what was
    rendered is written, sockets are closed, and the exit code is the documented one."""
    events = [line for line in RECORDING.read_text().splitlines() if '\\"event\\"' in line]
    first, second = events[:2]
    later = json.loads(second)
    later["received_at"] = json.loads(first)["received_at"] + 3600  # an hour to wait for it
    recording = tmp_path / "slow.jsonl"
    recording.write_text(f"{first}\n{json.dumps(later)}\n")
    process = background("replay", str(recording), "--realtime")
    wait_until(lambda: process.stdout_lines, what="the first event replayed")
    process.process.send_signal(sig)
    result = process.finish()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and len(result.stdout.splitlines()) == 1


def test_a_profiles_websocket_is_not_used_with_another_crossbar(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    """The saved profile names another cluster: a token from the --url Crossbar must not be
    sent to that profile's blackhole (the Crossbar's own advertised one is used)."""
    from kazoo_tail.simulator import SimulatorConfig

    reached: list[object] = []

    def thief(ws: ServerConnection) -> None:
        reached.append(ws.recv())

    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    profile = {"url": "http://127.0.0.1:9", "ws_url": scripted(thief)}
    (config / "profiles.json").write_text(json.dumps({"default": profile}))
    (config / "profiles.json").chmod(0o600)
    with Simulator(SimulatorConfig(event_rate=0, advertise_ws_url=True)) as advertising:
        result = tail_until_subscribed(
            advertising, *login_args(advertising), "-b", "call.*.*", "--config-dir", str(config),
            KAZOO_PASSWORD=DEMO.password,
        )  # fmt: skip
        advertised = advertising.blackhole_url
    assert reached == [], "the token went to the profile's blackhole"
    assert result.returncode == 0 and advertised in result.stderr, result.stderr
