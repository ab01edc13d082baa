"""Pretty lines follow a resized terminal: a tail that runs for days in a tmux pane keeps
fitting it when the pane is made wider or narrower."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import termios

import pytest

from kazoo_tail.simulator import DEMO, Simulator
from tests.conftest import login_args, wait_until
from tests.test_board import Pty

pytestmark = pytest.mark.e2e

LONG_ID = "resize-" + "0123456789abcdef" * 4


def publish_create(sim: Simulator, n: int) -> None:
    call_id = f"{LONG_ID}-{n:04}"
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
        "CHANNEL_CREATE",
        {
            "call_id": call_id,
            "msg_id": f"m{n}",
            "account_id": DEMO.account_id,
            "caller_id_number": "+15551230001",
            "callee_id_number": "+15559870002",
            "call_direction": "inbound",
            # A carrier's leg, routed: the call is inbound as the account sees it.
            "custom_channel_vars": {
                "account_id": DEMO.account_id,
                "resource_type": "offnet-origination",
                "inception": "+15559870002@10.26.0.21",
            },
        },
    )


def call_lines(terminal: Pty) -> list[str]:
    text = terminal.output.decode("utf-8", "replace").replace("\r\n", "\n")
    return [line for line in text.split("\n") if re.search(r"\bCREATE\b|CHANNEL_CREATE", line)]


def resize(terminal: Pty, columns: int) -> None:
    fcntl.ioctl(terminal.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    os.killpg(terminal.process.pid, signal.SIGWINCH)  # as a terminal does; the tail ignores it


def test_lines_fit_the_terminal_again_after_it_is_resized(sim: Simulator) -> None:
    terminal = Pty("-b", "call.*.*", "--color", "never", *login_args(sim))
    try:
        terminal.wait_for(b"subscribed to")
        publish_create(sim, 0)
        wait_until(lambda: len(call_lines(terminal)) == 1, what=lambda: repr(terminal.output))
        (first,) = call_lines(terminal)
        assert len(first) <= 80 and "…" in first, first  # the id elided to fit 80 columns

        resize(terminal, 160)
        published = [1]

        def widened() -> bool:
            # Each event shows the width the tail last asked for; publish until one is wider.
            if any(len(line) > 80 for line in call_lines(terminal)):
                return True
            if len(call_lines(terminal)) == published[0]:
                publish_create(sim, published[0])
                published[0] += 1
            return False

        wait_until(widened, what=lambda: "\n".join(call_lines(terminal)))
        wide = next(line for line in call_lines(terminal) if len(line) > 80)
        assert len(wide) <= 160, wide
        # At 160 columns the direction is written whole and the long id shows more of itself.
        assert "inbound" in wide and wide.count("0123456789abcdef") > first.count(
            "0123456789abcdef"
        )

        resize(terminal, 80)
        narrowed_from = len(call_lines(terminal))

        def narrowed() -> bool:
            lines = call_lines(terminal)
            if any(len(line) <= 80 for line in lines[narrowed_from:]):
                return True
            if len(lines) == published[0]:
                publish_create(sim, published[0])
                published[0] += 1
            return False

        wait_until(narrowed, what=lambda: "\n".join(call_lines(terminal)))
        os.killpg(terminal.process.pid, signal.SIGINT)
        assert terminal.finish() == 130
    finally:
        terminal.close()
