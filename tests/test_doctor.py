"""kazoo-tail doctor and kazoo-tail sockets, end to end against the simulator."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import Result, Running, ScriptedServer, login_args, wait_until
from .inprocess import run

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
CHECKS = [
    "crossbar reachable",
    "login",
    "token time left",
    "blackhole reachable",
    "subscribe round trip",
    "ping round trip",
    "bindings",
]


def doctor(*args: str, **env: str) -> Result:
    return run("doctor", *args, **env)


def report(result: Result) -> dict[str, tuple[str, str]]:
    """check name -> (status, the rest of its line), asserting one line per check, in order."""
    lines = result.stdout.splitlines()
    assert len(lines) == len(CHECKS) + 1, result.stdout + result.stderr
    found: dict[str, tuple[str, str]] = {}
    for name, line in zip(CHECKS, lines):
        status, rest = line.split(maxsplit=1)
        assert rest.startswith(name), line
        assert status in ("ok", "warn", "FAIL", "skip"), line
        found[name] = (status, rest[len(name) :].strip())
    return found


def statuses(result: Result) -> list[str]:
    return [status for status, _ in report(result).values()]


def cached_tokens(config_dir: Path) -> list[str]:
    path = config_dir / "tokens.json"
    if not path.exists():
        return []
    return [entry["token"] for entry in json.loads(path.read_text()).values()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- doctor -------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_all_checks_pass_one_timed_line_each(sim: Simulator, isolated_env: Path) -> None:
    result = doctor(*login_args(sim), **PASSWORD)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report(result)
    assert all(status == "ok" for status, _ in lines.values()), result.stdout
    for _, rest in lines.values():
        assert rest.split()[1] == "ms"  # e.g. "12 ms  <detail>"
    assert result.stdout.splitlines()[-1] == "all 7 checks passed"
    assert "Kazoo 4.3" in lines["crossbar reachable"][1]
    assert DEMO.account_id in lines["login"][1] and "user_auth" in lines["login"][1]
    assert "min left" in lines["token time left"][1]
    assert sim.blackhole_url in lines["blackhole reachable"][1]
    assert "advertised by Crossbar" in lines["blackhole reachable"][1]
    assert "plain ws" in lines["blackhole reachable"][1]
    assert "call.*.* accepted" in lines["subscribe round trip"][1]
    assert "bh_ping not loaded" in lines["ping round trip"][1]
    usable = "usable: call.*.*, object.*.*, fax.status.*, fax.object.*"
    assert lines["bindings"][1].endswith(usable)
    assert result.stderr == ""
    assert sim.stats.websockets_catalog == 1 and sim.stats.ws_pings >= 1
    wait_until(lambda: sim.client_close_codes == [1000], what="the close (1000) heard")
    [token] = cached_tokens(isolated_env)
    assert token not in result.stdout


def test_events_arriving_first_are_skipped(busy_sim: Simulator) -> None:
    result = doctor(*login_args(busy_sim), **PASSWORD)
    assert result.returncode == 0, result.stdout
    assert "events arrived while checking" in result.stdout.splitlines()[-1]


def test_wrong_password_fails_login_and_skips_the_rest(sim: Simulator) -> None:
    result = doctor(*login_args(sim), KAZOO_PASSWORD="wrong-password")
    assert result.returncode == 3
    lines = report(result)
    assert statuses(result) == ["ok", "FAIL", "skip", "skip", "skip", "skip", "skip"]
    assert "invalid credentials" in lines["login"][1]
    assert lines["token time left"][1] == "-  needs a token"
    assert "login (exit 3)" in result.stdout.splitlines()[-1]
    assert "wrong-password" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_blackhole_refusing_upgrades(sim: Simulator) -> None:
    sim.reject_upgrades(429, 1)
    result = doctor(*login_args(sim), **PASSWORD)
    assert result.returncode == 4
    assert statuses(result) == ["ok", "ok", "ok", "FAIL", "skip", "skip", "skip"]
    detail = report(result)["blackhole reachable"][1]
    assert "HTTP 429" in detail and "too many connections" in detail


def test_wrong_ws_url(sim: Simulator) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    result = doctor(*login_args(sim), "--ws-url", url, **PASSWORD)
    assert result.returncode == 4
    detail = report(result)["blackhole reachable"][1]
    assert url in detail and "connection refused" in detail
    assert report(result)["subscribe round trip"] == ("skip", "-  needs the websocket")


def test_crossbar_unreachable(isolated_env: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = doctor("--url", url, "--account-name", "demo", "--username", "demo", **PASSWORD)
    assert result.returncode == 4
    assert statuses(result) == ["FAIL", "skip", "skip", "skip", "skip", "skip", "skip"]
    assert "connection refused" in report(result)["crossbar reachable"][1]


def test_hung_blackhole(sim: Simulator) -> None:
    sim.set_stalled(True)
    try:
        result = doctor(*login_args(sim), "--timeout", "0.5", **PASSWORD)
    finally:
        sim.set_stalled(False)
    assert result.returncode == 4, result.stdout
    failed = [name for name, (status, _) in report(result).items() if status == "FAIL"]
    assert failed == ["blackhole reachable"]
    assert "timed out" in report(result)["blackhole reachable"][1]


def test_rejected_binding_is_exit_5_naming_it(sim: Simulator) -> None:
    args = ["-b", "call.FOO.*", "-b", "object.doc_created.user"]
    result = doctor(*login_args(sim), *args, **PASSWORD)
    assert result.returncode == 5, result.stdout
    lines = report(result)
    assert lines["subscribe round trip"][0] == "FAIL"
    assert "call.FOO.*" in lines["subscribe round trip"][1]
    assert "event FOO not supported" in lines["subscribe round trip"][1]
    status, detail = lines["bindings"]
    assert status == "FAIL"
    assert "object.doc_created.user" in detail.split("; rejected:")[0]
    assert "rejected: call.FOO.* (event FOO not supported)" in detail


def test_account_outside_the_tree_fails_the_subscribe(sim: Simulator) -> None:
    args = ["--account-id", DEMO.other_account_id]
    result = doctor(*login_args(sim), *args, **PASSWORD)
    assert result.returncode == 5
    status, detail = report(result)["subscribe round trip"]
    assert status == "FAIL"
    assert DEMO.other_account_id in detail and "unauthorized account id" in detail


def test_sub_accounts_are_checked_too(sim: Simulator) -> None:
    args = ["--account-id", DEMO.account_id, "--account-id", DEMO.sub_account_ids[0]]
    result = doctor(*login_args(sim), *args, **PASSWORD)
    assert result.returncode == 0, result.stdout
    assert DEMO.sub_account_ids[0] in report(result)["subscribe round trip"][1]


def test_given_token_without_crossbar(sim: Simulator) -> None:
    token = sim.mint_token()
    result = doctor("--token", token, "--ws-url", sim.blackhole_url)
    assert result.returncode == 0, result.stdout
    assert statuses(result)[:2] == ["skip", "skip"]
    assert statuses(result)[2:] == ["ok"] * 5
    assert "all 5 checks passed (2 skipped)" == result.stdout.splitlines()[-1]
    assert token not in result.stdout + result.stderr
    assert sim.stats.user_auth == 0


def test_given_token_is_checked_with_crossbar(sim: Simulator) -> None:
    token = sim.mint_token()
    sim.revoke_tokens()
    result = doctor("--url", sim.crossbar_url, "--token", token, "--ws-url", sim.blackhole_url)
    assert result.returncode == 3
    assert statuses(result) == ["ok", "FAIL", "ok", "ok", "skip", "ok", "skip"]
    assert "rejected the token given with --token" in report(result)["login"][1]
    assert token not in result.stdout + result.stderr


def test_a_given_token_checks_the_blackhole_crossbar_advertises(sim: Simulator) -> None:
    """With --token and --url but no --ws-url, the tail asks Crossbar where blackhole is
    (GET /v2/token_auth): doctor checks that node, not a guessed ws://HOST:5555."""
    token = sim.mint_token()
    result = doctor("--url", sim.crossbar_url, "--token", token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert statuses(result) == ["ok"] * 7
    assert sim.blackhole_url.split("://", 1)[1] in report(result)["blackhole reachable"][1]
    assert "5555" not in result.stdout


def test_expired_token(sim: Simulator) -> None:
    token = sim.mint_token(exp=time.time() - 120)
    result = doctor("--token", token, "--ws-url", sim.blackhole_url)
    assert result.returncode == 3
    status, detail = report(result)["token time left"]
    assert status == "FAIL" and "expired 2 min ago" in detail
    assert report(result)["subscribe round trip"] == ("skip", "-  needs a valid token")


def test_revoked_cached_token_is_renewed(sim: Simulator, isolated_env: Path) -> None:
    assert doctor(*login_args(sim), **PASSWORD).returncode == 0
    sim.revoke_tokens()
    result = doctor(*login_args(sim), **PASSWORD)
    assert result.returncode == 0, result.stdout
    lines = report(result)
    assert "cached token reused" in lines["login"][1]
    assert "rejected once and renewed" in lines["subscribe round trip"][1]


@pytest.fixture
def ping_sim() -> Iterator[Simulator]:
    config = SimulatorConfig(
        event_rate=0, early_events=False, ping_module=True, advertise_ws_url=True
    )
    with Simulator(config) as simulator:
        yield simulator


def test_bh_ping_loaded(ping_sim: Simulator) -> None:
    result = doctor(*login_args(ping_sim), **PASSWORD)
    assert result.returncode == 0, result.stdout
    lines = report(result)
    assert "bh_ping loaded" in lines["ping round trip"][1]


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    config = SimulatorConfig(event_rate=0, ssl_context=context, advertise_ws_url=True)
    with Simulator(config) as simulator:
        yield simulator, ca_path


def test_wss_shows_tls_details(tls_sim: tuple[Simulator, Path]) -> None:
    simulator, ca_path = tls_sim
    result = doctor(*login_args(simulator), "--ca-bundle", str(ca_path), **PASSWORD)
    assert result.returncode == 0, result.stdout
    status, detail = report(result)["blackhole reachable"]
    assert status == "ok" and simulator.blackhole_url in detail
    assert "wss TLSv1." in detail and "O=trustme" in detail
    assert "for 127.0.0.1, localhost" in detail and "valid until 3000-01-01" in detail


def test_insecure_tls_is_a_warning(tls_sim: tuple[Simulator, Path]) -> None:
    simulator, _ = tls_sim
    result = doctor(*login_args(simulator), "--insecure", **PASSWORD)
    assert result.returncode == 0, result.stdout
    lines = report(result)
    assert lines["crossbar reachable"][0] == "warn"
    assert lines["blackhole reachable"][0] == "warn"
    assert "NOT verified" in lines["blackhole reachable"][1]
    assert result.stdout.splitlines()[-1].startswith("all 7 checks passed (2 warnings")
    assert result.stderr == ""


def test_untrusted_tls(tls_sim: tuple[Simulator, Path]) -> None:
    simulator, _ = tls_sim
    result = doctor(*login_args(simulator), **PASSWORD)
    assert result.returncode == 4
    assert "--ca-bundle" in report(result)["crossbar reachable"][1]
    token = simulator.mint_token()
    result = doctor("--token", token, "--ws-url", simulator.blackhole_url)
    assert result.returncode == 4
    detail = report(result)["blackhole reachable"][1]
    assert "TLS verification failed" in detail and "--ca-bundle" in detail


# -- sockets ------------------------------------------------------------------------------------


def test_sockets_lists_a_running_tail(sim: Simulator, started: type[Running]) -> None:
    bindings = ["-b", "call.*.*", "-b", "object.doc_created.user"]
    tail = started(*login_args(sim), *bindings, **PASSWORD)
    tail.wait_for_stderr("subscribed to", timeout=10)
    pretty = run("sockets", *login_args(sim), "-o", "pretty", **PASSWORD)
    assert pretty.returncode == 0, pretty.stderr
    header, line = pretty.stdout.splitlines()
    assert header.split() == ["SOCKET", "FROM", "NODE", "SINCE", "NAME", "BINDINGS"]
    [listed] = sim.sockets()
    assert line.startswith(f"{listed['websocket_session_id']}  127.0.0.1")
    assert line.endswith("  -     call.*.* x9, object.doc_created.user")
    connected = datetime.fromtimestamp(listed["timestamp"] - 62167219200)
    assert f"  {connected:%Y-%m-%d %H:%M:%S}  " in line

    as_json = run("sockets", *login_args(sim), "-o", "json", **PASSWORD)
    assert as_json.returncode == 0, as_json.stderr
    [item] = as_json.json_lines()
    assert item["websocket_session_id"] == listed["websocket_session_id"]
    assert item["bindings"].count("call.*.*") == 9


def test_no_sockets_is_a_note_and_exit_0(sim: Simulator) -> None:
    result = run("sockets", *login_args(sim), **PASSWORD)
    assert result.returncode == 0 and result.stdout == ""
    assert "no live blackhole sockets" in result.stderr


def test_sockets_of_another_account_is_refused(sim: Simulator) -> None:
    result = run("sockets", *login_args(sim), "--account-id", DEMO.other_account_id, **PASSWORD)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_given_token_that_blackhole_refuses_fails_the_subscribe(sim: Simulator) -> None:
    token = sim.mint_token()
    sim.revoke_tokens()
    result = doctor("--token", token, "--ws-url", sim.blackhole_url)
    assert result.returncode == 3, result.stdout
    status, detail = report(result)["subscribe round trip"]
    assert status == "FAIL" and "rejected the token given with --token" in detail
    assert report(result)["bindings"][0] == "skip"
    assert token not in result.stdout + result.stderr


def test_a_token_about_to_expire_is_a_warning(sim: Simulator) -> None:
    token = sim.mint_token(exp=time.time() + 200)
    result = doctor("--token", token, "--ws-url", sim.blackhole_url)
    assert result.returncode == 0, result.stdout
    status, detail = report(result)["token time left"]
    assert status == "warn" and "left (expires" in detail and "renewed soon" in detail


def test_spans_and_elapsed_times_read_naturally() -> None:
    from kazoo_tail.app.doctor import _elapsed, _span

    assert [_span(s) for s in (5, 125, 3 * 3600 + 120, 5 * 86400)] == [
        "5 s",
        "2 min",
        "3 h 2 min",
        "5 days",
    ]
    assert [_elapsed(s) for s in (None, 0.0042, 0.25, 12.5)] == ["-", "4.2 ms", "250 ms", "12.5 s"]


@pytest.mark.soak
def test_a_blackhole_that_only_rate_limits_ends_the_checks(scripted: ScriptedServer) -> None:
    """Three tries a second apart, then the subscribe counts as refused: doctor never hangs."""

    def always_limited(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            error = {"errors": ["rate limiting threshold hit for 127.0.0.1:1!"]}
            reply = {"action": "reply", "request_id": request.get("request_id")}
            ws.send(json.dumps({**reply, "status": "error", "data": error}))

    token = "eyJhbGciOiJub25lIn0.eyJhY2NvdW50X2lkIjoiYWNjMSJ9.x"
    result = doctor("--token", token, "--ws-url", scripted(always_limited), timeout=60)
    assert result.returncode == 5, result.stdout
    status, detail = report(result)["subscribe round trip"]
    assert status == "FAIL" and "rate limiting threshold hit" in detail
    assert report(result)["bindings"][0] == "FAIL"
