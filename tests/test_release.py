"""Release hygiene: one version, what --version says, and the versions it falls back to."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from importlib import metadata

import pytest

import kazoo_tail
from kazoo_tail.cli.version import LIBRARIES, library_version, version_line

from .conftest import BIN


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
