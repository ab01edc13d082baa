"""A fake 2600Hz Kazoo (Crossbar auth API + blackhole websocket) for tests and demos.

It is an independent reading of docs/protocol.md and imports nothing from the rest of
kazoo_tail, so client bugs cannot hide behind shared code. Names load on first use, so that the
CLI can offer the simulator's command without starting to load its servers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .accounts import DEMO, DemoIdentity
    from .core import Simulator, SimulatorConfig
    from .runner import serve_forever
    from .stats import Stats
    from .traffic import Event

__all__ = [
    "DEMO",
    "DemoIdentity",
    "Event",
    "Simulator",
    "SimulatorConfig",
    "Stats",
    "serve_forever",
]

_HOMES = {
    "DEMO": ".accounts",
    "DemoIdentity": ".accounts",
    "Event": ".traffic",
    "Simulator": ".core",
    "SimulatorConfig": ".core",
    "Stats": ".stats",
    "serve_forever": ".runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kazoo_tail.simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
