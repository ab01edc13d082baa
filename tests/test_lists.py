"""The list commands (``bindings``, ``sockets``) piped: one item per line for grep, JSON lines
behind ``-o json``, and a table only for a person at a terminal."""

from __future__ import annotations

import os
import subprocess

import pytest

from kazoo_tail.kazoo.catalog import builtin_catalogue
from kazoo_tail.simulator import DEMO, Simulator

from .conftest import BIN, Running, kazoo_tail_env, login_args
from .inprocess import run

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
BUILTIN = [
    binding for module in sorted(builtin_catalogue()) for binding in builtin_catalogue()[module]
]


@pytest.mark.e2e
def test_bindings_piped_are_one_binding_a_line_that_grep_can_pick(sim: Simulator) -> None:
    result = run("bindings", "--url", sim.crossbar_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "call.CHANNEL_CREATE.{CALL_ID}" in lines and "object.doc_edited.user" in lines
    assert all(" " not in line and "\t" not in line for line in lines)
    grepped = subprocess.run(
        f"'{BIN}' bindings --url {sim.crossbar_url} | grep user",
        shell=True,
        capture_output=True,
        text=True,
        env=kazoo_tail_env(),
        check=True,
    )
    assert grepped.stdout.splitlines() == [
        "object.doc_created.user",
        "object.doc_edited.user",
        "object.doc_deleted.user",
    ]


def test_the_builtin_catalogue_piped_is_one_binding_a_line() -> None:
    result = run("bindings")
    assert result.returncode == 0
    assert result.stdout.splitlines() == BUILTIN
    assert "built-in catalogue" in result.stderr


def test_bindings_as_json_are_one_object_a_binding(sim: Simulator) -> None:
    result = run("bindings", "--url", sim.crossbar_url, "-o", "json")
    assert result.returncode == 0, result.stderr
    items = result.json_lines()
    assert {"module": "call", "binding": "call.CHANNEL_CREATE.{CALL_ID}"} in items
    assert all(item["binding"].startswith(item["module"] + ".") for item in items)
    assert len(items) == len(result.stdout.splitlines()) > 20


@pytest.mark.e2e
def test_bindings_on_a_terminal_are_a_table() -> None:
    master, slave = os.openpty()
    try:
        process = subprocess.run(
            [str(BIN), "bindings"],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=kazoo_tail_env(),
            timeout=20,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pty's other end is closed: all was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert process.returncode == 0
    rows = shown.decode().splitlines()
    assert rows[0].split() == ["MODULE", "BINDING"]
    assert rows[1].split() == ["call", "call.CHANNEL_CREATE.{CALL_ID}"]
    assert rows[2].split() == ["call.CHANNEL_ANSWER.{CALL_ID}"]
    assert rows[2].index("call.") == rows[0].index("BINDING")


def test_sockets_piped_are_one_socket_a_line_and_json_lines_with_o_json(
    sim: Simulator, started: type[Running]
) -> None:
    tails = [
        started(*login_args(sim), "-b", binding, **PASSWORD)
        for binding in ("call.*.*", "object.doc_created.user")
    ]
    for tail in tails:
        tail.wait_for_stderr("subscribed to", timeout=10)
    listed = {item["websocket_session_id"]: item for item in sim.sockets()}

    plain = run("sockets", *login_args(sim), **PASSWORD)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 2
    fields = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert set(fields) == set(listed)
    assert all(len(row) == 6 and row[1] == "127.0.0.1" for row in fields.values())
    assert sorted(row[5] for row in fields.values()) == ["call.*.* x9", "object.doc_created.user"]
    grepped = [line for line in lines if "doc_created" in line]
    assert len(grepped) == 1

    as_json = run("sockets", *login_args(sim), "-o", "json", **PASSWORD)
    assert as_json.returncode == 0, as_json.stderr
    items = as_json.json_lines()
    assert {item["websocket_session_id"] for item in items} == set(listed)
    assert len(as_json.stdout.splitlines()) == 2
