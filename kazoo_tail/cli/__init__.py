"""The command line: ``main`` for the console script, ``run`` to drive it in-process.

Only click and the stdlib are imported here and in the modules below: every TAB press of
shell completion runs this program.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from kazoo_tail.cli.boundary import raw_main
from kazoo_tail.cli.commands import cli
from kazoo_tail.cli.settings import APP_NAME

if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment

__all__ = ["cli", "main", "run"]


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI with these arguments and environment (by default the process's own, read
    when a command first needs it) and return the exit code: the one error boundary, where
    every error becomes one sentence on stderr and its documented code (``boundary.py``)."""
    return raw_main(cli, argv, env, APP_NAME)


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
