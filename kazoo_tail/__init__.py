"""kazoo-tail: tail live events from a 2600Hz Kazoo cluster's blackhole websocket.

The Python API, with no click or rich involved::

    import kazoo_tail

    config = kazoo_tail.ConnectionConfig(
        url="http://kazoo.example.com:8000",
        account_name="acme",
        username="ops",
        password="...",
        bindings=["call.CHANNEL_CREATE.*"],
    )
    with kazoo_tail.open_session(config) as session:
        for item in session:
            if isinstance(item, kazoo_tail.Event):
                print(item.name, item.data.get("caller_id_number"))
            else:
                print("notice:", kazoo_tail.describe(item))

The session reconnects, de-duplicates and renews its token as the CLI does; a notice carries
its facts as fields (``kind``, ``url``, ``gap_from``...), and ``describe`` puts it in words.
Names load on first use, so that ``import kazoo_tail`` (and every TAB press of the CLI) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: hatchling reads it for the package metadata.
__version__ = "0.2.0"

if TYPE_CHECKING:
    from kazoo_tail.auth.store import ConfigStore
    from kazoo_tail.errors import (
        AuthError,
        ConnectError,
        ExitCode,
        KazooTailError,
        SubscribeError,
        UsageError,
    )
    from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
    from kazoo_tail.output.notices import describe
    from kazoo_tail.session.resolve import ConnectionConfig, open_session
    from kazoo_tail.session.session import Session

__all__ = [
    "AuthError",
    "ConfigStore",
    "ConnectError",
    "ConnectionConfig",
    "Event",
    "ExitCode",
    "KazooTailError",
    "Notice",
    "NoticeKind",
    "Session",
    "SubscribeError",
    "UsageError",
    "__version__",
    "describe",
    "open_session",
]

_HOMES = {
    "ConfigStore": "kazoo_tail.auth.store",
    "AuthError": "kazoo_tail.errors",
    "ConnectError": "kazoo_tail.errors",
    "ExitCode": "kazoo_tail.errors",
    "KazooTailError": "kazoo_tail.errors",
    "SubscribeError": "kazoo_tail.errors",
    "UsageError": "kazoo_tail.errors",
    "Event": "kazoo_tail.kazoo.events",
    "Notice": "kazoo_tail.kazoo.events",
    "NoticeKind": "kazoo_tail.kazoo.events",
    "ConnectionConfig": "kazoo_tail.session.resolve",
    "open_session": "kazoo_tail.session.resolve",
    "Session": "kazoo_tail.session.session",
    "describe": "kazoo_tail.output.notices",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kazoo_tail' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
