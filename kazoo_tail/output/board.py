"""The calls board's picture: a pure function of the tracker's state, the time, and the size
of the screen, so that it can be checked without a terminal.

Rows that do not fit are summarised ("… and N more"); columns elide, never wrap. Everything
shown from the server passes through ``sanitize`` and is rendered as plain ``Text``, never
as markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.table import Table
from rich.text import Text

from kazoo_tail.features.calls import Call, CallTracker
from kazoo_tail.output.terminal import sanitize

_STATE_STYLE = {"ringing": "yellow", "talking": "green", "held": "magenta", "ended": "dim"}
# A call neither heard of nor listed by Crossbar for a while: its state is not known.
UNCONFIRMED = "unconfirmed"
_STATE_STYLE[UNCONFIRMED] = "dim"
# Before a time that counts from when the tool learnt of the call, not from the call's start
# or answer (which it did not see): the call has lasted at least that.
AT_LEAST = "≥"
# The title, the calls' header and the status line.
_CHROME = 3


def clock(value: float | None) -> str:
    """Seconds as m:ss (h:mm:ss past an hour); "" for None."""
    if value is None:
        return ""
    whole = int(value)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _times(call: Call, now: float, stale: bool) -> tuple[str, str]:
    """The ring and talk cells. A stale call's clocks stop where it was last known to be
    there; a time whose start was not seen, or whose end was not heard, is a lower bound."""
    at = min(now, call.last_sign_of_life()) if stale else now
    ring, talk = clock(call.ring_seconds(at)), clock(call.talk_seconds(at))
    ringing = call.answered is None
    if ring and (call.ring_is_lower_bound or (stale and ringing)):
        ring = AT_LEAST + ring
    if talk and (call.talk_is_lower_bound or stale):
        talk = AT_LEAST + talk
    return ring, talk


def _party(number: str, name: str) -> str:
    number, name = sanitize(number), sanitize(name)
    if name and name != number:
        return f"{name} <{number}>" if number else name
    return number or "?"


def _parties(call: Call) -> str:
    callee = call.callee_number or call.dialled
    return f"{_party(call.caller_number, call.caller_name)} → {_party(callee, call.callee_name)}"


def _table(width: int) -> Table:
    table = Table(box=None, expand=True, pad_edge=False, show_edge=False, width=width)
    return table


def _column(table: Table, name: str, ratio: int, justify: str) -> None:
    table.add_column(
        name,
        ratio=ratio or None,
        justify="right" if justify == "right" else "left",
        no_wrap=True,
        overflow="ellipsis",
    )


def _cell(value: str, style: str = "") -> Text:
    return Text(value, style=style, no_wrap=True, overflow="ellipsis")


def render_board(
    tracker: CallTracker, now: float, width: int, height: int, status: str = ""
) -> RenderableType:
    """The whole screen: calls in progress (oldest first), then the latest hangups (newest
    first), and the status line at the bottom."""
    live = sorted(tracker.live_calls, key=lambda call: (call.created, call.label))
    # Newest hangup first; Kazoo's clock counts whole seconds, so ties go to the call that
    # closed last (sorted keeps the order of equal keys, even reversed).
    ended = sorted(reversed(tracker.ended_calls), key=lambda call: call.ended or 0.0, reverse=True)
    # Lines for rows: the screen less the title, the header and the status line, and less the
    # hangups' header when any are shown. Calls in progress come first; hangups get what is
    # left, but at least a few lines when calls in progress would take everything.
    room = max(2, height - _CHROME - (1 if ended else 0))
    live_lines = max(1, len(live))
    hangup_room = min(len(ended), max(room - live_lines, min(3, room // 3)))
    live_room = max(1, room - hangup_room)
    shown_live, more_live = _fit(live, live_room)
    # Hangups are history: the latest that fit, with no count of older ones.
    shown_ended = ended[: max(0, hangup_room)]

    calls = _table(width)
    for name, ratio, justify in (
        ("call", 0, "left"),
        ("state", 0, "left"),
        ("dir", 0, "left"),
        ("parties", 3, "left"),
        ("legs", 0, "right"),
        ("ring", 0, "right"),
        ("talk", 0, "right"),
    ):
        _column(calls, name, ratio, justify)
    for call in shown_live:
        stale = call.is_stale(now, tracker.stale_after)
        state = UNCONFIRMED if stale else call.state
        ring, talk = _times(call, now, stale)
        calls.add_row(
            _cell(call.label, "bold"),
            _cell(state, _STATE_STYLE.get(state, "")),
            # As the account sees it; "?" while not known yet.
            _cell(call.direction or "?"),
            _cell(_parties(call)),
            _cell(str(len(call.legs))),
            _cell(ring),
            _cell(talk),
        )
    parts: list[RenderableType] = [
        _cell(f"kazoo-tail calls: {len(live)} in progress   (q quits)", "bold"),
        calls,
    ]
    if not live:
        parts.append(_cell("no calls in progress", "dim"))
    if more_live:
        parts.append(_cell(f"… and {more_live} more", "dim"))
    if shown_ended:
        hangups = _table(width)
        for name, ratio, justify in (
            ("hung up", 0, "left"),
            ("cause", 2, "left"),
            ("parties", 3, "left"),
            ("ring", 0, "right"),
            ("talk", 0, "right"),
        ):
            _column(hangups, name, ratio, justify)
        for call in shown_ended:
            ring, talk = _times(call, now, stale=False)
            hangups.add_row(
                _cell(call.label, "dim"),
                _cell(sanitize(call.cause) or "?"),
                _cell(_parties(call)),
                _cell(ring),
                _cell(talk),
            )
        parts.append(hangups)
    # The status line keeps to the bottom of the screen, as a terminal's status bar does.
    screen = Layout()
    screen.split_column(
        Layout(Group(*parts)), Layout(_cell(sanitize(status) or " ", "reverse"), size=1)
    )
    return screen


def _fit(calls: list[Call], room: int) -> tuple[list[Call], int]:
    """The calls that fit in ``room`` lines, keeping one for "… and N more" when needed."""
    if len(calls) <= room:
        return calls, 0
    keep = max(0, room - 1)
    return calls[:keep], len(calls) - keep
