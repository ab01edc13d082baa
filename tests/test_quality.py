"""The codebase stays clean, typed, and quick to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed")
    return subprocess.run([str(path), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_and_format() -> None:
    lint = tool("ruff", "check", "kazoo_tail", "tests", "bench")
    assert lint.returncode == 0, lint.stdout
    fmt = tool("ruff", "format", "--check", "kazoo_tail", "tests", "bench")
    assert fmt.returncode == 0, fmt.stdout


def test_mypy_strict() -> None:
    result = tool("mypy", "kazoo_tail", "bench")
    assert result.returncode == 0, result.stdout


def test_help_and_completion_import_nothing_heavy() -> None:
    """Every TAB press runs the program: requests, websocket-client and rich stay unloaded."""
    code = (
        "import sys; from kazoo_tail import cli; "
        "heavy = {'requests', 'websocket', 'rich', 'websockets', 'orjson'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_simulator_imports_nothing_from_the_client() -> None:
    """The simulator is an independent reading of the spec, so a misreading cannot be shared."""
    client = (
        "auth",
        "blackhole",
        "cli",
        "config",
        "crossbar",
        "events",
        "frames",
        "protocol",
        "render",
        "tail",
        "terminal",
        "tokens",
        "errors",
    )
    for path in (ROOT / "kazoo_tail" / "simulator").glob("*.py"):
        text = path.read_text()
        for module in client:
            assert f"kazoo_tail.{module}" not in text, f"{path.name} imports kazoo_tail.{module}"
