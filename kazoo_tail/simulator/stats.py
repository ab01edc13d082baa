"""Counters of what clients did to the simulator, for tests to assert on client behaviour."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class Stats:
    """Counters of what clients did; read them from tests to assert on client behaviour."""

    user_auth: int = 0
    api_auth: int = 0
    refresh: int = 0
    token_auth: int = 0
    websockets_catalog: int = 0
    descendants_pages: int = 0
    channel_listings: int = 0
    connections: int = 0
    subscribes: int = 0
    unsubscribes: int = 0
    pings: int = 0
    ws_pings: int = 0
    rejected_upgrades: int = 0
    events_published: int = 0
    rate_limited: int = 0
    frames_shed: int = 0
    replies_shed: int = 0
    send_timeouts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}

    def __getitem__(self, name: str) -> int:
        return self.as_dict()[name]
