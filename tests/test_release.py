"""Release hygiene: one version, what --version says, and the versions it falls back to."""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest

import kazoo_tail
from kazoo_tail.cli.version import LIBRARIES, library_version, version_line

from .conftest import BIN

ROOT = Path(__file__).parent.parent


def test_the_installed_metadata_has_the_packages_version() -> None:
    # pyproject.toml has no version of its own: hatchling reads kazoo_tail/__init__.py.
    assert metadata.version("kazoo-tail") == kazoo_tail.__version__


def test_version_names_ours_pythons_and_the_four_libraries() -> None:
    line = version_line()
    assert line.startswith(f"kazoo-tail {kazoo_tail.__version__} (Python ")
    assert f"Python {platform.python_version()}" in line
    for distribution, _module in LIBRARIES:
        assert f"{distribution} {metadata.version(distribution)}" in line
    assert "?" not in line


def test_a_library_without_metadata_is_asked_its_module_then_shown_as_unknown() -> None:
    # A zipapp carries modules without their dist-info: the module's __version__ serves.
    assert library_version("no-such-distribution-kt", "kazoo_tail") == kazoo_tail.__version__
    assert library_version("no-such-distribution-kt", "no_such_module_kt") == "?"
    # A module without a __version__ (rich has none).
    assert library_version("no-such-distribution-kt", "textwrap") == "?"


@pytest.mark.e2e
def test_the_real_program_prints_the_line() -> None:
    done = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(
        r"kazoo-tail \d+\.\d+\.\d+ \(Python [\d.]+\w*, click \S+, requests \S+, "
        r"websocket-client \S+, rich \S+\)\n",
        done.stdout,
    ), done.stdout
    assert done.stderr == ""


@pytest.mark.e2e
def test_version_loads_none_of_the_heavy_libraries() -> None:
    # --version must stay as quick as a TAB press: metadata, not imports.
    code = (
        "import sys; from kazoo_tail.cli.version import version_line; version_line(); "
        "print(sorted(m for m in ('requests', 'websocket', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _load_man_tool() -> ModuleType:
    # By path, as tests/test_docs.py loads cli_reference: no package called "tools" shadows it.
    spec = importlib.util.spec_from_file_location("man_page", ROOT / "tools" / "man_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_man_page_is_up_to_date() -> None:
    diff = _load_man_tool().stale()
    assert not diff, diff + "\nman/kazoo-tail.1 is stale; regenerate with: python tools/man_page.py"


def test_the_man_page_has_every_command_and_option() -> None:
    page = (ROOT / "man" / "kazoo-tail.1").read_text(encoding="utf-8")
    for info in reference_walk():
        assert f".SS {info.name}".replace("-", "\\-") in page or info.path == ("kazoo-tail",)
        for param in info.command.get_params(info.context):
            if isinstance(param, click.Option) and not param.hidden:
                for name in param.opts:
                    assert name.replace("-", "\\-") in page, (info.name, name)


@pytest.mark.e2e
def test_the_man_page_renders_without_warnings() -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "man" / "kazoo-tail.1")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def reference_walk() -> list[Any]:
    tool = _load_man_tool()
    return list(tool.reference.walk(tool.reference.load_group()))
