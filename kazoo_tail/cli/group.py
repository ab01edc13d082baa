"""The command group, whose default command is ``tail``. Its ``main`` is the error boundary
(``boundary.raw_main``), also when click's CliRunner calls it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kazoo_tail.cli.boundary import IMPLIED_DEFAULT, program, raw_main
from kazoo_tail.cli.help import (
    HelpContext,
    NoSuchCommand,
    SectionedCommand,
    close_command_names,
    help_on_stdout,
    is_help_or_version,
    sectioned_records,
    write_command_list,
    write_epilog,
    write_exit_codes,
    write_sections,
)
from kazoo_tail.errors import EXIT_CODE_MEANINGS

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class DefaultGroup(click.Group):
    """A group whose default command is ``tail``: ``kazoo-tail -b X`` runs ``tail -b X``."""

    default_command = "tail"
    command_class = SectionedCommand
    context_class = HelpContext

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """The boundary (exit with its code), or with ``standalone_mode=False`` the bare
        program, which raises what goes wrong."""
        env = extra.pop("obj", None)
        name = prog_name or self.name or "kazoo-tail"
        if not standalone_mode:
            return program(self, sys.argv[1:] if args is None else args, env, name, **extra)
        sys.exit(raw_main(self, args, env, name, **extra))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # While completing the first word, stay at the group so that command names complete too.
        completing_first_word = ctx.resilient_parsing and not args
        explicit = bool(args) and args[0] in (*self.commands, "-h", "--help", "--version")
        if not completing_first_word and not explicit:
            if args and not ctx.resilient_parsing:
                self._refuse_a_command_that_is_not_one(ctx, args[0])
            args = [self.default_command, *args]
            ctx.meta[IMPLIED_DEFAULT] = True
        return super().parse_args(ctx, args)

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
            raise NoSuchCommand(first, close, ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            name = ctx.invoked_subcommand
            if exc.ctx is None and name is not None and name in self.commands:
                # click leaves some errors (a missing option value) without their context:
                # the command's, so that the error can name the command typed.
                exc.ctx = click.Context(self.commands[name], info_name=name, parent=ctx)
            raise

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return help_on_stdout(super().get_help_option(ctx))

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
            write_sections(formatter, sectioned_records(entries))
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
