"""Help pages that guide: options in sections, a command list that never cuts a summary, and
usage errors as the tool's one sentence. Only click and the stdlib: `--help` and every TAB
press load this, and `--help` is held to 1.3 times `import click` (bench/run.py)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence

import click

from kazoo_tail.cli.context import write_stdout
from kazoo_tail.cli.options import SECTION_ORDER
from kazoo_tail.errors import KazooTailError

# Options declared with no section: shown first, under click's usual title.
UNSECTIONED = "Options"
HelpRecord = tuple[str, str]


def is_help_or_version(param: click.Parameter) -> bool:
    """--help and --version (eager, and with no value for the command): they close the last
    section rather than open one of their own."""
    return param.is_eager and not param.expose_value


# click writes a number option's range as "x>=1" or "1<=x<=8" in its help's brackets.
_HELP_RANGE = re.compile(r"(?<![\w.])(?:(?P<low>-?[\d.]+)<=)?x(?P<op>>=|>|<=|<)(?P<bound>-?[\d.]+)")


_USAGE_RANGE = re.compile(r"is not in the range " + _HELP_RANGE.pattern + "$")


def _range_in_words(found: re.Match[str]) -> str:
    low, op, bound = found["low"], found["op"], found["bound"]
    if low is not None and op == "<=":
        return f"{low} to {bound}"
    words = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}[op]
    prefix = f"at least {low}, " if low is not None else ""
    return f"{prefix}{words} {bound}"


def section_of(param: click.Parameter) -> str:
    """The section of the help page an option is shown in: its ``section``, declared with it
    (``options.option``, or the simulator's own options)."""
    section = getattr(param, "section", None)
    return section if isinstance(section, str) else UNSECTIONED


def sectioned_records(
    entries: Iterable[tuple[click.Parameter, click.Context]],
    order: Sequence[str] = SECTION_ORDER,
) -> list[tuple[str, list[HelpRecord]]]:
    """The options' help records, grouped by section: unsectioned ones first, then the
    sections in ``order``, then any other section in the order its first option came; within a
    section, options keep their declared order."""
    grouped: dict[str, list[HelpRecord]] = {}
    closing: list[HelpRecord] = []
    for param, ctx in entries:
        if isinstance(param, click.Argument):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        record = (record[0], _HELP_RANGE.sub(_range_in_words, record[1]))
        if is_help_or_version(param):
            closing.append(record)
            continue
        grouped.setdefault(section_of(param), []).append(record)

    def rank(title: str) -> int:
        if title == UNSECTIONED:
            return -1
        return order.index(title) if title in order else len(order)

    ordered = sorted(grouped.items(), key=lambda item: rank(item[0]))  # stable for the rest
    if closing:
        if ordered:
            ordered[-1][1].extend(closing)
        else:
            ordered.append((UNSECTIONED, closing))
    return ordered


# click's widest first column; a longer term has its help on the next line.
TERM_COLUMN_MAX = 30


def write_sections(
    formatter: click.HelpFormatter, sections: list[tuple[str, list[HelpRecord]]]
) -> None:
    """Each section under its title, their help texts starting in one column, as in one list."""
    terms = [term for _, records in sections for term, _ in records]
    column = min(max((len(term) for term in terms), default=0), TERM_COLUMN_MAX)
    for title, records in sections:
        with formatter.section(title):
            formatter.write_dl([(term.ljust(column), text) for term, text in records])


class HelpContext(click.Context):
    """A context whose help is as wide as the terminal, found as shutil would find it but
    without importing shutil, which brings bz2, lzma and zlib into every --help."""

    def make_formatter(self) -> click.HelpFormatter:
        from click import formatting

        if self.terminal_width is not None or formatting.FORCED_WIDTH is not None:
            return super().make_formatter()
        width = max(min(terminal_columns(), self.max_content_width or 80) - 2, 50)
        return self.formatter_class(width=width, max_width=self.max_content_width)


def terminal_columns() -> int:
    """COLUMNS, else the width of the terminal stdout is on, else 80 (shutil's rules)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80


def _show_help(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        write_stdout(ctx, ctx.get_help())
        ctx.exit()


def help_on_stdout(option: click.Option | None) -> click.Option | None:
    """click's help option, printing the page on the environment's stdout: captured by an
    in-process run, and failing (a full disk, ``| head``) as every other write does."""
    if option is not None:
        option.callback = _show_help
    return option


class SectionedCommand(click.Command):
    """A command whose --help shows its options in sections (each option's own), each
    titled, in one order across commands."""

    context_class = HelpContext

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return help_on_stdout(super().get_help_option(ctx))

    def option_sections(self, ctx: click.Context) -> list[tuple[str, list[HelpRecord]]]:
        return sectioned_records((param, ctx) for param in self.get_params(ctx))

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_sections(formatter, self.option_sections(ctx))

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_epilog(formatter, self.epilog)


def write_epilog(formatter: click.HelpFormatter, epilog: str | None) -> None:
    """The epilog at the margin, so that its ``Examples:`` heads a section like ``Options:``
    (click indents an epilog as it does the description)."""
    if epilog:
        import inspect

        formatter.write_paragraph()
        formatter.write_text(inspect.cleandoc(epilog))


def write_command_list(
    formatter: click.HelpFormatter, commands: Iterable[tuple[str, click.Command]]
) -> None:
    """Each command with its whole summary, wrapped when the terminal is narrow, never cut
    to "..." as click's list does (tests/test_docs.py keeps the summaries short)."""
    rows = [(name, command.get_short_help_str(limit=1_000)) for name, command in commands]
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def write_exit_codes(formatter: click.HelpFormatter, codes: Iterable[tuple[int, str]]) -> None:
    with formatter.section("Exit codes"):
        formatter.write_dl([(str(int(code)), meaning) for code, meaning in codes])


# -- usage errors as one sentence --------------------------------------------------------


def _did_you_mean(possibilities: Sequence[str] | None, quote: str = "") -> str:
    if not possibilities:
        return ""
    names = " or ".join(f"{quote}{name}{quote}" for name in sorted(possibilities))
    return f"; did you mean {names}?"


_EXTRA_ARGUMENTS = re.compile(r"Got unexpected extra arguments? \((?P<words>.*)\)")


# click's number wording ("not a valid integer range") in plain words.
_NOT_A_NUMBER = {
    "is not a valid integer range": "is not a whole number",
    "is not a valid float range": "is not a number",
    "is not a valid integer": "is not a whole number",
    "is not a valid float": "is not a number",
}


def _plain_ranges(text: str) -> str:
    for click_words, plain in _NOT_A_NUMBER.items():
        if text.endswith(click_words):
            return text[: -len(click_words)] + plain
    found = _USAGE_RANGE.search(text)
    if found is None:
        return text
    words = _range_in_words(found)
    return text[: found.start()] + "must be " + ("from " if " to " in words else "") + words


def usage_sentence(error: click.UsageError, typed_command: str) -> str:
    """``no such option: --bogus (see kazoo-tail --help)``: click's message made one line in
    the tool's style, pointing at the help of the command the user typed. A suggestion, when
    click or we have one, takes the place of the pointer."""
    if isinstance(error, click.NoSuchOption):
        text = f"no such option: {error.option_name}"
        suggestion = _did_you_mean(error.possibilities)
    elif isinstance(error, NoSuchCommand):
        text = f'no such command "{error.command_name}"'
        suggestion = _did_you_mean(error.possibilities, quote='"')
    else:
        text = " ".join(error.format_message().split()).rstrip(".")
        extra = _EXTRA_ARGUMENTS.fullmatch(text)
        if extra:  # click's "Got unexpected extra argument (logn)" would double the brackets
            plural = "s" if " " in extra["words"] else ""
            text = f"unexpected argument{plural}: {extra['words']}"
        text = _plain_ranges(text)
        # "Invalid value ..." reads as a sentence start; "URL ..." keeps its capitals.
        if len(text) > 1 and text[0].isupper() and text[1].islower():
            text = text[0].lower() + text[1:]
        suggestion = ""
    return text + (suggestion or f" (see {typed_command} --help)")


def main_standalone(command: click.Command, prog_name: str, args: list[str] | None) -> None:
    """Run a command on its own (``python -m kazoo_tail.simulator``) with the tool's usage
    errors: one sentence and exit code 2, not click's Usage/Try/Error block."""
    try:
        code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as exc:
        sys.stderr.write(f"{prog_name}: error: {usage_sentence(exc, prog_name)}\n")
        sys.exit(2)
    except click.ClickException as exc:
        sys.stderr.write(f"{prog_name}: error: {exc.format_message()}\n")
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C before the command ran
        sys.exit(130)
    except KazooTailError as exc:  # its help on a full disk (errors.stdout_failure)
        sys.stderr.write(f"{prog_name}: error: {exc.message}\n")
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


class NoSuchCommand(click.UsageError):
    """A first word that names no command (click's own NoSuchCommand is newer than 8.2)."""

    def __init__(self, command_name: str, possibilities: list[str], ctx: click.Context) -> None:
        super().__init__(f"no such command {command_name!r}", ctx)
        self.command_name = command_name
        self.possibilities = possibilities


def close_command_names(word: str, names: Iterable[str]) -> list[str]:
    import difflib  # only a mistyped command pays for it

    return difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
