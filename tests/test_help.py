"""Help that guides: options in sections, an example on every page, the exit codes in the main
help, whole summaries; usage errors as one sentence naming the command the user typed."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import Result

from kazoo_tail.cli import cli
from kazoo_tail.cli.help import UNSECTIONED, is_help_or_version, section_of
from kazoo_tail.cli.options import GROUPS, OPTIONS, SECTION_ORDER, use
from kazoo_tail.errors import EXIT_CODE_MEANINGS, ExitCode
from tests.conftest import run

from .inprocess import cli_runner

PROG = "kazoo-tail"
COMMAND_NAMES = sorted(name for name, command in cli.commands.items() if not command.hidden)
# Every page: the group's, and each command's.
PAGES = [[], *([name] for name in COMMAND_NAMES)]
PAGE_IDS = ["kazoo-tail", *COMMAND_NAMES]
HEADING = re.compile(r"^(\S[^:\n]*):$", re.MULTILINE)


def invoke(*args: str, columns: int = 100) -> Result:
    return cli_runner().invoke(
        cli,
        list(args),
        prog_name=PROG,
        terminal_width=columns,
        env={"COLUMNS": str(columns)},
    )


def help_page(*words: str, columns: int = 100) -> str:
    result = invoke(*words, "--help", columns=columns)
    assert result.exit_code == 0, result.output
    return result.stdout


def headings(page: str) -> list[str]:
    return HEADING.findall(page)


# -- sections ------------------------------------------------------------------------------


def test_the_main_help_shows_the_tails_options_in_sections_then_commands_examples_exit_codes() -> (
    None
):
    page = help_page()
    assert headings(page) == [
        "Connection",
        "Authentication",
        "Subscription",
        "Output",
        "Filters",
        "Staying connected",
        "Configuration",
        "Commands",
        "Examples",
        "Exit codes",
    ]
    assert "Options:" not in page
    connection = page.split("Connection:\n", 1)[1].split("\n\n", 1)[0]
    assert "--url URL" in connection and "--ws-url URL" in connection
    assert "--binding" not in connection
    configuration = page.split("Configuration:\n", 1)[1].split("\n\n", 1)[0]
    # --version and --help close the last section, once each.
    assert [" ".join(line.split()) for line in configuration.splitlines()[-2:]] == [
        "--version Show the version and exit.",
        "-h, --help Show this message and exit.",
    ]
    assert page.count("--help ") == 1


def test_help_texts_start_in_one_column_across_sections() -> None:
    page = help_page("login")
    starts = {
        len(line) - len(line[2:].split("  ", 1)[1].lstrip())
        for line in page.split("\n\nConnection:\n", 1)[1].split("\nExamples:\n")[0].splitlines()
        if line.startswith("  -") and "  " in line[2:]
    }
    assert len(starts) == 1, starts


def test_tail_help_has_the_same_sections() -> None:
    assert headings(help_page("tail")) == [
        *(title for title in SECTION_ORDER if title not in ("Simulator", "Forwarding")),
        "Examples",
    ]


@pytest.mark.parametrize("words", PAGES, ids=PAGE_IDS)
def test_every_option_is_in_a_titled_section(words: list[str]) -> None:
    """No page falls back to click's one flat "Options:" list (but one whose only option is
    --help, as 'completion', which has nothing to put in sections)."""
    page = help_page(*words)
    group_or_command = cli if not words else cli.commands[words[0]]
    with click.Context(group_or_command, info_name=PROG) as ctx:
        if any(
            not is_help_or_version(param)
            for param in group_or_command.get_params(ctx)
            if isinstance(param, click.Option)
        ):
            assert "\nOptions:\n" not in page, page
        unplaced = [
            param.name
            for param in group_or_command.get_params(ctx)
            if isinstance(param, click.Option)
            and not is_help_or_version(param)
            and section_of(param) == UNSECTIONED
        ]
    assert not unplaced, f"options in no section: {unplaced} (declare them with section=...)"


def declared(name: str) -> click.Option:
    option = OPTIONS[name].add(lambda: None).__click_params__[0]  # type: ignore[attr-defined]
    assert isinstance(option, click.Option)
    return option


def test_every_declared_option_has_a_known_section() -> None:
    for name in OPTIONS:
        option = declared(name)
        assert option.name == name
        assert section_of(option) in SECTION_ORDER, f"{name} has no known section"


def test_a_group_of_options_brings_its_members_in_declared_order() -> None:
    assert not set(GROUPS) & set(OPTIONS), "a group named like an option"

    def names(*wanted: str) -> list[str | None]:
        command = click.command()(use(*wanted)(lambda: None))
        return [param.name for param in command.params]

    # Whatever order they are asked in, as declared (the help pages' order).
    assert names("record", "ping_timeout", "matches") == ["record", "matches", "ping_timeout"]
    board = names("board")
    assert board == [name for name in OPTIONS if "board" in OPTIONS[name].groups]
    assert "buffer_size" not in board and "count" not in board
    with pytest.raises(ValueError, match="no option or group of options named nope"):
        use("nope")


def test_every_group_of_options_is_taken_by_a_command() -> None:
    """A group no command takes would leave a new option in it on no help page."""
    taken = {param.name for command in cli.commands.values() for param in command.params} | {
        param.name for param in cli.params
    }
    for group in GROUPS:
        members = [name for name in OPTIONS if group in OPTIONS[name].groups]
        assert members and set(members) <= taken, group


# -- examples, exit codes, summaries ------------------------------------------------------


@pytest.mark.parametrize("words", PAGES, ids=PAGE_IDS)
def test_every_page_has_an_examples_section(words: list[str]) -> None:
    page = help_page(*words)
    examples = page.split("\nExamples:\n", 1)
    assert len(examples) == 2, f"{' '.join([PROG, *words])} --help has no Examples:\n{page}"
    first = examples[1].splitlines()[0]
    assert first.startswith(f"  {PROG}") or f" {PROG} " in first, first


def test_the_main_help_lists_every_exit_code_with_its_meaning() -> None:
    page = help_page()
    listed = page.split("\nExit codes:\n", 1)[1]
    codes = [int(line.split()[0]) for line in listed.splitlines() if line[:3].strip().isdigit()]
    assert codes == [int(code) for code in ExitCode]
    assert [code for code, _ in EXIT_CODE_MEANINGS] == list(ExitCode)
    flat = " ".join(listed.split())
    for code, meaning in EXIT_CODE_MEANINGS:
        assert f"{int(code)} {meaning}" in flat


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_command_list_never_cuts_a_summary(columns: int) -> None:
    page = help_page(columns=columns)
    listing = page.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    assert "..." not in listing
    for name in COMMAND_NAMES:
        summary = cli.commands[name].get_short_help_str(limit=1_000)
        assert summary in " ".join(listing.split()), (name, listing)
    if columns >= 80:  # one line each
        assert len(listing.splitlines()) == len(COMMAND_NAMES), listing


# -- usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--bogus"], "no such option: --bogus (see kazoo-tail --help)"),
        (["-b", "x", "--bogus"], "no such option: --bogus (see kazoo-tail --help)"),
        (["tail", "--bogus"], "no such option: --bogus (see kazoo-tail tail --help)"),
        (["login", "--bogus"], "no such option: --bogus (see kazoo-tail login --help)"),
        (["--bindng", "x"], "no such option: --bindng; did you mean --binding?"),
        (["logn"], 'no such command "logn"; did you mean "login"?'),
        (["tial", "-b", "x"], 'no such command "tial"; did you mean "tail"?'),
        (["frobnicate"], 'no such command "frobnicate" (see kazoo-tail --help)'),
        (["login", "--url"], "option '--url' requires an argument (see kazoo-tail login --help)"),
        (["--count"], "option '--count' requires an argument (see kazoo-tail --help)"),
        (["replay"], "missing argument 'RECORDING' (see kazoo-tail replay --help)"),
        (
            ["demo", "--nodes", "9"],
            "invalid value for '--nodes': 9 must be from 1 to 8 (see kazoo-tail demo --help)",
        ),
        (
            ["--count", "-1"],
            "invalid value for '--count': -1 must be at least 1 (see kazoo-tail --help)",
        ),
        (
            ["--count", "x"],
            "invalid value for '--count': 'x' is not a whole number (see kazoo-tail --help)",
        ),
        (
            ["--duration", "soon"],
            "invalid value for '--duration': 'soon' is not a number (see kazoo-tail --help)",
        ),
        (["tail", "logn"], "unexpected argument: logn (see kazoo-tail tail --help)"),
        (["doctor", "a", "b"], "unexpected arguments: a b (see kazoo-tail doctor --help)"),
    ],
)
def test_a_usage_error_is_one_sentence_naming_the_command_typed(
    args: list[str], sentence: str
) -> None:
    result = invoke(*args)
    assert result.exit_code == ExitCode.USAGE == 2
    assert result.stdout == ""
    assert result.stderr == f"kazoo-tail: error: {sentence}\n"


def test_a_mistyped_command_is_not_run_as_the_default() -> None:
    """`kazoo-tail logn` used to run the tail, which said "Got unexpected extra argument"."""
    result = invoke("logn", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and 'did you mean "login"' in result.stderr
    assert "extra argument" not in result.stderr


def test_the_installed_command_reports_a_usage_error_in_one_line() -> None:
    result = run("--bogus")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "kazoo-tail: error: no such option: --bogus (see kazoo-tail --help)\n"


def test_the_main_help_leaves_tail_its_short_help_option() -> None:
    """click keeps the help option it made for a command's first context: the main page,
    drawing tail's options, must not leave tail with --help alone."""
    runner = cli_runner()
    runner.invoke(cli, ["--help"])
    shown = runner.invoke(cli, ["tail", "--help"]).output
    assert "-h, --help" in shown


def test_the_installed_help_is_as_wide_as_columns_says() -> None:
    """The width is found without shutil (start-up time); COLUMNS still rules it."""
    for columns, widest in (("100", 98), ("80", 78)):
        lines = run("--help", COLUMNS=columns).stdout.splitlines()
        assert max(map(len, lines)) <= widest
        assert max(map(len, lines)) > widest - 10


@pytest.mark.parametrize("command", [[], *([name] for name in COMMAND_NAMES)])
def test_number_ranges_are_in_words_not_clicks_notation(command: list[str]) -> None:
    page = invoke(*command, "--help", columns=200).stdout
    assert not re.search(r"\bx[<>]=?|<=x", page), page
