"""The CLI run in the test's own process, through ``kazoo_tail.cli.run(argv, Environment(...))``:
the same helpers as conftest's (``run``, ``Running``, ``tail_until_subscribed``), with the same
``Result``, for behaviour that needs no real pipe, signal or terminal. What needs one runs the
installed command (conftest's helpers) and is marked ``e2e``.

Options' environment variables (``KAZOO_URL``...) are read by click from ``os.environ``, so the
variables a call is given are set there for its duration (each xdist worker runs one test at a
time); the program's own (``KAZOO_PASSWORD``, the tuning knobs) reach it through
``Environment.environ``, which holds the same."""

from __future__ import annotations

import ctypes
import inspect
import io
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from click.testing import CliRunner

from kazoo_tail.app.environment import Environment
from kazoo_tail.cli import run as cli_run

from .conftest import Result

if TYPE_CHECKING:
    from kazoo_tail.simulator import Simulator


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Lines(io.TextIOBase):
    """A text stream that keeps what is written, readable while another thread writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._chunks.append(text)
        return len(text)

    def getvalue(self) -> str:
        with self._lock:
            return "".join(self._chunks)


@contextmanager
def environ(extra: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """os.environ with ``extra`` set, restored afterwards; yields a copy for the Environment.
    The signal handlers a tail installs on the main thread (SIGTERM, SIGHUP) are put back
    too: pytest's own must still end the test run."""
    saved = {name: os.environ.get(name) for name in extra}
    on_main = threading.current_thread() is threading.main_thread()
    handlers = {number: signal.getsignal(number) for number in SIGNALS} if on_main else {}
    os.environ.update(extra)
    if "TZ" in extra:
        time.tzset()
    try:
        yield dict(os.environ)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if "TZ" in extra:
            time.tzset()


def environment(input: str | None, variables: Mapping[str, str]) -> Environment:
    return Environment(
        stdin=io.StringIO(input or ""),
        stdout=io.BytesIO(),
        stderr=Lines(),
        environ=variables,
    )


def result(code: int, env: Environment) -> Result:
    assert isinstance(env.stdout, io.BytesIO) and isinstance(env.stderr, Lines)
    return Result(code, env.stdout.getvalue().decode(), env.stderr.getvalue())


def run(*args: str, timeout: float = 20, input: str | None = None, **env: str) -> Result:
    """Run kazoo-tail in-process and return what it printed (``timeout`` is kept for the
    subprocess helper's signature; pytest-timeout bounds a hang)."""
    with environ(env) as variables:
        environment_ = environment(input, variables)
        code = cli_run(list(args), environment_)
    return result(code, environment_)


class Running:
    """kazoo-tail run in-process on a thread, with conftest.Running's interface. It is ended by
    its own options (``--count``, ``--duration``); ``kill`` interrupts it like Ctrl-C."""

    def __init__(
        self, *args: str, stdout: int | None = None, input: str | None = None, **env: str
    ) -> None:
        assert stdout is None, "a file descriptor for stdout needs the real process (e2e)"
        self._environ = environ(env)
        self.env = environment(input, self._environ.__enter__())
        self.returncode: int | None = None
        self._thread = threading.Thread(target=self._run, args=(list(args),), daemon=True)
        self._thread.start()
        self.process = self  # conftest.Running's process.poll(), on the thread

    def poll(self) -> int | None:
        """The exit code once the run has ended, else None (like Popen.poll)."""
        return None if self._thread.is_alive() else self.returncode

    def _run(self, argv: list[str]) -> None:
        self.returncode = cli_run(argv, self.env)

    @property
    def stdout_lines(self) -> list[str]:
        """The whole lines printed so far (and a last unfinished one once it has ended)."""
        assert isinstance(self.env.stdout, io.BytesIO)
        ended = not self._thread.is_alive()  # mid-run, a character may be half-written
        text = self.env.stdout.getvalue().decode(errors="strict" if ended else "replace")
        return _lines(text, ended=ended)

    @property
    def stderr_lines(self) -> list[str]:
        return _lines(self.stderr, ended=not self._thread.is_alive())

    @property
    def stderr(self) -> str:
        assert isinstance(self.env.stderr, Lines)
        return self.env.stderr.getvalue()

    def wait_for_stderr(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if not self._thread.is_alive():
                if text in self.stderr:
                    return
                raise AssertionError(f"exited {self.returncode}: {self.stderr}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {text!r} on stderr within {timeout}s: {self.stderr}")
            time.sleep(0.01)

    def finish(self, timeout: float = 20) -> Result:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.kill()
            raise AssertionError(f"still running after {timeout}s: {self.stderr}")
        self._restore()
        assert self.returncode is not None, self.stderr
        return result(self.returncode, self.env)

    def kill(self) -> None:
        """Interrupt the run (KeyboardInterrupt on its thread, raised when it next runs Python
        code), as Ctrl-C would; a run that does not end within 10 s fails the test."""
        deadline = time.monotonic() + 10
        while self._thread.is_alive() and time.monotonic() < deadline:
            ident = self._thread.ident
            assert ident is not None
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
            )
            self._thread.join(0.5)
        self._restore()
        assert not self._thread.is_alive(), f"not interrupted within 10 s: {self.stderr}"

    def _restore(self) -> None:
        if self._environ is not None:
            self._environ.__exit__(None, None, None)
            self._environ = None  # type: ignore[assignment]


def _lines(text: str, *, ended: bool) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not ended and not lines[-1].endswith("\n"):
        lines.pop()
    return lines


def tail_until_subscribed(
    simulator: Simulator,
    *args: str,
    account_id: str | None = None,
    input: str | None = None,
    **env: str,
) -> Result:
    """conftest.tail_until_subscribed in-process: the tail runs on this thread, and a helper
    publishes the one call event once it has said it subscribed."""
    from kazoo_tail.simulator import DEMO

    account = account_id or DEMO.account_id
    done = threading.Event()

    with environ(env) as variables:
        environment_ = environment(input, variables)
        stderr = environment_.stderr
        assert isinstance(stderr, Lines)

        def publish_once_subscribed() -> None:
            while "subscribed to" not in stderr.getvalue():
                if done.wait(0.01):
                    return
            call_id = f"the-end-{os.urandom(4).hex()}"
            simulator.publish(
                f"call.{account}.CHANNEL_CREATE.{call_id}",
                "CHANNEL_CREATE",
                {"call_id": call_id, "msg_id": call_id, "account_id": account},
            )

        publisher = threading.Thread(target=publish_once_subscribed, daemon=True)
        publisher.start()
        try:
            code = cli_run([*args, "--count", "1"], environment_)
        finally:
            done.set()
            publisher.join()
    return result(code, environment_)


def cli_runner() -> CliRunner:
    """click's CliRunner with the standard error kept apart from the output, as the tests read
    ``result.stderr``: click 8.2 always keeps it apart and has no ``mix_stderr``; click 8.1 (on
    Python 3.9) mixes it in unless told not to."""
    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg, unused-ignore]
    return CliRunner()
