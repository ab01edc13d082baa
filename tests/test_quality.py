"""The codebase stays clean, typed, and quick to start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e  # each test starts a linter or a fresh interpreter


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return subprocess.run([str(path), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_and_format() -> None:
    lint = tool("ruff", "check", "kazoo_tail", "tests", "bench", "tools")
    assert lint.returncode == 0, lint.stdout
    fmt = tool("ruff", "format", "--check", "kazoo_tail", "tests", "bench", "tools")
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.skipif(
    sys.version_info < (3, 10),
    reason="the gate's mypy (2.x) does not run on 3.9; the mypy 1.19 that does disagrees with it "
    "about narrowing by __class__ and reads older libraries' stubs",
)
def test_mypy_strict() -> None:
    result = tool("mypy", "kazoo_tail", "bench", "tools")
    assert result.returncode == 0, result.stdout


def test_help_and_completion_import_nothing_heavy() -> None:
    """Every TAB press runs the program: requests, websocket-client and rich stay unloaded."""
    code = (
        "import sys; from kazoo_tail import cli; "
        "heavy = {'requests', 'websocket', 'rich', 'websockets', 'orjson', 'ssl'}; "
        "heavy &= set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def lint_imports(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = BIN / "lint-imports"
    if not path.exists():
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    return subprocess.run(
        [str(path), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_layers_and_the_simulator_independence_hold() -> None:
    """Contracts in pyproject.toml: layers import downwards only; the simulator imports nothing
    from the client, so a misreading of the protocol cannot be shared; click stays in cli."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("kazoo/events.py", "from kazoo_tail.session import session", "Layers import downwards"),
        ("session/link.py", "import kazoo_tail.app.tail", "Layers import downwards"),
        ("simulator/core.py", "from kazoo_tail.kazoo import wire", "The simulator is"),
        ("simulator/core.py", "from kazoo_tail import errors", "The simulator is"),
        ("session/resolve.py", "import click", "Only the CLI uses click"),
        ("net/transport.py", "import rich.console", "The core renders nothing"),
    ],
)
def test_a_wrong_import_really_fails(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    shutil.copytree(ROOT / "kazoo_tail", tmp_path / "kazoo_tail")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "kazoo_tail" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(tmp_path, PYTHONPATH=str(tmp_path))
    assert result.returncode != 0, result.stdout
    # A contract with ignored imports reads "... BROKEN (1 ignored import)".
    # The import-linter that installs on Python 3.9 colours its report even into a pipe.
    report = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    broken = [line for line in report.splitlines() if re.search(r" BROKEN( \(.*\))?$", line)]
    assert any(line.startswith(contract) for line in broken), result.stdout
