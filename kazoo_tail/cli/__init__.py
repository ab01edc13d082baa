"""The command line: ``main`` for the console script, ``run`` to drive it in-process.

Only click and the stdlib are imported here and in the modules below: every TAB press of
shell completion runs this program.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from kazoo_tail.cli.commands import cli
from kazoo_tail.cli.group import Terminated
from kazoo_tail.cli.settings import APP_NAME
from kazoo_tail.errors import ExitCode

if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment

__all__ = ["cli", "main", "run"]


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI with these arguments and environment (by default the process's own, read
    when a command first needs it); return the exit code once its status lines are written."""
    return _status_lines_written(_run(argv, env))


def _status_lines_written(code: int) -> int:
    """Status lines wait in a queue while stderr is slow; the last ones (the error sentence,
    --summary) reach it before the exit. Ctrl-C still ends the wait."""
    if "kazoo_tail.output.terminal" not in sys.modules:
        return code  # no status line was written: nothing to wait for
    from kazoo_tail.output.terminal import drain_status_lines

    try:
        drain_status_lines()
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Terminated as exc:
        return exc.exit_code
    return code


def _run(argv: list[str] | None, env: Environment | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout
    try:
        result = cli.main(args=args, prog_name=APP_NAME, standalone_mode=False, obj=env)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    except Terminated as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show(file=env.stderr if env is not None else None)
        return exc.exit_code
    except BrokenPipeError:
        return ExitCode.OK
    except OSError as exc:
        # Only what runs before a command gets here (--help, --version): its output failed.
        from kazoo_tail.app.environment import Environment
        from kazoo_tail.cli.group import status_writer
        from kazoo_tail.errors import stdout_failed

        status_writer(env or Environment.from_process()).error(stdout_failed(exc).message)
        return ExitCode.ERROR
    except SystemExit as exc:  # completion requests and sys.exit in commands end this way
        if exc.code == 1 and _click_saw_a_broken_pipe(stdout):
            return ExitCode.OK  # e.g. `kazoo-tail --help | head -n 1`: the reader had enough
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    return int(result) if isinstance(result, int) else ExitCode.OK


def _click_saw_a_broken_pipe(stdout_before: object) -> bool:
    """click ends a broken pipe met outside a command (help, usage) with exit 1, after
    putting a wrapper in place of stdout so that the exit-time flush stays quiet; the README
    promises 0."""
    return (
        sys.stdout is not stdout_before
        and type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper"
    )


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: every ending goes through here with its documented exit code."""
    _fill_closed_standard_descriptors()
    code = run(argv)
    _drop_what_stdout_could_not_take()
    sys.exit(code)


def _drop_what_stdout_could_not_take() -> None:
    """After stdout failed (a full disk), what it still buffers would fail again at the
    interpreter's exit flush, which prints "Exception ignored" and makes the exit code 120:
    flush it now, and if that fails too, let /dev/null take it."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            sys.stdout = None  # Python's own stand-in for a closed stdout: not flushed at exit


def _fill_closed_standard_descriptors() -> None:
    """Started with stdin, stdout or stderr closed (``>&-``), the next file or socket opened
    would take its number, and status lines or events would be written into it: /dev/null
    holds the number instead (Python has already set the stream itself to None, which the
    environment reports as closed)."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            if fd == 1:
                from kazoo_tail.app.environment import closed_stdout

                # Every write to it (click's --help too) fails and says why.
                sys.stdout = closed_stdout()
