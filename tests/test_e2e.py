"""End to end: the installed kazoo-tail against the simulator, over real sockets, as a user
runs it."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import BIN, Running, have, login_args, sample
from .inprocess import run, tail_until_subscribed

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


def publish_sample(simulator: Simulator, name: str, **data_overrides: Any) -> None:
    envelope = sample(name)
    data = {**envelope["data"], **data_overrides}
    simulator.publish(envelope["routing_key"], envelope["name"], data)


def tail_published(
    started: type[Running], simulator: Simulator, *args: str, samples: int = 1, **env: str
) -> Running:
    """Start a tail, wait until it has subscribed, then publish the call samples."""
    process = started(*args, **env)
    process.wait_for_stderr("subscribed to")
    names = [
        "05_event_call_channel_create.json",
        "06_event_call_channel_answer.json",
        "07_event_call_channel_destroy.json",
    ]
    for index in range(samples):
        publish_sample(simulator, names[index % 3], msg_id=f"m{index}")
    return process


# -- logging in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account",
    [
        pytest.param(["--account-name", "demo"], marks=pytest.mark.smoke),
        ["--realm", "demo.kazoo.test"],
        ["--phone-number", "+15555550100"],
    ],
)
def test_user_login_by_each_account_identifier(
    sim: Simulator, started: type[Running], account: list[str]
) -> None:
    args = ["--url", sim.crossbar_url, *account, "--username", "demo", "-b", "call.*.*"]
    process = tail_published(started, sim, *args, "--count", "1", **PASSWORD)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    [event] = result.json_lines()
    assert event["name"] == "CHANNEL_CREATE" and event["subscribed_key"] == "call.*.*"
    assert sim.stats.user_auth == 1


def test_api_key_login(sim: Simulator, started: type[Running]) -> None:
    args = ["--url", sim.crossbar_url, "-b", "call.*.*", "--count", "1"]
    process = tail_published(started, sim, *args, KAZOO_API_KEY=DEMO.api_key)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    assert len(result.json_lines()) == 1 and sim.stats.api_auth == 1


def test_given_token_skips_login(sim: Simulator, started: type[Running]) -> None:
    token = sim.mint_token()
    args = ["--ws-url", sim.blackhole_url, "--token", token, "-b", "call.*.*", "--count", "1"]
    result = tail_published(started, sim, *args).finish()
    assert result.returncode == 0, result.stderr
    assert sim.stats.user_auth == 0 and sim.stats.api_auth == 0
    assert token not in result.stderr


def test_password_from_stdin_and_mixed_case_username(sim: Simulator) -> None:
    args = ["--url", sim.crossbar_url, "--account-name", "demo", "--username", "ADMIN@demo.test"]
    result = tail_until_subscribed(
        sim, *args, "--password-stdin", "-b", "call.*.*", input="S3cret!\n"
    )
    assert result.returncode == 0, result.stderr
    assert "subscribed to call.*.*" in result.stderr and sim.stats.user_auth == 1


def test_wrong_password_is_one_sentence_and_exit_3(sim: Simulator) -> None:
    result = run(*login_args(sim), "-b", "call.*.*", KAZOO_PASSWORD="wrong-password")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "invalid credentials" in result.stderr
    assert "wrong-password" not in result.stderr and "Traceback" not in result.stderr


def test_unknown_api_key_is_exit_3(sim: Simulator) -> None:
    result = run("--url", sim.crossbar_url, "-b", "call.*.*", KAZOO_API_KEY="f" * 64)
    assert result.returncode == 3 and "f" * 64 not in result.stderr


# -- the token cache --------------------------------------------------------------------------


def login(sim: Simulator, config_dir: Path, *extra: str) -> None:
    result = run("login", *login_args(sim), *extra, **PASSWORD)
    assert result.returncode == 0, result.stderr
    assert "logged in as user demo" in result.stderr and result.stdout == ""


def test_login_caches_a_private_token_and_later_tails_reuse_it(
    sim: Simulator, isolated_env: Path
) -> None:
    login(sim, isolated_env)
    tokens = isolated_env / "tokens.json"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated_env.stat().st_mode) == 0o700
    second = run(
        "login",
        "--profile",
        "admin",
        "--url",
        sim.crossbar_url,
        "--account-name",
        "demo",
        "--username",
        "Admin@Demo.Test",
        KAZOO_PASSWORD="S3cret!",
    )
    assert second.returncode == 0, second.stderr
    saved = (isolated_env / "profiles.json").read_text() + tokens.read_text()
    assert "S3cret!" not in saved and "password" not in saved
    assert sim.stats.user_auth == 2
    for _ in range(2):
        result = tail_until_subscribed(sim, "-b", "call.*.*")
        assert result.returncode == 0, result.stderr
        assert "subscribed to call.*.*" in result.stderr
    assert sim.stats.user_auth == 2  # no further login


def test_a_token_near_expiry_is_refreshed_without_a_password(
    sim: Simulator, isolated_env: Path
) -> None:
    login(sim, isolated_env)
    _replace_cached_token(isolated_env, sim.mint_token(exp=time.time() + 60))
    result = run("-b", "call.*.*", "--duration", "0.3")
    assert result.returncode == 0, result.stderr
    assert sim.stats.refresh == 1 and sim.stats.user_auth == 1


def test_an_expired_token_is_renewed_by_logging_in_again(
    sim: Simulator, isolated_env: Path
) -> None:
    login(sim, isolated_env)
    _replace_cached_token(isolated_env, sim.mint_token(exp=time.time() - 30))
    without_password = run("-b", "call.*.*", "--duration", "0.3")
    assert without_password.returncode == 3
    assert "kazoo-tail login" in without_password.stderr
    result = run("-b", "call.*.*", "--duration", "0.3", **PASSWORD)
    assert result.returncode == 0, result.stderr
    assert sim.stats.user_auth == 2


def test_a_token_blackhole_rejects_is_renewed(sim: Simulator, isolated_env: Path) -> None:
    login(sim, isolated_env)
    sim.revoke_tokens()  # e.g. the user's password was reset elsewhere
    result = tail_until_subscribed(sim, "-b", "call.*.*", **PASSWORD)
    assert result.returncode == 0, result.stderr
    assert sim.stats.user_auth == 2
    cached = json.loads((isolated_env / "tokens.json").read_text())
    assert len(cached) == 1


def test_logout_forgets_the_token(sim: Simulator, isolated_env: Path) -> None:
    login(sim, isolated_env)
    result = run("logout")
    assert result.returncode == 0 and "forgot 1 cached token" in result.stderr
    assert not (isolated_env / "tokens.json").exists()
    assert (isolated_env / "profiles.json").exists()
    again = run("-b", "call.*.*", "--duration", "0.2")
    assert again.returncode == 3


def test_a_corrupt_token_cache_is_one_sentence_naming_the_file(
    sim: Simulator, isolated_env: Path
) -> None:
    login(sim, isolated_env)
    (isolated_env / "tokens.json").write_text("{oops")
    result = run("-b", "call.*.*", "--duration", "0.2")
    assert result.returncode == 1
    assert str(isolated_env / "tokens.json") in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def _replace_cached_token(config_dir: Path, token: str) -> None:
    path = config_dir / "tokens.json"
    cache = json.loads(path.read_text())
    for entry in cache.values():
        entry["token"] = token
    path.write_text(json.dumps(cache))


# -- output ------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_json_output_is_pure_and_every_line_parses_with_jq(
    busy_sim: Simulator,
) -> None:
    result = run(
        *login_args(busy_sim), "-b", "call.*.*", "-b", "object.*.*", "--count", "30", **PASSWORD
    )
    assert result.returncode == 0, result.stderr
    events = result.json_lines()
    assert len(events) == 30
    for event in events:
        assert event["action"] == "event"
        assert set(event) >= {"subscribed_key", "subscription_key", "routing_key", "data"}
    assert "subscribed to call.*.*, object.*.* for account" in result.stderr
    if have("jq"):
        jq = subprocess.run(
            ["jq", "-c", "."], input=result.stdout, capture_output=True, text=True, check=True
        )
        assert len(jq.stdout.splitlines()) == 30


def test_pretty_output_to_a_pipe_has_no_colour_unless_asked(busy_sim: Simulator) -> None:
    plain = run(*login_args(busy_sim), "-b", "call.*.*", "-o", "pretty", "--count", "5", **PASSWORD)
    assert plain.returncode == 0, plain.stderr
    date, *lines = plain.stdout.splitlines()
    assert re.fullmatch(r"── \d{4}-\d\d-\d\d ──", date)
    assert len(lines) == 5 and "\x1b" not in plain.stdout
    assert all("CHANNEL_" in line and re.search(r" #\d+ ", line) for line in lines)
    coloured = run(
        *login_args(busy_sim),
        "-b",
        "call.*.*",
        "-o",
        "pretty",
        "--color",
        "always",
        "--count",
        "2",
        **PASSWORD,
    )
    assert "\x1b[" in coloured.stdout


def test_overlapping_bindings_print_each_event_once(sim: Simulator, started: type[Running]) -> None:
    # Ended by --count, not a clock: a CHANNEL_CREATE printed twice would push out the DESTROY.
    args = [*login_args(sim), "-b", "call.*.*", "-b", "call.CHANNEL_CREATE.*"]
    process = tail_published(started, sim, *args, "--count", "3", samples=3, **PASSWORD)
    result = process.finish()
    assert [e["name"] for e in result.json_lines()] == [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_DESTROY",
    ]
    every = tail_published(
        started, sim, *args, "--no-dedupe", "--count", "2", samples=1, **PASSWORD
    )
    assert len(every.finish().json_lines()) == 2


def test_duration_ends_a_quiet_tail_with_exit_0(sim: Simulator) -> None:
    # Nothing else can end this tail: one that ignored --duration would run into the timeout.
    started = time.monotonic()
    result = run(*login_args(sim), "-b", "call.*.*", "--duration", "1", timeout=30, **PASSWORD)
    elapsed = time.monotonic() - started
    assert result.returncode == 0 and result.stdout == ""
    assert elapsed >= 1  # not before its time (a slow machine only makes this longer)


def test_events_that_arrive_before_the_subscribe_reply_are_printed() -> None:
    config = SimulatorConfig(event_rate=0, early_events=True, advertise_ws_url=True)
    with Simulator(config) as simulator:
        result = run(*login_args(simulator), "-b", "call.*.*", "--count", "1", **PASSWORD)
    assert result.returncode == 0, result.stderr
    [event] = result.json_lines()
    assert event["subscribed_key"] == "call.*.*"


def test_hostile_event_text_never_reaches_the_terminal_raw(
    sim: Simulator, started: type[Running]
) -> None:
    hostile = "\x1b]0;pwned\x07[bold red]x[/] \x9b2J"
    process = started(
        *login_args(sim),
        "-b",
        "call.*.*",
        "-o",
        "pretty",
        "--color",
        "always",
        "--count",
        "1",
        COLUMNS="",  # a pipe: nothing elided, so the whole name is there to be checked
        **PASSWORD,
    )
    process.wait_for_stderr("subscribed to")
    publish_sample(sim, "05_event_call_channel_create.json", caller_id_name=hostile)
    result = process.finish()
    assert result.returncode == 0, result.stderr
    assert "\x1b]0" not in result.stdout and "\x9b" not in result.stdout
    assert "\\x1b]0;pwned\\x07[bold red]x[/] \\x9b2J" in result.stdout


# -- things the server refuses ---------------------------------------------------------------


def test_a_rejected_binding_stops_before_any_event_with_exit_5(sim: Simulator) -> None:
    # A module this cluster has not loaded: only the server can say no.
    result = run(*login_args(sim), "-b", "call.*.*", "-b", "qubicle.*.*", **PASSWORD)
    assert result.returncode == 5
    assert result.stdout == ""
    assert "qubicle.*.*" in result.stderr
    assert "no available subscriptions to requested binding" in result.stderr


def test_a_binding_the_catalogue_rules_out_is_refused_before_connecting(sim: Simulator) -> None:
    result = run(*login_args(sim), "-b", "call.CHANNEL_CREAT.*", **PASSWORD)
    assert result.returncode == 2 and "did you mean 'call.CHANNEL_CREATE.*'" in result.stderr
    assert sim.stats.user_auth == 0


def test_an_account_outside_the_token_tree_is_exit_5(sim: Simulator) -> None:
    result = run(
        *login_args(sim), "-b", "call.*.*", "--account-id", DEMO.other_account_id, **PASSWORD
    )
    assert result.returncode == 5 and "unauthorized account id" in result.stderr


def test_a_sub_account_can_be_tailed(sim: Simulator) -> None:
    sub = DEMO.sub_account_ids[0]
    result = tail_until_subscribed(
        sim, *login_args(sim), "-b", "call.*.*", "--account-id", sub, account_id=sub, **PASSWORD
    )
    assert result.returncode == 0, result.stderr
    assert f"for account {sub}" in result.stderr


def test_an_impossible_binding_is_a_usage_error_with_a_suggestion(sim: Simulator) -> None:
    result = run(*login_args(sim), "-b", "doc_created.*.user.*", **PASSWORD)
    assert result.returncode == 2 and "object.doc_created.user" in result.stderr
    assert sim.stats.user_auth == 0  # refused before touching the network


def test_nothing_listening_is_exit_4(sim: Simulator) -> None:
    result = run(
        "--url",
        "http://127.0.0.1:9",
        "--account-name",
        "demo",
        "--username",
        "demo",
        "-b",
        "call.*.*",
        **PASSWORD,
    )
    assert result.returncode == 4 and "connection refused" in result.stderr
    ws = run("--ws-url", "ws://127.0.0.1:9", "--token", sim.mint_token(), "-b", "call.*.*")
    assert ws.returncode == 4 and "connection refused" in ws.stderr


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "unrelated-ca.pem"))
    config = SimulatorConfig(event_rate=50, ssl_context=context, advertise_ws_url=True)
    with Simulator(config) as simulator:
        yield simulator, ca_path


def test_tls_with_a_private_ca_through_ca_bundle(tls_sim: tuple[Simulator, Path]) -> None:
    simulator, ca_path = tls_sim
    assert simulator.crossbar_url.startswith("https://")
    assert simulator.blackhole_url.startswith("wss://")
    # An unrelated CA in the environment must not override an explicit --ca-bundle.
    unrelated = str(ca_path.parent / "unrelated-ca.pem")
    ok = run(
        *login_args(simulator),
        "--ca-bundle",
        str(ca_path),
        "-b",
        "call.*.*",
        "--count",
        "2",
        REQUESTS_CA_BUNDLE=unrelated,
        CURL_CA_BUNDLE=unrelated,
        **PASSWORD,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(ok.json_lines()) == 2 and "wss://" in ok.stderr
    untrusted = run(*login_args(simulator), "-b", "call.*.*", "--count", "1", **PASSWORD)
    assert untrusted.returncode == 4 and "--ca-bundle" in untrusted.stderr
    assert untrusted.stderr.count("\n") == 1
    insecure = run(
        *login_args(simulator), "--insecure", "-b", "call.*.*", "--count", "1", **PASSWORD
    )
    assert insecure.returncode == 0 and "not verified" in insecure.stderr


def test_the_websocket_also_checks_tls(tls_sim: tuple[Simulator, Path]) -> None:
    simulator, _ = tls_sim
    token = simulator.mint_token()
    result = run("--ws-url", simulator.blackhole_url, "--token", token, "-b", "call.*.*")
    assert result.returncode == 4 and "TLS verification failed" in result.stderr


# -- the demo and the module entry point -------------------------------------------------------


@pytest.mark.smoke
def test_demo_needs_no_server(isolated_env: Path) -> None:
    result = run("demo", "--json", "--count", "20", "--event-rate", "100", "--seed", "3")
    assert result.returncode == 0, result.stderr
    events = result.json_lines()
    assert len(events) == 20 and "demo server" in result.stderr
    assert not isolated_env.exists()  # the demo caches nothing


@pytest.mark.e2e
def test_python_dash_m_and_help() -> None:
    result = subprocess.run(
        [str(BIN.parent / "python"), "-m", "kazoo_tail", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0 and "--binding" in result.stdout
    assert "login" in result.stdout and "demo" in result.stdout


def test_usage_errors_are_exit_2() -> None:
    assert run("-b", "call.*.*").returncode == 2  # no server
    assert run("--count", "0", "-b", "x").returncode == 2
    assert run("--nope").returncode == 2


def test_debug_traces_never_show_secrets(sim: Simulator) -> None:
    token = sim.mint_token()
    result = run(
        "--debug",
        "--ws-url",
        "ws://127.0.0.1:9",
        "--token",
        token,
        "-b",
        "call.*.*",
        KAZOO_PASSWORD="pw-should-not-show",
    )
    assert token not in result.stderr + result.stdout
    assert os.environ.get("KAZOO_PASSWORD") is None


@pytest.mark.e2e
@pytest.mark.parametrize("args", [["--help"], ["bindings", "--help"], ["bindings"]])
def test_a_reader_gone_before_any_output_is_exit_0_for_every_command(args: list[str]) -> None:
    """`kazoo-tail --help | head -n 1`: click ends a broken pipe outside a command with 1."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the reader has already left
    try:
        completed = subprocess.run(
            [str(BIN), *args],
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(write_fd)
    assert completed.returncode == 0
    assert "Error" not in completed.stderr and "Traceback" not in completed.stderr
