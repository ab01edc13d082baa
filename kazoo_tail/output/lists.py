"""The list commands' output (``bindings``, ``sockets``) in the form its reader needs: an
aligned table for a person at a terminal, one item per line for grep, cut and awk, and JSON
lines (one object per item) for jq.

Every cell is server text or made from it, so each is escaped before it is written; JSON lines
are strict JSON in printable ASCII whatever the server sent.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal

from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.output.jsonl import escape_json_text
from kazoo_tail.output.terminal import sanitize

ListForm = Literal["table", "lines", "json"]
COLUMN_GAP = "  "


def list_form(output: str | None, stdout_isatty: bool) -> ListForm:
    """``-o json``: JSON lines; ``-o pretty``: the table; by default the table on a terminal
    and one item per line when piped."""
    if output == "json":
        return "json"
    if output == "pretty" or stdout_isatty:
        return "table"
    return "lines"


def write_table(out: IO[str], header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last is not padded, so a long one wraps at
    the terminal's edge rather than pushing blanks after it."""
    cells = [[sanitize(cell) for cell in row] for row in [header, *rows]]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        padded = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row)]
        padded[-1] = row[-1]
        out.write(COLUMN_GAP.join(padded).rstrip() + "\n")


def write_lines(out: IO[str], rows: Sequence[Sequence[str]]) -> None:
    """One item per line, its fields apart by tabs (a tab inside a field is escaped)."""
    for row in rows:
        out.write("\t".join(sanitize(cell) for cell in row) + "\n")


def write_json_lines(out: IO[str], items: Sequence[Mapping[str, Any]]) -> None:
    for item in items:
        out.write(escape_json_text(compact_json(item)) + "\n")


def display_width(text: str) -> int:
    """Columns the text takes on a terminal: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
