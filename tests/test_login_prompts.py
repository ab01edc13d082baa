"""``kazoo-tail login`` and a tail's password prompt, typed at through a real pseudo-terminal.

The pty is the process's stdin, stderr and controlling terminal (its own session, as a shell's
job has); stdout is a separate pipe, so that whatever a prompt writes can be seen not to be
there: stdout carries only events.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import subprocess
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kazoo_tail.simulator import DEMO, Simulator
from tests.conftest import BIN, kazoo_tail_env, login_args, run, wait_until

pytestmark = pytest.mark.e2e  # pipes, file descriptors, terminals: the real process

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


def _take_the_terminal() -> None:
    """In the child, after setsid: make its stdin, the pty, the controlling terminal, so that
    /dev/tty (where getpass reads a hidden password) is the pty and never the tester's."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``kazoo-tail ARGS`` typed at on a pty, its stdout a pipe read beside it."""

    def __init__(self, *args: str, **env: str) -> None:
        self.master, self.slave = os.openpty()
        self.process = subprocess.Popen(
            [str(BIN), *args],
            stdin=self.slave,
            stdout=subprocess.PIPE,
            stderr=self.slave,
            env=kazoo_tail_env(TERM="dumb", **env),
            start_new_session=True,
            preexec_fn=_take_the_terminal,
        )
        self._screen = bytearray()
        self._stdout = bytearray()
        self._lock = threading.Lock()
        assert self.process.stdout is not None
        self._readers = [
            threading.Thread(target=self._read_pty, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_pty(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._screen += chunk

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):  # type: ignore[union-attr]
            with self._lock:
                self._stdout += chunk

    @property
    def screen(self) -> str:
        """What the terminal shows, newlines as written (the pty turns \\n into \\r\\n)."""
        with self._lock:
            return self._screen.decode(errors="replace").replace("\r\n", "\n")

    @property
    def stdout(self) -> str:
        with self._lock:
            return self._stdout.decode()

    def wait_for(self, text: str, count: int = 1) -> None:
        """Until ``text`` has been shown ``count`` times."""
        wait_until(lambda: self.screen.count(text) >= count, what=lambda: repr(self.screen))

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def answer(self, prompt: str, line: str, count: int = 1) -> None:
        self.wait_for(prompt, count)
        self.type(line)

    def finish(self) -> int:
        code = self.process.wait(timeout=20)
        self._readers[1].join(5)
        # Whatever it wrote before it exited is in the pty; the reader takes it all.
        wait_until(lambda: not select.select([self.master], [], [], 0)[0], what="pty drained")
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._readers[1].join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def terminals() -> Iterator[type[Terminal]]:
    started: list[Terminal] = []

    class Tracked(Terminal):
        def __init__(self, *args: str, **env: str) -> None:
            super().__init__(*args, **env)
            started.append(self)

    yield Tracked
    for terminal in started:
        terminal.close()


def server(simulator: Simulator) -> str:
    return simulator.crossbar_url.split("://", 1)[1].rstrip("/")


def closed_port_url() -> str:
    """A URL on which nothing listens: the port was just free."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


PASSWORD_PROMPT = "Password for demo at {}: "


def test_a_wrong_url_is_asked_again_before_anything_else(
    sim: Simulator, terminals: type[Terminal], isolated_env: Path
) -> None:
    login = terminals("login")
    login.answer("Crossbar URL", closed_port_url())
    login.wait_for("Crossbar URL", count=2)
    assert "Account name" not in login.screen  # the URL was checked on its own, at once
    assert "give the Crossbar URL again (2 of 3)" in login.screen
    login.type(sim.crossbar_url)
    login.answer("Account name: ", "demo")
    login.answer("Username: ", "demo")
    login.answer(PASSWORD_PROMPT.format(server(sim)), DEMO.password)
    assert login.finish() == 0, login.screen
    assert "logged in as user demo" in login.screen
    assert login.stdout == ""
    assert sim.stats.user_auth == 1
    profiles = json.loads((isolated_env / "profiles.json").read_text())
    assert profiles["default"]["url"] == sim.crossbar_url


def test_a_wrong_password_is_asked_again_and_the_third_try_logs_in(
    sim: Simulator, terminals: type[Terminal]
) -> None:
    login = terminals("login", "--url", sim.crossbar_url)
    prompt = PASSWORD_PROMPT.format(server(sim))
    login.answer("Account name: ", "demo")
    login.answer("Username: ", "demo")
    login.answer(prompt, "wrong-1")
    # Kazoo refuses the account, user and password together: Enter keeps the first two.
    login.answer("Account name [demo]: ", "")
    login.answer("Username [demo]: ", "")
    login.answer(prompt, "wrong-2", count=2)
    login.answer("Account name [demo]: ", "", count=2)
    login.answer("Username [demo]: ", "", count=2)
    login.answer(prompt, DEMO.password, count=3)
    assert login.finish() == 0, login.screen
    shown = login.screen
    assert "try again (2 of 3)" in shown and "try again (3 of 3)" in shown
    assert "password is wrong" in shown
    assert "logged in as user demo" in shown
    assert "wrong-1" not in shown and "wrong-2" not in shown  # hidden as typed
    assert login.stdout == ""
    assert sim.stats.user_auth == 3


def test_three_wrong_passwords_end_with_the_auth_exit_code(
    sim: Simulator, terminals: type[Terminal], isolated_env: Path
) -> None:
    login = terminals("login", *login_args(sim))
    prompt = PASSWORD_PROMPT.format(server(sim))
    for attempt in range(1, 4):
        login.answer(prompt, f"wrong-{attempt}", count=attempt)
    assert login.finish() == 3, login.screen
    assert "(3 tries)" in login.screen
    assert "Account name" not in login.screen  # given as options: not asked
    assert login.stdout == ""
    assert sim.stats.user_auth == 3
    assert not (isolated_env / "profiles.json").exists()


def test_a_wrong_url_given_as_an_option_ends_the_login_before_any_question(
    terminals: type[Terminal],
) -> None:
    login = terminals("login", "--url", closed_port_url())
    assert login.finish() == 4, login.screen
    assert "cannot connect to Crossbar" in login.screen
    assert "Account name" not in login.screen and "Password" not in login.screen


def test_without_a_terminal_a_wrong_password_is_one_try_saying_what_may_be_wrong(
    sim: Simulator,
) -> None:
    result = run("login", *login_args(sim), KAZOO_PASSWORD="wrong")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "refused to log in" in result.stderr
    assert "the account name, user name or password is wrong" in result.stderr
    assert "again" not in result.stderr
    assert sim.stats.user_auth == 1


def test_a_rejected_token_in_a_running_tail_asks_on_the_terminal_naming_user_and_server(
    sim: Simulator, terminals: type[Terminal]
) -> None:
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    tail = terminals("-b", "call.*.*", "--count", "2", KAZOO_TAIL_BACKOFF_INITIAL="0.05")
    tail.wait_for("subscribed to")
    _publish_call(sim, "before")
    wait_until(lambda: "before" in tail.stdout, what=lambda: tail.screen)

    sim.revoke_tokens()  # e.g. a password change elsewhere: the cached token is refused
    sim.close_connections(code=1001)
    tail.answer(f"Password for demo at {server(sim)} (token rejected): ", DEMO.password)
    tail.wait_for("subscribed to", count=2)
    _publish_call(sim, "after")
    assert tail.finish() == 0, tail.screen

    calls = [json.loads(line)["data"]["call_id"] for line in tail.stdout.splitlines()]
    assert calls == ["before", "after"]  # stdout: the events, and nothing of the prompt
    assert "Password" not in tail.stdout
    assert DEMO.password not in tail.screen.split("(token rejected): ", 1)[1].split("\n")[0]
    assert sim.stats.user_auth == 2


def _publish_call(sim: Simulator, call_id: str) -> None:
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
        "CHANNEL_CREATE",
        {"call_id": call_id, "msg_id": call_id, "account_id": DEMO.account_id},
    )
