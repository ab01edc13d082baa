"""The calls board: its picture (a pure function of the tracker, the clock and the screen),
and the real ``kazoo-tail calls`` on a pseudo-terminal against the simulator."""

from __future__ import annotations

import fcntl
import io
import os
import random
import re
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator

import pytest
from rich.console import Console

from kazoo_tail.features.calls import CallTracker
from kazoo_tail.kazoo.events import Event
from kazoo_tail.output.board import render_board
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from tests.conftest import BIN, login_args, run, wait_until
from tests.test_calls_tracker import T0, call_event, two_leg_call


def board_text(tracker: CallTracker, now: float, width: int, height: int, status: str = "") -> str:
    console = Console(
        width=width, height=height, record=True, color_system=None, file=io.StringIO()
    )
    console.print(render_board(tracker, now, width, height, status))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def busy_events(count: int = 12) -> list[Event]:
    """Calls every 5 s: every third ringing, the rest talking, #5 held, the first four hung
    up (#1 and #4 unanswered)."""
    events: list[Event] = []
    for n in range(count):
        a, b = f"a{n}", f"b{n}"
        start = T0 + n * 5
        number = {"caller_id_number": f"+1555000{n:04}", "caller_id_name": f"Caller {n}"}
        events.append(call_event("CHANNEL_CREATE", a, start, **number))
        events.append(call_event("CHANNEL_CREATE", b, start + 1, other_leg_call_id=a))
        if n % 3:
            events.append(call_event("CHANNEL_ANSWER", b, start + 2))
            events.append(call_event("CHANNEL_ANSWER", a, start + 2, other_leg_call_id=b, **number))
        if n == 4:
            events.append(call_event("CHANNEL_HOLD", a, start + 3, **number))
        if n < 4:
            cause = "NORMAL_CLEARING" if n % 3 else "NO_ANSWER"
            events.append(call_event("CHANNEL_DESTROY", b, start + 4, hangup_cause=cause))
            events.append(call_event("CHANNEL_DESTROY", a, start + 4, hangup_cause=cause, **number))
    return events


def fed(events: list[Event]) -> CallTracker:
    tracker = CallTracker()
    for event in events:
        tracker.observe(event)
    return tracker


NOW = T0 + 130

BOARD_80x24 = """\
kazoo-tail calls: 20 in progress   (q quits)
call  state    dir      parties                                 legs  ring  talk
#5    held     inbound  Caller 4 <+15550000004> → 2002             2  0:02  1:48
#6    talking  inbound  Caller 5 <+15550000005> → 2002             2  0:02  1:43
#7    ringing  inbound  Caller 6 <+15550000006> → 2002             2  1:40
#8    talking  inbound  Caller 7 <+15550000007> → 2002             2  0:02  1:33
#9    talking  inbound  Caller 8 <+15550000008> → 2002             2  0:02  1:28
#10   ringing  inbound  Caller 9 <+15550000009> → 2002             2  1:25
#11   talking  inbound  Caller 10 <+15550000010> → 2002            2  0:02  1:18
#12   talking  inbound  Caller 11 <+15550000011> → 2002            2  0:02  1:13
#13   ringing  inbound  Caller 12 <+15550000012> → 2002            2  1:10
#14   talking  inbound  Caller 13 <+15550000013> → 2002            2  0:02  1:03
#15   talking  inbound  Caller 14 <+15550000014> → 2002            2  0:02  0:58
#16   ringing  inbound  Caller 15 <+15550000015> → 2002            2  0:55
#17   talking  inbound  Caller 16 <+15550000016> → 2002            2  0:02  0:48
#18   talking  inbound  Caller 17 <+15550000017> → 2002            2  0:02  0:43
#19   ringing  inbound  Caller 18 <+15550000018> → 2002            2  0:40
#20   talking  inbound  Caller 19 <+15550000019> → 2002            2  0:02  0:33
… and 4 more
hung up  cause                    parties                             ring  talk
#4       NO_ANSWER                Caller 3 <+15550000003> → 2002      0:04
#3       NORMAL_CLEARING          Caller 2 <+15550000002> → 2002      0:02  0:02
#2       NORMAL_CLEARING          Caller 1 <+15550000001> → 2002      0:02  0:02
disconnected: connection refused"""


def test_the_board_fits_80x24_with_rows_summarised() -> None:
    text = board_text(fed(busy_events(24)), NOW, 80, 24, "disconnected: connection refused")
    lines = text.splitlines()
    print(text)
    assert len(lines) == 24
    assert all(len(line) <= 80 for line in lines)
    assert text == BOARD_80x24


BOARD_120x40 = """\
kazoo-tail calls: 8 in progress   (q quits)
call  state    dir      parties                                                                         legs  ring  talk
#5    held     inbound  Caller 4 <+15550000004> → 2002                                                     2  0:02  1:48
#6    talking  inbound  Caller 5 <+15550000005> → 2002                                                     2  0:02  1:43
#7    ringing  inbound  Caller 6 <+15550000006> → 2002                                                     2  1:40
#8    talking  inbound  Caller 7 <+15550000007> → 2002                                                     2  0:02  1:33
#9    talking  inbound  Caller 8 <+15550000008> → 2002                                                     2  0:02  1:28
#10   ringing  inbound  Caller 9 <+15550000009> → 2002                                                     2  1:25
#11   talking  inbound  Caller 10 <+15550000010> → 2002                                                    2  0:02  1:18
#12   talking  inbound  Caller 11 <+15550000011> → 2002                                                    2  0:02  1:13
hung up  cause                                    parties                                                     ring  talk
#4       NO_ANSWER                                Caller 3 <+15550000003> → 2002                              0:04
#3       NORMAL_CLEARING                          Caller 2 <+15550000002> → 2002                              0:02  0:02
#2       NORMAL_CLEARING                          Caller 1 <+15550000001> → 2002                              0:02  0:02
#1       NO_ANSWER                                Caller 0 <+15550000000> → 2002                              0:04
























"""


def test_the_board_at_120x40_shows_every_call() -> None:
    text = board_text(fed(busy_events()), NOW, 120, 40)
    print(text)
    assert len(text.split("\n")) == 40  # the last, the status line, empty
    assert "more" not in text
    assert text == BOARD_120x40


def unlabelled(text: str) -> str:
    """Labels count calls in the order first heard of, which arrival order decides."""
    return re.sub(r"^#\d+ *", "#", text, flags=re.MULTILINE)


def test_shuffled_events_draw_the_same_board() -> None:
    events = busy_events()
    expected = unlabelled(board_text(fed(events), NOW, 100, 30))
    for seed in range(20):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert unlabelled(board_text(fed(shuffled), NOW, 100, 30)) == expected


def test_server_text_cannot_drive_the_terminal() -> None:
    tracker = fed([call_event("CHANNEL_CREATE", "x", T0, caller_id_name="\x1b[2Jevil[bold]")])
    text = board_text(tracker, NOW, 100, 10)
    assert "\x1b" not in text and "\\x1b[2Jevil[bold]" in text


def test_stdout_not_a_terminal_is_a_usage_error() -> None:
    result = run("calls", "--url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        "the calls board needs a terminal; use 'kazoo-tail -b call.*.* --calls' for a log"
        in result.stderr
    )
