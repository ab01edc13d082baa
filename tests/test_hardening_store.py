"""The config directory under pressure (issue 10): concurrent writers, a directory others can
write, a full disk, and files a hostile or broken writer left behind. Real files, real
processes, the simulator over real sockets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kazoo_tail.simulator import DEMO, Simulator
from kazoo_tail.simulator.accounts import User

from .conftest import BIN, kazoo_tail_env

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
WRITERS = 8


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kazoo_tail_env(**env),
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


# -- item 1: concurrent writers ----------------------------------------------------------------


def test_concurrent_logins_and_logouts_all_keep_their_changes(
    sim: Simulator, isolated_env: Path
) -> None:
    for n in range(WRITERS):
        sim.directory.add_user(
            User(f"agent-{n}", DEMO.account_id, f"agent{n}", DEMO.password, "Agent", str(n))
        )
    # Two profiles to log out of while the logins run: their tokens must go, no one else's.
    for name in ("gone0", "gone1"):
        user = "demo" if name == "gone0" else DEMO.admin_username
        password = DEMO.password if name == "gone0" else DEMO.admin_password
        process = _start(
            "login",
            "--save-as",
            name,
            "--url",
            sim.crossbar_url,
            "--account-name",
            "demo",
            "--username",
            user,
            KAZOO_PASSWORD=password,
        )
        code, stderr = _finish(process)
        assert code == 0, stderr

    logins = [
        _start(
            "login",
            "--save-as",
            f"p{n}",
            "--url",
            sim.crossbar_url,
            "--account-name",
            "demo",
            "--username",
            f"agent{n}",
            **PASSWORD,
        )
        for n in range(WRITERS)
    ]
    logouts = [_start("logout", "--profile", name) for name in ("gone0", "gone1")]
    for process in logins + logouts:
        code, stderr = _finish(process)
        assert code == 0, stderr

    profiles = json.loads((isolated_env / "profiles.json").read_text())
    tokens = json.loads((isolated_env / "tokens.json").read_text())
    assert sorted(profiles) == sorted([f"p{n}" for n in range(WRITERS)] + ["gone0", "gone1"])
    users = sorted(key.rsplit(" ", 1)[1] for key in tokens)
    assert users == sorted(f"agent{n}" for n in range(WRITERS)), users
