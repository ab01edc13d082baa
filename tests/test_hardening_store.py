"""The config directory under pressure (issue 10): concurrent writers, a directory others can
write, a full disk, and files a hostile or broken writer left behind. Real files, real
processes, the simulator over real sockets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from kazoo_tail.auth.store import ConfigStore
from kazoo_tail.simulator import DEMO, Simulator
from kazoo_tail.simulator.accounts import User

from .conftest import BIN, ScriptedServer, kazoo_tail_env, login_args, run

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

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


# -- item 7: what other users could change -----------------------------------------------------


def _one_sentence(stderr: str) -> bool:
    return stderr.count("\n") == 1 and stderr.startswith("kazoo-tail: error: ")


def test_a_config_dir_or_file_others_can_change_is_refused(
    sim: Simulator, isolated_env: Path, scripted: ScriptedServer, tmp_path: Path
) -> None:
    heard: list[str] = []

    def thief(ws: ServerConnection) -> None:
        heard.append(str(ws.recv()))  # a subscribe, with the token in it; then hang up

    hostile_ws = scripted(thief)
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    profiles = isolated_env / "profiles.json"
    saved = json.loads(profiles.read_text())
    tail = ["-b", "call.*.*", "--no-reconnect", "--count", "1"]

    # Another local user, given a world-writable directory, points the profile at their server.
    isolated_env.chmod(0o777)
    profiles.unlink()
    profiles.write_text(json.dumps({"default": {**saved["default"], "ws_url": hostile_ws}}))
    for mode in (0o777, 0o770):
        isolated_env.chmod(mode)
        result = run(*tail)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert f"chmod 700 {isolated_env}" in result.stderr
    assert heard == []  # the token went nowhere

    isolated_env.chmod(0o700)
    for path in (profiles, isolated_env / "tokens.json"):
        path.chmod(0o620)
        result = run(*tail)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert str(path) in result.stderr and "chmod" in result.stderr
        path.chmod(0o600)
    assert heard == []

    lock = isolated_env / "lock"
    lock.touch()
    lock.chmod(0o666)
    result = run("logout")
    assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
    assert f"chmod go-w {lock}" in result.stderr
    lock.chmod(0o600)

    catalogue = isolated_env / "catalogue.json"
    catalogue.write_text(json.dumps({"call": ["call.PLANTED.{CALL_ID}"]}))
    catalogue.chmod(0o666)
    assert ConfigStore(isolated_env).cached_catalogue() == {}  # completion offers none of it

    if os.geteuid() == 0:  # only root can give a file away
        os.chown(profiles, 65534, 65534)
        result = run(*tail)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert "belongs to another user" in result.stderr

    # With umask 000, every directory the tool creates is still private, parents included.
    fresh = tmp_path / "made" / "by" / "login"
    login = subprocess.run(
        [str(BIN), "login", *login_args(sim), "--config-dir", str(fresh)],
        capture_output=True,
        text=True,
        timeout=30,
        env=kazoo_tail_env(**PASSWORD),
        umask=0,
    )
    assert login.returncode == 0, login.stderr
    for directory in (tmp_path / "made", tmp_path / "made" / "by", fresh):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for path in fresh.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
