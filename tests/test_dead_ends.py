"""Issue 21, item 5 ("no dead ends"): each way the tool used to leave a user stuck, in-process
through ``cli.run`` with an injected Environment."""

from __future__ import annotations

import http.server
import io
import json
import threading
from pathlib import Path

import pytest

from kazoo_tail.app.environment import Environment
from kazoo_tail.cli import run
from kazoo_tail.simulator import Simulator
from kazoo_tail.simulator.accounts import DEMO

from .conftest import sample


def environment(**overrides: object) -> Environment:
    env = Environment(stdin=io.StringIO(), stdout=io.BytesIO(), stderr=io.StringIO())
    for name, value in overrides.items():
        setattr(env, name, value)
    return env


def said(env: Environment) -> str:
    assert isinstance(env.stderr, io.StringIO)
    return env.stderr.getvalue()


@pytest.mark.parametrize(
    ("binding", "wildcard"),
    [
        ("call.CHANNEL_CREATE.{CALL_ID}", "call.CHANNEL_CREATE.*"),
        ("fax.status.{FAX_ID}", "fax.status.*"),
        ("fax.object.{ACTION}", "fax.object.*"),
        ("call.CHANNEL_DESTROY.<CALL_ID>", "call.CHANNEL_DESTROY.*"),
    ],
)
def test_a_catalogue_placeholder_is_refused_with_the_wildcard_form(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, binding: str, wildcard: str
) -> None:
    monkeypatch.setenv("KAZOO_AUTH_TOKEN", sim.mint_token())
    env = environment()
    assert run(["--ws-url", sim.blackhole_url, "--duration", "1", "-b", binding], env) == 2
    (line,) = said(env).splitlines()
    assert line.startswith("kazoo-tail: error: ")
    assert f"did you mean '{wildcard}'" in line
    assert sim.stats.subscribes == 0


def test_a_conference_placeholder_asks_for_a_real_id(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAZOO_AUTH_TOKEN", sim.mint_token())
    env = environment()
    argv = [
        "--ws-url",
        sim.blackhole_url,
        "--duration=1",
        "-b",
        "conference.event.{CONFERENCE_ID}.*",
    ]
    assert run(argv, env) == 2
    (line,) = said(env).splitlines()
    assert "{CONFERENCE_ID}" in line and "put a real id in its place" in line


def _login_then_tail_as_admin_from_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, config_dir: Path
) -> None:
    login = ["login", "--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]
    assert run(login, environment(environ={"KAZOO_PASSWORD": DEMO.password})) == 0
    # A run with its credentials in the environment caches its token under its own key.
    monkeypatch.setenv("KAZOO_URL", sim.crossbar_url)
    monkeypatch.setenv("KAZOO_ACCOUNT_NAME", "demo")
    monkeypatch.setenv("KAZOO_USERNAME", DEMO.admin_username)
    tail = environment(environ={"KAZOO_PASSWORD": DEMO.admin_password})
    assert run(["-b", "call.*.*", "--duration", "0.1"], tail) == 0, said(tail)
    assert len(json.loads((config_dir / "tokens.json").read_text())) == 2


def test_logout_forgets_the_token_the_environment_s_login_would_use(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    _login_then_tail_as_admin_from_the_environment(sim, monkeypatch, isolated_env)
    env = environment()
    assert run(["logout"], env) == 0
    assert said(env).splitlines() == ["kazoo-tail: forgot 2 cached tokens"]
    assert not (isolated_env / "tokens.json").exists()
    # The next run, with the same environment, has no token to use: it must log in again.
    again = environment()
    assert run(["-b", "call.*.*", "--duration", "0.1"], again) == 3


def test_logout_says_where_the_tokens_it_kept_are(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    _login_then_tail_as_admin_from_the_environment(sim, monkeypatch, isolated_env)
    for name in ("KAZOO_URL", "KAZOO_ACCOUNT_NAME", "KAZOO_USERNAME"):
        monkeypatch.delenv(name)
    env = environment()
    assert run(["logout"], env) == 0
    forgot, kept = said(env).splitlines()
    assert forgot == "kazoo-tail: forgot 1 cached token"
    assert str(isolated_env / "tokens.json") in kept and "'kazoo-tail logout --all'" in kept
    assert run(["logout", "--all"], environment()) == 0
    assert not (isolated_env / "tokens.json").exists()


def _started_servers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every simulator started from now on (the demo server of 'demo' and 'calls --demo')."""
    from kazoo_tail import simulator

    started: list[object] = []
    original = simulator.Simulator.__enter__

    def enter(self: Simulator) -> Simulator:
        started.append(self)
        return original(self)

    monkeypatch.setattr(simulator.Simulator, "__enter__", enter)
    return started


@pytest.mark.parametrize(
    ("argv", "advised"),
    [
        (["calls"], "kazoo-tail -b 'call.*.*' --calls -o pretty"),
        (["calls", "--demo"], "kazoo-tail demo -b 'call.*.*' --calls -o pretty"),
        (["demo", "--calls"], "-o pretty"),
        (["demo", "-b", "call.*.*", "--calls", "--count", "1"], "-o pretty"),
        (["demo", "-b", "call.CHANNEL_CREAT.*"], "call.CHANNEL_CREATE.*"),
        (["calls", "--demo", "-b", "call.CHANNEL_CREAT.*"], "call.CHANNEL_CREATE.*"),
        (["demo", "--match", "nopath"], "--match"),
    ],
)
def test_into_a_pipe_no_server_is_started_before_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], advised: str
) -> None:
    started = _started_servers(monkeypatch)
    # A board's binding error is only reachable on a terminal.
    env = environment(stdout_isatty="CREAT" in " ".join(argv) and argv[0] == "calls")
    assert run(argv, env) == 2
    (line,) = said(env).splitlines()
    assert line.startswith("kazoo-tail: error: ") and advised in line
    assert started == []


def test_the_advised_call_log_works_into_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment()
    assert run(["calls", "--demo"], env) == 2
    advised = said(env).split(" run ", 1)[1].split()
    assert advised[:2] == ["kazoo-tail", "demo"]
    arguments = [word.strip("'") for word in advised[1:]]
    piped = environment()
    assert run([*arguments, "--count", "1", "--color", "never"], piped) == 0, said(piped)
    assert isinstance(piped.stdout, io.BytesIO)
    shown = piped.stdout.getvalue().decode()
    assert "#1   ┌" in shown  # a call's timeline, its lines labelled with the call


def test_plain_kazoo_tail_after_login_follows_the_documented_default(sim: Simulator) -> None:
    login = ["login", "--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]
    assert run(login, environment(environ={"KAZOO_PASSWORD": DEMO.password})) == 0
    env = environment()
    assert run(["--duration", "0.5"], env) == 0, said(env)
    assert "subscribed to call.*.*, object.*.*, fax.status.* for account" in said(env)


def _login_argv(url: str) -> list[str]:
    return ["--url", url, "--account-name", "demo", "--username", "demo", "-b", "call.*.*"]


def test_a_crossbar_url_on_blackhole_s_port_is_named_so(sim: Simulator) -> None:
    # The simulator's blackhole hangs up on the login's PUT; a plain GET gets its 426.
    url = sim.blackhole_url.replace("ws://", "http://")
    env = environment(environ={"KAZOO_PASSWORD": DEMO.password})
    assert run(_login_argv(url), env) == 4
    (line,) = said(env).splitlines()
    assert f"{url} answers as a websocket server, as blackhole does" in line
    assert "pass --url with Crossbar's port, usually http://127.0.0.1:8000" in line


class _Cowboy(http.server.BaseHTTPRequestHandler):
    """What cowboy's websocket handler says to any plain HTTP request, a PUT included."""

    def _refuse(self) -> None:
        self.send_response(426)
        self.send_header("Connection", "upgrade")
        self.send_header("Upgrade", "websocket")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_426_upgrade_required_is_named_as_blackhole_s_port() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Cowboy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = environment(environ={"KAZOO_PASSWORD": DEMO.password})
        assert run(_login_argv(url), env) == 4
        (line,) = said(env).splitlines()
        assert "answers as a websocket server, as blackhole does (its port is usually 5555)" in line
        assert "usually http://127.0.0.1:8000" in line
    finally:
        server.shutdown()
        server.server_close()


def test_a_fax_object_line_shows_the_document_id(tmp_path: Path) -> None:
    event = sample("08_event_object_doc_created_user.json")
    event["subscribed_key"] = "fax.object.*"
    event["data"].update(type="fax", id="202612-6a1f0e9b3c7d4e5f8a9b0c1d2e3f4a5b")
    path = tmp_path / "fax.jsonl"
    path.write_text(json.dumps({"received_at": 1.0, "text": json.dumps(event)}) + "\n")
    env = environment()
    assert run(["replay", str(path), "-o", "pretty", "--color", "never"], env) == 0
    assert isinstance(env.stdout, io.BytesIO)
    (line,) = [text for text in env.stdout.getvalue().decode().splitlines() if "fax" in text]
    assert "fax doc_created" in line and "202612-6a1f0e9b3c7d4e5f8a9b0c1d2e3f4a5b" in line
    assert "job ?" not in line and "?" not in line


def test_the_sockets_table_at_80_columns_never_breaks_a_binding(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import websocket

    bindings = [
        "call.*.*",
        "object.doc_created.user",
        "object.doc_edited.device",
        "object.doc_deleted.callflow",
        "fax.status.*",
    ]
    client = websocket.create_connection(sim.blackhole_url, timeout=10)
    try:
        token = sim.mint_token()
        for n, binding in enumerate(bindings):
            data = {"account_id": DEMO.account_id, "binding": binding}
            frame = {"action": "subscribe", "auth_token": token, "request_id": str(n), "data": data}
            client.send(json.dumps(frame))
            assert json.loads(client.recv())["status"] == "success"
        for columns in (80, 100, 200):
            monkeypatch.setenv("COLUMNS", str(columns))
            env = environment(stdout_isatty=True, environ={"KAZOO_PASSWORD": DEMO.password})
            login = ["--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]
            assert run(["sockets", *login], env) == 0, said(env)
            assert isinstance(env.stdout, io.BytesIO)
            lines = env.stdout.getvalue().decode().splitlines()
            assert lines and all(len(line) <= columns for line in lines), said(env)
            words = {word.strip(",") for line in lines for word in line.split()}
            assert {b for b in bindings if b != "call.*.*"} <= words, lines
            assert "call.*.*" in words  # with its count, "x9", beside it
    finally:
        client.close()


def _documented_matches() -> set[str]:
    """Every --match example the README and the help pages give."""
    import re

    root = Path(__file__).resolve().parent.parent
    texts = [(root / "README.md").read_text(), (root / "docs" / "cli.md").read_text()]
    found = set()
    for text in texts:
        found |= set(re.findall(r"--match '([^']+)'", text))
        found |= {f"{p}={g}" for p, g in re.findall(r"e\.g\. (data\.[a-z_.]+)='([^']+)'", text)}
    return found


def test_the_documented_match_examples_match_the_demo_s_traffic() -> None:
    examples = _documented_matches()
    assert "data.caller_id_number=+1415*" in examples
    for example in sorted(examples):
        env = environment()
        argv = ["demo", "-b", "call.*.*", "--match", example, "--count", "1"]
        assert run([*argv, "--event-rate", "200", "--seed", "1", "--duration", "60"], env) == 0
        assert isinstance(env.stdout, io.BytesIO)
        (line,) = env.stdout.getvalue().decode().splitlines()
        path, _, glob = example.partition("=")
        value = json.loads(line)
        for key in path.split("."):
            value = value[key]
        assert value.startswith(glob.rstrip("*")), (example, line)


def test_an_unseen_fields_path_gets_one_warning_naming_the_nearest_path_seen() -> None:
    env = environment()
    fields = "name,data.call_id,data.hangup_casue"
    # Hangups only: every event has data.hangup_cause (the README's own --fields example).
    argv = ["demo", "-b", "call.CHANNEL_DESTROY.*", "--fields", fields, "--count", "101"]
    assert run([*argv, "--event-rate", "3000", "--seed", "1", "--duration", "60"], env) == 0
    assert isinstance(env.stdout, io.BytesIO)
    assert len(env.stdout.getvalue().splitlines()) == 101  # past the first hundred
    warned = [line for line in said(env).splitlines() if "warning:" in line]
    assert warned == [
        "kazoo-tail: warning: --fields data.hangup_casue: none of the first 100 events has "
        '"data.hangup_casue", so it shows nothing; did you mean "data.hangup_cause"?'
    ]
