"""A fake 2600Hz Kazoo (Crossbar auth API + blackhole websocket) for tests and demos.

It is an independent reading of docs/protocol.md and imports
nothing from the rest of kazoo_tail, so client bugs cannot hide behind shared code.
"""

from .accounts import DEMO, DemoIdentity
from .core import Simulator, SimulatorConfig, Stats
from .runner import serve_forever
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
