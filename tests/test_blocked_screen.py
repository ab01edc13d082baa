"""A terminal that stops taking output (Ctrl-S, a stuck ssh) must not stop the calls board
reading its websocket: the screen is drawn by a writer thread, the newest picture replacing
one not yet written."""

from __future__ import annotations

import pytest

from kazoo_tail.simulator import Simulator
from tests.conftest import login_args, wait_until
from tests.test_board import Pty, assert_restored, publish_ringing_call

XOFF, XON = b"\x13", b"\x11"  # Ctrl-S and Ctrl-Q: the terminal's output flow control


@pytest.mark.e2e
def test_a_stopped_terminal_does_not_hold_up_the_board(sim: Simulator) -> None:
    terminal = Pty("calls", *login_args(sim))
    try:
        terminal.wait_for(b"subscribed to")
        terminal.type(XOFF)  # the terminal takes no more output; the board redraws 4 times/s
        sim.drop_connections()
        # Drawing into the stopped terminal does not hold up the reconnect.
        wait_until(lambda: sim.stats.subscribes == 2, timeout=5, what="resubscribed")
        publish_ringing_call(sim, "+15551239999")
        shown = len(terminal.output)
        terminal.type(XON)  # output flows again: the newest picture shows the call
        terminal.wait_for(b"+15551239999", after=shown)
        terminal.type(b"q")
        assert terminal.finish() == 0
        assert_restored(terminal)
        assert sim.stats.frames_shed == 0 and sim.stats.replies_shed == 0
    finally:
        terminal.close()
