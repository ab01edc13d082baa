"""The one error boundary: ``raw_main`` runs ``program`` and is the only place where what
ended a run becomes an exit code and, for an error, one sentence on stderr (HTTPie's
``raw_main``/``program`` split). ``program`` parses and runs a command and handles no error.

Only click and the stdlib load here: every TAB press of shell completion runs this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from kazoo_tail.cli.context import status_writer
from kazoo_tail.cli.help import usage_sentence
from kazoo_tail.errors import ExitCode, KazooTailError, redact

if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; unwinds like Ctrl-C so the socket is closed and what was
    received is written on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        # The shell's convention, 128 + the signal: 143 for SIGTERM, 129 for SIGHUP.
        self.exit_code = 128 + signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def end_on_sigterm() -> None:
    """Let SIGTERM, and SIGHUP (the ssh session or terminal went away), unwind like Ctrl-C,
    so a tail closes its socket (only where it matters: importing signal costs every TAB
    press a few milliseconds)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGHUP, _on_signal)


# Set in a run's shared context meta when the first word was not a command and the group put
# its default command first: a usage error then points at the group's help, as typed.
IMPLIED_DEFAULT = "kazoo_tail.implied_default"


def raw_main(
    command: click.Command,
    args: Sequence[str] | None,
    env: Environment | None,
    prog_name: str,
    **context: Any,
) -> int:
    """Run ``program`` and return its exit code: the one place that maps how it ended to a
    code and, for an error, one sentence on stderr (a traceback too with --debug), returned
    once the status lines are written. ``context``: click context settings (CliRunner's
    ``terminal_width``)."""
    return _status_lines_written(_ended(command, args, env, prog_name, **context))


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


def _ended(
    command: click.Command,
    args: Sequence[str] | None,
    env: Environment | None,
    prog_name: str,
    **context: Any,
) -> int:
    args = list(sys.argv[1:] if args is None else args)
    try:
        return program(command, args, env, prog_name, **context)
    except click.exceptions.Exit as exc:  # --help, --version, a command's own exit code
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C (click.prompt: Abort)
        return ExitCode.INTERRUPTED
    except Terminated as exc:
        return exc.exit_code
    except SystemExit as exc:  # sys.exit in a command (the simulator's, when it cannot serve)
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    except BrokenPipeError:
        # The reader of stdout went away (errors.stdout_failure): an ending, said to no one.
        return ExitCode.OK
    except Exception as exc:
        from kazoo_tail.app.environment import Environment

        reporting = env or Environment.from_process()
        debug = "--debug" in args or bool(reporting.environ.get("KAZOO_TAIL_DEBUG"))
        return _report(exc, reporting, prog_name, debug=debug)


def program(
    command: click.Command,
    args: Sequence[str],
    env: Environment | None,
    prog_name: str,
    **context: Any,
) -> int:
    """The program without error handling (HTTPie's ``program``): answer the shell's
    completion request, or parse the arguments and run the command; whatever goes wrong is
    raised for ``raw_main``. Unlike click's ``main`` it catches nothing: click would print a
    newline on Ctrl-C and end a broken pipe with exit code 1."""
    _complete_when_asked(command, prog_name, env)
    with command.make_context(prog_name, list(args), obj=env, **context) as ctx:
        result = command.invoke(ctx)
    return int(result) if isinstance(result, int) else ExitCode.OK


def _complete_when_asked(command: click.Command, prog_name: str, env: Environment | None) -> None:
    """A TAB press: the shell asks through _KAZOO_TAIL_COMPLETE (click's convention)."""
    name = prog_name.replace("-", "_").replace(".", "_")
    variable = f"_{name}_COMPLETE".upper()
    instruction = os.environ.get(variable)
    if instruction:
        from click.shell_completion import shell_complete

        code = shell_complete(command, {"obj": env}, prog_name, variable, instruction)
        raise click.exceptions.Exit(code)


def _report(exc: Exception, env: Environment, prog_name: str, *, debug: bool) -> int:
    """One sentence on stderr for an error, and its exit code."""
    status = status_writer(env)
    if isinstance(exc, click.UsageError):
        # click's Usage/Try/Error block made the tool's one sentence, pointing at the help of
        # the command as typed.
        status.error(usage_sentence(exc, _typed_command(exc, prog_name)))
        return ExitCode.USAGE
    if isinstance(exc, click.ClickException):
        status.error(exc.format_message())
        return exc.exit_code
    if isinstance(exc, KazooTailError):
        status.error(exc.message)
        return exc.exit_code
    if debug:
        import traceback

        env.stderr.write(
            redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        )
    status.error(
        f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
        + ("" if debug else " (run with --debug for details)")
    )
    return ExitCode.ERROR


def _typed_command(error: click.UsageError, prog_name: str) -> str:
    """The command as the user typed it: ``kazoo-tail login``, but ``kazoo-tail`` for the
    default command the group put in front of the user's options."""
    ctx = error.ctx
    if ctx is None:
        return prog_name
    if ctx.parent is not None and ctx.meta.get(IMPLIED_DEFAULT):
        return ctx.find_root().command_path
    return ctx.command_path
