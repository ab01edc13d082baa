"""The ``pretty`` format: rich decides colours for a terminal; --fields is an aligned table."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any, Literal

from kazoo_tail.output.registry import ColourMode, Renderer, RenderOptions
from kazoo_tail.output.terminal import terminal_width

if TYPE_CHECKING:
    from rich.console import Console


def make(out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    if options.fields:
        from kazoo_tail.output.fields import FieldsTableRenderer
        from kazoo_tail.output.pretty import Painter

        # Fitted by the same rule as pretty lines: into a pipe, unless COLUMNS asks, whole;
        # coloured by the same rule too.
        fitted = _fits(text_out)
        return FieldsTableRenderer(
            out,
            list(options.fields),
            width=terminal_width(out) if fitted else _UNBOUNDED,
            painter=Painter(_console(text_out, options)),
        )
    return make_pretty(text_out, options)


def _UNBOUNDED() -> int:  # noqa: N802  (a width, named as the constant it is)
    return 1 << 20


def make_pretty(
    text_out: IO[str], options: RenderOptions, width: int | Literal["terminal"] = "terminal"
) -> Renderer:
    """Pretty lines or call timelines; ``width`` fixes the width lines fit (for tests)."""
    from kazoo_tail.output.pretty import PrettyRenderer, TimelineRenderer

    console = _console(text_out, options)
    if width == "terminal":
        fit = fitting_width(text_out, console)
        # On a terminal whose width COLUMNS does not fix, a resized pane is followed.
        follow = terminal_width(text_out) if fit is not None and _on_a_terminal(text_out) else None
        pretty = PrettyRenderer(console, width=fit, follow=follow)
    else:
        pretty = PrettyRenderer(console, width=width)
    return TimelineRenderer(pretty) if options.calls else pretty


def _console(text_out: IO[str], options: RenderOptions) -> Console:
    return console_for(text_out, options.colour)


def console_for(text_out: IO[str], colour: ColourMode) -> Console:
    """rich's console on stdout: it decides whether to colour (a terminal, NO_COLOR, TERM)
    unless --color says."""
    from rich.console import Console

    settings: dict[str, Any] = {}
    if colour == "always":
        settings.update(force_terminal=True, no_color=False)
    elif colour == "never":
        settings.update(color_system=None, no_color=True)
    return Console(
        file=text_out, highlight=False, markup=False, emoji=False, soft_wrap=True, **settings
    )


def fitting_width(text_out: IO[str], console: Console) -> int | None:
    """Lines fit the terminal they are shown on, or the width COLUMNS asks for; into a pipe
    or a file (grep, a ticket) nothing is elided unless COLUMNS is exported."""
    return int(console.width) if _fits(text_out) else None


def _fits(text_out: IO[str]) -> bool:
    return _on_a_terminal(text_out) or os.environ.get("COLUMNS", "").isdigit()


def _on_a_terminal(text_out: IO[str]) -> bool:
    try:
        return text_out.isatty() and not os.environ.get("COLUMNS", "").isdigit()
    except (AttributeError, ValueError):
        return False
