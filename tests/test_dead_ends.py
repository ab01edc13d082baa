"""Issue 21, item 5 ("no dead ends"): each way the tool used to leave a user stuck, in-process
through ``cli.run`` with an injected Environment."""

from __future__ import annotations

import io

import pytest

from kazoo_tail.app.environment import Environment
from kazoo_tail.cli import run
from kazoo_tail.simulator import Simulator


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
