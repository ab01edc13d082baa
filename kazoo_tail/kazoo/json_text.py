"""JSON text from an untrusted server, made standard.

Python's json accepts what standard JSON does not (a ``\\ud800`` escape with no partner), so a
frame it parses can still make jq, or a strict UTF-8 encoder printing it, fail.
"""

from __future__ import annotations

import re

# A string, kept whole so that nothing inside it is taken for a token. The pattern is the
# unrolled loop: it cannot backtrack.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
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
    if "\\" not in token:
        return token
    return _ESCAPE.sub(_visible_lone_surrogate, token)


def standard_json(text: str) -> str:
    """``text`` as standard JSON: lone surrogate escapes spelt out.

    A lone surrogate cannot be printed or encoded as UTF-8; ``"\\ud800"`` becomes the
    string ``"\\\\ud800"``, which shows as ``\\ud800`` everywhere. Valid pairs (an emoji
    written as escapes) are left as they are. The text is scanned, not parsed, so nesting
    depth costs nothing.
    """
    return _STRING.sub(_standard_token, text)
