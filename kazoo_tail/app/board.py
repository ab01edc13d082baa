"""The calls board program: a session's call events fed to a tracker, drawn full-screen.

The session loop is the only loop: it yields events, notices and a tick every quarter
second; keys are read (without waiting) and the screen redrawn between them, at most four
times a second, so the socket is never starved by drawing. The terminal is put back as it
was however the board ends: ``q``, Ctrl-C, SIGTERM/SIGHUP (raised as exceptions by the
CLI), or an error.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions
from kazoo_tail.app.tail import check_bindings, connect_parts
from kazoo_tail.auth.provider import may_prompt
from kazoo_tail.errors import ExitCode, KazooTailError, UsageError
from kazoo_tail.features.calls import ENDED_IN_GAP, ENDED_UNHEARD, CallTracker
from kazoo_tail.features.filters import EventFilter
from kazoo_tail.features.record import Recorder
from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
from kazoo_tail.output.notices import describe
from kazoo_tail.output.terminal import StatusWriter
from kazoo_tail.session.resolve import ConnectionConfig, session_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from kazoo_tail.auth.provider import TokenProvider
    from kazoo_tail.net.crossbar import Crossbar

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
# A call heard of just before a listing that did not have it is asked about once more, this
# long after (ecallmgr lists a new leg only once routing has marked it).
RECHECK_SECONDS = 3.0
# How often stale calls are asked about while listings fail.
STALE_RETRY_SECONDS = 10.0
STALE_ASK_AHEAD = 5.0
# A channel listing's own limits: it must not keep stale calls waiting for long.
LISTING_TIMEOUT, LISTING_DEADLINE = 5.0, 10.0
# What the board cannot show without the listings, said first: at 80 columns the status line
# keeps only its start.
NOT_LISTED_BECAUSE = "calls in progress before the start are not shown nor missed hangups closed"
# A round of listings that failed is asked again after this pause, doubled each time.
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 2.0, 60.0


def run_board(
    config: ConnectionConfig,
    provider: TokenProvider,
    show: OutputOptions,
    env: Environment,
    status: StatusWriter,
    *,
    record: Path | None = None,
    stale_after: float | None,
) -> ExitCode:
    """``stale_after``: seconds after which a call neither heard of nor listed by Crossbar is
    shown as unconfirmed, its clocks stopped; None: never."""
    if not env.stdout_isatty:
        raise UsageError(NEEDS_TERMINAL)
    check_bindings(config)
    events = EventFilter.from_options(show.matches, show.excludes, show.grep, show.call_ids)
    target, recorder = connect_parts(config, provider, status, record)
    session = session_for(config, target, provider, on_frame=recorder.frame if recorder else None)
    tracker = CallTracker(stale_after=stale_after)
    admit = _admission(events)
    # Notices worth repeating once the screen is back (disconnections, gaps, bad frames).
    kept: list[str] = []
    lister = _Lister(_listing_client(config), target.account_ids, provider, env.clock)
    if lister.crossbar is None:
        kept.append(f"{NOT_LISTED_BECAUSE}: no Crossbar URL (--url) to list the channels")
    elif events.matches or events.excludes or events.grep:
        kept.append(
            "calls in progress before the start are not shown with --match, --exclude or "
            "--grep: Crossbar's channel list has none of the events' fields to test"
        )
    try:
        with _keys(env.stdin) as keys, _screen(env) as live:
            with _told_on_the_board(provider, kept), _asked_off_the_board(provider, live, keys):
                _loop(
                    session, tracker, events, live, keys, kept, show.duration, env, recorder,
                    lister, admit,
                )  # fmt: skip
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
    lister: _Lister,
    admit: Callable[[list[dict[str, Any]]], bool] | None,
) -> None:
    from kazoo_tail.output.board import render_board

    assert hasattr(session, "events")
    deadline = time.monotonic() + duration if duration is not None else None
    filtering = events.active
    status = _StatusLine()
    told = 0  # what was found to say before the board was up is said on it too
    drawn = 0.0
    dirty = True
    listed_once = False
    # When to ask again about calls heard of just before a listing that did not have them.
    recheck: tuple[float, set[str]] | None = None
    next_stale_ask = 0.0
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
            # Crossbar is asked once subscribed (events from then on are heard), and again
            # after every gap, for what happened meanwhile.
            if item.kind is NoticeKind.GAP:
                lister.ask(lister.accounts, ENDED_IN_GAP, gap_from=item.gap_from)
            elif item.kind is NoticeKind.SUBSCRIBED and not listed_once:
                lister.ask(lister.accounts, ENDED_UNHEARD)
                listed_once = True
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
        lister.retry_due(moment)
        answer = lister.answer(moment)
        if answer is not None:
            again = _reconciled(tracker, answer, lister, env.clock(), admit)
            for message in lister.news(answer):
                kept.append(message)
                status.warn(message, moment)
                told = len(kept)
            if again and not answer.recheck:
                recheck = (moment + RECHECK_SECONDS, again)
            dirty = True
        if recheck is not None and moment >= recheck[0] and lister.idle:
            # Those calls were heard after the gap, if there was one: not ended in it.
            lister.ask(recheck[1], ENDED_UNHEARD, recheck=True)
            recheck = None
        # Looked for between events (a pass over the calls), at most once a second.
        stale_due = moment >= next_stale_ask and not isinstance(item, Event)
        if stale_due and tracker.stale_after is not None and lister.idle:
            # Asked a little ahead, so that a call talking quietly is confirmed before it
            # would show as unconfirmed.
            ahead = min(STALE_ASK_AHEAD, tracker.stale_after / 2)
            next_stale_ask = moment + min(1.0, ahead / 2)
            stale = tracker.stale_calls(env.clock() + ahead)
            if stale:
                accounts = {call.account_id for call in stale}
                lister.ask(lister.accounts if "" in accounts else accounts, ENDED_UNHEARD)
                # Not again at once if the listing fails, nor later than a confirmation of
                # the calls quiet since would be due.
                next_stale_ask = moment + min(STALE_RETRY_SECONDS, ahead)
        between = not isinstance(item, Event)
        # Clocks tick even without events: redraw on every tick, and at most 4 times a second.
        redraw = moment - drawn >= REFRESH_SECONDS or (dirty and between)
        # Keys are looked for between events and before a redraw, not after every event (a
        # system call each): under a flood that is still 4 times a second, so q quits within
        # a quarter second as it does when the socket is quiet.
        if (between or redraw) and keys.quit_pressed():
            return
        if deadline is not None and moment >= deadline:
            return
        if redraw:
            size = live.console.size  # type: ignore[attr-defined]
            live.update(  # type: ignore[attr-defined]
                render_board(tracker, env.clock(), size.width, size.height, status.text(moment)),
                refresh=True,
            )
            drawn, dirty = moment, False


def _reconciled(
    tracker: CallTracker,
    answer: _Answer,
    lister: _Lister,
    now: float,
    admit: Callable[[list[dict[str, Any]]], bool] | None,
) -> set[str]:
    """The listings taken into the tracker; the accounts of calls worth asking about again."""
    if not answer.listings:
        return set()
    result = tracker.reconcile(
        answer.listings,
        answer.asked_at,
        now,
        cause=answer.cause,
        all_listed=set(answer.listings) >= set(lister.accounts),
        gap_from=answer.gap_from,
        admit=admit,
    )
    accounts = {call.account_id for call in result.kept}
    return set(lister.accounts) if "" in accounts else accounts


def _admission(events: EventFilter) -> Callable[[list[dict[str, Any]]], bool] | None:
    """Which listed calls the board's filters let it add (the calls it knows are confirmed or
    closed whatever they are). --call-id is matched on the legs' uuid and other_leg; --match,
    --exclude and --grep test the events' fields, which a listing does not carry: none."""
    if events.call_ids:
        wanted = events.call_ids
        if events.matches or events.excludes or events.grep:
            return lambda legs: False

        def same_call(legs: list[dict[str, Any]]) -> bool:
            return any(leg.get("uuid") in wanted or leg.get("other_leg") in wanted for leg in legs)

        return same_call
    if events.active:
        return lambda legs: False
    return None


def _listing_client(config: ConnectionConfig) -> Crossbar | None:
    """A Crossbar client of its own for the listings' thread, on the host the user named."""
    if not config.url:
        return None
    from kazoo_tail.net.crossbar import Crossbar

    return Crossbar(
        config.url, verify=config.verify, timeout=LISTING_TIMEOUT, deadline=LISTING_DEADLINE
    )


@dataclass
class _Answer:
    """One round of channel listings, one request per account."""

    asked_at: float
    cause: str
    recheck: bool
    # After a gap: when it began (epoch seconds), the last moment calls are known to be up.
    gap_from: float | None = None
    listings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    # The token could not be had or renewed without a password: the session asks for it.
    no_token: str = ""


class _Lister:
    """Crossbar's channel listings, asked in a thread of their own so that the socket loop
    never waits on HTTP, nor on the token (renewing it is HTTP too); the loop collects the
    answer on its next turn (a tick at most a quarter second away). One round at a time: what
    is asked meanwhile waits for the next. A round that failed is asked again after a pause
    that doubles, so that calls in progress at the start are shown once Crossbar answers
    even if no gap ever comes."""

    def __init__(
        self,
        crossbar: Crossbar | None,
        accounts: list[str],
        provider: TokenProvider,
        clock: Callable[[], float],
    ) -> None:
        self.crossbar = crossbar
        self.accounts = list(accounts)
        self.provider = provider
        self.clock = clock
        self.refused: set[str] = set()
        self._told: set[str] = set()
        self._answers: queue.Queue[_Answer] = queue.Queue()
        self._busy = False
        self._waiting: tuple[set[str], str] | None = None
        self._retry: tuple[float, set[str], str] | None = None
        self._gap_from: float | None = None
        self._pause = RETRY_FIRST_SECONDS

    @property
    def idle(self) -> bool:
        return not self._busy and self._waiting is None

    def ask(
        self,
        accounts: Collection[str],
        cause: str,
        *,
        recheck: bool = False,
        gap_from: float | None = None,
    ) -> None:
        if gap_from is not None:
            # Rounds merged keep the earliest gap's start: calls known up until then.
            self._gap_from = min(gap_from, self._gap_from or gap_from)
        wanted = {account for account in accounts if account not in self.refused}
        if self.crossbar is None or not wanted:
            return
        if self._busy:
            # Asked before what is to be asked about happened: a round of its own, after.
            before = self._waiting or (set(), cause)
            cause = _merged_cause(cause, before[1])
            self._waiting = (before[0] | wanted, cause)
            return
        if self._retry is not None:  # this round asks what the retry would have
            wanted |= self._retry[1]
            cause = _merged_cause(cause, self._retry[2])
            self._retry = None
        gap_from = self._gap_from if cause == ENDED_IN_GAP else None
        asked = _Answer(self.clock(), cause, recheck, gap_from)
        ordered = [account for account in self.accounts if account in wanted]
        self._busy = True
        worker = threading.Thread(
            target=self._list, args=(self.crossbar, ordered, asked), daemon=True
        )
        worker.start()

    def retry_due(self, moment: float) -> None:
        """Asks again what the last failed round could not list, once its pause is over."""
        if self._retry is not None and moment >= self._retry[0] and self.idle:
            _, accounts, cause = self._retry
            self._retry = None
            self.ask(accounts, cause)

    def _list(self, crossbar: Crossbar, accounts: list[str], asked: _Answer) -> None:
        from kazoo_tail.net.crossbar import ChannelsRefused

        try:
            token = self.provider.current_quietly().token
        except KazooTailError as exc:
            asked.no_token = exc.message
            self._answers.put(asked)
            return
        for account in accounts:
            try:
                try:
                    asked.listings[account] = crossbar.channels(account, token=token)
                except ChannelsRefused as exc:
                    if exc.status != 401:
                        raise
                    # Revoked under the board: blackhole does not look at the token of a
                    # socket already open, so no gap will come to renew it; renewed here.
                    token = self.provider.current_quietly(rejected=token).token
                    asked.listings[account] = crossbar.channels(account, token=token)
            except ChannelsRefused as exc:
                # 403 is for good (permissions); a 401 even with a new token, a failure.
                (asked.refused if exc.status == 403 else asked.failed)[account] = exc.message
            except KazooTailError as exc:
                asked.failed[account] = exc.message
            except Exception as exc:  # noqa: BLE001 - told on the board, never lost in a thread
                asked.failed[account] = f"listing the channels failed: {type(exc).__name__}"
        self._answers.put(asked)

    def answer(self, moment: float) -> _Answer | None:
        """The round that finished since last asked, if any; starts the one waiting."""
        if not self._busy:
            return None
        try:
            answer = self._answers.get_nowait()
        except queue.Empty:
            return None
        self._busy = False
        self.refused |= set(answer.refused)
        unlisted = set(answer.failed) | (set(self.accounts) if answer.no_token else set())
        if unlisted:
            self._retry = (moment + self._pause, unlisted, answer.cause)
            self._pause = min(RETRY_MAX_SECONDS, self._pause * 2)
        else:
            self._pause = RETRY_FIRST_SECONDS
            if answer.cause == ENDED_IN_GAP:
                self._gap_from = None  # the gap is accounted for
        if self._waiting is not None:
            accounts, cause = self._waiting
            self._waiting = None
            self.ask(accounts, cause)
        return answer

    def news(self, answer: _Answer) -> list[str]:
        """What to tell of a round's failures: a refusal once (the account is not asked
        again), another failure once for each different reason, whatever the account (it is
        asked again after a pause, after the next gap, and when calls go stale)."""
        told: list[str] = []
        if answer.refused:
            first = next(iter(answer.refused.values()))
            more = len(answer.refused) - 1
            also = f" (and {more} other account{'s' if more > 1 else ''})" if more else ""
            told.append(f"{NOT_LISTED_BECAUSE}: {first}{also}")
        failures = [(answer.no_token, answer.no_token)] if answer.no_token else []
        failures += [
            (reason.replace(account, "…"), reason) for account, reason in answer.failed.items()
        ]
        for key, reason in failures:
            if key not in self._told:
                self._told.add(key)
                told.append(f"channels not listed, asked again later: {reason}")
        return told


def _merged_cause(cause: str, other: str) -> str:
    """The cause of one round asking what two would have: a gap's, if either followed one."""
    return ENDED_IN_GAP if ENDED_IN_GAP in (cause, other) else cause


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
        if not may_prompt.get():
            return ask()  # the listings' thread: gives what it has, never asks
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
