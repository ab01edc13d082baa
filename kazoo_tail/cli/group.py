"""The command group, whose default command is ``tail``, and the one error boundary: the only
place where errors become one sentence on stderr and a documented exit code."""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from kazoo_tail.cli.help import (
    HelpContext,
    NoSuchCommand,
    SectionedCommand,
    close_command_names,
    is_help_or_version,
    sectioned_records,
    usage_sentence,
    write_command_list,
    write_epilog,
    write_exit_codes,
    write_sections,
)
from kazoo_tail.cli.options import SECTIONS
from kazoo_tail.errors import EXIT_CODE_MEANINGS, ExitCode, KazooTailError, redact

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from kazoo_tail.app.environment import Environment
    from kazoo_tail.output.terminal import StatusWriter


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


def environment(ctx: click.Context) -> Environment:
    """The environment given to ``run``, else the process's own (read once, when needed)."""
    from kazoo_tail.app.environment import Environment

    env = ctx.find_object(Environment)
    if env is None:
        env = Environment.from_process()
        ctx.find_root().obj = env
    return env


def status_writer(env: Environment) -> StatusWriter:
    from kazoo_tail.output.terminal import StatusWriter

    return StatusWriter(env.stderr, colour=env.stderr_isatty and "NO_COLOR" not in env.environ)


def report(exc: BaseException, env: Environment, *, debug: bool) -> int:
    """One sentence on stderr for an error, and its exit code."""
    status = status_writer(env)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, Terminated):
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        return ExitCode.OK  # the reader of stdout left; nothing to say to anyone
    if isinstance(exc, OSError) and _a_failed_write_to_a_stream(exc):
        from kazoo_tail.errors import stdout_failed

        exc = stdout_failed(exc)
    if isinstance(exc, KazooTailError):
        status.error(exc.message)
        return exc.exit_code
    if debug:
        import traceback

        env.stderr.write(redact("".join(traceback.format_exception(exc))))
    status.error(
        f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
        + ("" if debug else " (run with --debug for details)")
    )
    return ExitCode.ERROR


def _a_failed_write_to_a_stream(exc: OSError) -> bool:
    """click's own output (a command's --help) failing: a write error on no named file. The
    program's own writes to stdout and to files already fail as one sentence of their own."""
    import errno

    return exc.filename is None and exc.errno in (
        errno.ENOSPC,
        errno.EBADF,
        errno.EIO,
        errno.EDQUOT,
        errno.EFBIG,
    )


class DefaultGroup(click.Group):
    """A group whose default command is ``tail``: ``kazoo-tail -b X`` runs ``tail -b X``."""

    default_command = "tail"
    command_class = SectionedCommand
    context_class = HelpContext

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["kazoo_tail.debug"] = "--debug" in args
        # While completing the first word, stay at the group so that command names complete too.
        completing_first_word = ctx.resilient_parsing and not args
        explicit = bool(args) and args[0] in (*self.commands, "-h", "--help", "--version")
        if not completing_first_word and not explicit:
            if args and not ctx.resilient_parsing:
                self._refuse_a_command_that_is_not_one(ctx, args[0])
            args = [self.default_command, *args]
            ctx.meta[_IMPLIED_DEFAULT] = True
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            self._usage_error(ctx, exc)

    def _refuse_a_command_that_is_not_one(self, ctx: click.Context, first: str) -> None:
        """A first word that is not an option is a mistyped command: the tail takes no word
        of its own, so running it would only fail on an "unexpected extra argument" (were it
        ever to take one, only a word close to a command name would count as a typo)."""
        if first.startswith("-"):
            return
        close = close_command_names(first, self.commands)
        default = self.commands[self.default_command]
        takes_words = any(isinstance(param, click.Argument) for param in default.params)
        if close or not takes_words:
            self._usage_error(ctx, NoSuchCommand(first, close, ctx))

    def invoke(self, ctx: click.Context) -> Any:
        env = environment(ctx)
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            self._usage_error(ctx, exc)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise  # click reports its own
        except (Exception, KeyboardInterrupt, Terminated) as exc:
            debug = bool(ctx.meta.get("kazoo_tail.debug") or env.environ.get("KAZOO_TAIL_DEBUG"))
            ctx.exit(report(exc, env, debug=debug))

    def _usage_error(self, ctx: click.Context, exc: click.UsageError) -> NoReturn:
        """One sentence and exit code 2 instead of click's Usage/Try/Error block, naming the
        command as typed: ``kazoo-tail --bogus`` points at ``kazoo-tail --help``, not at the
        ``tail`` it was routed to."""
        # click leaves some errors (a missing option value) without their context.
        if exc.ctx is None:
            name = ctx.invoked_subcommand
        else:
            name = exc.ctx.info_name if exc.ctx is not ctx else None
        typed = ctx.command_path
        if name and not (ctx.meta.get(_IMPLIED_DEFAULT) and name == self.default_command):
            typed = f"{typed} {name}"
        status_writer(environment(ctx)).error(usage_sentence(exc, typed))
        ctx.exit(ExitCode.USAGE)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            tail = self.commands[self.default_command]
            with tail.make_context(ctx.info_name, [], parent=ctx, resilient_parsing=True) as sub:
                items += tail.shell_complete(sub, incomplete)
        return items

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The default command's options are what most users look for, so show them here.
        tail = self.commands[self.default_command]
        # With its own settings: click keeps the help option made for the first context.
        with click.Context(tail, info_name=ctx.info_name, **tail.context_settings) as tail_ctx:
            self.format_usage(ctx, formatter)
            self.format_help_text(ctx, formatter)
            entries = [
                (param, tail_ctx)
                for param in tail.get_params(tail_ctx)
                if not is_help_or_version(param)  # the group's own close the list
            ]
            entries += [(param, ctx) for param in self.get_params(ctx)]
            sections = getattr(tail, "sections", SECTIONS)
            write_sections(formatter, sectioned_records(entries, sections))
        self.format_commands(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        commands = [(name, self.get_command(ctx, name)) for name in names]
        write_command_list(
            formatter, [(name, cmd) for name, cmd in commands if cmd is not None and not cmd.hidden]
        )

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_epilog(formatter, self.epilog)
        write_exit_codes(formatter, EXIT_CODE_MEANINGS)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[COMMAND]", "[OPTIONS]"]


# Set on the group's context when the first word was not a command and ``tail`` was put first.
_IMPLIED_DEFAULT = "kazoo_tail.implied_default"
