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


def write_table(
    out: IO[str],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    separator: str = ", ",
) -> None:
    """Columns padded to their widest cell. The last (a list of bindings, apart by
    ``separator``) is not padded, and within ``width`` columns it is folded between its
    items, never inside one: the next lines start under the column, or, when an item could
    not fit there, every item goes below the row, indented."""
    cells = [[sanitize(cell) for cell in row] for row in [header, *rows]]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(header))]
    start = sum(widths[:-1]) + len(COLUMN_GAP) * (len(header) - 1)
    mark = separator.rstrip()
    # One layout for the whole table: beside the row when every item fits the column.
    beside = width is None or all(
        display_width(item) + len(mark) <= width - start
        for row in cells
        for item in row[-1].split(separator)
    )
    for row in cells:
        padded = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row)]
        head = COLUMN_GAP.join(padded[:-1]) + (COLUMN_GAP if len(row) > 1 else "")
        items = row[-1].split(separator)
        if width is None:
            out.write((head + row[-1]).rstrip() + "\n")
        elif beside:
            first, *more = _folded(items, separator, width - start)
            out.write((head + first).rstrip() + "\n")
            out.writelines(" " * start + line + "\n" for line in more)
        else:
            out.write(head.rstrip() + "\n")
            lines = _folded(items, separator, max(1, width - len(_BELOW)))
            out.writelines(_BELOW + line + "\n" for line in lines)


# Where a list too wide for its column goes: on the lines below its row, indented.
_BELOW = "    "


def _folded(items: Sequence[str], separator: str, room: int) -> list[str]:
    """The items apart by the separator in lines of at most ``room`` columns (a line ends
    with the separator's mark when more follow); an item longer than that has a line of its
    own, whole."""
    mark = separator.rstrip()
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line}{separator}{item}" if line else item
        if line and display_width(candidate) + len(mark) > room:
            lines.append(line + mark)
            line = item
        else:
            line = candidate
    lines.append(line)
    return lines


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
