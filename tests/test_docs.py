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
SUMMARY_LIMIT = 70


def test_generated_docs_are_up_to_date() -> None:
    diffs = reference.stale()
    assert not diffs, (
        "".join(diffs)
        + f"\ndocs/cli.md or README.md is stale; regenerate with: {reference.REGENERATE}"
    )


def test_every_environment_variable_read_is_documented() -> None:
    problems = reference.environment_problems()
    assert not problems, "\n".join(problems)


def test_the_environment_scan_finds_indirect_reads(tmp_path: Path) -> None:
    """The scan behind the test above: literals, `in`, aliases, a helper called with literal
    names, a module constant; anything it cannot name is reported, not skipped."""
    package = tmp_path / "pkg"
    (package / "simulator").mkdir(parents=True)
    (package / "simulator" / "core.py").write_text("import os\nos.environ.get('SIM_ONLY')\n")
    (package / "mod.py").write_text(
        textwrap.dedent(
            """
            import os
            from os import environ as env, getenv
            NAME = "FROM_CONSTANT"

            def knob(name, default=1.0):
                return os.environ.get(name, default)

            class Settings:
                def read(self, key):
                    return os.environ[key]

            a = knob("VIA_HELPER") or knob(name="VIA_KEYWORD")
            b = "FLAG" not in os.environ and env.get("ALIASED") and getenv("GETENV")
            c = os.environ.get(NAME)
            d = Settings().read("VIA_METHOD")
            os.environ["WRITTEN_NOT_READ"] = "1"
            e = dict(os.environ)
            f = os.environ.get(f"PREFIX_{a}")
            """
        )
    )
    reads = reference.scan_environment(package)
    assert {read.name for read in reads} == {
        "VIA_HELPER",
        "VIA_KEYWORD",
        "FLAG",
        "ALIASED",
        "GETENV",
        "FROM_CONSTANT",
        "VIA_METHOD",
        None,
    }
    unnamed = sorted(read.code for read in reads if read.name is None)
    assert unnamed == ["e = dict(os.environ)", 'f = os.environ.get(f"PREFIX_{a}")']


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
