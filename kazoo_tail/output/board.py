"""The calls board's picture: a pure function of the tracker's state, the time, and the size
of the screen, so that it can be checked without a terminal.

Rows that do not fit are summarised ("… and N more"); columns elide, never wrap. The widths
are laid out here rather than by rich's ratios, in turn of priority as on pretty lines: the
short columns whole, the parties' numbers, a call id in at least ``ID_CELLS`` (elided in the
middle), the whole id, then the names; the parties take what is left so the table spans the
screen. Everything shown from the server passes through ``sanitize`` and is rendered as
plain ``Text``, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.layout import Layout
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from kazoo_tail.features.calls import Call, CallTracker
from kazoo_tail.output.pretty import ID_CELLS, NUMBERS_CELLS, cells, elide_middle, numbers
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
# Between two columns: a cell of padding on each side (none at the table's edges).
_GAP = 2


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


class _Fitted:
    """A cell that shows the first of its forms that fits its column: a call's parties with
    their names, else their numbers alone (cut only past NUMBER_CELLS each); or a call id,
    elided in the middle when the column is narrower."""

    def __init__(self, forms: tuple[str, ...], style: str = "", middle: bool = False) -> None:
        self.forms = forms
        self.style = style
        self.middle = middle

    @property
    def widest(self) -> int:
        return cells(self.forms[0])

    @property
    def narrowest(self) -> int:
        """The fewest cells it is shown in before anything else on its row gives way."""
        last = cells(self.forms[-1])
        return min(last, ID_CELLS) if self.middle else min(last, NUMBERS_CELLS)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.narrowest, self.widest)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width
        shown = next((form for form in self.forms if cells(form) <= width), None)
        if shown is None:
            if self.middle:
                shown = elide_middle(self.forms[-1], width)
            else:
                caller, callee = self.forms[-1].split(" → ", 1)
                shown = numbers(caller, callee, " → ", width)
        yield Text(shown, style=self.style, no_wrap=True, overflow="ellipsis")


def _parties(call: Call) -> _Fitted:
    caller, callee = call.caller_number, call.callee_number or call.dialled
    named = f"{_party(caller, call.caller_name)} → {_party(callee, call.callee_name)}"
    bare = f"{_party(caller, '')} → {_party(callee, '')}"
    return _Fitted((named, bare) if named != bare else (bare,))


def first_leg_id(call: Call) -> str:
    """The id to follow the call by (``--call-id``): its first leg's, the A-leg, which the
    other legs name as their other leg from their first event on, so that following it
    gathers the whole call; a B-leg's id would miss the A-leg's events before the bridge."""
    if not call.legs:
        return "?"
    first = min(call.legs.values(), key=lambda leg: (leg.created, leg.call_id))
    return sanitize(first.call_id) or "?"


def _call_id(call: Call, style: str = "") -> _Fitted:
    return _Fitted((first_leg_id(call),), style, middle=True)


def _table(width: int) -> Table:
    table = Table(box=None, expand=False, pad_edge=False, show_edge=False, width=width)
    return table


def _column(table: Table, name: str, justify: str) -> None:
    table.add_column(
        name,
        justify="right" if justify == "right" else "left",
        no_wrap=True,
        overflow="ellipsis",
    )


def _cell(value: str, style: str = "") -> Text:
    return Text(value, style=style, no_wrap=True, overflow="ellipsis")


def _need(column: Column, narrowest: bool = False) -> int:
    sizes = [cells(str(column.header))]
    for cell in column.cells:
        if isinstance(cell, _Fitted):
            sizes.append(cell.narrowest if narrowest else cell.widest)
        elif isinstance(cell, Text):
            sizes.append(cell.cell_len)
    return max(sizes)


def _fit_columns(table: Table, width: int, ids: int, parties: int) -> None:
    """Every column's width, by priority: the short columns whole; the parties' numbers;
    the call id in at least ID_CELLS; the whole id; the rest to the parties, for names."""
    columns = table.columns
    room = width - _GAP * (len(columns) - 1)
    for index, column in enumerate(columns):
        if index not in (ids, parties):
            column.width = _need(column)
            room -= column.width
    numbers_need = _need(columns[parties], narrowest=True)
    id_width = max(0, min(_need(columns[ids], narrowest=True), room - numbers_need))
    spare = room - id_width - numbers_need
    if spare > 0:
        id_width += min(spare, _need(columns[ids]) - id_width)
    columns[ids].width = id_width
    columns[parties].width = max(1, room - id_width)


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
    for name, justify in (
        ("call", "left"),
        ("state", "left"),
        ("dir", "left"),
        ("call id", "left"),
        ("parties", "left"),
        ("legs", "right"),
        ("ring", "right"),
        ("talk", "right"),
    ):
        _column(calls, name, justify)
    for call in shown_live:
        stale = call.is_stale(now, tracker.stale_after)
        state = UNCONFIRMED if stale else call.state
        ring, talk = _times(call, now, stale)
        calls.add_row(
            _cell(call.label, "bold"),
            _cell(state, _STATE_STYLE.get(state, "")),
            # As the account sees it; "?" while not known yet.
            _cell(call.direction or "?"),
            _call_id(call),
            _parties(call),
            _cell(str(len(call.legs))),
            _cell(ring),
            _cell(talk),
        )
    _fit_columns(calls, width, ids=3, parties=4)
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
        for name, justify in (
            ("hung up", "left"),
            ("cause", "left"),
            ("call id", "left"),
            ("parties", "left"),
            ("ring", "right"),
            ("talk", "right"),
        ):
            _column(hangups, name, justify)
        for call in shown_ended:
            ring, talk = _times(call, now, stale=False)
            hangups.add_row(
                _cell(call.label, "dim"),
                _cell(sanitize(call.cause) or "?"),
                _call_id(call, "dim"),
                _parties(call),
                _cell(ring),
                _cell(talk),
            )
        _fit_columns(hangups, width, ids=2, parties=3)
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
