"""The CLI reference is generated and current, every environment variable the code reads is
documented, and every command's help is complete: a short summary, an example, help for every
option."""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import click
import pytest

TOOL = Path(__file__).parent.parent / "tools" / "cli_reference.py"


def _load_tool() -> ModuleType:
    # By path, so that no other installed package called "tools" can shadow it.
    spec = importlib.util.spec_from_file_location("cli_reference", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


reference = _load_tool()
COMMANDS = reference.walk(reference.load_group())
IDS = [info.name for info in COMMANDS]
EXAMPLE = re.compile(rf"^ {{2,}}{re.escape(reference.PROG)}(?= |$)", re.MULTILINE)
# At 80 columns the command list leaves 65 columns for a summary after the longest name
# ("simulator"): longer ones wrap (they are never cut).
SUMMARY_LIMIT = 65
README = Path(__file__).parent.parent / "README.md"


def test_generated_docs_are_up_to_date() -> None:
    diffs = reference.stale()
    assert not diffs, (
        "".join(diffs)
        + f"\ndocs/cli.md or README.md is stale; regenerate with: {reference.REGENERATE}"
    )


def test_every_environment_variable_read_is_documented() -> None:
    problems = reference.environment_problems()
    assert not problems, "\n".join(problems)


def test_the_environment_check_finds_undocumented_names(tmp_path: Path) -> None:
    """The check behind the test above: any KAZOO_* literal counts, the simulator does not."""
    package = tmp_path / "kazoo_tail"
    (package / "simulator").mkdir(parents=True)
    (package / "simulator" / "core.py").write_text("SIM = 'KAZOO_SIM_ONLY'\n")
    (package / "mod.py").write_text(
        textwrap.dedent(
            """
            KNOBS = {"ping_timeout": "KAZOO_TAIL_NEW_KNOB"}
            def password(environ):
                return environ.get("KAZOO_PASSWORD") or environ.get("NO_COLOR")
            NOT_A_VARIABLE = "CHANNEL_CREATE"
            """
        )
    )
    named = reference.named_variables(package)
    assert set(named) == {"KAZOO_TAIL_NEW_KNOB", "KAZOO_PASSWORD", "NO_COLOR"}
    assert named["KAZOO_TAIL_NEW_KNOB"] == "kazoo_tail/mod.py:2"


@pytest.mark.parametrize("info", COMMANDS, ids=IDS)
def test_command_has_a_short_summary(info: reference.CommandInfo) -> None:
    summary = info.command.get_short_help_str(limit=200)
    assert summary, f"{info.name} has no help text"
    assert len(summary) <= SUMMARY_LIMIT, (
        f"{info.name}'s summary is {len(summary)} characters (at most {SUMMARY_LIMIT}): {summary!r}"
    )


@pytest.mark.parametrize("info", COMMANDS, ids=IDS)
def test_command_help_has_an_example(info: reference.CommandInfo) -> None:
    help_text = reference.render_help(info, reference.load_group())
    has_example = EXAMPLE.search(help_text) is not None
    assert has_example, (
        f"{info.name} --help shows no example: add an indented line starting with "
        f"'{reference.PROG}' (e.g. in a \\b paragraph of the docstring)\n\n{help_text}"
    )


@pytest.mark.parametrize("info", COMMANDS, ids=IDS)
def test_every_option_has_help(info: reference.CommandInfo) -> None:
    missing = [
        "/".join(param.opts)
        for param in info.command.get_params(info.context)
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not missing, f"{info.name}: options without help: {', '.join(missing)}"


def test_readme_exit_codes_are_the_ones_help_shows() -> None:
    """One table, kazoo_tail/errors.py's, behind the main --help's "Exit codes:"; README's
    section says the same, in Markdown."""
    from kazoo_tail.errors import EXIT_CODE_MEANINGS

    section = README.read_text(encoding="utf-8").split("\n## Exit codes\n", 1)[1]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section.split("\n## ", 1)[0], re.MULTILINE)
    in_readme = [
        (int(code), meaning.replace("`", "").replace("\\|", "|")) for code, meaning in rows
    ]
    assert in_readme == [(int(code), meaning) for code, meaning in EXIT_CODE_MEANINGS]
