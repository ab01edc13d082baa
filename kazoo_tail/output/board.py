"""The calls board's picture: a pure function of the tracker's state, the time, and the size
of the screen, so that it can be checked without a terminal.

Rows that do not fit are summarised ("… and N more"); columns elide, never wrap. The widths
are laid out here rather than by rich's ratios, in turn of priority as on pretty lines: the
short columns whole, the parties' numbers, a call id in at least ``ID_CELLS`` (elided in the
middle), the whole id, then the names; the parties take what is left so the table spans the
screen. Everything shown from the server passes through ``sanitize`` and is rendered as
plain text, never as markup.

The picture is laid out here as lines of segments, not as rich ``Table`` and ``Layout``: the
board is redrawn up to four times a second while events pour in, and measuring and rendering
a table cell by cell cost many times what the lines do. It looks as rich's table would (a
cell of padding each side of a column, none at the table's edges; headers bold; a styled
cell's style over its whole width; the status line on the screen's last line).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich.cells import set_cell_size
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.style import Style

from kazoo_tail.features.calls import Call, CallTracker
from kazoo_tail.output.pretty import ID_CELLS, NUMBERS_CELLS, cells, elide_middle, numbers
from kazoo_tail.output.terminal import sanitize

# Parsed once: a redraw styles hundreds of cells.
_BOLD, _DIM, _REVERSE = Style(bold=True), Style(dim=True), Style(reverse=True)
_STATE_STYLE = {
    "ringing": Style(color="yellow"),
    "talking": Style(color="green"),
    "held": Style(color="magenta"),
    "ended": _DIM,
}
# A call neither heard of nor listed by Crossbar for a while: its state is not known.
UNCONFIRMED = "unconfirmed"
_STATE_STYLE[UNCONFIRMED] = _DIM
# Before a time that counts from when the tool learnt of the call, not from the call's start
# or answer (which it did not see): the call has lasted at least that.
AT_LEAST = "≥"
# A time that cannot be known (a ring answered before the tool heard of the call).
UNKNOWN = "?"
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
    """The ring and talk cells. A stale call's clocks stop where they were when it went
    stale (a lower bound shown never goes down); a time whose start was not seen, or whose
    end was not heard, is a lower bound; a ring time that cannot be known is "?"."""
    at = call.shown_at(now, stale)
    ring, talk = clock(call.ring_seconds(at)), clock(call.talk_seconds(at))
    ringing = call.answered is None
    if call.ring_unknown:
        ring = UNKNOWN
    elif ring and (call.ring_is_lower_bound or (stale and ringing)):
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

    __slots__ = ("forms", "style", "middle")

    def __init__(
        self, forms: tuple[str, ...], style: Style | None = None, middle: bool = False
    ) -> None:
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

    def shown(self, width: int) -> str:
        shown = next((form for form in self.forms if cells(form) <= width), None)
        if shown is not None:
            return shown
        if self.middle:
            return elide_middle(self.forms[-1], width)
        caller, callee = self.forms[-1].split(" → ", 1)
        return numbers(caller, callee, " → ", width)


class _Plain:
    """A cell shown as it is, elided at its end if its column is narrower."""

    __slots__ = ("text", "style")

    def __init__(self, text: str, style: Style | None = None) -> None:
        self.text = text
        self.style = style

    def shown(self, width: int) -> str:
        return self.text


def _parties(call: Call) -> _Fitted:
    caller, callee = call.caller_number, call.callee_number or call.dialled
    named = f"{_party(caller, call.caller_name)} → {_party(callee, call.callee_name)}"
    bare = f"{_party(caller, '')} → {_party(callee, '')}"
    return _Fitted((named, bare) if named != bare else (bare,))


def first_leg_id(call: Call) -> str:
    """The id to follow the call by (``--call-id``): its first leg's, the A-leg, which the
    other legs name as their other leg from their first event on, so that following it
    gathers the whole call; a B-leg's id would miss the A-leg's events before the bridge.

    Legs known from a listing only all share the listing's time as ``created``: among them
    the A-leg is the switch's inbound one (docs/calls.md §1.7), and it is preferred to a
    heard leg only when no heard leg is inbound (a listed A-leg whose B-leg was heard)."""
    if not call.legs:
        return "?"
    legs = list(call.legs.values())
    heard = [leg for leg in legs if not leg.listed_only]
    listed_a = [leg for leg in legs if leg.listed_only and leg.direction == "inbound"]
    if heard and (not listed_a or any(leg.direction == "inbound" for leg in heard)):
        first = min(heard, key=lambda leg: (leg.created, leg.call_id))
    else:
        first = min(listed_a or legs, key=lambda leg: leg.call_id)
    return sanitize(first.call_id) or "?"


def _call_id(call: Call, style: Style | None = None) -> _Fitted:
    return _Fitted((first_leg_id(call),), style, middle=True)


def _fitting(text: str, width: int) -> str:
    """At most ``width`` cells: elided at the end with "…", as rich's no_wrap cells are."""
    size = cells(text)
    if size > width:
        if width <= 0:
            return ""
        return set_cell_size(text, width - 1) + "…"
    return text


class _Table:
    """Rows of cells under a header, laid out in lines ``width`` cells wide at most."""

    def __init__(self, columns: Sequence[tuple[str, bool]]) -> None:
        self.headers = [name for name, _ in columns]
        self.right = [right for _, right in columns]
        self.rows: list[Sequence[_Plain | _Fitted]] = []
        # Each column's padding, left and right; None: a cell each side but at the edges.
        self.gaps: list[tuple[int, int]] | None = None

    def _need(self, index: int, narrowest: bool = False) -> int:
        sizes = [cells(self.headers[index])]
        for row in self.rows:
            cell = row[index]
            if isinstance(cell, _Fitted):
                sizes.append(cell.narrowest if narrowest else cell.widest)
            else:
                sizes.append(cells(cell.text))
        return max(sizes)

    def _fit_columns(self, width: int, ids: int, parties: int) -> list[int]:
        """Every column's width, by priority: the short columns whole; the parties' numbers;
        the call id in at least ID_CELLS; the whole id; the rest to the parties, for names."""
        count = len(self.headers)
        widths = [0] * count
        room = width - _GAP * (count - 1)
        for index in range(count):
            if index not in (ids, parties):
                widths[index] = self._need(index)
                room -= widths[index]
        numbers_need = self._need(parties, narrowest=True)
        id_width = max(0, min(self._need(ids, narrowest=True), room - numbers_need))
        spare = room - id_width - numbers_need
        if spare > 0:
            id_width += min(spare, self._need(ids) - id_width)
        widths[ids] = id_width
        widths[parties] = max(1, room - id_width)
        # Narrower than even the short columns: every column gives way evenly, padding
        # included, as rich's tables do; the lines stay within the screen.
        last = count - 1
        padded = [w + (index > 0) + (index < last) for index, w in enumerate(widths)]
        excess = sum(padded) - width
        if excess > 0:
            padded = _shrink_evenly(excess, padded)
            self.gaps = [
                (min(int(index > 0), w), min(int(index < last), max(0, w - 1)))
                for index, w in enumerate(padded)
            ]
            widths = [w - sum(gap) for w, gap in zip(padded, self.gaps)]  # noqa: B905 - 3.9 has no strict=
        return widths

    def lines(self, width: int, ids: int, parties: int) -> list[list[Segment]]:
        widths = self._fit_columns(width, ids, parties)
        right = self.right
        last = len(widths) - 1
        gaps = self.gaps or [(int(index > 0), int(index < last)) for index in range(last + 1)]
        header = "".join(
            " " * left + _justified(name, size, flush) + " " * after
            for name, size, flush, (left, after) in zip(self.headers, widths, right, gaps)  # noqa: B905 - as above
        )
        lines = [[Segment(header, _BOLD)]]
        for row in self.rows:
            segments: list[Segment] = []
            plain: list[str] = []
            for index, cell in enumerate(row):
                left, after = gaps[index]
                plain.append(" " * left)
                size = widths[index]
                text = _justified(cell.shown(size), size, right[index])
                if cell.style is None:
                    plain.append(text)
                else:
                    if plain:
                        segments.append(Segment("".join(plain)))
                        plain = []
                    segments.append(Segment(text, cell.style))
                plain.append(" " * after)
            if plain:
                segments.append(Segment("".join(plain)))
            lines.append(segments)
        return lines


def _justified(text: str, width: int, right: bool) -> str:
    text = _fitting(text, width)
    padding = " " * (width - cells(text))
    return padding + text if right else text + padding


class _Picture:
    """The whole screen as lines: the top ``height - 1`` of them, cut or filled with blank
    lines, and the status line at the bottom."""

    def __init__(self, lines: list[list[Segment]], status: Segment, height: int) -> None:
        self.lines = lines
        self.status = status
        self.height = height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        top = max(0, self.height - 1)
        new_line = Segment.line()
        shown = self.lines[:top]
        for line in shown:
            yield from line
            yield new_line
        for _ in range(top - len(shown)):
            yield new_line
        yield self.status


def _line(text: str, style: Style | None, width: int) -> list[Segment]:
    return [Segment(_fitting(text, width), style)]


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

    calls = _Table(
        (
            ("call", False),
            ("state", False),
            ("dir", False),
            ("call id", False),
            ("parties", False),
            ("legs", True),
            ("ring", True),
            ("talk", True),
        )
    )
    for call in shown_live:
        stale = call.is_stale(now, tracker.stale_after)
        state = UNCONFIRMED if stale else call.state
        ring, talk = _times(call, now, stale)
        calls.rows.append(
            (
                _Plain(call.label, _BOLD),
                _Plain(state, _STATE_STYLE.get(state)),
                # As the account sees it; "?" while not known yet.
                _Plain(call.direction or "?"),
                _call_id(call),
                _parties(call),
                _Plain(str(len(call.legs))),
                _Plain(ring),
                _Plain(talk),
            )
        )
    lines = [_line(f"kazoo-tail calls: {len(live)} in progress   (q quits)", _BOLD, width)]
    lines += calls.lines(width, ids=3, parties=4)
    if not live:
        lines.append(_line("no calls in progress", _DIM, width))
    if more_live:
        lines.append(_line(f"… and {more_live} more", _DIM, width))
    if shown_ended:
        hangups = _Table(
            (
                ("hung up", False),
                ("cause", False),
                ("call id", False),
                ("parties", False),
                ("ring", True),
                ("talk", True),
            )
        )
        for call in shown_ended:
            ring, talk = _times(call, now, stale=False)
            hangups.rows.append(
                (
                    _Plain(call.label, _DIM),
                    _Plain(sanitize(call.cause) or "?"),
                    _call_id(call, _DIM),
                    _parties(call),
                    _Plain(ring),
                    _Plain(talk),
                )
            )
        lines += hangups.lines(width, ids=2, parties=3)
    # The status line keeps to the bottom of the screen, as a terminal's status bar does.
    status_line = Segment(_fitting(sanitize(status) or " ", width), _REVERSE)
    return _Picture(lines, status_line, height)


def _fit(calls: list[Call], room: int) -> tuple[list[Call], int]:
    """The calls that fit in ``room`` lines, keeping one for "… and N more" when needed."""
    if len(calls) <= room:
        return calls, 0
    keep = max(0, room - 1)
    return calls[:keep], len(calls) - keep


def _shrink_evenly(excess: int, widths: list[int]) -> list[int]:
    """``widths`` less ``excess`` cells in all, in equal shares from left to right (a column
    never below nothing), as a rich Table shares out a lack of room: a narrow screen looks as
    it did when the board was one."""
    shrunk = list(widths)
    columns = len(shrunk)
    for index, width in enumerate(shrunk):
        share = min(width, round(excess / (columns - index)))
        shrunk[index] = width - share
        excess -= share
    return shrunk
