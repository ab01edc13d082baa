"""Pretty output for people: one coloured line per event in fixed columns, or call timelines.

Columns: time, event, direction, parties, call, cause (the last one free). On a terminal the
lines fit its width (ids elided in the middle, never wrapped; what gives way first is said at
``columns_for``), and follow it when the terminal is resized; into a pipe nothing is elided.
A date line comes before the first event and whenever the date changes.

Everything in an event is untrusted: each server string passes through ``sanitize`` and never
goes through rich markup, so neither escape sequences nor ``[bold]`` in event text can drive
the terminal.
"""

from __future__ import annotations

import codecs
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style

from kazoo_tail.features.calls import Call, CallTracker, CallUpdate, Leg
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.kazoo.time import unix_from_gregorian
from kazoo_tail.output.terminal import sanitize

# Colours that read well on dark and light backgrounds; the call tracker gives each call in
# progress a slot of its own (legs included) and the call keeps it all along.
CALL_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "bright_yellow",
    "bright_blue",
    "dark_orange",
    "orchid",
)
_NAME_STYLES = {
    "CHANNEL_CREATE": "bold green",
    "CHANNEL_ANSWER": "bold cyan",
    "CHANNEL_BRIDGE": "bold blue",
    "CHANNEL_DESTROY": "bold red",
    "doc_created": "bold green",
    "doc_edited": "bold yellow",
    "doc_deleted": "bold red",
}
_GOOD_HANGUPS = {"NORMAL_CLEARING", "ORIGINATOR_CANCEL", "SUCCESS"}
_HANGUPS = {"CHANNEL_DESTROY", "PARK_ABANDONED"}
_SHORT_DIRECTIONS = {
    "inbound": "in",
    "outbound": "out",
    "internal": "int",
    "inbound?": "in?",
    "incoming": "in",
    "outgoing": "out",
}
# A call's direction not known yet (see features.calls.Origin).
UNKNOWN_DIRECTION = "?"
_TIME_WIDTH = 12  # HH:MM:SS.mmm
_PALETTE = len(CALL_COLOURS)
# How often, at most, a terminal is asked for its width (a resize shows by the next line).
RESIZE_CHECK_SECONDS = 0.25


def call_colour(call: Call) -> str:
    """The colour of a call's slot (see ``CallTracker``)."""
    return CALL_COLOURS[call.colour % len(CALL_COLOURS)]


class Painter:
    """Escape codes for rich style names, as the console would write them, made once each;
    it paints nothing when the console does not colour (no terminal, --color never)."""

    def __init__(self, console: Console) -> None:
        system = console.color_system  # None when not colouring
        self.system = COLOR_SYSTEMS.get(system) if system else None
        self.no_color = console.no_color
        # By style; "" paints nothing, so that ``codes`` answers for it too.
        self._codes: dict[str, tuple[str, str]] = {"": ("", "")}

    @property
    def codes(self) -> dict[str, tuple[str, str]]:
        """The escape codes before and after, by style, of the styles painted so far."""
        return self._codes

    @property
    def colours(self) -> bool:
        return self.system is not None

    def paint(self, text: str, style: str) -> str:
        if not style or self.system is None:
            return text
        codes = self._codes.get(style)
        if codes is None:
            parsed = Style.parse(style)
            if self.no_color:
                parsed = parsed.without_color
            before, _, after = parsed.render("\x00", color_system=self.system).partition("\x00")
            codes = self._codes[style] = (before, after)
        return codes[0] + text + codes[1]


def cells(text: str) -> int:
    """Terminal cells the text takes (wide characters count two)."""
    return len(text) if text.isascii() else cell_len(text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - cells(text))


def elide_end(text: str, width: int, ellipsis: str = "…") -> str:
    if cells(text) <= width:
        return text
    if width <= len(ellipsis):
        return set_cell_size(text, max(0, width))
    return set_cell_size(text, width - len(ellipsis)) + ellipsis


def elide_middle(text: str, width: int, ellipsis: str = "…") -> str:
    """The start (what tells calls apart) and the end (a host part) of the text."""
    if cells(text) <= width:
        return text
    room = width - len(ellipsis)
    if room < 2:
        return elide_end(text, width, ellipsis)
    head = room // 2
    tail = set_cell_size(text[::-1], room - head)[::-1]
    return set_cell_size(text, head) + ellipsis + tail


def duration(seconds: float) -> str:
    """31s, 2m05s, 1h02m05s."""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02}m{secs:02}s"
    if minutes:
        return f"{minutes}m{secs:02}s"
    return f"{secs}s"


def _field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value.__class__ is str:  # nearly always
        return sanitize(value)
    if value is None or isinstance(value, (dict, list)):
        return ""
    return sanitize(str(value))


def _party(data: dict[str, Any], prefix: str, names: bool = True) -> str:
    number = _field(data, f"{prefix}_id_number")
    name = _field(data, f"{prefix}_id_name") if names else ""
    if name and name != number:
        return f'{number} "{name}"' if number else f'"{name}"'
    return number or "?"


def _callee(data: dict[str, Any], names: bool = True) -> str:
    """Before answer, Kazoo has no callee id yet; the dialled request says where it goes."""
    if data.get("callee_id_number"):
        return _party(data, "callee", names)
    request = _field(data, "request") or _field(data, "to")
    return request.split("@", 1)[0] if request else "?"


class Columns(NamedTuple):
    """Column widths for one terminal width; ``limit`` None (a pipe) elides nothing."""

    limit: int | None
    event: int
    direction: int
    parties: int
    # The call's label and id; on a call line with nothing after it the id may run on to the
    # end of the line.
    call: int
    # Below 120 columns the event column drops the "CHANNEL_" every call event starts with.
    short_names: bool

    @property
    def parties_at(self) -> int:
        return _TIME_WIDTH + 1 + self.event + 1 + self.direction + 1

    @property
    def call_at(self) -> int:
        return self.parties_at + self.parties + 1

    @property
    def cause_at(self) -> int:
        return self.call_at + self.call + 1


# What a call line keeps, as the terminal narrows (issue 21): time, event and direction
# always; then both numbers whole (E.164 has at most 15 digits and the "+"); then the call id,
# elided in the middle, in at least ID_CELLS; then a hangup's cause; then the whole id; the
# names give way before all of those; the cause column takes what is left.
NUMBER_CELLS = 16
NUMBERS_CELLS = NUMBER_CELLS + 3 + NUMBER_CELLS  # "+4930123456 → +12125550147"
LABEL_CELLS = 3  # "#1 "; a longer label takes its cells from the id
ID_CELLS = 12  # "647aab…0.21"
CAUSE_CELLS = 24  # "NORMAL_CLEARING r2s t31s"
# Call ids Kazoo makes run to 60 characters and more; beyond this an id is elided even on a
# wide terminal, on lines where a cause follows it.
WHOLE_ID_CELLS = 64
# The parties column grows for names up to this; past it the cause column has the rest.
NAMES_CELLS = 64


def columns_for(width: int | None) -> Columns:
    if width is None:
        return Columns(None, 16, 8, 34, 24, False)
    room = max(width, 80)
    event, short = (11, True) if room < 120 else (16, False)
    direction = 3 if room < 120 else 8
    rest = room - (_TIME_WIDTH + 1 + event + 1 + direction + 1)
    # The columns in turn of priority, each followed by a space; what is left is the cause's.
    parties = min(NUMBERS_CELLS, rest - 1 - LABEL_CELLS - ID_CELLS)
    call = LABEL_CELLS + ID_CELLS
    spare = max(0, rest - (parties + 1) - (call + 1) - CAUSE_CELLS)
    grow = min(spare, LABEL_CELLS + WHOLE_ID_CELLS - call)
    call, spare = call + grow, spare - grow
    parties += min(spare, NAMES_CELLS - parties)
    return Columns(width, event, direction, parties, call, short)


def numbers(caller: str, callee: str, arrow: str, width: int, ellipsis: str = "…") -> str:
    """Two parties' numbers in ``width`` cells: a number of up to NUMBER_CELLS is kept whole
    while the width allows both; only longer ones (SIP URIs) are cut."""
    joined = caller + arrow + callee
    if cells(joined) <= width:
        return joined
    room = max(0, width - cells(arrow))
    first, second = cells(caller), cells(callee)
    keep = min(first, max(NUMBER_CELLS, room - second), room - min(second, NUMBER_CELLS))
    caller = elide_end(caller, max(0, keep), ellipsis)
    return caller + arrow + elide_end(callee, room - cells(caller), ellipsis)


class Line:
    """The pieces of one output line, each with a rich style name ("" for none)."""

    __slots__ = ("pieces", "width")

    def __init__(self) -> None:
        self.pieces: list[tuple[str, str]] = []
        self.width = 0

    def append(self, text: str, style: str = "", width: int = -1) -> None:
        """Text and its style; ``width`` in cells when the caller knows it already."""
        self.pieces.append((text, style))
        if width < 0:
            # cells(), inlined: a call per piece shows in the cost of every line.
            width = len(text) if text.isascii() else cell_len(text)
        self.width += width

    def pad_to(self, column: int) -> None:
        """Move to a column; past it (a value longer than its column, in a pipe), a space."""
        if self.width < column:
            self.append(" " * (column - self.width))
        elif self.pieces and not self.pieces[-1][0].endswith(" "):
            self.append(" ")


class PrettyRenderer:
    """One line per event: time, event name, and what matters for its kind, in columns.

    rich decides whether and how to colour (terminal detection, NO_COLOR, the colour system)
    and turns each style into escape codes, once. The line itself is joined here: it never
    wraps, and rich's general layout engine would cost more than everything else per event.
    """

    def __init__(
        self,
        console: Console,
        width: int | None = None,
        tracker: CallTracker | None = None,
        follow: Callable[[], int] | None = None,
    ) -> None:
        """``follow``, when given, is asked for the terminal's width now and then, and the
        columns are laid out again when it changed (a resized pane)."""
        self.console = console
        self.columns = columns_for(width)
        self._follow = follow
        self._asked_at = time.monotonic()
        self.tracker = tracker or CallTracker(palette_size=len(CALL_COLOURS))
        self.painter = Painter(console)
        self._paint = self.painter.paint
        # The painter's own table (it fills it as styles are first painted); None: no colour.
        self._codes = self.painter.codes if self.painter.colours else None
        encoding = getattr(console.file, "encoding", None) or "utf-8"
        # A stdout in a narrower encoding (an ASCII or latin-1 locale) would fail on the first
        # emoji a server sends: what it cannot encode is shown as an escape (\U0001f600).
        self._narrow = None if codecs.lookup(encoding).name.startswith("utf") else encoding
        unicode = self.can_show("…→─┌│└")
        self.ellipsis, self.arrow, self.rule = ("…", "→", "──") if unicode else ("~", "->", "--")
        # The local day of the last date line, as [start, end) in unix time.
        self._day = (0.0, 0.0)
        self._second = -1
        self._hms = ""
        self._starts = (self.columns.parties_at, self.columns.call_at, self.columns.cause_at)
        # Padded event names and directions, by what the server sent (bounded).
        self._event_cells: dict[tuple[str, str | None], tuple[str, str, int]] = {}
        self._direction_cells: dict[str, str] = {}

    def can_show(self, text: str) -> bool:
        if self._narrow is None:
            return True
        try:
            text.encode(self._narrow)
        except UnicodeEncodeError:
            return False
        return True

    def render(self, event: Event) -> None:
        if self._follow is not None:
            self.follow_resize()
        update = self.tracker.observe(event) if event.kind == "call" else None
        self.write(self.line(event, update), event.received_at)

    def follow_resize(self) -> None:
        """Lay the columns out again if the terminal's width changed; asked at most
        ``RESIZE_CHECK_SECONDS`` apart, as a syscall on every line would cost throughput."""
        moment = time.monotonic()
        if self._follow is None or moment - self._asked_at < RESIZE_CHECK_SECONDS:
            return
        self._asked_at = moment
        width = self._follow()
        if width != self.columns.limit:
            self.columns = columns_for(width)
            self._starts = (self.columns.parties_at, self.columns.call_at, self.columns.cause_at)
            self._event_cells.clear()
            self._direction_cells.clear()

    def write(self, line: Line, when: float | None = None) -> None:
        """One line; with ``when``, a date line first if that day is not the one shown last."""
        if when is not None and not self._day[0] <= when < self._day[1]:
            self.date_line(when)
        pieces = line.pieces
        limit = self.columns.limit
        if limit is not None and line.width > limit:
            pieces = self._crop(pieces, limit)
        if self._codes is None:
            text = "".join([piece for piece, _ in pieces])
        else:
            # The painter's codes looked up here: a call to paint per piece costs as much as
            # the rest of the join.
            get, paint = self._codes.get, self._paint
            text = "".join(
                [
                    paint(piece, style)
                    if (codes := get(style)) is None
                    else codes[0] + piece + codes[1]
                    for piece, style in pieces
                ]
            )
        if self._narrow is not None:
            text = text.encode(self._narrow, "backslashreplace").decode(self._narrow)
        self.console.file.write(text.rstrip(" ") + "\n")

    def date_line(self, when: float) -> None:
        start, end = self._day
        if start <= when < end:
            return
        local = time.localtime(when)
        day = f"{local.tm_year:04}-{local.tm_mon:02}-{local.tm_mday:02}"
        midnight = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
        following = (local.tm_year, local.tm_mon, local.tm_mday + 1, 0, 0, 0, 0, 0, -1)
        self._day = (midnight, time.mktime(following))
        line = Line()
        line.append(f"{self.rule} {day} {self.rule}", "dim")
        self.write(line)

    def clock(self, unix: float) -> str:
        """HH:MM:SS.mmm in local time; the seconds' text is kept while events share it."""
        second = int(unix)
        if second != self._second:
            self._second = second
            self._hms = time.strftime("%H:%M:%S", time.localtime(second))
        return f"{self._hms}.{int(unix * 1000) % 1000:03d}"

    def flush(self) -> None:
        self.console.file.flush()

    def _crop(self, pieces: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
        """The last resort (e.g. below 80 columns): the end of the line is cut, marked so."""
        kept: list[tuple[str, str]] = []
        room = limit
        for text, style in pieces:
            width = cells(text)
            if width < room:
                kept.append((text, style))
                room -= width
                continue
            kept.append((elide_end(text, room, self.ellipsis), style))
            break
        return kept

    def line(self, event: Event, update: CallUpdate | None = None) -> Line:
        data = event.data
        name = sanitize(event.name) if event.name else _field(data, "event_name") or "?"
        line = Line()
        line.append(self.clock(event.received_at), "dim", _TIME_WIDTH)
        line.append(" ", "", 1)
        kind = event.kind
        if kind == "call":
            self._call(line, name, data, update)
        elif kind == "object":
            self._object(line, name, data)
        elif kind == "fax":
            self._fax(line, name, data)
        elif kind == "conference":
            self._conference(line, name, data)
        else:
            self._other(line, name, event)
        if event.via is not None:
            line.append(f"  via {sanitize(event.via)}", "dim")
        return line

    # The columns after the time, each padded to its width (and a space) when more follows.

    def _event_column(self, line: Line, name: str, style: str | None = None) -> None:
        key = (name, style)
        cached = self._event_cells.get(key)
        if cached is None:
            columns = self.columns
            shown = name
            if columns.short_names and name.startswith("CHANNEL_") and len(name) > 8:
                shown = name[8:]
            if columns.limit is not None:
                shown = elide_end(shown, columns.event, self.ellipsis)
            padded = pad(shown, columns.event)
            cached = (padded, style or _NAME_STYLES.get(name, "bold"), cells(padded))
            if len(self._event_cells) < 512:
                self._event_cells[key] = cached
        line.append(*cached)
        line.append(" ", "", 1)

    def _direction_column(self, line: Line, direction: str) -> None:
        shown = self._direction_cells.get(direction)
        if shown is None:
            columns = self.columns
            shown = direction
            if columns.direction < 8:
                shown = _SHORT_DIRECTIONS.get(direction, direction)
            if columns.limit is not None:
                shown = elide_end(shown, columns.direction, self.ellipsis)
            shown = pad(shown, columns.direction) + " "
            if len(self._direction_cells) < 64:
                self._direction_cells[direction] = shown
        line.append(shown)

    def _start(self, which: str) -> int:
        """Where a column starts, counted in cells from the start of the line."""
        parties, call, cause = self._starts
        return parties if which == "parties" else call if which == "call" else cause

    def _cell(
        self, line: Line, which: str, text: str, style: str = "", middle: bool = False
    ) -> None:
        """Text in the column named, elided to its width on a terminal."""
        line.pad_to(self._start(which))
        width = self.columns.parties if which == "parties" else self.columns.call
        if self.columns.limit is not None and which != "cause":
            elide = elide_middle if middle else elide_end
            text = elide(text, width, self.ellipsis)
        line.append(text, style)

    def _room(self, line: Line) -> int | None:
        """Cells left on the line for a last column that starts after a space."""
        limit = self.columns.limit
        if limit is None:
            return None
        return max(0, max(limit, 80) - max(line.width, self._start("cause")))

    def _parties(self, data: dict[str, Any]) -> str:
        arrow = f" {self.arrow} "
        full = _party(data, "caller") + arrow + _callee(data)
        width = self.columns.parties
        if self.columns.limit is None or cells(full) <= width:
            return full
        caller, callee = _party(data, "caller", False), _callee(data, False)
        return numbers(caller, callee, arrow, width, self.ellipsis)

    def _call(self, line: Line, name: str, data: dict[str, Any], update: CallUpdate | None) -> None:
        self._event_column(line, name)
        # The call's direction as the account sees it, not the leg's (the switch's view).
        direction = update.call.direction if update is not None else ""
        self._direction_column(line, direction or UNKNOWN_DIRECTION)
        self._cell(line, "parties", self._parties(data))
        call_id = _field(data, "call_id") or "?"
        if update is None:
            self._cell(line, "call", call_id, middle=True)
            return
        call = update.call
        colour = CALL_COLOURS[call.colour % len(CALL_COLOURS)]
        label = f"{call.label} "
        start = self._starts[1]
        line.pad_to(start)
        line.append(label, f"bold {colour}", len(label))
        hangup = name in _HANGUPS
        limit = self.columns.limit
        if limit is not None:
            # With no cause after it, the id may use the rest of the line.
            room = self.columns.call if hangup else max(limit, 80) - start
            call_id = elide_middle(call_id, max(4, room - len(label)), self.ellipsis)
        line.append(call_id, colour)
        if hangup:
            line.pad_to(self._starts[2])
            self._hangup(line, data, update.leg)

    def _hangup(self, line: Line, data: dict[str, Any], leg: Leg) -> None:
        """The cause, the ring time always, the talk time only for a leg that was answered."""
        cause = _field(data, "hangup_cause")
        line.append(cause or "no cause", "green" if cause in _GOOD_HANGUPS else "bold red")
        ring, talk = leg_times(leg)
        long = f" ring {duration(ring)}" + (f" talk {duration(talk)}" if talk is not None else "")
        room = self._room(line)
        if room is None or cells(long) <= room:
            line.append(long, "dim")
        else:
            short = f" r{duration(ring)}" + (f" t{duration(talk)}" if talk is not None else "")
            line.append(short, "dim")

    def _object(self, line: Line, name: str, data: dict[str, Any]) -> None:
        self._event_column(line, name)
        self._direction_column(line, "")
        self._cell(line, "parties", _field(data, "type") or "?", "bold")
        self._cell(line, "call", _field(data, "id") or "?", middle=True)
        extra = []
        if data.get("is_soft_deleted") is True:
            extra.append("(soft delete)")
        account = _field(data, "account_id")
        if account:
            extra.append(f"account {account}")
        if extra:
            self._last(line, "  ".join(extra), "dim")

    def _fax(self, line: Line, name: str, data: dict[str, Any]) -> None:
        if not _field(data, "job_id") and _field(data, "id"):
            return self._fax_document(line, name, data)
        self._event_column(line, f"fax {name}", "bold magenta")
        self._direction_column(line, _field(data, "direction"))
        self._cell(line, "parties", _field(data, "status") or _field(data, "fax_state") or "?")
        self._cell(line, "call", f"job {_field(data, 'job_id') or '?'}", middle=True)
        state = _field(data, "fax_state")
        if state:
            self._last(line, f"state {state}", "dim")

    def _fax_document(self, line: Line, name: str, data: dict[str, Any]) -> None:
        """fax.object.*: a fax document created, edited or deleted (a doc event, with no job
        or status), shown by its document id as object events are."""
        self._event_column(line, f"fax {name}", "bold magenta")
        self._direction_column(line, "")
        self._cell(line, "parties", _field(data, "type") or "fax", "bold")
        self._cell(line, "call", _field(data, "id"), middle=True)
        account = _field(data, "account_id")
        if account:
            self._last(line, f"account {account}", "dim")

    def _conference(self, line: Line, name: str, data: dict[str, Any]) -> None:
        self._event_column(line, f"conf {_field(data, 'event') or name}", "bold blue")
        self._direction_column(line, "")
        caller = _party(data, "caller")
        self._cell(line, "parties", "" if caller == "?" else caller)
        self._cell(line, "call", f"conference {_field(data, 'conference_id') or '?'}", middle=True)
        participant = _field(data, "participant_id")
        if participant:
            self._last(line, f"participant {participant}", "dim")

    def _other(self, line: Line, name: str, event: Event) -> None:
        self._event_column(line, name, "bold")
        self._direction_column(line, "")
        line.append(sanitize(event.routing_key), "dim")
        line.append(" ")
        summary = compact_json(event.data, sort_keys=True)
        limit = 300 if self.columns.limit is None else self.columns.limit
        line.append(sanitize(summary[:limit] + ("…" if len(summary) > limit else "")))

    def _last(self, line: Line, text: str, style: str = "") -> None:
        line.pad_to(self._start("cause"))
        room = self._room(line)
        line.append(text if room is None else elide_end(text, room, self.ellipsis), style)


def leg_times(leg: Leg) -> tuple[float, float | None]:
    """A hung-up leg's ring time and talk time (None when never answered), Kazoo's counts
    first."""
    ended = leg.ended if leg.ended is not None else leg.created
    ring = leg.ringing_seconds
    if ring is None:
        ring = max(0.0, (leg.answered if leg.answered is not None else ended) - leg.created)
    if leg.answered is None:
        return ring, None
    talk = leg.billing_seconds
    if talk is None:
        talk = max(0.0, ended - leg.answered)
    return ring, talk


# Kazoo's `timestamp` fields count seconds from year 0 (Erlang's Gregorian seconds).
def kazoo_time(event: Event) -> float | None:
    """When the event happened by Kazoo's clock (whole seconds), if the event says."""
    return unix_from_gregorian(event.data.get("timestamp"))


def event_time(event: Event) -> float:
    """When the event happened, by Kazoo's clock when it says, else when we received it."""
    stamp = kazoo_time(event)
    return event.received_at if stamp is None else stamp


def clock(unix: float, millis: bool = True) -> str:
    text = time.strftime("%H:%M:%S", time.localtime(unix))
    return f"{text}.{int(unix * 1000) % 1000:03d}" if millis else text


# The fewest cells a call's first leg id is shown in on its header line.
HEADER_ID_CELLS = 12


class TimelineRenderer:
    """--calls: every line of a call carries its label ("#3") in a gutter, in its colour.

    A call opens with a line naming its parties and first leg, then one line per event of any
    of its legs, and closes with its outcome once its last leg has hung up. Lines of calls in
    progress together interleave as they come, and the label says which is which, with or
    without colour. Legs and calls are grouped by the shared ``CallTracker``; its memory is
    bounded, and so is the map of which label each leg was last shown under.
    """

    MAX_LEGS = 4096

    def __init__(self, pretty: PrettyRenderer) -> None:
        self.pretty = pretty
        self.tracker = pretty.tracker
        unicode = pretty.can_show("┌│└")
        self._open, self._bar, self._close = ("┌", "│", "└") if unicode else ("+", "|", "`")
        self._gutter = 4
        self._label_styles = tuple(f"bold {colour}" for colour in CALL_COLOURS)
        # Event names padded to their column, with their style, by the name sent (bounded).
        self._names: dict[str, tuple[str, str, str, int]] = {}
        self._label_of_leg: OrderedDict[str, str] = OrderedDict()
        # The direction last shown for each call in progress, by label.
        self._direction_of: OrderedDict[str, str] = OrderedDict()

    def render(self, event: Event) -> None:
        if self.pretty._follow is not None:  # the check inline: a call saved on every event
            self.pretty.follow_resize()
        update = self.tracker.observe(event) if event.kind == "call" else None
        if update is None:
            self.pretty.write(self.pretty.line(event), event.received_at)
            return
        call = update.call
        when = event.received_at
        # Every line of the event shows the same time: formatted once.
        stamp = self.pretty.clock(when)
        leg_id = update.leg.call_id
        shown = self._label_of_leg.get(leg_id)
        if shown is not None and shown != call.label:
            text = f"{shown} is the same call as {call.label}"
            self._write(call, self._bar, when, stamp, text, "dim")
        self._label_of_leg[leg_id] = call.label
        self._label_of_leg.move_to_end(leg_id)
        while len(self._label_of_leg) > self.MAX_LEGS:
            self._label_of_leg.popitem(last=False)
        leg_shown = sanitize(leg_id)
        if update.opened:
            self._header(call, update, when, stamp, leg_shown)
        self._event(event, update, when, stamp, leg_shown)
        if update.closed:
            self._outcome(call, when, stamp)

    def flush(self) -> None:
        self.pretty.flush()

    def _gutter_line(self, call: Call, mark: str, stamp: str) -> Line:
        """The label, the mark and the time; ``stamp`` is the time as ``clock`` shows it."""
        label = call.label
        if len(label) > self._gutter:
            self._gutter = len(label)
        gutter = self._gutter
        line = Line()
        # Labels are ASCII ("#12") and every mark takes one cell: the widths are known.
        gutter_text = f"{label:<{gutter}} {mark} "
        style = self._label_styles[call.colour % _PALETTE]
        line.pieces = [(gutter_text, style), (stamp, "dim"), (" ", "")]
        line.width = len(gutter_text) + len(stamp) + 1
        return line

    def _write(
        self, call: Call, mark: str, when: float, stamp: str, text: str, style: str = ""
    ) -> None:
        line = self._gutter_line(call, mark, stamp)
        line.append(text, style)
        self.pretty.write(line, when)

    def _id_room(self, line: Line, reserve: int) -> int | None:
        limit = self.pretty.columns.limit
        if limit is None:
            return None
        return max(12, max(limit, 80) - line.width - reserve)

    def _elide_id(self, text: str, room: int | None) -> str:
        return text if room is None else elide_middle(text, room, self.pretty.ellipsis)

    def _header(self, call: Call, update: CallUpdate, when: float, stamp: str, leg_id: str) -> None:
        """The call's direction and parties, as its user dialled them, then its first leg's id
        (``leg_id``, sanitized) in what room is left (the leg's own line below shows it
        whole)."""
        pretty = self.pretty
        line = self._gutter_line(call, self._open, stamp)
        line.append("call", self._label_styles[call.colour % _PALETTE], 4)
        # The tracker's directions are ASCII words of its own.
        direction = f"  {call.direction or UNKNOWN_DIRECTION}"
        line.append(direction, "", len(direction))
        self._direction_of[call.label] = call.direction
        caller = _named(call.caller_number, call.caller_name)
        callee = _named(call.callee_number or call.dialled, call.callee_name)
        arrow = f" {pretty.arrow} "
        parties = caller + arrow + callee
        # The parties first (after two spaces): the names give way to the id, which keeps at
        # least HEADER_ID_CELLS after two more spaces, and the id gives way to the numbers
        # (the leg's own line below shows it).
        limit = pretty.columns.limit
        room = None if limit is None else max(limit, 80) - line.width - 2
        if room is not None and cells(parties) > room - 2 - HEADER_ID_CELLS:
            caller = _named(call.caller_number, "")
            callee = _named(call.callee_number or call.dialled, "")
            parties = numbers(caller, callee, arrow, room, pretty.ellipsis)
        line.append(f"  {parties}")
        room = self._id_room(line, 2)
        if room is None or room >= HEADER_ID_CELLS:
            line.append("  ", "", 2)
            line.append(self._elide_id(leg_id, room), "dim")
        pretty.write(line, when)

    def _event(
        self, event: Event, update: CallUpdate, when: float, stamp: str, leg_id: str
    ) -> None:
        pretty = self.pretty
        data = event.data
        named = self._names.get(update.name)
        if named is None:
            name = sanitize(update.name) or "?"
            padded = pad(name, 16)
            named = (name, padded, _NAME_STYLES.get(name, "bold"), cells(padded))
            if len(self._names) < 512:
                self._names[update.name] = named
        name = named[0]
        line = self._gutter_line(update.call, self._bar, stamp)
        line.append(named[1], named[2], named[3])
        line.append(" leg ", "dim", 5)
        cause = _field(data, "hangup_cause") if name in _HANGUPS else ""
        # The call's direction, when this event made it known or changed it.
        direction = update.call.direction
        label = update.call.label
        news = direction if self._direction_of.get(label, "") != direction else ""
        if news:
            self._direction_of[label] = direction
            self._direction_of.move_to_end(label)
            while len(self._direction_of) > self.MAX_LEGS:
                self._direction_of.popitem(last=False)
        reserve = (cells(cause) + 2 if cause else 0) + (7 if update.late else 0)
        reserve += len(news) + 6 if news else 0
        limit = pretty.columns.limit
        if limit is not None:  # _id_room and _elide_id, inlined: this is every event's line
            room = max(12, max(limit, 80) - line.width - reserve)
            leg_id = elide_middle(leg_id, room, pretty.ellipsis)
        line.append(leg_id)
        if name in _HANGUPS:
            line.append("  ", "", 2)
            line.append(cause or "no cause", "green" if cause in _GOOD_HANGUPS else "bold red")
        if news:
            line.append(f"  now {news}", "bold")
        if update.late:
            line.append("  late", "dim")
        if event.via is not None:
            line.append(f"  via {sanitize(event.via)}", "dim")
        pretty.write(line, when)

    def _outcome(self, call: Call, when: float, stamp: str) -> None:
        end = call.ended if call.ended is not None else when
        ring = duration(call.ring_seconds(end))
        talk = call.talk_seconds(end)
        cause = sanitize(call.cause)
        line = self._gutter_line(call, self._close, stamp)
        if talk is None:
            line.append(f"ended unanswered, ring {ring}", "bold")
        else:
            line.append(f"ended answered, talk {duration(talk)}, ring {ring}", "bold")
        line.append("  ")
        line.append(cause or "no cause", "green" if cause in _GOOD_HANGUPS else "bold red")
        # The direction before the count of legs, which gives way first on a narrow terminal.
        line.append(f"  {call.direction or UNKNOWN_DIRECTION}")
        legs = len(call.legs)
        line.append(f"  {legs} leg{'s' if legs != 1 else ''}", "dim")
        self._direction_of.pop(call.label, None)
        self.pretty.write(line, when)


def _named(number: str, name: str) -> str:
    number, name = sanitize(number), sanitize(name)
    if name and name != number:
        return f'{number} "{name}"' if number else f'"{name}"'
    return number or "?"
