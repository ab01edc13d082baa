"""The config directory under pressure (issue 10): concurrent writers, a directory others can
write, a full disk, and files a hostile or broken writer left behind. Real files, real
processes, the simulator over real sockets."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kazoo_tail.auth.store import ConfigStore
from kazoo_tail.simulator import DEMO, Simulator
from kazoo_tail.simulator.accounts import User

from .conftest import BIN, ScriptedServer, kazoo_tail_env, login_args, wait_until
from .inprocess import run

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


@pytest.mark.e2e
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


@pytest.mark.e2e
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


# -- item 8 (second round): a umask that takes the owner's own bits -------------------------


@pytest.mark.e2e
def test_a_umask_that_takes_the_owners_bits_still_leaves_0700_and_0600(
    sim: Simulator, tmp_path: Path
) -> None:
    """umask 277 leaves mkdir's 0700 as 0500, in which no parent below can be made (but by
    root, which the suite may run as: so the modes are checked, not only success)."""
    top = tmp_path / "um277"
    config = top / "a" / "b"
    # Coverage, when measuring, would save its data under the same umask.
    environ = {k: v for k, v in kazoo_tail_env(**PASSWORD).items() if not k.startswith("COV")}
    for _ in range(2):  # the second run finds the directories and the lock already there
        login = subprocess.run(
            [str(BIN), "login", *login_args(sim), "--config-dir", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            env=environ,
            umask=0o277,
        )
        assert login.returncode == 0, login.stderr
    for directory in (top, top / "a", config):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert sorted(path.name for path in config.iterdir()) == [
        "lock",
        "profiles.json",
        "tokens.json",
    ]
    for path in config.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- item 14: a cache that cannot be written ---------------------------------------------------


def _full_disk() -> None:
    """In the child: ``ulimit -f 0``, so that writing any byte to a file fails (EFBIG; Python
    ignores SIGXFSZ). It binds root as well, unlike a read-only mode."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


class FullDiskTail:
    """A kazoo-tail that cannot write a byte to any file, its stderr read as it comes."""

    def __init__(self, *args: str, **env: str) -> None:
        # Coverage, when measuring, would try to save its data in the child too.
        environ = {k: v for k, v in kazoo_tail_env(**env).items() if not k.startswith("COV")}
        self.process = subprocess.Popen(
            [str(BIN), *args, "--count", "1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            preexec_fn=_full_disk,
        )
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def subscribes(self) -> int:
        return sum("subscribed to" in line for line in self.stderr_lines)

    def wait_for_subscribes(self, count: int) -> None:
        wait_until(
            lambda: self.subscribes() >= count or self.process.poll() is not None,
            what=lambda: "".join(self.stderr_lines),
        )
        assert self.subscribes() >= count, "".join(self.stderr_lines)

    def finish(self) -> tuple[int, str, str]:
        stdout, _ = self.process.communicate(timeout=30)
        self._reader.join(5)
        return self.process.returncode, stdout, "".join(self.stderr_lines)


def _publish_call(sim: Simulator, call_id: str) -> None:
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
        "CHANNEL_CREATE",
        {"call_id": call_id, "msg_id": call_id, "account_id": DEMO.account_id},
    )


@pytest.mark.e2e
def test_a_token_that_cannot_be_cached_is_a_warning_and_the_tail_goes_on(
    sim: Simulator, isolated_env: Path, tmp_path: Path
) -> None:
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    tokens = isolated_env / "tokens.json"
    before = tokens.read_text()

    # A renewal at reconnect, on a full disk: the new token is used, the tail goes on.
    tail = FullDiskTail("-b", "call.*.*", KAZOO_TAIL_BACKOFF_INITIAL="0.05", **PASSWORD)
    try:
        tail.wait_for_subscribes(1)
        sim.revoke_tokens()  # e.g. a password change elsewhere: blackhole wants a new token
        sim.close_connections(code=1001)
        tail.wait_for_subscribes(2)
        _publish_call(sim, "after-renewal")
        code, stdout, stderr = tail.finish()
    finally:
        tail.process.kill()
    assert code == 0, stderr
    assert json.loads(stdout)["data"]["call_id"] == "after-renewal"
    warnings = [line for line in stderr.splitlines() if "cached" in line]
    assert len(warnings) == 1 and str(tokens) in warnings[0], stderr
    assert "File too large" in warnings[0] and "error:" not in stderr
    assert tokens.read_text() == before  # the old cache is left whole
    assert sim.stats.user_auth == 2

    # An API key into an empty config directory on a full disk: it starts all the same.
    empty = tmp_path / "empty"
    tail = FullDiskTail(
        "--url", sim.crossbar_url, "--config-dir", str(empty), "-b", "call.*.*",
        KAZOO_API_KEY=DEMO.api_key,
    )  # fmt: skip
    try:
        tail.wait_for_subscribes(1)
        _publish_call(sim, "api-key")
        code, stdout, stderr = tail.finish()
    finally:
        tail.process.kill()
    assert code == 0, stderr
    assert json.loads(stdout)["data"]["call_id"] == "api-key"
    assert stderr.count("warning: the token could not be cached") == 1, stderr
    assert str(empty / "tokens.json") in stderr and "error:" not in stderr


# -- also seen: files a broken writer left behind ----------------------------------------------


def test_deeply_nested_or_mistyped_config_files_are_one_sentence_and_logout_clears_them(
    sim: Simulator, isolated_env: Path
) -> None:
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    tokens = isolated_env / "tokens.json"
    profiles = isolated_env / "profiles.json"
    good_profiles = profiles.read_text()
    tail = ["-b", "call.*.*", "--count", "1"]
    nested = "[" * 100_000

    for path, good in ((profiles, good_profiles), (tokens, None)):
        path.write_text(nested)
        result = run(*tail)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert f"{path} is corrupt" in result.stderr
        if good is not None:
            path.write_text(good)
    cleared = run("logout", "--all")
    assert cleared.returncode == 0 and "forgot 1 cached token" in cleared.stderr, cleared.stderr
    assert not tokens.exists()

    (isolated_env / "catalogue.json").write_text(nested)
    assert ConfigStore(isolated_env).cached_catalogue() == {}  # completion still works

    # A cached token's fields are type-checked as a profile's are: a number is no URL.
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    cache = json.loads(tokens.read_text())
    for field, value in (("ws_url", 5), ("account_id", ["not", "an", "id"])):
        for entry in cache.values():
            entry[field] = value
        tokens.write_text(json.dumps(cache))
        result = run(*tail)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert f"token cache {tokens} is malformed" in result.stderr and field in result.stderr
    cleared = run("logout")  # the profile's own entry goes, unread
    assert cleared.returncode == 0 and "forgot 1 cached token" in cleared.stderr, cleared.stderr


def test_logout_all_removes_a_corrupt_profiles_file_and_keeps_a_healthy_one(
    sim: Simulator, isolated_env: Path
) -> None:
    profiles = isolated_env / "profiles.json"
    explicit = ["-b", "call.*.*", "--count", "1", *login_args(sim)]  # needs no profile

    for corrupt in ("[" * 100_000, '{"default": 5}'):
        assert run("login", *login_args(sim), **PASSWORD).returncode == 0
        profiles.write_text(corrupt)
        result = run(*explicit, **PASSWORD)
        assert result.returncode == 1 and _one_sentence(result.stderr), result.stderr
        assert str(profiles) in result.stderr
        assert "run 'kazoo-tail logout --all'" in result.stderr

        cleared = run("logout", "--all")
        assert cleared.returncode == 0, cleared.stderr
        assert f"warning: removed the corrupt {profiles}" in cleared.stderr
        assert "forgot 1 cached token" in cleared.stderr
        assert not profiles.exists()

    # Profiles hold no secrets, and --all is about tokens: a healthy file stays as it was.
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    healthy = profiles.read_text()
    cleared = run("logout", "--all")
    assert cleared.returncode == 0 and "removed" not in cleared.stderr, cleared.stderr
    assert profiles.read_text() == healthy


def test_a_catalogue_that_cannot_be_cached_is_a_warning_and_the_listing_is_shown(
    sim: Simulator, tmp_path: Path
) -> None:
    """Only completion reads the cached catalogue: failing to write it must not cost the user
    the listing they asked for."""
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "catalogue.json").mkdir()  # unwritable as a file, even for root
    result = run("bindings", "--url", sim.crossbar_url, "--config-dir", str(config))
    assert result.returncode == 0, result.stderr
    assert "call.CHANNEL_CREATE.{CALL_ID}" in result.stdout.splitlines()
    assert "warning: the catalogue was not cached for completion" in result.stderr
