"""Fixtures: an isolated environment, the project's Kazoo simulator on 127.0.0.1, and a way to
run the installed ``kazoo-tail`` command the way a user does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

    from kazoo_tail.simulator import Simulator

    from .inprocess import Running as InProcess

SAMPLES = Path(__file__).parent / "samples"
BIN = Path(sys.executable).parent / "kazoo-tail"


def pytest_configure(config: pytest.Config) -> None:
    """Started in the background by a shell without job control, the suite inherits SIGINT
    ignored, and so would every kazoo-tail it starts: the Ctrl-C tests would wait for an
    ending that never comes. Python's own handler puts it back (children get the default)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No developer's real config, credentials or colour settings leak into a test."""
    for name in list(os.environ):
        if name.startswith(("KAZOO_", "REQUESTS_CA", "CURL_CA", "SSL_CERT", "WEBSOCKET_CLIENT")):
            monkeypatch.delenv(name)
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE"):
        monkeypatch.delenv(name, raising=False)
    config_dir = tmp_path / "config"
    monkeypatch.setenv("KAZOO_TAIL_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("COLUMNS", "200")
    return config_dir


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A quiet simulator: no background traffic, so tests publish exactly what they check."""
    from kazoo_tail.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(event_rate=0, early_events=False, advertise_ws_url=True, seed=7)
    with Simulator(config) as simulator:
        yield simulator


@pytest.fixture
def busy_sim() -> Iterator[Simulator]:
    from kazoo_tail.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(event_rate=200, advertise_ws_url=True, seed=11)
    with Simulator(config) as simulator:
        yield simulator


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]


def kazoo_tail_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def run(*args: str, timeout: float = 20, input: str | None = None, **env: str) -> Result:
    """Run the installed kazoo-tail command and wait for it."""
    completed = subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input if input is not None else "",
        env=kazoo_tail_env(**env),
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


class Running:
    """A kazoo-tail process started in the background; its stdout and stderr are read as they
    come, each by one thread (so nothing is lost between two readers of a pipe)."""

    def __init__(
        self, *args: str, stdout: int | None = None, input: str | None = None, **env: str
    ) -> None:
        """``stdout``: a file descriptor to give the process as its stdout instead of a pipe
        read here (then ``stdout_lines`` stays empty); ``input``: what its stdin reads."""
        self.process = subprocess.Popen(
            [str(BIN), *args],
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=kazoo_tail_env(**env),
        )
        if input is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(input)
            self.process.stdin.close()
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        assert self.process.stderr is not None
        pipes = [(self.process.stderr, self.stderr_lines)]
        if self.process.stdout is not None:
            pipes.append((self.process.stdout, self.stdout_lines))
        self._readers = [
            threading.Thread(target=self._drain, args=(pipe, lines), daemon=True)
            for pipe, lines in pipes
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(pipe: IO[str], lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)
        pipe.close()

    def wait_for_stderr(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.stderr_lines):
                return
            if self.process.poll() is not None:
                self._readers[0].join(1)
                if any(text in line for line in self.stderr_lines):
                    return
                raise AssertionError(f"exited {self.process.returncode}: {self.stderr}")
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} on stderr within {timeout}s: {self.stderr}")

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def finish(self, timeout: float = 20) -> Result:
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(5)
        return Result(self.process.returncode, "".join(self.stdout_lines), self.stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(5)


ScriptedServer = Callable[[Callable[["ServerConnection"], None]], str]


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """Raw blackhole-shaped websocket servers on 127.0.0.1, each running the script it is given
    for every connection, for misbehaviour the simulator does not offer; yields their URLs."""
    from websockets.sync.server import serve

    servers = []

    def start(script: Callable[[ServerConnection], None]) -> str:
        server = serve(script, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        host, port = server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def background() -> Iterator[type[Running]]:
    started: list[Running] = []

    class Tracked(Running):
        def __init__(
            self, *args: str, stdout: int | None = None, input: str | None = None, **env: str
        ) -> None:
            super().__init__(*args, stdout=stdout, input=input, **env)
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()


@pytest.fixture
def started() -> Iterator[type[InProcess]]:
    """``background``'s in-process twin (tests/inprocess.py): kazoo-tail run on a thread of
    this process, with the same interface, interrupted at teardown if still running."""
    from .inprocess import Running as InProcess

    runs: list[InProcess] = []

    class Tracked(InProcess):
        def __init__(self, *args: str, input: str | None = None, **env: str) -> None:
            super().__init__(*args, input=input, **env)
            runs.append(self)

    yield Tracked
    for running in runs:
        running.kill()


def publish_once_subscribed(simulator: Simulator) -> threading.Thread:
    """A started thread that publishes one document event once a client has subscribed."""

    def publish() -> None:
        deadline = time.monotonic() + 20
        while simulator.stats.subscribes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        simulator.publish_object()

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


def wait_until(
    condition: Callable[[], object],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "",
) -> None:
    """Poll ``condition`` until it is true; the timeout only bounds a failure. ``what`` (or
    what it returns, evaluated on failure) says what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {said or condition}")
        time.sleep(0.02)


def tail_until_subscribed(
    simulator: Simulator,
    *args: str,
    account_id: str | None = None,
    input: str | None = None,
    **env: str,
) -> Result:
    """Run ``kazoo-tail ARGS --count 1`` (ARGS bind ``call.*.*``) until it says it has
    subscribed, then publish one call event on ``account_id`` (the demo account by default) for
    it to print and end on with exit 0. Unlike ``--duration 0.3``, nothing races a clock: the
    subscribe (and any login it needs) may take as long as the machine makes it."""
    from kazoo_tail.simulator import DEMO

    account = account_id or DEMO.account_id
    process = Running(*args, "--count", "1", input=input, **env)
    try:
        process.wait_for_stderr("subscribed to")
        call_id = f"the-end-{os.urandom(4).hex()}"
        simulator.publish(
            f"call.{account}.CHANNEL_CREATE.{call_id}",
            "CHANNEL_CREATE",
            {"call_id": call_id, "msg_id": call_id, "account_id": account},
        )
        return process.finish()
    finally:
        process.kill()


def login_args(simulator: Simulator) -> list[str]:
    return ["--url", simulator.crossbar_url, "--account-name", "demo", "--username", "demo"]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
