"""Client-side selection, for what bindings cannot express: field globs, a regex on the event's
text, all legs of one call, and picking the fields to print."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kazoo_tail.errors import UsageError
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.json_text import compact_json

_MISSING = object()


def lookup(envelope: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``data.custom_channel_vars.owner_id``), or _MISSING."""
    value: Any = envelope
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return compact_json(value)  # str() would be Python's repr, and recurse
    return str(value)


def parse_condition(text: str, option: str) -> tuple[str, str]:
    path, sep, pattern = text.partition("=")
    if not sep or not path:
        raise UsageError(f"{option} takes PATH=GLOB, e.g. data.caller_id_number='1555*'")
    return path.strip(), pattern


@dataclass
class EventFilter:
    """Every --match must hold, no --exclude may; --grep searches the frame's JSON text."""

    matches: list[tuple[str, str]] = field(default_factory=list)
    excludes: list[tuple[str, str]] = field(default_factory=list)
    grep: re.Pattern[str] | None = None
    call_ids: set[str] = field(default_factory=set)

    @classmethod
    def from_options(
        cls,
        matches: Iterable[str] = (),
        excludes: Iterable[str] = (),
        grep: str | None = None,
        call_ids: Iterable[str] = (),
    ) -> EventFilter:
        pattern = None
        if grep is not None:
            try:
                pattern = re.compile(grep)
            except re.error as exc:
                raise UsageError(
                    f"--grep {grep!r} is not a valid regular expression: {exc}"
                ) from None
        return cls(
            matches=[parse_condition(m, "--match") for m in matches],
            excludes=[parse_condition(e, "--exclude") for e in excludes],
            grep=pattern,
            call_ids=set(call_ids),
        )

    @property
    def active(self) -> bool:
        return bool(self.matches or self.excludes or self.grep or self.call_ids)

    def accepts(self, event: Event) -> bool:
        if self.call_ids and not self._same_call(event):
            return False
        for path, pattern in self.matches:
            value = lookup(event.envelope, path)
            if value is _MISSING or not fnmatchcase(_as_text(value), pattern):
                return False
        for path, pattern in self.excludes:
            value = lookup(event.envelope, path)
            if value is not _MISSING and fnmatchcase(_as_text(value), pattern):
                return False
        if self.grep is not None:
            return self.grep.search(event.raw.decode("utf-8", "replace")) is not None
        return True

    def _same_call(self, event: Event) -> bool:
        """Whether the event belongs to a followed call; bridged legs join as they appear."""
        data = event.data
        legs = {_as_text(data[key]) for key in ("call_id", "other_leg_call_id") if data.get(key)}
        if not legs & self.call_ids:
            return False
        self.call_ids |= legs
        return True


def parse_fields(text: str) -> list[str]:
    fields = [part.strip() for part in text.split(",") if part.strip()]
    if not fields:
        raise UsageError("--fields takes a comma-separated list, e.g. name,data.call_id")
    return fields


def select_fields(envelope: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """The event reduced to these paths, keeping their nesting (so jq paths still work)."""
    reduced: dict[str, Any] = {}
    for path in paths:
        value = lookup(envelope, path)
        if value is _MISSING:
            continue
        keys = path.split(".")
        target = reduced
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                break
        else:
            target[keys[-1]] = value
    return reduced


def field_values(envelope: dict[str, Any], paths: list[str]) -> list[str]:
    values = []
    for path in paths:
        value = lookup(envelope, path)
        values.append("" if value is _MISSING else _as_text(value))
    return values
