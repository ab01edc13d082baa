"""Issue 10's defects in the session's own loop: deadlines held mid-handshake, a server that
crashes on every subscribe, and signals (end-to-end, over real sockets)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection

from kazoo_tail.simulator import DEMO, Simulator
from tests.conftest import (
    BIN,
    Result,
    Running,
    ScriptedServer,
    kazoo_tail_env,
    login_args,
    run,
    wait_until,
)

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


def tail_through(background: type[Running], sim: Simulator, relay: Relay, *args: str) -> Running:
    process = background(*login_args(sim), "--ws-url", relay.url, "-b", "call.*.*", *args, **FAST)
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
    background: type[Running],
    relay: Relay,
    deadline: tuple[str, ...],
    code: int,
    said: list[str],
) -> None:
    process = tail_through(background, sim, relay, *deadline)
    relay.cut()
    wait_until(lambda: relay.stalled >= 1, what="a reconnect reaching the stalled target")
    result = process.finish(timeout=60)
    assert result.returncode == code, result.stderr
    assert all(text in result.stderr for text in said), result.stderr


def test_duration_ends_a_first_connect_stuck_in_its_handshake(
    sim: Simulator, background: type[Running], relay: Relay
) -> None:
    relay.forward = False
    process = background(
        "--ws-url", relay.url, "-b", "call.*.*", "--duration", "1", KAZOO_AUTH_TOKEN=TOKEN, **FAST
    )
    result = process.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    assert relay.stalled == 1 and result.stdout == ""


def test_a_blackhole_that_crashes_on_every_subscribe_ends_the_tail_with_exit_3(
    scripted: ScriptedServer, background: type[Running]
) -> None:
    """Blackhole's handler crashes (1011) on a token it cannot read, e.g. one without
    ``iss``; a reconnect sends the same token and meets the same crash, so a few in a row
    end the tail instead of retrying for ever."""
    connections: list[str] = []

    def crash_on_the_token(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        connections.append(request["data"]["binding"])
        ws.close(1011, "")

    process = background(
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


@pytest.mark.parametrize("command", ["bindings", "doctor", "tail"])
def test_stdout_closed_is_one_sentence_and_exit_1(busy_sim: Simulator, command: str) -> None:
    """Started with stdout closed (``>&-``): no AttributeError, and no socket or file takes
    stdout's number to receive the events meant for it."""
    login = " ".join(login_args(busy_sim))
    args = {
        "bindings": "bindings",
        "doctor": f"doctor {login}",
        "tail": f"{login} -b 'call.*.*'",
    }[command]
    result = shell(f"KAZOO_PASSWORD={DEMO.password} {BIN} {args} >&-")
    assert result.returncode == 1, result.stderr
    assert "cannot write to stdout: it was closed when kazoo-tail started" in result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_a_full_stdout_names_stdout_for_every_command(sim: Simulator) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    doctor = " ".join(["doctor", *login_args(sim)])
    for command in ["bindings", doctor, "bindings -o pretty"]:
        result = shell(f"KAZOO_PASSWORD={DEMO.password} {BIN} {command} > /dev/full")
        assert result.returncode == 1, (command, result.stderr)
        assert "cannot write to stdout: No space left on device" in result.stderr
        assert "unexpected" not in result.stderr


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
        process = Running("--ws-url", url, "-b", "call.*.*", KAZOO_AUTH_TOKEN=TOKEN, **FAST)
        try:
            process.wait_for_stderr("subscribed to", timeout=30)
        finally:
            process.kill()
    assert upgrades == [1, 2, 3] and "HTTP 503" in process.stderr
