"""The CLI driven in-process: with click's CliRunner, and through ``cli.run`` with an injected
Environment (streams, isatty, environment), as well as end to end elsewhere."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kazoo_tail.app.environment import Environment
from kazoo_tail.cli import cli, run
from kazoo_tail.simulator import Simulator

from .conftest import publish_once_subscribed, sample
from .inprocess import cli_runner

TOKEN_LIKE = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOiJ5ZXMifQ.c2lnbmF0dXJlLXNlY3JldA"


def recording(tmp_path: Path) -> Path:
    event = sample("05_event_call_channel_create.json")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"received_at": 1.0, "text": json.dumps(event)}) + "\n")
    return path


def environment(**overrides: object) -> Environment:
    env = Environment(stdin=io.StringIO(), stdout=io.BytesIO(), stderr=io.StringIO())
    for name, value in overrides.items():
        setattr(env, name, value)
    return env


def test_tail_in_process_with_clirunner(sim: Simulator) -> None:
    publisher = publish_once_subscribed(sim)
    args = ["--token", sim.mint_token(), "--ws-url", sim.blackhole_url]
    result = cli_runner().invoke(cli, [*args, "-b", "object.doc_created.user", "--count", "1"])
    publisher.join()
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["name"] == "doc_created"
    assert "subscribed to object.doc_created.user" in result.stderr


def test_usage_error_in_process_is_one_sentence_and_exit_2() -> None:
    result = cli_runner().invoke(cli, ["-b", "call.*.*"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("kazoo-tail: error: no Kazoo server given")
    assert len(result.stderr.splitlines()) == 1


def test_a_terminal_on_stdout_chooses_pretty_output(tmp_path: Path) -> None:
    piped, terminal = environment(), environment(stdout_isatty=True)
    assert run(["replay", str(recording(tmp_path))], piped) == 0
    assert run(["replay", str(recording(tmp_path)), "--color", "never"], terminal) == 0
    assert isinstance(piped.stdout, io.BytesIO) and isinstance(terminal.stdout, io.BytesIO)
    assert json.loads(piped.stdout.getvalue())["name"] == "CHANNEL_CREATE"
    pretty = terminal.stdout.getvalue().decode()
    assert "CHANNEL_CREATE" in pretty and not pretty.startswith("{")


class Exploding(io.BytesIO):
    def write(self, data: object) -> int:  # type: ignore[override]
        raise RuntimeError(f"the disk said no while holding {TOKEN_LIKE}")


def test_unexpected_errors_are_one_sentence_and_debug_shows_a_redacted_traceback(
    tmp_path: Path,
) -> None:
    plain = environment(stdout=Exploding())
    assert run(["replay", str(recording(tmp_path))], plain) == 1
    message = plain.stderr.getvalue()
    assert isinstance(plain.stderr, io.StringIO)
    assert message.splitlines() == [
        "kazoo-tail: error: unexpected RuntimeError: the disk said no while holding "
        "<redacted token> (run with --debug for details)"
    ]
    debug = environment(stdout=Exploding())
    assert run(["replay", str(recording(tmp_path)), "--debug"], debug) == 1
    trace = debug.stderr.getvalue()
    assert "Traceback (most recent call last)" in trace and "in write" in trace
    assert TOKEN_LIKE not in trace and "<redacted token>" in trace
    via_environment = environment(stdout=Exploding(), environ={"KAZOO_TAIL_DEBUG": "1"})
    assert run(["replay", str(recording(tmp_path))], via_environment) == 1
    assert "Traceback" in via_environment.stderr.getvalue()


def test_password_prompt_needs_a_terminal_on_both_ends(sim: Simulator) -> None:
    args = ["--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]
    env = environment(stdin_isatty=False, stderr_isatty=True)
    assert run([*args, "-b", "call.*.*"], env) == 3
    assert "no password for user 'demo'" in env.stderr.getvalue()  # type: ignore[attr-defined]
    env = environment(environ={"KAZOO_PASSWORD": "demo"}, config_dir=None)
    assert run([*args, "doctor"][-1:] + args, env) == 0
    assert "all 7 checks passed" in env.stdout.getvalue().decode()  # type: ignore[attr-defined]


def test_a_text_only_stdout_still_takes_events(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A host program that put a StringIO in place of sys.stdout (no .buffer) still works."""
    import sys

    text = io.StringIO()
    monkeypatch.setattr(sys, "stdout", text)
    env = Environment.from_process()
    assert not env.stdout_isatty
    assert run(["replay", str(recording(tmp_path))], env) == 0
    assert json.loads(text.getvalue())["name"] == "CHANNEL_CREATE"


def test_the_callers_stream_stays_open_after_the_run() -> None:
    import gc

    out = io.BytesIO()
    env = environment(stdout=out)
    assert run(["bindings", "-o", "pretty"], env) == 0
    del env
    gc.collect()
    assert not out.closed and b"call.CHANNEL_CREATE" in out.getvalue()


def test_tuning_knobs_matter_only_where_they_are_used(sim: Simulator) -> None:
    bad = {"KAZOO_TAIL_BACKOFF_CAP": "-1", "KAZOO_PASSWORD": "demo"}
    login = ["login", "--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]
    assert run(login, environment(environ=bad)) == 0
    tail = environment(environ=bad)
    assert run(["-b", "call.*.*", "--duration", "0"], tail) == 2
    assert "KAZOO_TAIL_BACKOFF_CAP must be a positive number" in tail.stderr.getvalue()  # type: ignore[attr-defined]


def test_help_names_the_environment_variables() -> None:
    result = cli_runner().invoke(cli, ["tail", "--help"], prog_name="kazoo-tail")
    text = " ".join(result.stdout.split())
    assert text.startswith("Usage: kazoo-tail tail [OPTIONS]")
    assert "[env var: KAZOO_URL]" in text and "[env var: KAZOO_ACCOUNT_ID]" in text


def test_an_empty_url_falls_back_to_the_profile(sim: Simulator, isolated_env: Path) -> None:
    from kazoo_tail.auth.store import ConfigStore, Profile

    ConfigStore(isolated_env).save_profile("default", Profile(url=sim.crossbar_url))
    env = environment()
    assert run(["bindings", "--url", "", "-o", "json"], env) == 0
    assert sim.stats.websockets_catalog == 1


def test_a_completion_request_in_process_returns_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_KAZOO_TAIL_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "kazoo-tail --bi")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert run([], environment()) == 0
