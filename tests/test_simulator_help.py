"""``python -m kazoo_tail.simulator`` speaks as ``kazoo-tail`` does: the same help page with
sections and examples, and usage errors in one sentence with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Result, run

PROG = "python -m kazoo_tail.simulator"

pytestmark = pytest.mark.e2e


def simulator(*args: str) -> Result:
    completed = subprocess.run(
        [sys.executable, "-m", "kazoo_tail.simulator", *args],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--bogus"], "no such option: --bogus; did you mean --host?"),
        (["--frobnicate"], f"no such option: --frobnicate (see {PROG} --help)"),
        (["extra"], f"unexpected argument: extra (see {PROG} --help)"),
        (
            ["--nodes", "9"],
            f"invalid value for '--nodes': 9 must be from 1 to 8 (see {PROG} --help)",
        ),
        (["--keyfile", "pyproject.toml"], f"--keyfile needs --certfile (see {PROG} --help)"),
        (["--seed"], f"option '--seed' requires an argument (see {PROG} --help)"),
    ],
)
def test_a_usage_error_is_one_sentence_and_exit_code_2(args: list[str], sentence: str) -> None:
    result = simulator(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{PROG}: error: {sentence}\n"


def test_the_help_page_has_sections_and_examples_as_kazoo_tails_does() -> None:
    result = simulator("--help")
    assert result.returncode == 0 and result.stderr == ""
    page = result.stdout
    assert page.startswith(f"Usage: {PROG} [OPTIONS]\n")
    headings = [line for line in page.splitlines() if line and not line[0].isspace()]
    assert headings[1:] == ["Listening:", "Traffic:", "Behaving like Kazoo:", "Examples:"]
    # One page for both ways in, but for the usage line and where the websocket URL is told.
    through_the_tool = run("simulator", "--help", COLUMNS="100")
    assert through_the_tool.returncode == 0
    differing = set(through_the_tool.stdout.splitlines()) ^ set(page.splitlines())
    assert {line.split()[0] for line in differing} == {"Usage:", "blackhole.url"}, differing
