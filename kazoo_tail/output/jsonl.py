"""Output for programs: JSON lines, and the reduced objects --fields asks for.

Everything in an event is untrusted. JSON lines are written exactly as received when that is
safe (plain ASCII, one line) and re-encoded with every control character escaped otherwise. A
frame that was not standard JSON (NaN, a lone surrogate escape) arrives here made standard
at parsing (kazoo/json_text.py), so every line is valid for jq.
Stdlib only, so that JSON mode never pays for importing rich.
"""

from __future__ import annotations

import re
from typing import IO

from kazoo_tail.features.filters import select_fields
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.output.registry import Renderer, RenderOptions

# Outside JSON's printable ASCII: whitespace between tokens, or characters inside strings.
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return " "  # valid JSON has these raw only between tokens, where a space does as well
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def escape_json_text(text: str) -> str:
    """The same JSON value as ``text``, on one line, in printable ASCII only.

    JSON's syntax is ASCII, so anything else in a valid document is inside a string, where a
    \\u escape means the same character. Working on the text, not the parsed value, keeps the
    frame as received (key order, numbers) and cannot recurse, however deep the nesting.
    """
    return _NOT_PRINTABLE_ASCII.sub(_escape_char, text)


def _received_at_member(event: Event) -> bytes:
    """``"received_at":"2026-12-02T17:57:03.123Z",``: a string, not epoch seconds, so that
    jq users can compare it with their logs; UTC, as a tail runs for days across zones."""
    return b'"received_at":"' + utc_stamp(event.received_at).encode() + b'",'


def _prepend(raw: bytes, member: bytes) -> bytes:
    """``member`` (ending in a comma) as the first member of the object ``raw``."""
    if raw[1:].lstrip() == b"}":
        member = member[:-1]  # an empty object takes no comma after the one member
    return b"{" + member + raw[1:]


class JsonLinesRenderer:
    """One compact JSON object per line, the frame as received."""

    def __init__(
        self, stream: IO[bytes], *, show_node: bool = False, received_at: bool = False
    ) -> None:
        self.stream = stream
        self.show_node = show_node
        self.received_at = received_at

    def render(self, event: Event) -> None:
        raw = event.raw
        # Plain ASCII without line breaks or DEL cannot carry a raw control character: JSON
        # forbids C0 inside strings, so the received bytes are already one safe line.
        if not raw.isascii() or b"\n" in raw or b"\r" in raw or b"\x7f" in raw:
            raw = escape_json_text(raw.decode("utf-8")).encode()
        # Added first, so that the frame as received follows unchanged.
        if self.received_at and raw.startswith(b"{"):
            raw = _prepend(raw, _received_at_member(event))
        if self.show_node and event.via is not None and raw.startswith(b"{"):
            node = escape_json_text(compact_json(event.via)).encode()
            raw = _prepend(raw, b'"node":' + node + b",")
        self.stream.write(raw + b"\n")

    def flush(self) -> None:
        self.stream.flush()


class FieldsJsonRenderer:
    """--fields in JSON mode: the event reduced to the chosen paths, one object per line."""

    def __init__(self, stream: IO[bytes], paths: list[str], *, received_at: bool = False) -> None:
        self.stream = stream
        self.paths = paths
        self.received_at = received_at

    def render(self, event: Event) -> None:
        reduced = escape_json_text(compact_json(select_fields(event.envelope, self.paths)))
        line = reduced.encode()
        if self.received_at:
            line = _prepend(line, _received_at_member(event))
        self.stream.write(line + b"\n")

    def flush(self) -> None:
        self.stream.flush()


def make(out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    if options.fields:
        return FieldsJsonRenderer(out, list(options.fields), received_at=options.received_at)
    return JsonLinesRenderer(out, show_node=options.show_node, received_at=options.received_at)
