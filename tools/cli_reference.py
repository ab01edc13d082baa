"""Generate the CLI reference from the click commands, so that it cannot drift from the code.

    python tools/cli_reference.py           # rewrite docs/cli.md and README.md's options table
    python tools/cli_reference.py --check   # exit 1, with a diff, if either is stale

docs/cli.md holds every command's ``--help`` (rendered at a fixed width of 100 columns, with
the KAZOO_* environment cleared) and a table of the environment variables the tool reads.
README.md gets the table of the default command's options that have an environment variable,
between the marker comments below. Only the stdlib and click are used; nothing is hand-kept
but NON_OPTION_ENVIRONMENT, the variables read other than through an option, and
tests/test_docs.py fails when the code names a KAZOO_* variable that neither table lists.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kazoo_tail"
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"

PROG = "kazoo-tail"
WIDTH = 100
README_COMMAND = "tail"
README_START = "<!-- generated: options -->"
README_END = "<!-- end generated -->"
REGENERATE = "python tools/cli_reference.py"
# Not part of the tool: the simulator's own settings are not the user's environment.
SCAN_EXCLUDE = ("simulator",)


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    meaning: str


# Read in kazoo_tail/ other than through a click option.
NON_OPTION_ENVIRONMENT: tuple[EnvironmentVariable, ...] = (
    EnvironmentVariable(
        "KAZOO_PASSWORD",
        "The password to log in with; else --password-stdin, else a hidden prompt.",
    ),
    EnvironmentVariable(
        "KAZOO_TAIL_BACKOFF_INITIAL",
        "Ceiling of the first delay before reconnecting, in seconds (default 0.5); it doubles "
        "after each failure, and each delay is drawn between a tenth of it and it.",
    ),
    EnvironmentVariable(
        "KAZOO_TAIL_BACKOFF_CAP",
        "Longest delay between reconnection attempts, in seconds (default 30).",
    ),
    EnvironmentVariable(
        "KAZOO_TAIL_CONNECT_TIMEOUT",
        "How long a websocket handshake may take before the attempt fails, in seconds "
        "(default 10).",
    ),
    EnvironmentVariable(
        "KAZOO_TAIL_JSON",
        "stdlib: parse frames with Python's json module, as strict as orjson, even when orjson "
        "is installed (the one-file build, which cannot load orjson, always does).",
    ),
    EnvironmentVariable(
        "NO_COLOR",
        "When set, no colour in status lines on stderr, nor in pretty output with --color auto.",
    ),
    EnvironmentVariable(
        "REQUESTS_CA_BUNDLE",
        "CA certificates for the websocket's TLS when --ca-bundle is not given "
        "(requests uses it for Crossbar).",
    ),
    EnvironmentVariable(
        "SSL_CERT_FILE",
        "CA certificates for the websocket's TLS when neither --ca-bundle nor "
        "REQUESTS_CA_BUNDLE is given.",
    ),
)


# -- the commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandInfo:
    """A command (or group) with the words that invoke it and a context to resolve it in."""

    path: tuple[str, ...]
    command: click.Command
    context: click.Context

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def short_name(self) -> str:
        """``tail`` for ``kazoo-tail tail``; the program name for the group itself."""
        return " ".join(self.path[1:]) or self.path[0]


def load_group() -> click.Group:
    """The click group of this checkout (not of whichever kazoo-tail is installed)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from kazoo_tail.cli import cli

    return cli


def walk(group: click.Command) -> list[CommandInfo]:
    """The group and every visible command under it, depth first, in click's listing order.

    The contexts are made as click makes them (context_settings, auto_envvar_prefix), but
    without parsing anything, so no callback runs and no environment is read.
    """

    def visit(
        command: click.Command, path: tuple[str, ...], parent: click.Context | None
    ) -> Iterator[CommandInfo]:
        settings = {**command.context_settings, "terminal_width": WIDTH}
        context = click.Context(command, info_name=path[-1], parent=parent, **settings)
        yield CommandInfo(path, command, context)
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                child = command.get_command(context, name)
                if child is not None and not child.hidden:
                    yield from visit(child, (*path, name), context)

    return list(visit(group, (PROG,), None))


def option_names(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return ", ".join(f"`{opt}`" for opt in (*param.opts, *param.secondary_opts))
    return f"`{param.human_readable_name}`"


def param_envvars(param: click.Parameter, context: click.Context) -> list[str]:
    """The environment variables a parameter reads, as click's resolve_envvar_value does."""
    if param.envvar:
        return [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)
    if (
        isinstance(param, click.Option)
        and param.allow_from_autoenv
        and context.auto_envvar_prefix is not None
        and param.name is not None
    ):
        return [f"{context.auto_envvar_prefix}_{param.name.upper()}"]
    return []


def visible_params(info: CommandInfo) -> list[click.Parameter]:
    return [
        param
        for param in info.command.get_params(info.context)
        if not (isinstance(param, click.Option) and param.hidden)
    ]


def option_environment(commands: Sequence[CommandInfo]) -> set[str]:
    return {
        name
        for info in commands
        for param in visible_params(info)
        for name in param_envvars(param, info.context)
    }


def render_help(info: CommandInfo, group: click.Command) -> str:
    """``kazoo-tail ... --help`` exactly as a user sees it, at WIDTH columns."""
    help_names = info.context.help_option_names
    if not help_names or not info.command.add_help_option:
        return info.command.get_help(info.context) + "\n"
    help_option = "--help" if "--help" in help_names else sorted(help_names)[0]
    # Unset every KAZOO variable, and every variable an option reads: click can show values
    # from the environment in help, and _KAZOO_TAIL_COMPLETE would switch to completion.
    unset = {name for name in os.environ if "KAZOO" in name.upper()}
    unset |= option_environment(walk(group))
    env: dict[str, str | None] = {name: None for name in sorted(unset)}
    env["COLUMNS"] = str(WIDTH)
    result = CliRunner().invoke(
        group,
        [*info.path[1:], help_option],
        env=env,
        prog_name=PROG,
        terminal_width=WIDTH,
        catch_exceptions=False,
    )
    if result.exit_code != 0:
        raise RuntimeError(f"{info.name} {help_option} exited {result.exit_code}:\n{result.output}")
    return result.stdout


# -- Markdown ------------------------------------------------------------------------------


def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, and nothing that breaks the table."""
    text = " ".join(text.split())
    for char in ("\\", "|", "*", "<"):
        text = text.replace(char, "\\" + char)
    return text


def anchor(heading: str) -> str:
    """The id GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def short_help(command: click.Command) -> str:
    return command.get_short_help_str(limit=200)


@dataclass(frozen=True)
class OptionRow:
    envvar: str
    option: str
    help: str
    commands: tuple[str, ...]


def option_rows(commands: Sequence[CommandInfo]) -> list[OptionRow]:
    """One row per variable and option (same flags, same help), with every command using it."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for info in commands:
        for param in visible_params(info):
            help_text = " ".join((getattr(param, "help", None) or "").split())
            for envvar in param_envvars(param, info.context):
                users = seen.setdefault((envvar, option_names(param), help_text), [])
                if info.short_name not in users:
                    users.append(info.short_name)
    rows = [OptionRow(key[0], key[1], key[2], tuple(users)) for key, users in seen.items()]
    return sorted(rows, key=lambda row: row.envvar)  # stable: within a variable, code order


def render_cli_doc(group: click.Command) -> str:
    commands = walk(group)
    lines = [
        "# Command-line reference",
        "",
        f"<!-- Generated by tools/cli_reference.py from the click commands: do not edit. "
        f"Regenerate with: {REGENERATE} -->",
        "",
        f"`{PROG}` with no command runs `{PROG} {README_COMMAND}`.",
        "",
        "| command | summary |",
        "| --- | --- |",
    ]
    for info in commands:
        link = f"[`{info.name}`](#{anchor(info.name)})"
        lines.append(f"| {link} | {cell(short_help(info.command))} |")
    for info in commands:
        lines += ["", f"## {info.name}", "", "```text", render_help(info, group).rstrip(), "```"]
    lines += [
        "",
        "## Environment variables",
        "",
        "### Read by options",
        "",
        "An option's environment variable is used when the option is not given.",
        "",
        "| environment | option | commands | help |",
        "| --- | --- | --- | --- |",
    ]
    for row in option_rows(commands):
        used_by = ", ".join(f"`{name}`" for name in row.commands)
        lines.append(f"| `{row.envvar}` | {row.option} | {used_by} | {cell(row.help)} |")
    lines += [
        "",
        "### Read directly",
        "",
        "| environment | meaning |",
        "| --- | --- |",
    ]
    for variable in NON_OPTION_ENVIRONMENT:
        lines.append(f"| `{variable.name}` | {cell(variable.meaning)} |")
    return "\n".join(lines) + "\n"


def render_readme_block(group: click.Command) -> str:
    """The table between README's markers: the default command's options that have an
    environment variable, in the order of its --help, then the variables read directly."""
    commands = walk(group)
    wanted = (PROG, README_COMMAND)
    matches = [info for info in commands if info.path == wanted]
    if not matches:
        raise RuntimeError(f"no command {' '.join(wanted)!r} to document in README.md")
    info = matches[0]
    lines = [
        README_START,
        f"<!-- From the options of '{info.name}'; do not edit, run: {REGENERATE} -->",
        "",
        "| option | environment | meaning |",
        "| --- | --- | --- |",
    ]
    for param in visible_params(info):
        envvars = param_envvars(param, info.context)
        if envvars:
            names = ", ".join(f"`{name}`" for name in envvars)
            help_text = getattr(param, "help", None) or ""
            lines.append(f"| {option_names(param)} | {names} | {cell(help_text)} |")
    for variable in NON_OPTION_ENVIRONMENT:
        lines.append(f"| | `{variable.name}` | {cell(variable.meaning)} |")
    lines += ["", README_END]
    return "\n".join(lines)


def render_readme(current: str, group: click.Command) -> str:
    start = current.find(README_START)
    end = current.find(README_END, start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        raise RuntimeError(
            f"README.md has no {README_START} ... {README_END} block to fill in; "
            "put the two markers where the options table belongs"
        )
    return current[:start] + render_readme_block(group) + current[end + len(README_END) :]


def rendered(group: click.Command | None = None) -> dict[Path, str]:
    """Every generated file and what it should contain."""
    group = group if group is not None else load_group()
    return {
        CLI_DOC: render_cli_doc(group),
        README: render_readme(README.read_text(encoding="utf-8"), group),
    }


def stale(group: click.Command | None = None) -> list[str]:
    """A unified diff (committed -> generated) for each generated file that is out of date."""
    diffs = []
    for path, want in rendered(group).items():
        have = path.read_text(encoding="utf-8") if path.exists() else ""
        if have != want:
            name = path.relative_to(ROOT).as_posix()
            diff = difflib.unified_diff(
                have.splitlines(keepends=True),
                want.splitlines(keepends=True),
                fromfile=f"{name} (committed)",
                tofile=f"{name} (generated)",
            )
            diffs.append("".join(diff))
    return diffs


# -- environment variables the code names ------------------------------------------------

# A Kazoo or kazoo-tail variable, as the code names it: reads go through the injected
# Environment's mapping, so the names are what can be checked, not the calls.
KAZOO_VARIABLE = re.compile(r"KAZOO_[A-Z0-9_]+\Z")


def named_variables(package: Path = PACKAGE) -> dict[str, str]:
    """Each environment variable named by a string literal in the package (outside the
    simulator): every KAZOO_* name, and the listed non-KAZOO ones; with where it first is."""
    listed = {variable.name for variable in NON_OPTION_ENVIRONMENT}
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        if "simulator" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if KAZOO_VARIABLE.match(node.value) or node.value in listed:
                where = f"{path.relative_to(package.parent).as_posix()}:{node.lineno}"
                found.setdefault(node.value, where)
    return found


def environment_problems(group: click.Command | None = None) -> list[str]:
    """Variables the code names but neither table documents, and stale table entries."""
    group = group if group is not None else load_group()
    by_option = option_environment(walk(group))
    listed = {variable.name for variable in NON_OPTION_ENVIRONMENT}
    named = named_variables()
    problems = [
        f"{where}: names {name}, which no option has as envvar and NON_OPTION_ENVIRONMENT "
        "in tools/cli_reference.py does not list"
        for name, where in sorted(named.items())
        if name not in by_option and name not in listed
    ]
    problems += [
        f"NON_OPTION_ENVIRONMENT lists {name}, but kazoo_tail/ no longer names it"
        for name in sorted(listed - named.keys())
    ]
    problems += [
        f"NON_OPTION_ENVIRONMENT lists {name}, but it is an option's envvar now"
        for name in sorted(listed & by_option)
    ]
    return problems


# -- entry point ---------------------------------------------------------------------------


def _report(lines: Iterable[str]) -> None:
    for line in lines:
        sys.stderr.write(line if line.endswith("\n") else line + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is stale"
    )
    arguments = parser.parse_args(argv)
    group = load_group()
    problems = environment_problems(group)
    if arguments.check:
        diffs = stale(group)
        if diffs:
            _report(diffs)
            _report([f"\nThe generated CLI docs are stale; regenerate them with:\n  {REGENERATE}"])
    else:
        diffs = []
        for path, text in rendered(group).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8", newline="\n")
                print(f"wrote {path.relative_to(ROOT).as_posix()}")
    if problems:
        _report(["\nEnvironment variables not documented:", *problems])
    return 1 if diffs or problems else 0


if __name__ == "__main__":
    sys.exit(main())
