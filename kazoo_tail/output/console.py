"""The ``pretty`` format: rich decides colours for a terminal; --fields stays plain text."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any, Literal

from kazoo_tail.output.registry import Renderer, RenderOptions

if TYPE_CHECKING:
    from rich.console import Console


def make(out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    if options.fields:
        from kazoo_tail.output.jsonl import FieldsTsvRenderer

        return FieldsTsvRenderer(out, list(options.fields))
    return make_pretty(text_out, options)


def make_pretty(
    text_out: IO[str], options: RenderOptions, width: int | Literal["terminal"] = "terminal"
) -> Renderer:
    """Pretty lines or call timelines; ``width`` fixes the width lines fit (for tests)."""
    from rich.console import Console

    from kazoo_tail.output.pretty import PrettyRenderer, TimelineRenderer

    settings: dict[str, Any] = {}
    if options.colour == "always":
        settings.update(force_terminal=True, no_color=False)
    elif options.colour == "never":
        settings.update(color_system=None, no_color=True)
    console = Console(
        file=text_out, highlight=False, markup=False, emoji=False, soft_wrap=True, **settings
    )
    fit = _fitting_width(text_out, console) if width == "terminal" else width
    pretty = PrettyRenderer(console, width=fit)
    return TimelineRenderer(pretty) if options.calls else pretty


def _fitting_width(text_out: IO[str], console: Console) -> int | None:
    """Lines fit the terminal they are shown on, or the width COLUMNS asks for; into a pipe
    or a file (grep, a ticket) nothing is elided unless COLUMNS is exported."""
    try:
        terminal = text_out.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if terminal or os.environ.get("COLUMNS", "").isdigit():
        return int(console.width)
    return None
