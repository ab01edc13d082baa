"""Pretty output for people: one coloured line per event, or call timelines.

Everything in an event is untrusted: each server string passes through ``sanitize`` and never
goes through rich markup, so neither escape sequences nor ``[bold]`` in event text can drive
the terminal.
"""

from __future__ import annotations

import codecs
import time
import zlib
from typing import Any

from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.kazoo.time import unix_from_gregorian
from kazoo_tail.output.terminal import sanitize

# Colours that read well on dark and light backgrounds; a call keeps its colour all along.
_CALL_COLOURS = (
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


def call_colour(call_id: str) -> str:
    """A colour chosen by the call id, the same on every run (crc32, not salted hash())."""
    return _CALL_COLOURS[zlib.crc32(call_id.encode()) % len(_CALL_COLOURS)]


def _field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or isinstance(value, dict | list):
        return ""
    return sanitize(str(value))


def _party(data: dict[str, Any], prefix: str) -> str:
    number = _field(data, f"{prefix}_id_number")
    name = _field(data, f"{prefix}_id_name")
    if name and name != number:
        return f'{number} "{name}"' if number else f'"{name}"'
    return number or "?"


class Line:
    """The pieces of one output line, each with a rich style name ("" for none)."""

    __slots__ = ("pieces",)

    def __init__(self) -> None:
        self.pieces: list[tuple[str, str]] = []

    def append(self, text: str, style: str = "") -> None:
        self.pieces.append((text, style))


class PrettyRenderer:
    """One line per event: time, event name, and what matters for its kind.

    rich decides whether and how to colour (terminal detection, NO_COLOR, the colour system)
    and turns each style into escape codes, once. The line itself is joined here: it never
    wraps, and rich's general layout engine would cost more than everything else per event.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        system = console.color_system  # None when not colouring (no terminal, --color never)
        self._system = COLOR_SYSTEMS.get(system) if system else None
        self._codes: dict[str, tuple[str, str]] = {}
        encoding = getattr(console.file, "encoding", None) or "utf-8"
        # A stdout in a narrower encoding (an ASCII or latin-1 locale) would fail on the first
        # emoji a server sends: what it cannot encode is shown as an escape (\U0001f600).
        self._narrow = None if codecs.lookup(encoding).name.startswith("utf") else encoding

    def can_show(self, text: str) -> bool:
        if self._narrow is None:
            return True
        try:
            text.encode(self._narrow)
        except UnicodeEncodeError:
            return False
        return True

    def render(self, event: Event) -> None:
        self.write(self.line(event))

    def write(self, line: Line) -> None:
        pieces = line.pieces
        if self._system is None:
            text = "".join(piece for piece, _ in pieces)
        else:
            text = "".join(self._paint(piece, style) for piece, style in pieces)
        if self._narrow is not None:
            text = text.encode(self._narrow, "backslashreplace").decode(self._narrow)
        self.console.file.write(text + "\n")

    def flush(self) -> None:
        self.console.file.flush()

    def _paint(self, text: str, style: str) -> str:
        if not style:
            return text
        codes = self._codes.get(style)
        if codes is None:
            parsed = Style.parse(style)
            if self.console.no_color:
                parsed = parsed.without_color
            before, _, after = parsed.render("\x00", color_system=self._system).partition("\x00")
            codes = self._codes[style] = (before, after)
        return codes[0] + text + codes[1]

    def line(self, event: Event) -> Line:
        data = event.data
        name = sanitize(event.name) if event.name else _field(data, "event_name") or "?"
        line = Line()
        line.append(time.strftime("%H:%M:%S", time.localtime(event.received_at)), "dim")
        line.append(f".{int(event.received_at * 1000) % 1000:03d} ", "dim")
        kind = event.kind
        if kind == "call":
            self._call(line, name, data)
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

    def _call(self, line: Line, name: str, data: dict[str, Any]) -> None:
        line.append(f"{name:<16}", _NAME_STYLES.get(name, "bold"))
        direction = _field(data, "call_direction")
        line.append(f" {direction:<8} ")
        line.append(_party(data, "caller"))
        line.append(" -> ", "dim")
        line.append(_party(data, "callee") if data.get("callee_id_number") else _callee(data))
        call_id = _field(data, "call_id")
        line.append("  call ", "dim")
        line.append(call_id or "?", call_colour(call_id) if call_id else "")
        if name == "CHANNEL_DESTROY":
            cause = _field(data, "hangup_cause")
            line.append("  ")
            line.append(cause or "no cause", "green" if cause in _GOOD_HANGUPS else "bold red")
            talk = _field(data, "billing_seconds")
            if talk:
                line.append(f" talk {talk}s", "dim")

    def _object(self, line: Line, name: str, data: dict[str, Any]) -> None:
        line.append(f"{name:<16}", _NAME_STYLES.get(name, "bold"))
        line.append(f" {_field(data, 'type') or '?':<8} ", "bold")
        line.append(_field(data, "id") or "?")
        if data.get("is_soft_deleted") is True:
            line.append("  (soft delete)", "dim")
        account = _field(data, "account_id")
        if account:
            line.append(f"  account {account}", "dim")

    def _fax(self, line: Line, name: str, data: dict[str, Any]) -> None:
        line.append(f"fax {name:<12}", "bold magenta")
        line.append(f" {_field(data, 'direction') or '':<8} ")
        line.append(_field(data, "status") or _field(data, "fax_state") or "?")
        state = _field(data, "fax_state")
        if state:
            line.append(f"  state {state}", "dim")
        line.append("  job ", "dim")
        line.append(_field(data, "job_id") or "?")

    def _conference(self, line: Line, name: str, data: dict[str, Any]) -> None:
        what = _field(data, "event") or name
        line.append(f"conf {what:<11}", "bold blue")
        line.append(" conference ", "dim")
        line.append(_field(data, "conference_id") or "?")
        participant = _field(data, "participant_id")
        if participant:
            line.append(f"  participant {participant}", "dim")
        caller = _party(data, "caller")
        if caller != "?":
            line.append(f"  {caller}")

    def _other(self, line: Line, name: str, event: Event) -> None:
        line.append(f"{name:<16}", "bold")
        line.append(f" {sanitize(event.routing_key)} ", "dim")
        summary = compact_json(event.data, sort_keys=True)
        line.append(sanitize(summary[:300] + ("…" if len(summary) > 300 else "")))


def _callee(data: dict[str, Any]) -> str:
    """Before answer, Kazoo has no callee id yet; the dialled request says where it goes."""
    request = _field(data, "request") or _field(data, "to")
    return request.split("@", 1)[0] if request else "?"


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


class _CallGroup:
    __slots__ = ("colour", "created", "answered", "live_legs")

    def __init__(self, colour: str, created: float) -> None:
        self.colour = colour
        self.created = created
        self.answered: float | None = None
        self.live_legs: set[str] = set()


class TimelineRenderer:
    """--calls: each call's events indented under its first line, in the call's colour.

    Legs bridged to each other (``other_leg_call_id``) share one group. A group is forgotten
    when its last leg is destroyed, and the oldest are dropped beyond a bound, so a tail that
    runs for days keeps constant memory.
    """

    MAX_CALLS = 2048

    def __init__(self, pretty: PrettyRenderer) -> None:
        self.pretty = pretty
        self._group_of_leg: dict[str, _CallGroup] = {}
        self._corner, self._bar = ("┌ ", "  │ ") if pretty.can_show("┌│") else ("+ ", "  | ")

    def render(self, event: Event) -> None:
        data = event.data
        call_id = _field(data, "call_id")
        if event.kind != "call" or not call_id:
            self.pretty.render(event)
            return
        other = _field(data, "other_leg_call_id")
        group = self._group_of_leg.get(call_id) or (
            self._group_of_leg.get(other) if other else None
        )
        when = event_time(event)
        if group is None:
            group = _CallGroup(call_colour(call_id), self._created(data, when))
            self._header(event, group, call_id)
        for leg in (call_id, other):
            if leg:
                self._group_of_leg[leg] = group
        group.live_legs.add(call_id)
        name = sanitize(event.name or "?")
        if name == "CHANNEL_ANSWER" and group.answered is None:
            group.answered = when
        line = Line()
        line.append(self._bar, group.colour)
        # Kazoo stamps whole seconds; milliseconds are shown only when we measured them.
        line.append(clock(when, millis=kazoo_time(event) is None), "dim")
        line.append(f" {name:<16}", _NAME_STYLES.get(name, "bold"))
        line.append(f" leg {call_id}", "dim")
        if name == "CHANNEL_DESTROY":
            self._ending(line, data, group, when)
            group.live_legs.discard(call_id)
            if not group.live_legs:
                self._forget(group)
        self.pretty.write(line)
        self._bound()

    def flush(self) -> None:
        self.pretty.flush()

    def _created(self, data: dict[str, Any], fallback: float) -> float:
        micros = data.get("channel_created_time")
        if isinstance(micros, int) and 1e15 < micros < 3e16:  # microseconds, 2001 to 2920
            return micros / 1e6
        return fallback

    def _header(self, event: Event, group: _CallGroup, call_id: str) -> None:
        data = event.data
        line = Line()
        line.append(f"{self._corner}call ", group.colour)
        line.append(call_id, f"bold {group.colour}")
        direction = _field(data, "call_direction")
        if direction:
            line.append(f"  {direction}")
        line.append(f"  {_party(data, 'caller')}")
        line.append(" -> ", "dim")
        line.append(_party(data, "callee") if data.get("callee_id_number") else _callee(data))
        line.append(f"  created {clock(group.created, millis=False)}", "dim")
        self.pretty.write(line)

    def _ending(self, line: Line, data: dict[str, Any], group: _CallGroup, when: float) -> None:
        ring = _seconds(data.get("ringing_seconds"))
        talk = _seconds(data.get("billing_seconds"))
        if ring is None:
            ring = (group.answered or when) - group.created
        if talk is None:
            talk = when - group.answered if group.answered else 0.0
        cause = _field(data, "hangup_cause")
        line.append(f"  ring {ring:.0f}s talk {talk:.0f}s  ")
        line.append(cause or "no cause", "green" if cause in _GOOD_HANGUPS else "bold red")

    def _forget(self, group: _CallGroup) -> None:
        for leg in [leg for leg, g in self._group_of_leg.items() if g is group]:
            del self._group_of_leg[leg]

    def _bound(self) -> None:
        # Calls whose DESTROY we never saw (missed in a gap) must not pile up forever.
        while len(self._group_of_leg) > self.MAX_CALLS:
            del self._group_of_leg[next(iter(self._group_of_leg))]


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
