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
    if isinstance(value, (dict, list)):
        return compact_json(value)  # str() would be Python's repr, and recurse
    return str(value)


def parse_condition(text: str, option: str) -> tuple[str, str]:
    path, sep, pattern = text.partition("=")
    if not sep or not path:
        raise UsageError(f"{option} takes PATH=GLOB, e.g. data.caller_id_number='+1415*'")
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


# How many events a --match or --exclude path may go unseen in before the user is told.
ADVICE_AFTER = 100
# Bounds on the paths remembered from those events, so that a frame nested a thousand deep or
# with a thousand keys costs little: a path a user types is rarely deeper.
_ADVICE_DEPTH = 8
_ADVICE_PATHS = 20_000


class UnseenPathAdvice:
    """Watches the first events for --match/--exclude/--fields paths none of them had, and
    names the nearest path they did have: ``caller_id_number`` is almost always
    ``data.caller_id_number``, and ``data.hangup_casue`` is ``data.hangup_cause``.

    Nearest is, first, a path seen that differs only in case, else one that ends in the one
    given (the shortest: a missing prefix is the usual slip), else the closest by difflib's
    ratio (a typo), else none.
    """

    def __init__(
        self,
        conditions: Iterable[tuple[str, str]],
        after: int = ADVICE_AFTER,
        fields: Iterable[str] = (),
    ) -> None:
        self.unseen: dict[str, str] = {}  # path -> the option and condition that named it
        for option, text in conditions:
            path = parse_condition(text, option)[0]
            self.unseen.setdefault(path, f"{option} {text}")
        for path in fields:
            self.unseen.setdefault(path, f"--fields {path}")
        self.after = after
        self.events = 0
        self.seen: set[str] = set()

    @classmethod
    def for_options(
        cls, matches: Iterable[str], excludes: Iterable[str], fields: Iterable[str] = ()
    ) -> UnseenPathAdvice:
        conditions = [("--match", m) for m in matches] + [("--exclude", e) for e in excludes]
        return cls(conditions, fields=fields)

    @property
    def done(self) -> bool:
        return not self.unseen or self.events >= self.after

    def observe(self, envelope: dict[str, Any]) -> list[str]:
        """Advice to give now: once, on the event that completes the first ``after``."""
        if self.done:
            return []
        self.events += 1
        for path in [p for p in self.unseen if lookup(envelope, p) is not _MISSING]:
            del self.unseen[path]
        if self.unseen:
            self._remember_paths(envelope)
        if self.events < self.after:
            return []
        advice = [self._advice(path, named) for path, named in self.unseen.items()]
        self.seen.clear()
        return advice

    def _advice(self, path: str, named: str) -> str:
        if named.startswith("--fields"):
            effect = "it shows nothing"
        else:
            effect = "none passed it" if named.startswith("--match") else "it dropped none"
        said = f'{named}: none of the first {self.events} events has "{path}", so {effect}'
        nearest = self.nearest(path)
        return f'{said}; did you mean "{nearest}"?' if nearest else said

    def nearest(self, path: str) -> str | None:
        folded = path.casefold()
        same_but_case = sorted(p for p in self.seen if p.casefold() == folded)
        if same_but_case:
            return same_but_case[0]
        ending = "." + folded
        longer = sorted(
            (p for p in self.seen if p.casefold().endswith(ending)), key=lambda p: (len(p), p)
        )
        if longer:
            return longer[0]
        import difflib  # only when advice is due: every tail loads this module

        close = difflib.get_close_matches(path, sorted(self.seen), n=1, cutoff=0.7)
        return close[0] if close else None

    def _remember_paths(self, envelope: dict[str, Any]) -> None:
        # A stack, not recursion: a frame can be nested deeper than Python recurses.
        stack: list[tuple[str, dict[str, Any], int]] = [("", envelope, 1)]
        while stack and len(self.seen) < _ADVICE_PATHS:
            prefix, mapping, depth = stack.pop()
            for key, value in mapping.items():
                path = f"{prefix}{key}"
                self.seen.add(path)
                if isinstance(value, dict) and depth < _ADVICE_DEPTH:
                    stack.append((path + ".", value, depth + 1))


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
