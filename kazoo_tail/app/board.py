"""The calls board program: a session's call events fed to a tracker, drawn full-screen.

The session loop is the only loop: it yields events, notices and a tick every quarter
second; keys are read (without waiting) and the screen redrawn between them, at most four
times a second, so the socket is never starved by drawing. The terminal is put back as it
was however the board ends: ``q``, Ctrl-C, SIGTERM/SIGHUP (raised as exceptions by the
CLI), or an error.
"""

from __future__ import annotations

import os
import select
import time
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions
from kazoo_tail.errors import ExitCode, UsageError
from kazoo_tail.features.calls import CallTracker
from kazoo_tail.features.filters import EventFilter
from kazoo_tail.features.record import Recorder
from kazoo_tail.kazoo.catalog import check_binding
from kazoo_tail.kazoo.events import Event, Notice
from kazoo_tail.output.notices import describe
from kazoo_tail.output.terminal import StatusWriter
from kazoo_tail.session.resolve import ConnectionConfig, resolve, session_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from kazoo_tail.auth.provider import TokenProvider

NEEDS_TERMINAL = (
    "the calls board needs a terminal; for a log into a pipe or a file, run "
    "kazoo-tail -b 'call.*.*' --calls -o pretty with the same connection and filter options"
)
NEEDS_TERMINAL_DEMO = (
    "the calls board needs a terminal; for the demo's call log into a pipe or a file, run "
    "kazoo-tail demo -b 'call.*.*' --calls -o pretty"
)
REFRESH_SECONDS = 0.25
# How long a warning stays on the status line beside the notices that follow it: a
# reconnection's "subscribed" must not wipe out the gap or the token trouble it came with.
WARNING_SECONDS = 30.0


def run_board(
    config: ConnectionConfig,
    provider: TokenProvider,
    show: OutputOptions,
    env: Environment,
    status: StatusWriter,
    *,
    record: Path | None = None,
) -> ExitCode:
    if not env.stdout_isatty:
        raise UsageError(NEEDS_TERMINAL)
    for binding in config.bindings:
        check_binding(binding)
    events = EventFilter.from_options(show.matches, show.excludes, show.grep, show.call_ids)
    target = resolve(config, provider)
    if config.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")
    recorder = Recorder(record) if record is not None else None
    session = session_for(config, target, provider, on_frame=recorder.frame if recorder else None)
    tracker = CallTracker()
    # Notices worth repeating once the screen is back (disconnections, gaps, bad frames).
    kept: list[str] = []
    try:
        with _keys(env.stdin) as keys, _screen(env) as live:
            with _told_on_the_board(provider, kept), _asked_off_the_board(provider, live, keys):
                _loop(session, tracker, events, live, keys, kept, show.duration, env, recorder)
    finally:
        session.close()
        if recorder is not None:
            recorder.close()
        for message in kept[-10:]:
            status.warning(message)
    return ExitCode.OK


def _loop(
    session: object,
    tracker: CallTracker,
    events: EventFilter,
    live: object,
    keys: _Keys,
    kept: list[str],
    duration: float | None,
    env: Environment,
    recorder: Recorder | None,
) -> None:
    from kazoo_tail.output.board import render_board

    assert hasattr(session, "events")
    deadline = time.monotonic() + duration if duration is not None else None
    filtering = events.active
    status = _StatusLine()
    told = len(kept)
    drawn = 0.0
    dirty = True
    for item in session.events():
        moment = time.monotonic()
        if len(kept) > told:  # told by the token provider, maybe from its refresher thread
            for message in kept[told:]:
                status.warn(message, moment)
            told, dirty = len(kept), True
        if isinstance(item, Event):
            if item.kind == "call" and (not filtering or events.accepts(item)):
                tracker.observe(item)
                dirty = True
        elif isinstance(item, Notice):
            message = describe(item)
            if item.is_warning:
                kept.append(message)
                told = len(kept)
                status.warn(message, moment)
            else:
                status.tell(message)
            dirty = True
        elif recorder is not None:
            recorder.flush()
        if keys.quit_pressed():
            return
        if deadline is not None and moment >= deadline:
            return
        # Clocks tick even without events: redraw on every tick, and at most 4 times a second.
        if moment - drawn >= REFRESH_SECONDS or (dirty and not isinstance(item, Event)):
            size = live.console.size  # type: ignore[attr-defined]
            live.update(  # type: ignore[attr-defined]
                render_board(tracker, env.clock(), size.width, size.height, status.text(moment)),
                refresh=True,
            )
            drawn, dirty = moment, False


class _StatusLine:
    """The board's last line: the latest notice, then the warnings of the last
    WARNING_SECONDS, newest first (the full list is repeated once the screen is back)."""

    def __init__(self) -> None:
        self.latest = "connecting…"
        self.warnings: list[tuple[float, str]] = []

    def tell(self, message: str) -> None:
        self.latest = message

    def warn(self, message: str, moment: float) -> None:
        self.latest = message
        self.warnings.append((moment, message))

    def text(self, moment: float) -> str:
        self.warnings = [(at, m) for at, m in self.warnings if moment - at < WARNING_SECONDS]
        shown = [self.latest]
        for _, message in reversed(self.warnings):
            if message not in shown:
                shown.append(message)
        return "  ·  ".join(shown)


class _Keys:
    """Keys typed on the terminal, read without waiting."""

    def __init__(self, fd: int | None, saved: list[Any] | None = None) -> None:
        self.fd = fd
        self.saved = saved  # the terminal's settings before cbreak, to lend it back

    @contextmanager
    def lent(self) -> Iterator[None]:
        """The terminal as it was (echo, lines) for the length of the block, cbreak after."""
        if self.fd is None or self.saved is None:
            yield
            return
        import termios
        import tty

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        try:
            yield
        finally:
            tty.setcbreak(self.fd)

    def quit_pressed(self) -> bool:
        if self.fd is None:
            return False
        while select.select([self.fd], [], [], 0)[0]:
            try:
                typed = os.read(self.fd, 64)
            except OSError:
                self.fd = None
                return False
            if not typed:  # end of input: keys can no longer come
                self.fd = None
                return False
            if b"q" in typed or b"Q" in typed:
                return True
        return False


@contextmanager
def _keys(stdin: IO[str]) -> Iterator[_Keys]:
    """stdin in cbreak mode (keys one by one, no echo; Ctrl-C still signals), put back after."""
    try:
        fd = stdin.fileno()
        tty_in = os.isatty(fd)
    except (AttributeError, ValueError, OSError):
        fd, tty_in = -1, False
    if not tty_in:
        yield _Keys(None)
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield _Keys(fd, saved)
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


@contextmanager
def _told_on_the_board(provider: TokenProvider, kept: list[str]) -> Iterator[None]:
    """What the token provider has to say goes on the board's status line (and is repeated
    after), not across the full-screen picture on stderr."""
    warn = provider.warn
    provider.warn = kept.append  # list.append is atomic: the refresher thread may call it
    try:
        yield
    finally:
        provider.warn = warn


@contextmanager
def _asked_off_the_board(provider: TokenProvider, live: Any, keys: _Keys) -> Iterator[None]:
    """A password asked for again (the token was rejected) is asked on the normal screen with
    echo and line editing as the user left them, and the board comes back after."""
    credentials = provider.credentials
    ask = credentials.password
    if ask is None:
        yield
        return

    def ask_off_the_board() -> str | None:
        live.stop()
        try:
            with keys.lent():
                return ask()
        finally:
            live.start(refresh=True)

    credentials.password = ask_off_the_board
    try:
        yield
    finally:
        credentials.password = ask


@contextmanager
def _screen(env: Environment) -> Iterator[object]:
    """rich's Live on the alternate screen, cursor hidden; left and shown again on the way out.
    A writer thread draws it: a terminal that stops taking output (Ctrl-S, a stuck ssh) never
    holds up the loop, and a newer picture replaces one not yet written."""
    from kazoo_tail.output.screen import LiveScreen

    encoding, _ = env.stdout_encoding()
    live = LiveScreen(env.stdout, env.text_stdout(), encoding=encoding)
    live.start()
    try:
        yield live
    finally:
        live.close()
