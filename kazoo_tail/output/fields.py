"""--fields in pretty mode: an aligned table, the event's time first, that fits the terminal.

Events stream, so the widths cannot be known ahead. Each column starts as wide as its header
and grows when a wider value comes, by at least ``GROWTH`` cells while the terminal has room,
so that a run of slightly longer values does not move the columns each time. Whenever the
widths change (a column grew, the terminal was resized) the header is printed again above the
next row, so the columns are always labelled as they are laid out. The terminal's width is
shared out fairly: columns that need less than an equal share get what they need, the rest
split what is left; when even whole headers do not fit, headers give way to values first. A
value wider than its column is elided in the middle (call ids differ at both ends) and never
wrapped. The header's first cell is the date, printed again when the date changes; the others
name each column by the shortest ending of its path that tells it from the others.

When the console colours (as for pretty lines: a terminal, or --color always), headers are
bold, times dim, and a call's rows take the call's colour, legs alike. Everything shown is
escaped first: the server's values and the user's paths alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from rich.cells import cell_len, get_character_cell_size

from kazoo_tail.features.calls import CallTracker, event_time
from kazoo_tail.features.filters import field_values
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.time import unix_from_gregorian
from kazoo_tail.output.pretty import CALL_COLOURS, Painter, call_colour
from kazoo_tail.output.terminal import sanitize, terminal_width

ELLIPSIS = "…"
GAP = "  "
# HH:MM:SS.mmm; the header's cell above it holds the date, YYYY-MM-DD.
TIME_WIDTH = 12
# Narrower than this, a column shows too little to be worth it; the line then overflows.
MIN_WIDTH = 4
GROWTH = 4
# When the terminal is too narrow for whole headers, a header keeps at least this much.
HEADER_AT_LEAST = 8


def elide_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its middle replaced by an ellipsis if need be."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    head_end = 0
    used = 0
    while head_end < len(text):
        size = get_character_cell_size(text[head_end])
        if used + size > (room + 1) // 2:
            break
        used += size
        head_end += 1
    tail_room = room - used  # a wide character that did not fit the head leaves its cell here
    tail_start = len(text)
    used = 0
    while tail_start > head_end:
        size = get_character_cell_size(text[tail_start - 1])
        if used + size > tail_room:
            break
        used += size
        tail_start -= 1
    return text[:head_end] + ELLIPSIS + text[tail_start:]


def share_out(wanted: list[int], room: int) -> list[int]:
    """Widths for columns that want ``wanted`` cells in ``room``: a column wanting no more
    than an equal share gets what it wants; the others split the rest equally."""
    widths = [0] * len(wanted)
    open_columns = list(range(len(wanted)))
    while open_columns:
        share = room // len(open_columns)
        settled = [i for i in open_columns if wanted[i] <= share]
        if not settled:
            extra = room - share * len(open_columns)
            for rank, i in enumerate(open_columns):
                widths[i] = max(MIN_WIDTH, share + (1 if rank < extra else 0))
            break
        for i in settled:
            widths[i] = wanted[i]
            room -= wanted[i]
        open_columns = [i for i in open_columns if i not in settled]
    return widths


def column_labels(paths: list[str]) -> list[str]:
    """Each path's shortest ending, by whole keys, that no other path shares: ``data.call_id``
    is headed ``call_id``, leaving the room to the values; a path given twice keeps all of it."""
    labels = []
    for path in paths:
        keys = path.split(".")
        for count in range(1, len(keys) + 1):
            label = ".".join(keys[-count:])
            if label and sum(p == label or p.endswith("." + label) for p in paths) == 1:
                break
        else:
            label = path
        labels.append(label)
    return labels


def event_clock(event: Event) -> tuple[str, str]:
    """The event's date and time of day, local. Kazoo's own timestamp counts whole seconds, so
    it is shown without milliseconds rather than with made-up zeros; without one, the receive
    time is shown to the millisecond."""
    when = event_time(event)
    moment = time.localtime(when)
    clock = time.strftime("%H:%M:%S", moment)
    if unix_from_gregorian(event.data.get("timestamp")) is None:
        clock += f".{int(when * 1000) % 1000:03d}"
    return time.strftime("%Y-%m-%d", moment), clock


def _unpainted(text: str, style: str) -> str:
    return text


class FieldsTableRenderer:
    """One row per event: its time, then the values at ``paths``, in columns that line up."""

    def __init__(
        self,
        stream: IO[bytes],
        paths: list[str],
        *,
        width: Callable[[], int] | None = None,
        painter: Painter | None = None,
    ) -> None:
        """``painter``, when it colours: headers in bold, times dim, and the values of a
        call's rows in the call's colour (legs alike, as in pretty lines)."""
        self.stream = stream
        self.painter = painter if painter is not None and painter.colours else None
        self.tracker = CallTracker(palette_size=len(CALL_COLOURS)) if self.painter else None
        self.paths = paths
        self.width = width or terminal_width(stream)
        self.headers = [sanitize(label) for label in column_labels(paths)]
        self.header_sizes = [cell_len(header) for header in self.headers]
        # Per column, the widest value seen, and the width it would like: header included,
        # with room to grow.
        self.needed = [0] * len(paths)
        self.wanted = list(self.header_sizes)
        # The widths the rows were last laid out in, and those the next row takes; the room
        # they were shared out of, to do it again only when something changed.
        self.widths: list[int] = []
        self.next_widths: list[int] = []
        self.room = -1
        self.shown_date: str | None = None

    def render(self, event: Event) -> None:
        values = [sanitize(value) for value in field_values(event.envelope, self.paths)]
        sizes = [cell_len(value) for value in values]
        grew = False
        for i, size in enumerate(sizes):
            if size > self.needed[i]:
                self.needed[i] = size
                if size > self.wanted[i]:
                    self.wanted[i] = max(size, self.wanted[i] + GROWTH)
                grew = True
        room = self.width() - TIME_WIDTH - len(GAP) * len(self.paths)
        if grew or room != self.room:
            self.room = room
            self.next_widths = share_out(self._claims(room), room)
        date, clock = event_clock(event)
        lines = []
        if self.next_widths != self.widths or date != self.shown_date:
            self.widths, self.shown_date = self.next_widths, date
            lines.append(self._row(date, self.headers, self.header_sizes, "bold", "bold"))
        colour = ""
        if self.tracker is not None:
            update = self.tracker.observe(event)
            colour = call_colour(update.call) if update is not None else ""
        lines.append(self._row(clock, values, sizes, "dim", colour))
        self.stream.write("".join(lines).encode())

    def _claims(self, room: int) -> list[int]:
        """What each column asks for: room to grow and its whole header while all fit, else
        its widest value and header, else its widest value and a few cells of header."""
        whole = [max(value, header) for value, header in zip(self.needed, self.header_sizes)]
        for claims in (self.wanted, whole):
            if sum(claims) <= room:
                return claims
        return [
            max(value, min(header, HEADER_AT_LEAST))
            for value, header in zip(self.needed, self.header_sizes)
        ]

    def _row(
        self, first: str, cells: list[str], sizes: list[int], first_style: str, style: str
    ) -> str:
        paint = self.painter.paint if self.painter is not None else _unpainted
        parts = [paint(first, first_style) + " " * (TIME_WIDTH - len(first))]
        for cell, size, width in zip(cells, sizes, self.widths):
            if size > width:
                cell = elide_middle(cell, width)
                size = cell_len(cell)
            # Padding stays outside the colour, so that a row's end can be trimmed.
            parts.append((paint(cell, style) if cell else cell) + " " * (width - size))
        return GAP.join(parts).rstrip(" ") + "\n"

    def flush(self) -> None:
        self.stream.flush()
