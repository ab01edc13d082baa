"""The ``pretty`` format: rich decides colours for a terminal; --fields stays plain text."""

from __future__ import annotations

from typing import IO, Any

from kazoo_tail.output.registry import Renderer, RenderOptions


def make(out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    if options.fields:
        from kazoo_tail.output.jsonl import FieldsTsvRenderer

        return FieldsTsvRenderer(out, list(options.fields))
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
    pretty = PrettyRenderer(console)
    return TimelineRenderer(pretty) if options.calls else pretty
