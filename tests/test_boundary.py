"""The one error boundary, in-process through ``cli.run(argv, Environment(...))``: every way a
run can end becomes its documented exit code and at most one sentence on stderr; a failed
stdout means one thing wherever it is written (``errors.stdout_failure``)."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path
from typing import IO, cast

import click
import pytest

from kazoo_tail import errors
from kazoo_tail.app.environment import Environment
from kazoo_tail.cli import run
from kazoo_tail.cli.boundary import Terminated
from kazoo_tail.errors import ExitCode, OutputError, stdout_failure
from kazoo_tail.simulator import Simulator

from .conftest import publish_once_subscribed, sample

PREFIX = "kazoo-tail: error: "


def environment(stdout: io.RawIOBase | None = None) -> Environment:
    out = cast(IO[bytes], stdout) if stdout is not None else io.BytesIO()
    return Environment(stdin=io.StringIO(), stdout=out, stderr=io.StringIO())


def stderr_of(env: Environment) -> str:
    assert isinstance(env.stderr, io.StringIO)
    return env.stderr.getvalue()


def stdout_of(env: Environment) -> bytes:
    assert isinstance(env.stdout, io.BytesIO)
    return env.stdout.getvalue()


def recording(tmp_path: Path) -> Path:
    event = sample("05_event_call_channel_create.json")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"received_at": 1.0, "text": json.dumps(event)}) + "\n")
    return path


class FailingStdout(io.RawIOBase):
    """A stdout whose every write fails with this errno (no file descriptor: written by its
    own write, as a BytesIO would be)."""

    def __init__(self, number: int) -> None:
        self.number = number

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        import os

        raise OSError(self.number, os.strerror(self.number))


# -- the one decision ---------------------------------------------------------------------------


def test_a_failed_stdout_means_the_reader_left_or_one_sentence() -> None:
    assert stdout_failure(BrokenPipeError(errno.EPIPE, "Broken pipe")) is None
    for number in (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT, errno.EFBIG):
        failure = stdout_failure(OSError(number, errno.errorcode[number]))
        assert isinstance(failure, OutputError) and failure.exit_code == ExitCode.ERROR
    full = stdout_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert full is not None and full.message == "cannot write to stdout: No space left on device"


# -- every kind of ending, through cli.run --------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (errors.UsageError("no binding given"), 2, f"{PREFIX}no binding given\n"),
        (errors.ConfigError("cannot read x"), 1, f"{PREFIX}cannot read x\n"),
        (errors.AuthError("invalid credentials"), 3, f"{PREFIX}invalid credentials\n"),
        (errors.ConnectError("gave up"), 4, f"{PREFIX}gave up\n"),
        (errors.SubscribeError("unknown event"), 5, f"{PREFIX}unknown event\n"),
        (OutputError("cannot write to stdout: I/O error"), 1, f"{PREFIX}cannot write to stdout: "),
        (click.UsageError("no way"), 2, f"{PREFIX}no way (see kazoo-tail replay --help)\n"),
        (click.ClickException("click said no"), 1, f"{PREFIX}click said no\n"),
        (KeyboardInterrupt(), 130, ""),
        (click.Abort(), 130, ""),
        (Terminated(15), 143, ""),
        (Terminated(1), 129, ""),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), 0, ""),
        (SystemExit(3), 3, ""),
        (
            RuntimeError("boom"),
            1,
            f"{PREFIX}unexpected RuntimeError: boom (run with --debug for details)\n",
        ),
        (
            OSError(errno.ENOENT, "No such file or directory"),
            1,
            f"{PREFIX}unexpected FileNotFoundError: [Errno 2] No such file or directory "
            "(run with --debug for details)\n",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_every_ending_has_its_exit_code_and_at_most_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    raised: BaseException,
    code: int,
    said: str,
) -> None:
    import kazoo_tail.app.replay

    def replay(*args: object, **kwargs: object) -> ExitCode:
        raise raised

    monkeypatch.setattr(kazoo_tail.app.replay, "run_replay", replay)
    env = environment()
    assert run(["replay", str(recording(tmp_path))], env) == code
    assert stderr_of(env).startswith(said)
    assert stderr_of(env).count("\n") == (1 if said else 0), stderr_of(env)
    assert stdout_of(env) == b""


def test_a_usage_error_names_the_command_as_typed() -> None:
    for argv, sentence in (
        (["--bogus"], "no such option: --bogus (see kazoo-tail --help)"),
        (["tail", "--bogus"], "no such option: --bogus (see kazoo-tail tail --help)"),
        # click leaves this one without its context: the group puts the command's back.
        (["login", "--url"], "option '--url' requires an argument (see kazoo-tail login --help)"),
        (["--count"], "option '--count' requires an argument (see kazoo-tail --help)"),
        (["logn"], 'no such command "logn"; did you mean "login"?'),
    ):
        env = environment()
        assert run(argv, env) == ExitCode.USAGE
        assert stderr_of(env) == f"{PREFIX}{sentence}\n"
        assert stdout_of(env) == b""


def test_help_and_version_are_written_to_the_environments_stdout() -> None:
    env = environment()
    assert run(["--help"], env) == 0
    assert stdout_of(env).startswith(b"Usage: kazoo-tail [COMMAND] [OPTIONS]")
    env = environment()
    assert run(["doctor", "--help"], env) == 0
    assert b"Usage: kazoo-tail doctor" in stdout_of(env)
    env = environment()
    assert run(["--version"], env) == 0
    assert stdout_of(env).startswith(b"kazoo-tail 0.")
    assert stderr_of(env) == ""


# -- a stdout that fails, wherever it is written --------------------------------------------------

FULL = f"{PREFIX}cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["replay", "--help"], ["--version"], ["bindings"], ["replay", "RECORDING"]],
    ids=["help", "command-help", "version", "bindings", "replay"],
)
def test_a_full_stdout_is_one_sentence_and_exit_1(tmp_path: Path, argv: list[str]) -> None:
    argv = [str(recording(tmp_path)) if word == "RECORDING" else word for word in argv]
    env = environment(FailingStdout(errno.ENOSPC))
    assert run(argv, env) == ExitCode.ERROR
    # Status lines may come before it (bindings says where its list comes from).
    assert stderr_of(env).endswith(FULL) and stderr_of(env).count(PREFIX) == 1


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["bindings"], ["replay", "RECORDING"]],
    ids=["help", "version", "bindings", "replay"],
)
def test_a_stdout_whose_reader_left_ends_with_0_and_nothing_said(
    tmp_path: Path, argv: list[str]
) -> None:
    argv = [str(recording(tmp_path)) if word == "RECORDING" else word for word in argv]
    env = environment(FailingStdout(errno.EPIPE))
    assert run(argv, env) == ExitCode.OK
    assert "error" not in stderr_of(env)


def test_a_tail_whose_stdout_fills_up_ends_with_one_sentence(sim: Simulator) -> None:
    """The tail writes through its spool's writer thread: the same one sentence, exit 1."""

    publisher = publish_once_subscribed(sim)
    env = environment(FailingStdout(errno.ENOSPC))
    args = ["--token", sim.mint_token(), "--ws-url", sim.blackhole_url, "--count", "1"]
    code = run([*args, "-b", "object.doc_created.user"], env)
    publisher.join()
    assert code == ExitCode.ERROR
    assert stderr_of(env).endswith(FULL)
    assert stderr_of(env).count(PREFIX) == 1
