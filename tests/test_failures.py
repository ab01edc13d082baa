"""Every failure is one sentence on stderr with its documented exit code, and no secret."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import Running, login_args, wait_until
from .inprocess import run

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
LOGIN = ["--account-name", "demo", "--username", "demo", "-b", "call.*.*"]


def one_sentence(stderr: str) -> bool:
    return stderr.count("\n") == 1 and stderr.startswith("kazoo-tail: error: ")


@pytest.fixture
def fake_crossbar() -> Iterator[Callable[[int, str, bytes, bool], str]]:
    """An HTTP server that answers every request with one canned response."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(status: int, content_type: str, body: bytes, truncate: bool) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) + (100 if truncate else 0)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            do_PUT = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (404, "text/html", b"<html>Not Found</html>", "does not look like Crossbar"),
        (200, "application/json", b'{"data": {"auth_to', "does not look like Crossbar"),
        (429, "text/plain", b"", "rate limiting"),
        (
            429,
            "application/json",
            b'{"status":"error","error":"429","message":"too many"}',
            "rate limiting",
        ),
        (503, "application/json", b'{"status":"error","error":"503","message":"down"}', "HTTP 503"),
    ],
)
def test_broken_or_unhappy_crossbar(
    fake_crossbar: Callable[[int, str, bytes, bool], str],
    status: int,
    content_type: str,
    body: bytes,
    expected: str,
) -> None:
    url = fake_crossbar(status, content_type, body, False)
    result = run("--url", url, *LOGIN, **PASSWORD)
    assert result.returncode == 4, result.stderr
    assert one_sentence(result.stderr) and expected in result.stderr


def test_a_truncated_response(fake_crossbar: Callable[[int, str, bytes, bool], str]) -> None:
    url = fake_crossbar(200, "application/json", b'{"auth_token": "x", "data": {', True)
    result = run("--url", url, *LOGIN, **PASSWORD)
    assert result.returncode == 4 and one_sentence(result.stderr)
    assert "truncated" in result.stderr


def test_unknown_host_is_exit_4() -> None:
    result = run("--url", "http://kazoo.invalid:8000", *LOGIN, **PASSWORD)
    assert result.returncode == 4 and one_sentence(result.stderr)
    assert "host name" in result.stderr


def test_missing_password_says_how_to_give_one(sim: Simulator) -> None:
    result = run(*login_args(sim), "-b", "call.*.*")
    assert result.returncode == 3 and one_sentence(result.stderr)
    assert "KAZOO_PASSWORD" in result.stderr


def test_unusable_config_directory(sim: Simulator, tmp_path: Path) -> None:
    # Not merely unwritable (a token that cannot be cached is only a warning): unreadable.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config_dir = blocker / "kazoo-tail"  # cannot be read or created, even by root
    result = run(*login_args(sim), "-b", "call.*.*", "--config-dir", str(config_dir), **PASSWORD)
    assert result.returncode == 1 and one_sentence(result.stderr)
    assert str(config_dir) in result.stderr


def test_a_token_cache_others_can_read_is_refused(sim: Simulator, isolated_env: Path) -> None:
    assert run("login", *login_args(sim), **PASSWORD).returncode == 0
    (isolated_env / "tokens.json").chmod(0o644)
    result = run("-b", "call.*.*", "--duration", "0.2")
    assert result.returncode == 1 and one_sentence(result.stderr)
    assert "chmod 600" in result.stderr


def test_a_rejected_token_is_never_echoed(sim: Simulator) -> None:
    token = sim.mint_token()
    sim.revoke_tokens()
    result = run("--ws-url", sim.blackhole_url, "--token", token, "-b", "call.*.*", "--debug")
    assert result.returncode == 3 and token not in result.stderr
    assert "rejected" in result.stderr


def test_the_server_echo_of_a_bad_token_is_redacted(sim: Simulator) -> None:
    token = sim.mint_token()
    sim.revoke_tokens()
    result = run("--ws-url", sim.blackhole_url, "--token", token, "-b", "call.*.*")
    assert token not in result.stdout + result.stderr
    assert token.split(".")[1] not in result.stderr


def test_insecure_warns(sim: Simulator) -> None:
    result = run(*login_args(sim), "--insecure", "-b", "call.*.*", "--duration", "0.2", **PASSWORD)
    assert result.returncode == 0 and "not verified" in result.stderr


def test_an_expired_token_at_reconnect_time_is_renewed(started: type[Running]) -> None:
    config = SimulatorConfig(event_rate=0, early_events=False, token_ttl=2, advertise_ws_url=True)
    with Simulator(config) as simulator:
        process = started(
            *login_args(simulator),
            "-b",
            "call.*.*",
            "--count",
            "1",
            KAZOO_TAIL_BACKOFF_INITIAL="0.05",
            **PASSWORD,
        )
        process.wait_for_stderr("subscribed to")
        # Minted after the tail's token, so it expires no sooner: once the simulator refuses
        # it, the tail's token is dead too (the open socket does not care).
        later = simulator.mint_token()
        wait_until(lambda: simulator.tokens.validate(later) is None, what="token expiry")
        simulator.close_connections(code=1001)
        wait_until(
            lambda: sum("subscribed to" in line for line in process.stderr_lines) >= 2,
            what=lambda: f"a second subscribe: {process.stderr}",
        )
        simulator.publish(
            f"call.{DEMO.account_id}.CHANNEL_CREATE.x",
            "CHANNEL_CREATE",
            {"call_id": "x", "msg_id": "after-renewal"},
        )
        result = process.finish()
        assert result.returncode == 0, result.stderr
        assert simulator.stats.user_auth + simulator.stats.refresh >= 2


def test_urls_that_cannot_work_are_usage_errors() -> None:
    for args in (
        ["--ws-url", "http://127.0.0.1:1", "--account-id", "a"],
        ["--ws-url", "ws://127.0.0.1:99999", "--account-id", "a"],
        ["--url", "127.0.0.1:8000", *LOGIN[:4]],
    ):
        result = run(*args, "-b", "call.*.*", **PASSWORD, KAZOO_AUTH_TOKEN="x.y.z")
        assert result.returncode == 2 and one_sentence(result.stderr), result.stderr


def test_server_text_in_the_binding_catalogue_is_kept_off_the_terminal(
    fake_crossbar: Callable[[int, str, bytes, bool], str], isolated_env: Path
) -> None:
    hostile = b'{"data": {"call": ["call.\\u001b]0;pwned\\u0007.*", "call.CHANNEL_CREATE.*"]}}'
    url = fake_crossbar(200, "application/json", hostile, False)
    result = run("bindings", "--url", url)
    assert result.returncode == 0 and "\x1b" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == ["call.CHANNEL_CREATE.*"]
    assert "\x1b" not in (isolated_env / "catalogue.json").read_text()


def test_password_from_stdin_is_remembered_for_later_logins() -> None:
    import io

    from kazoo_tail.app.environment import Environment
    from kazoo_tail.cli.settings import password_source

    env = Environment(stdin=io.StringIO("s3cret-once\n"), stdout=io.BytesIO(), stderr=io.StringIO())
    password = password_source(env, from_stdin=True)
    assert password() == "s3cret-once" and password() == "s3cret-once"


def test_hostile_recordings_do_not_crash_replay(tmp_path: Path) -> None:
    import json

    deep = '{"action":"event","routing_key":"r","data":{"x":' + "[" * 900 + "]" * 900 + ',"n":"é"}}'
    stamp = json.dumps(
        {
            "action": "event",
            "subscribed_key": "call.*.*",
            "name": "CHANNEL_CREATE",
            "routing_key": "call.a.CHANNEL_CREATE.c",
            "data": {"call_id": "c", "timestamp": 1e20, "channel_created_time": 10**30},
        }
    )
    recording = tmp_path / "hostile.jsonl"
    recording.write_text(
        "".join(json.dumps({"received_at": 1.0, "text": t}) + "\n" for t in (deep, stamp))
    )
    for args in (["--json"], ["-o", "pretty"], ["-o", "pretty", "--calls"]):
        result = run("replay", str(recording), *args)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) >= 2
    as_json = run("replay", str(recording), "--json").stdout.splitlines()[0]
    assert as_json.isascii() and "\\u00e9" in as_json
    bad_time = tmp_path / "bad-time.jsonl"
    bad_time.write_text(json.dumps({"received_at": 1e300, "text": stamp}) + "\n")
    assert run("replay", str(bad_time)).returncode == 2
