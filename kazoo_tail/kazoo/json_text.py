"""JSON text from an untrusted server: made standard, and written back without recursion.

Python's json accepts what standard JSON does not (``NaN``, ``Infinity``, a ``\\ud800`` escape
with no partner), so a frame it parses can still make jq, or a strict UTF-8 encoder printing
it, fail. And both of Python's json encoders, like ``repr``, recurse once per level of
nesting, so a value a server nested a thousand deep raises ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# A string (kept whole, so that nothing inside it is taken for a token), or a non-finite
# number outside strings. The string pattern is the unrolled loop: it cannot backtrack.
_STRING_OR_NON_FINITE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN', re.DOTALL)
# Inside a string, scanned from the left: a valid surrogate pair, a lone surrogate, or any
# other escape (consumed whole, so the "u" of an escaped backslash's "\\ud800" is not one).
_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|\\u([dD][89a-fA-F][0-9a-fA-F]{2})"
    r"|\\.",
    re.DOTALL,
)


def _visible_lone_surrogate(match: re.Match[str]) -> str:
    digits = match.group(1)
    # The backslash escaped: the string now holds the six characters of the escape itself.
    return match.group() if digits is None else "\\\\u" + digits.lower()


def _standard_token(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] != '"':
        # null, as JavaScript's JSON.stringify writes a non-finite number: the event is
        # still worth showing, and no standard JSON number means NaN.
        return "null"
    if "\\" not in token:
        return token
    return _ESCAPE.sub(_visible_lone_surrogate, token)


def standard_json(text: str) -> str:
    """``text`` as standard JSON: lone surrogate escapes spelt out, non-finite numbers null.

    A lone surrogate cannot be printed or encoded as UTF-8; ``"\\ud800"`` becomes the
    string ``"\\\\ud800"``, which shows as ``\\ud800`` everywhere. Valid pairs (an emoji
    written as escapes) are left as they are. The text is scanned, not parsed, so nesting
    depth costs nothing.
    """
    return _STRING_OR_NON_FINITE.sub(_standard_token, text)


class _Verbatim(str):
    """Punctuation to copy to the output, among the values still to write."""

    __slots__ = ()


_OPEN_OBJECT, _CLOSE_OBJECT = _Verbatim("{"), _Verbatim("}")
_OPEN_ARRAY, _CLOSE_ARRAY = _Verbatim("["), _Verbatim("]")


def compact_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text of a parsed value (non-ASCII kept as is), however deeply nested.

    A non-finite number (a parsed ``1e400``) is written as null, so the text is standard JSON.
    """
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
        )
    except (RecursionError, ValueError):  # ValueError: a non-finite number
        return _compact_json_without_recursion(value, sort_keys)


def _compact_json_without_recursion(value: Any, sort_keys: bool) -> str:
    written: list[str] = []
    # Last in, first out: a container pushes its closing bracket, then its members in
    # reverse, then its opening bracket.
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Verbatim):
            written.append(item)
        elif isinstance(item, dict):
            entries = sorted(item.items()) if sort_keys else list(item.items())
            pending.append(_CLOSE_OBJECT)
            for index in range(len(entries) - 1, -1, -1):
                key, member = entries[index]
                pending.append(member)
                separator = "," if index else ""
                pending.append(_Verbatim(f"{separator}{_scalar(str(key))}:"))
            pending.append(_OPEN_OBJECT)
        elif isinstance(item, (list, tuple)):
            pending.append(_CLOSE_ARRAY)
            for index in range(len(item) - 1, -1, -1):
                pending.append(item[index])
                if index:
                    pending.append(_Verbatim(","))
            pending.append(_OPEN_ARRAY)
        else:
            written.append(_scalar(item))
    return "".join(written)


def _scalar(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    return json.dumps(value, ensure_ascii=False)
