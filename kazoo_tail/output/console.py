"""The ``pretty`` format: rich decides colours for a terminal; --fields is an aligned table."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any, Literal

from kazoo_tail.output.registry import Renderer, RenderOptions

if TYPE_CHECKING:
    from rich.console import Console


def make(out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    if options.fields:
        from kazoo_tail.output.fields import FieldsTableRenderer, terminal_width

        # Fitted by the same rule as pretty lines: into a pipe, unless COLUMNS asks, whole.
        fitted = _fits(text_out)
        return FieldsTableRenderer(
            out, list(options.fields), width=terminal_width(out) if fitted else _UNBOUNDED
        )
    return make_pretty(text_out, options)


def _UNBOUNDED() -> int:  # noqa: N802  (a width, named as the constant it is)
    return 1 << 20


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
    return int(console.width) if _fits(text_out) else None


def _fits(text_out: IO[str]) -> bool:
    try:
        terminal = text_out.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return terminal or os.environ.get("COLUMNS", "").isdigit()
