"""The calls board: its picture (a pure function of the tracker, the clock and the screen),
and the real ``kazoo-tail calls`` on a pseudo-terminal against the simulator."""

from __future__ import annotations

import fcntl
import io
import os
import random
import re
import resource
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Iterator

import pytest
from rich.cells import cell_len
from rich.console import Console

from kazoo_tail.features.calls import CallTracker
from kazoo_tail.kazoo.events import Event
from kazoo_tail.output.board import render_board
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from tests.test_calls_tracker import T0, call_event

from . import inprocess
from .conftest import BIN, SAMPLES, login_args, run, wait_until


def board_text(tracker: CallTracker, now: float, width: int, height: int, status: str = "") -> str:
    console = Console(
        width=width, height=height, record=True, color_system=None, file=io.StringIO()
    )
    console.print(render_board(tracker, now, width, height, status))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


DEVICE = {"authorizing_type": "device", "authorizing_id": "d1", "owner_id": "u1"}
# The legs' channel vars, as Kazoo sets them (docs/calls.md §3), by the call's direction.
LEG_VARS = {
    "inbound": ({"inception": "2002@10.0.0.1", "resource_type": "offnet-origination"}, DEVICE),
    "outbound": (DEVICE, {"resource_type": "offnet-termination", "resource_id": "r1"}),
    "internal": (DEVICE, DEVICE),
}
KIND_OF = ("inbound", "outbound", "internal")  # call n is KIND_OF[n % 3]


def busy_events(count: int = 12) -> list[Event]:
    """Calls every 5 s: every third ringing, the rest talking, #5 held, the first four hung
    up (#1 and #4 unanswered); inbound, outbound and internal in turn."""
    events: list[Event] = []
    for n in range(count):
        a, b = f"a{n}", f"b{n}"
        start = T0 + n * 5
        a_vars, b_vars = LEG_VARS[KIND_OF[n % 3]]
        number = {
            "caller_id_number": f"+1555000{n:04}",
            "caller_id_name": f"Caller {n}",
            "custom_channel_vars": a_vars,
        }
        events.append(call_event("CHANNEL_CREATE", a, start, **number))
        events.append(
            call_event(
                "CHANNEL_CREATE",
                b,
                start + 1,
                other_leg_call_id=a,
                call_direction="outbound",
                custom_channel_vars=b_vars,
            )
        )
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

BOARD_80x24 = (SAMPLES / "board_80x24.txt").read_text(encoding="utf-8")


def test_the_board_fits_80x24_with_rows_summarised() -> None:
    text = board_text(fed(busy_events(24)), NOW, 80, 24, "disconnected: connection refused")
    lines = text.splitlines()
    print(text)
    assert len(lines) == 24
    assert all(len(line) <= 80 for line in lines)
    assert text == BOARD_80x24


BOARD_120x40 = (SAMPLES / "board_120x40.txt").read_text(encoding="utf-8")


def test_the_board_at_120x40_shows_every_call() -> None:
    text = board_text(fed(busy_events()), NOW, 120, 40)
    print(text)
    assert len(text.split("\n")) == 40  # the last, the status line, empty
    assert "more" not in text
    assert text == BOARD_120x40
    # The dir column: the call's direction as the account sees it, not the A-leg's "inbound".
    rows = {line.split()[0]: line.split()[2] for line in text.splitlines()[2:10]}
    assert rows == {f"#{n + 1}": KIND_OF[n % 3] for n in range(4, 12)}, rows


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
    result = inprocess.run("calls", "--url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "the calls board needs a terminal" in result.stderr
    assert "kazoo-tail -b 'call.*.*' --calls -o pretty" in result.stderr


class Pty:
    """``kazoo-tail ARGS`` on a pseudo-terminal of 80x24, its own session and process group
    (as a shell's job is), with everything it writes collected."""

    def __init__(
        self,
        *args: str,
        password_in_env: bool = True,
        columns: int = 80,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        env = {**os.environ, "TERM": "xterm-256color", "KAZOO_PASSWORD": DEMO.password}
        if not password_in_env:
            del env["KAZOO_PASSWORD"]
        env.pop("COLUMNS", None)
        if preexec_fn is not None:
            # A child that may not write files (``ulimit -f 0``) is not measured: coverage
            # would leave an empty data file behind, which `coverage combine` warns about.
            env = {name: value for name, value in env.items() if not name.startswith("COV")}
        self.process = subprocess.Popen(
            [str(BIN), *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self._data = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._data += chunk

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._data)

    def wait_for(self, text: bytes, after: int = 0) -> None:
        wait_until(lambda: text in self.output[after:], what=lambda: repr(self.output[-2000:]))

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> int:
        code = self.process.wait(timeout=20)
        # Whatever it wrote before it exited is in the pty; the reader takes it all.
        wait_until(lambda: not self._pending(), what="the pty drained")
        return code

    def _pending(self) -> bool:
        import select

        return bool(select.select([self.master], [], [], 0)[0])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def board(sim: Simulator) -> Iterator[Pty]:
    terminal = Pty("calls", *login_args(sim))
    try:
        yield terminal
    finally:
        terminal.close()


def publish_ringing_call(sim: Simulator, caller: str) -> None:
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.c1",
        "CHANNEL_CREATE",
        {
            "call_id": "c1",
            "msg_id": "m1",
            "account_id": DEMO.account_id,
            "caller_id_number": caller,
            "call_direction": "inbound",
        },
    )


def subscribed_again(terminal: Pty, after: int) -> None:
    """The board shows the subscription's notice, or the gap's that follows it at once (a
    picture the terminal has not taken yet is replaced by the next one)."""
    wait_until(
        lambda: re.search(rb"subscribed to|reconnected to", terminal.output[after:]),
        what=lambda: repr(terminal.output[-2000:]),
    )


ENTER_ALTERNATE, LEAVE_ALTERNATE, SHOW_CURSOR = b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?25h"


def assert_restored(terminal: Pty) -> None:
    out = terminal.output
    assert ENTER_ALTERNATE in out
    left = out.rindex(LEAVE_ALTERNATE)
    assert left > out.rindex(ENTER_ALTERNATE)
    assert out.rindex(SHOW_CURSOR) > out.rindex(b"\x1b[?25l")
    assert termios.tcgetattr(terminal.slave) == terminal.before


@pytest.mark.e2e
def test_the_board_shows_a_call_and_q_ends_it_with_the_terminal_restored(
    sim: Simulator, board: Pty
) -> None:
    board.wait_for(b"subscribed to")
    assert termios.tcgetattr(board.slave) != board.before  # cbreak while the board is up
    publish_ringing_call(sim, "+15551230001")
    board.wait_for(b"+15551230001")
    board.wait_for(b"ringing")
    board.type(b"q")
    assert board.finish() == 0
    assert_restored(board)


@pytest.mark.e2e
def test_ctrl_c_ends_the_board_with_the_terminal_restored(sim: Simulator, board: Pty) -> None:
    board.wait_for(b"subscribed to")
    publish_ringing_call(sim, "+15551230002")
    board.wait_for(b"+15551230002")
    os.killpg(board.process.pid, signal.SIGINT)
    assert board.finish() == 130
    assert_restored(board)


@pytest.mark.e2e
def test_sigterm_ends_the_board_with_the_terminal_restored(board: Pty) -> None:
    board.wait_for(b"subscribed to")
    board.process.terminate()
    board.finish()
    assert_restored(board)


@pytest.mark.e2e
def test_a_rejected_token_asks_for_the_password_off_the_board_and_the_board_comes_back(
    sim: Simulator,
) -> None:
    # Logged in before: the board starts on the cached token and has no password at hand.
    assert run("login", *login_args(sim), KAZOO_PASSWORD=DEMO.password).returncode == 0
    terminal = Pty("calls", password_in_env=False)
    try:
        terminal.wait_for(b"subscribed to")
        shown = len(terminal.output)
        sim.revoke_tokens()  # a password changed elsewhere: the cached token is refused
        sim.close_connections(code=1001)
        terminal.wait_for(b"(token rejected): ", after=shown)
        asked = terminal.output.rindex(b"(token rejected): ")
        # The board has left the alternate screen and given back echo and lines to ask.
        assert terminal.output.rindex(LEAVE_ALTERNATE) < asked
        assert terminal.output.rindex(ENTER_ALTERNATE) < terminal.output.rindex(LEAVE_ALTERNATE)
        assert termios.tcgetattr(terminal.slave)[3] & termios.ICANON
        terminal.type(DEMO.password.encode() + b"\n")
        terminal.wait_for(ENTER_ALTERNATE, after=asked)
        subscribed_again(terminal, after=asked)
        publish_ringing_call(sim, "+15551230003")
        terminal.wait_for(b"+15551230003", after=asked)
        assert sim.stats.user_auth == 2
        terminal.type(b"q")
        assert terminal.finish() == 0
        assert_restored(terminal)
        typed = terminal.output.split(b"(token rejected): ", 1)[1].split(b"\n", 1)[0]
        assert DEMO.password.encode() not in typed  # not echoed
    finally:
        terminal.close()


def _full_disk() -> None:
    """In the child: no byte can be written to any file (``ulimit -f 0``), root included."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.e2e
def test_the_token_providers_warning_is_shown_on_the_status_line_and_repeated_after(
    sim: Simulator,
) -> None:
    assert run("login", *login_args(sim), KAZOO_PASSWORD=DEMO.password).returncode == 0
    # The renewed token cannot be cached: the provider warns while the board is up.
    terminal = Pty("calls", columns=200, preexec_fn=_full_disk)
    try:
        terminal.wait_for(b"subscribed to")
        shown = len(terminal.output)
        sim.revoke_tokens()
        sim.close_connections(code=1001)
        wait_until(lambda: sim.stats.user_auth == 2, what="the board logged in again")
        subscribed_again(terminal, after=shown)
        # Not lost under the subscription's notice: the last picture still says it.
        frame = _last_frame(terminal)
        assert b"the token could not be cached" in frame, frame
        board_ended = len(terminal.output)
        terminal.type(b"q")
        assert terminal.finish() == 0
        after = terminal.output[board_ended:]
        left = after.rindex(LEAVE_ALTERNATE)
        assert b"warning: the token could not be cached" in after[left:], after[left:]
    finally:
        terminal.close()


@pytest.mark.e2e
def test_rows_stay_right_when_the_simulator_reorders_events() -> None:
    config = SimulatorConfig(
        event_rate=0, early_events=False, reorder_window=0.3, seed=3, advertise_ws_url=True
    )
    with Simulator(config) as reordering:
        terminal = Pty("calls", *login_args(reordering))
        try:
            terminal.wait_for(b"subscribed to")
            for _ in range(3):
                reordering.publish_call(hangup_cause="USER_BUSY", talk_seconds=42)
            # Each call's hangup, however its events were shuffled, shows its cause and its
            # talk time, and no call is left in progress.
            wait_until(
                lambda: (
                    terminal.output.count(b"USER_BUSY")
                    and b"0 in progress" in _last_frame(terminal)
                ),
                what=lambda: repr(_last_frame(terminal)),
            )
            frame = _last_frame(terminal)
            assert frame.count(b"USER_BUSY") == 3
            assert frame.count(b"0:42") == 3
            assert b"calls: 0 in progress" in frame
            terminal.type(b"q")
            assert terminal.finish() == 0
        finally:
            terminal.close()


def frame_shows(terminal: Pty, condition: Callable[[str], bool]) -> None:
    """Wait for a picture of the board that meets the condition (the last one read may be
    only the start of the next picture)."""
    wait_until(
        lambda: condition(_last_frame(terminal).decode("utf-8", "replace")),
        what=lambda: repr(_last_frame(terminal)),
    )


def _last_frame(terminal: Pty) -> bytes:
    """What the board drew last (rich's Live redraws from the top-left each time)."""
    out = terminal.output
    return out[out.rfind(b"\x1b[H") :]


def test_hangups_in_the_same_second_list_the_one_that_closed_last_first() -> None:
    events = []
    for n in (1, 2, 3):
        events.append(call_event("CHANNEL_CREATE", f"s{n}", T0, caller_id_number=f"+1555000{n}"))
    for n in (1, 2, 3):  # Kazoo's timestamps: the same whole second for all three
        events.append(call_event("CHANNEL_DESTROY", f"s{n}", T0 + 10, hangup_cause="X"))
    text = board_text(fed(events), T0 + 20, 80, 24)
    rows = [line.split()[0] for line in text.splitlines() if line.startswith("#")]
    assert rows == ["#3", "#2", "#1"], text


def test_calls_from_a_listing_show_their_unseen_times_as_lower_bounds() -> None:
    from tests.test_calls_reconcile import ACCOUNT, leg

    tracker = CallTracker()
    listing = [
        leg("l1", "inbound", True, "l2", caller_id_number="+15550042"),
        leg("l2", "outbound", True, "l1"),
    ]
    tracker.reconcile({ACCOUNT: listing}, T0, T0)
    text = board_text(tracker, T0 + 62, 100, 10)
    row = next(line for line in text.splitlines() if "+15550042" in line)
    assert "talking" in row and row.rstrip().endswith("≥1:02"), text


def test_a_stale_call_is_unconfirmed_with_its_clocks_stopped() -> None:
    tracker = CallTracker(stale_after=60)
    event = call_event("CHANNEL_CREATE", "st1", T0, caller_id_number="+15550043")
    event.received_at = T0 + 5
    tracker.observe(event)
    fresh = board_text(tracker, T0 + 65, 100, 10)
    assert "ringing" in fresh and "1:05" in fresh and "unconfirmed" not in fresh
    for later in (T0 + 66, T0 + 600):
        text = board_text(tracker, later, 100, 10)
        row = next(line for line in text.splitlines() if "+15550043" in line)
        assert "unconfirmed" in row and "ringing" not in row, text
        # Stopped where it was last shown (1:05 at T0 + 65), not ticking, and never lower.
        assert row.rstrip().endswith("≥1:05"), text


def test_a_call_ended_during_a_gap_is_listed_among_the_hangups_with_that_cause() -> None:
    from tests.test_calls_tracker import two_leg_call

    tracker = CallTracker()
    for event in two_leg_call("gp1", "gp2", T0)[:5]:
        event.received_at = T0 + 3
        tracker.observe(event)
    tracker.reconcile({"": []}, T0 + 100, T0 + 100, all_listed=True)
    text = board_text(tracker, T0 + 120, 100, 12)
    assert "0 in progress" in text
    row = next(line for line in text.splitlines() if "ended during the gap" in line)
    assert row.rstrip().endswith("≥0:00"), text


@pytest.mark.e2e
def test_a_board_started_with_calls_in_progress_shows_them_with_unseen_times(
    sim: Simulator,
) -> None:
    sim.start_call(kind="inbound")
    # Ringing, not bridged: its B-leg is listed with the A-leg as other_leg from its creation,
    # as ecallmgr lists it (docs/calls.md §1.3), so the two legs are one call.
    sim.start_call(kind="internal", answered=False)
    terminal = Pty("calls", *login_args(sim), columns=120)
    try:
        # Counted from the listing (≥): the calls' start and answer were not seen.
        frame_shows(
            terminal,
            lambda frame: (
                "2 in progress" in frame
                and frame.count("talking") == 1
                and frame.count("ringing") == 1
                and "≥0:0" in frame
                and "inbound" in frame
                and "internal" in frame
            ),
        )
        assert sim.stats.channel_listings == 1
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_calls_that_end_during_a_gap_are_closed_and_those_begun_in_it_added(
    sim: Simulator,
) -> None:
    lost = sim.start_call(kind="outbound")
    stays = sim.start_call(kind="inbound")
    terminal = Pty("calls", *login_args(sim), columns=120)
    try:
        wait_until(lambda: b"2 in progress" in _last_frame(terminal), what="the listed calls")
        shown = len(terminal.output)
        sim.end_calls_unheard(lost)
        sim.drop_connections()  # the link is reset: what came meanwhile may be lost
        begun = sim.start_call(kind="internal")  # while the board is not subscribed
        wait_until(
            lambda: b"ended during the gap" in _last_frame(terminal),
            what=lambda: repr(_last_frame(terminal)),
        )
        wait_until(lambda: b"2 in progress" in _last_frame(terminal), what="the gap's calls")
        assert sim.stats.channel_listings >= 2
        assert len(terminal.output) > shown
        assert stays and begun
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_refused_channel_list_is_told_once_and_the_board_goes_on(sim: Simulator) -> None:
    sim.refuse_channels(403)
    sim.start_call()
    terminal = Pty("calls", *login_args(sim), columns=250)
    try:
        terminal.wait_for(b"Crossbar refused the channel list")
        publish_ringing_call(sim, "+15551230009")
        frame_shows(terminal, lambda frame: "+15551230009" in frame and "1 in progress" in frame)
        terminal.type(b"q")
        assert terminal.finish() == 0
        after = terminal.output[terminal.output.rindex(LEAVE_ALTERNATE) :]
        assert after.count(b"Crossbar refused the channel list") == 1, after
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_failed_channel_list_is_told_once_and_asked_again_after_the_next_gap(
    sim: Simulator,
) -> None:
    sim.refuse_channels(500)  # ecallmgr out of reach
    sim.start_call(kind="inbound")
    terminal = Pty("calls", *login_args(sim), columns=250)
    try:
        terminal.wait_for(b"could not reach ecallmgr channels")
        frame_shows(terminal, lambda frame: "0 in progress" in frame)
        sim.refuse_channels(None)
        sim.drop_connections()
        frame_shows(terminal, lambda frame: "1 in progress" in frame and "talking" in frame)
        terminal.type(b"q")
        assert terminal.finish() == 0
        after = terminal.output[terminal.output.rindex(LEAVE_ALTERNATE) :]
        assert after.count(b"could not reach ecallmgr channels") == 1, after
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_failed_first_channel_list_is_asked_again_after_a_pause_with_no_gap(
    sim: Simulator,
) -> None:
    """The calls in progress at the start are shown once Crossbar answers, though the socket
    never drops (no gap would ever ask again)."""
    sim.refuse_channels(500)
    sim.start_call(kind="inbound")
    terminal = Pty("calls", *login_args(sim), columns=250)
    try:
        terminal.wait_for(b"could not reach ecallmgr channels")
        sim.refuse_channels(None)
        frame_shows(terminal, lambda frame: "1 in progress" in frame and "talking" in frame)
        assert sim.stats.channel_listings >= 2
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_token_revoked_under_the_board_is_renewed_for_the_listings(sim: Simulator) -> None:
    """Blackhole never looks again at the token of an open socket, so no gap comes to renew
    it: the listings renew it themselves (here with the password in the environment), and a
    call whose hangup was missed still ends."""
    terminal = Pty("calls", *login_args(sim), "--stale-after", "2", columns=250)
    try:
        terminal.wait_for(b"subscribed to")
        legs = sim.start_call(kind="inbound")
        frame_shows(terminal, lambda frame: "1 in progress" in frame)
        logins = sim.stats.user_auth
        sim.revoke_tokens()
        sim.end_calls_unheard(legs)
        frame_shows(terminal, lambda frame: "ended unheard" in frame and "0 in progress" in frame)
        assert sim.stats.user_auth > logins
        assert b"HTTP 401" not in terminal.output  # (a bare "401" may be in a call id)
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_the_board_s_filters_apply_to_the_calls_it_lists(sim: Simulator) -> None:
    """--call-id adds the listed call it names, and no other; --match cannot be tested on a
    listing, which has none of the events' fields: nothing listed is added, and it says so."""
    wanted = sim.start_call(kind="inbound")
    other = sim.start_call(kind="inbound")
    terminal = Pty("calls", *login_args(sim), "--call-id", wanted[1], columns=250)
    try:
        frame_shows(terminal, lambda frame: "1 in progress" in frame and wanted[0] in frame)
        assert other[0].encode() not in terminal.output
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()
    terminal = Pty("calls", *login_args(sim), "--match", "data.caller_id_number=+1*", columns=250)
    try:
        terminal.wait_for(b"not shown with --match")
        wait_until(lambda: sim.stats.channel_listings >= 2, what="the second board's listing")
        publish_ringing_call(sim, "+15551230020")  # heard, and matching: shown
        frame_shows(terminal, lambda frame: "+15551230020" in frame and "1 in progress" in frame)
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_slow_channel_list_never_holds_up_the_events(sim: Simulator) -> None:
    sim.hold_channel_listings()
    sim.start_call(kind="inbound")
    terminal = Pty("calls", *login_args(sim), columns=120)
    try:
        terminal.wait_for(b"subscribed to")
        wait_until(lambda: sim.stats.channel_listings == 1, what="the listing asked")
        publish_ringing_call(sim, "+15551230010")  # while the listing is still unanswered
        frame_shows(terminal, lambda frame: "+15551230010" in frame and "1 in progress" in frame)
        assert sim.stats.channel_listings == 1
        sim.hold_channel_listings(False)
        wait_until(
            lambda: b"2 in progress" in _last_frame(terminal),
            what=lambda: repr(_last_frame(terminal)),
        )
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
@pytest.mark.soak
def test_a_quiet_call_is_confirmed_by_crossbar_and_ends_unheard_once_it_is_no_longer_listed(
    sim: Simulator,
) -> None:
    terminal = Pty("calls", *login_args(sim), "--stale-after", "3", columns=120)
    try:
        terminal.wait_for(b"subscribed to")
        publish_ringing_call(sim, "+15551230011")
        terminal.wait_for(b"+15551230011")
        # Quiet for longer than --stale-after, but listed: still ringing, never unconfirmed.
        wait_until(lambda: sim.stats.channel_listings >= 3, what="the call confirmed again")
        assert b"unconfirmed" not in terminal.output
        frame_shows(terminal, lambda frame: "ringing" in frame)
        sim.end_calls_unheard(["c1"])
        frame_shows(terminal, lambda frame: "ended unheard" in frame and "0 in progress" in frame)
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


@pytest.mark.e2e
def test_a_call_unheard_of_and_unconfirmed_stops_ticking(sim: Simulator) -> None:
    sim.refuse_channels(403)
    terminal = Pty("calls", *login_args(sim), "--stale-after", "1", columns=250)
    try:
        terminal.wait_for(b"subscribed to")
        publish_ringing_call(sim, "+15551230012")
        terminal.wait_for(b"+15551230012")
        # Its clocks stopped where it was last heard: a lower bound, not ticking on.
        frame_shows(
            terminal,
            lambda frame: "unconfirmed" in frame and "ringing" not in frame and "≥0:0" in frame,
        )
        terminal.type(b"q")
        assert terminal.finish() == 0
    finally:
        terminal.close()


# Call ids as Kazoo makes them: a FreeSWITCH uuid with the switch's address, 60 characters.
LONG_A = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-1733628000-1234@10.1.1.1"
LONG_B = "9f8e7d6c-5b4a-4938-8271-6f5e4d3c2b1a"
PSTN_IN = "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d-1733628010-5678@10.1.1.2"


def long_id_calls() -> CallTracker:
    """A device calling the PSTN (outbound) and the PSTN calling a device (inbound), both
    ringing, with E.164 numbers of the longest kind and names."""
    out_a, out_b = LEG_VARS["outbound"]
    in_a, _ = LEG_VARS["inbound"]
    device = {"caller_id_number": "1001", "caller_id_name": "Grace Davis"}
    return fed(
        [
            call_event(
                "CHANNEL_CREATE",
                LONG_A,
                T0,
                **device,
                callee_id_number="+861065529988123",
                callee_id_name="北京 办公室",
                custom_channel_vars=out_a,
            ),
            call_event(
                "CHANNEL_CREATE",
                LONG_B,
                T0 + 1,
                **device,
                callee_id_number="+861065529988123",
                other_leg_call_id=LONG_A,
                call_direction="outbound",
                custom_channel_vars=out_b,
            ),
            call_event(
                "CHANNEL_CREATE",
                PSTN_IN,
                T0 + 2,
                caller_id_number="+4930123456789",
                caller_id_name="Jürgen Müller",
                callee_id_number="1002",
                custom_channel_vars=in_a,
            ),
        ]
    )


def test_the_board_shows_each_calls_first_leg_id_elided_in_the_middle_at_80() -> None:
    text = board_text(long_id_calls(), NOW, 80, 12)
    print(text)
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["call", "state", "dir", "call", "id"]
    assert all(cell_len(line) <= 80 for line in lines)
    outbound = next(line for line in lines if " outbound " in line)
    inbound = next(line for line in lines if " inbound " in line)
    # The numbers whole (names gave way), the A-leg's id cut in its middle, never the B-leg's.
    assert "1001 → +861065529988123" in outbound and "Grace" not in outbound
    assert "+4930123456789 → 1002" in inbound
    for line, leg in ((outbound, LONG_A), (inbound, PSTN_IN)):
        shown = re.search(r"(\S+…\S+)", line)
        assert shown and leg.startswith(shown.group(1).split("…")[0]), line
        assert leg.endswith(shown.group(1).split("…")[1]) and cell_len(shown.group(1)) >= 12
    assert LONG_B[:8] not in text


def test_the_board_gives_spare_width_to_ids_before_names() -> None:
    # 130 columns: room for the whole ids, not for every name too.
    text = board_text(long_id_calls(), NOW, 130, 12)
    print(text)
    assert LONG_A in text and PSTN_IN in text
    assert "1001 → +861065529988123" in text
    # At 200 the names come too, wide characters counted as two cells.
    text = board_text(long_id_calls(), NOW, 200, 12)
    print(text)
    assert LONG_A in text and PSTN_IN in text
    assert "Grace Davis <1001> → 北京 办公室 <+861065529988123>" in text
    assert "Jürgen Müller <+4930123456789> → 1002" in text
    assert all(cell_len(line) <= 200 for line in text.splitlines())


def test_no_line_of_the_board_is_wider_or_taller_than_the_screen_at_any_size() -> None:
    # The rows are laid out by the board itself, not by rich's tables: down to screens
    # narrower than the short columns, every line stays within the width (a wrapped line
    # would push the status line off the screen).
    for tracker in (fed(busy_events(30)), long_id_calls(), CallTracker()):
        for width in range(12, 201, 7):
            for height in (3, 8, 24):
                text = board_text(tracker, NOW, width, height, "reconnecting " * 20)
                lines = text.split("\n")
                assert len(lines) == height, (width, height)
                assert all(cell_len(line) <= width for line in lines), (width, height)
