"""The one-file build (tools/build_pyz.py): built once, copied alone into an empty read-only
directory, run with ``python -I`` on the oldest and newest supported Pythons with HOME missing
or read-only, and compared with the installed tool's output."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kazoo_tail.simulator import DEMO, Simulator

from .conftest import BIN, login_args

ROOT = Path(__file__).resolve().parent.parent
PYENV = Path.home() / ".pyenv" / "versions"
PYTHONS = {"3.9": PYENV / "3.9.18" / "bin" / "python", "3.13": PYENV / "3.13.0" / "bin" / "python"}
# What pip says when it cannot reach the index: then, and only then, the build is skipped.
OFFLINE = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution")

EVENTS = 3

pytestmark = [pytest.mark.e2e, pytest.mark.pyz]


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/kazoo-tail.pyz as the README builds it, into a temporary directory."""
    output = tmp_path_factory.mktemp("build") / "kazoo-tail.pyz"
    pythons = [Path(sys.executable), *(path for path in PYTHONS.values() if path.exists())]
    precompile = [f"--precompile={path}" for path in pythons]
    built = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_pyz.py"),
            "--output",
            str(output),
            *precompile,
        ],
        capture_output=True,
        text=True,
        timeout=55,
    )
    if built.returncode != 0 and any(sign in built.stderr for sign in OFFLINE):
        pytest.skip(f"the package index is unreachable: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    assert "MB" in built.stdout
    return output


def can_mount_read_only() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def alone(pyz: Path, tmp_path: Path) -> Iterator[Path]:
    """An empty directory holding only the archive, read-only."""
    directory = tmp_path / "alone"
    directory.mkdir()
    shutil.copyfile(pyz, directory / "kazoo-tail.pyz")
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)


def confined(command: list[str], read_only: list[Path]) -> list[str]:
    """``command``, with ``read_only`` directories unwritable even to root: root ignores file
    modes, so it gets them remounted read-only in a mount namespace of its own."""
    if os.geteuid() != 0:
        return command
    if not can_mount_read_only():
        pytest.fail("running as root without `unshare -m`: nothing could be made read-only")
    mounts = " && ".join(
        f"mount --bind {p} {p} && mount -o remount,bind,ro {p} {p}" for p in map(str, read_only)
    )
    return ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]


def environment(home: Path | None) -> dict[str, str]:
    """The test's environment without the config directory override, so that the default
    (under HOME) is what is used; HOME itself set to ``home`` or missing."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAZOO_TAIL_CONFIG_DIR", "HOME")}
    env.pop("XDG_CONFIG_HOME", None)
    if home is not None:
        env["HOME"] = str(home)
    return env


def python(version: str) -> Path:
    path = PYTHONS[version]
    if not path.exists():
        pytest.fail(f"Python {version} is not at {path} (pyenv install {version})")
    return path


def tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("version", sorted(PYTHONS))
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["tail", "--help"]])
def test_it_prints_what_the_installed_tool_prints(
    version: str, args: list[str], alone: Path
) -> None:
    installed = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=20)
    ran = subprocess.run(
        confined([str(python(version)), "-I", "kazoo-tail.pyz", *args], [alone]),
        cwd=alone,
        env=environment(None),
        capture_output=True,
        text=True,
        timeout=20,
    )
    if args == ["--version"]:
        # The same kazoo-tail, on this Python with the file's own libraries, each one named.
        assert ran.returncode == 0 and ran.stderr == ""
        assert ran.stdout.split(" (")[0] == installed.stdout.split(" (")[0]
        assert f"Python {version}" in ran.stdout and "?" not in ran.stdout, ran.stdout
    else:
        assert (ran.returncode, ran.stdout, ran.stderr) == (
            installed.returncode,
            installed.stdout,
            "",
        )
    assert tree(alone) == ["kazoo-tail.pyz"]


def tail_events(command: list[str], sim: Simulator, cwd: Path, env: dict[str, str]) -> str:
    """Run ``command`` (a tail that ends after EVENTS events) until it has subscribed, publish
    the call events, and return what it printed."""
    said: list[str] = []
    subscribed = threading.Event()
    # The context closes the pipes and reaps the process however the test ends.
    with subprocess.Popen(
        command,
        cwd=cwd,
        env={**env, "KAZOO_PASSWORD": DEMO.password},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                said.append(line)
                if "subscribed to" in line:
                    subscribed.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while not subscribed.wait(0.05):
                assert process.poll() is None, "".join(said)
                assert time.monotonic() < deadline, "".join(said)
            for index in range(EVENTS):
                call_id = f"pyz-{index}"
                sim.publish(
                    f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
                    "CHANNEL_CREATE",
                    {"call_id": call_id, "msg_id": call_id, "account_id": DEMO.account_id},
                )
            assert process.stdout is not None
            stdout = process.stdout.read()
            assert process.wait(timeout=20) == 0, "".join(said)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(5)
    return stdout


@pytest.mark.parametrize("version", sorted(PYTHONS))
@pytest.mark.parametrize("home", ["read-only", "missing"])
def test_it_logs_in_and_tails_from_a_read_only_directory(
    version: str, home: str, alone: Path, sim: Simulator, tmp_path: Path
) -> None:
    args = [*login_args(sim), "-b", "call.*.*", "--count", str(EVENTS)]
    config = tmp_path / "installed-config"
    expected = tail_events(
        [str(BIN), *args], sim, tmp_path, {**os.environ, "KAZOO_TAIL_CONFIG_DIR": str(config)}
    )
    assert expected.count("\n") == EVENTS
    if home == "read-only":
        home_dir = tmp_path / "home"
        home_dir.mkdir()
        home_dir.chmod(0o555)
        read_only, env = [alone, home_dir], environment(home_dir)
    else:
        # Without HOME, Python falls back to the password database's home directory: made
        # read-only too, so that the test cannot write to the real one.
        if os.geteuid() != 0:
            pytest.skip("the account's own home cannot be made read-only without root")
        home_dir = Path(pwd.getpwuid(os.geteuid()).pw_dir)
        read_only, env = [alone, home_dir], environment(None)
    before = tree(home_dir) if home == "read-only" else None
    command = confined([str(python(version)), "-I", "kazoo-tail.pyz", *args], read_only)
    assert tail_events(command, sim, alone, env) == expected
    assert tree(alone) == ["kazoo-tail.pyz"]
    if before is not None:
        assert tree(home_dir) == before


def fastest_start(command: list[str], cwd: Path, runs: int = 7) -> float:
    """The quickest of a few runs: the least disturbed by whatever else the machine does."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=True, timeout=20)
        times.append(time.perf_counter() - started)
    return min(times)


def test_help_starts_within_twice_the_installed_tool(alone: Path) -> None:
    """On the installed tool's own Python, so that only the archive differs."""
    installed = fastest_start([str(BIN), "--help"], alone)
    archived = fastest_start([sys.executable, "-I", "kazoo-tail.pyz", "--help"], alone)
    assert archived < 2 * installed, (archived, installed)
