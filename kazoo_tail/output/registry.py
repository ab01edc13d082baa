"""Output formats by name. A new format is one module with a ``make(out, text_out, options)``
factory and one entry in ``formats.FORMATS``; modules load only when chosen, so JSON output
never imports rich."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Literal, NamedTuple, Protocol

from kazoo_tail.output.formats import FORMATS

if TYPE_CHECKING:
    from kazoo_tail.kazoo.events import Event

__all__ = ["FORMATS", "ColourMode", "Factory", "RenderOptions", "Renderer", "make_renderer"]

ColourMode = Literal["auto", "always", "never"]


class Renderer(Protocol):
    def render(self, event: Event) -> None: ...
    def flush(self) -> None: ...


class RenderOptions(NamedTuple):
    colour: ColourMode = "auto"
    fields: Sequence[str] = ()
    calls: bool = False
    show_node: bool = False
    # JSON: a top-level "received_at", when the tail received each event (ISO 8601, UTC).
    received_at: bool = False


class Factory(Protocol):
    def __call__(self, out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer: ...


def make_renderer(name: str, out: IO[bytes], text_out: IO[str], options: RenderOptions) -> Renderer:
    module, _, factory = FORMATS[name].partition(":")
    make: Factory = getattr(importlib.import_module(module), factory)
    return make(out, text_out, options)
