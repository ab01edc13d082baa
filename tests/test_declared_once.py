"""Settings declared once: an option's declaration carries its section and its groups, and its
name is the field it fills, so a new session setting is one declaration and one field."""

from __future__ import annotations

import dataclasses
import io

import click

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions
from kazoo_tail.cli import cli, run
from kazoo_tail.cli.help import section_of
from kazoo_tail.cli.options import CONNECTION, OPTIONS, STAYING_CONNECTED
from kazoo_tail.cli.settings import connection_config
from kazoo_tail.errors import ExitCode
from kazoo_tail.session.resolve import ConnectionConfig

CONFIG_FIELDS = {field.name for field in dataclasses.fields(ConnectionConfig)}
OUTPUT_FIELDS = {field.name for field in dataclasses.fields(OutputOptions)}


def environment() -> Environment:
    return Environment(stdin=io.StringIO(), stdout=io.BytesIO(), stderr=io.StringIO())


def test_every_staying_connected_option_is_named_after_the_field_it_fills() -> None:
    for name in OPTIONS:
        option = OPTIONS[name].add(lambda: None).__click_params__[0]  # type: ignore[attr-defined]
        if section_of(option) != STAYING_CONNECTED:
            continue
        field = name.removeprefix("no_")  # --no-reconnect fills reconnect=False
        assert field in CONFIG_FIELDS or field in OUTPUT_FIELDS, name


def test_the_tails_session_options_reach_the_connection_config_by_name() -> None:
    tail = cli.commands["tail"]
    args = ["--ping-interval", "7", "--ping-timeout", "3", "--max-reconnect-time", "9"]
    with tail.make_context("tail", [*args, "--no-reconnect", "--url", "http://x:8000"]) as ctx:
        config = connection_config(ctx.params, None, environment())
    assert (config.ping_interval, config.ping_timeout, config.max_reconnect_time) == (7, 3, 9)
    assert config.reconnect is False and config.url == "http://x:8000"


def test_the_board_takes_the_link_keeping_but_not_the_stdout_buffer() -> None:
    names = {param.name for param in cli.commands["calls"].params}
    assert {"ping_interval", "ping_timeout", "no_reconnect", "max_reconnect_time"} <= names
    assert {"record", "duration", "matches"} <= names
    assert not {"buffer_size", "spill_size", "count", "output"} & names


def test_doctor_has_its_own_timeout_not_the_ping_timeout() -> None:
    doctor = cli.commands["doctor"]
    (timeout,) = [param for param in doctor.params if param.name == "timeout"]
    assert isinstance(timeout, click.Option)
    assert timeout.default == 10.0 and section_of(timeout) == CONNECTION
    assert "ping_timeout" not in {param.name for param in doctor.params}
    env = environment()
    assert run(["doctor", "--ping-timeout", "1"], env) == ExitCode.USAGE
    assert isinstance(env.stderr, io.StringIO)
    assert "no such option: --ping-timeout" in env.stderr.getvalue()


def test_options_declared_by_other_commands_carry_their_section_too() -> None:
    demo = {param.name: section_of(param) for param in cli.commands["demo"].params}
    assert demo["event_rate"] == demo["seed"] == demo["nodes"] == "Simulator"
    simulator = {param.name: section_of(param) for param in cli.commands["simulator"].params}
    assert simulator["event_rate"] == "Traffic" and simulator["host"] == "Listening"
    calls = {param.name: section_of(param) for param in cli.commands["calls"].params}
    assert calls["demo_mode"] == CONNECTION
