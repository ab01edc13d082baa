"""ecallmgr's table of live channels, as Crossbar's ``GET /v2/accounts/{id}/channels`` lists
it: kept from the call events the simulator publishes, so that it holds exactly the legs of
its own live calls (docs/calls.md §1).

Each leg is one record, made at its CHANNEL_CREATE and deleted at its CHANNEL_DESTROY.
``other_leg`` is set by a bridge on both legs, ``answered`` by an answer, ``is_onhold`` by a
hold; the CCVs the listing shows are refreshed from every event (a carrier's leg learns its
account's CCVs from routing, after its CHANNEL_CREATE). ``timestamp`` is when the record was
made, in Gregorian seconds, as on Kazoo 4.3.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .traffic import GREGORIAN_OFFSET, Event

# The CCVs 4.3's listing shows at the top level of an item.
_LISTED_CCVS = ("username", "authorizing_id", "authorizing_type", "owner_id", "resource_id")
_COPIED = ("presence_id", "caller_id_name", "caller_id_number", "callee_id_name")


class Channels:
    """The live legs of every account, fed with the simulator's call events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._legs: dict[str, dict[str, Any]] = {}
        self._account_of: dict[str, str] = {}

    def observe(self, event: Event) -> None:
        if not event.routing_key.startswith("call."):
            return
        data = event.data
        call_id = data.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            return
        name = event.name or data.get("event_name")
        ccv = data.get("custom_channel_vars")
        ccv = ccv if isinstance(ccv, dict) else {}
        with self._lock:
            if name in ("CHANNEL_DESTROY", "PARK_ABANDONED"):
                self._drop(call_id)
                return
            record = self._legs.get(call_id)
            if record is None:
                if name != "CHANNEL_CREATE":
                    return  # a leg the table never had (the simulator's lone early events)
                record = self._legs[call_id] = {
                    "uuid": call_id,
                    "direction": data.get("call_direction", "inbound"),
                    "answered": False,
                    "timestamp": int(time.time()) + GREGORIAN_OFFSET,
                    "destination": str(data.get("request", "")).split("@", 1)[0],
                    "is_onhold": False,
                    "is_loopback": False,
                }
            for key in _COPIED:
                if isinstance(data.get(key), str):
                    record[key] = data[key]
            for key in _LISTED_CCVS:
                if isinstance(ccv.get(key), str):
                    record[key] = ccv[key]
            account_id = ccv.get("account_id")
            if not isinstance(account_id, str):
                account_id = event.routing_key.split(".")[1]  # call.{ACCOUNT_ID}.{EVENT}.{ID}
            self._account_of.setdefault(call_id, account_id)
            if name == "CHANNEL_ANSWER":
                record["answered"] = True
            elif name in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
                record["is_onhold"] = name == "CHANNEL_HOLD"
            elif name == "CHANNEL_BRIDGE":
                other = data.get("other_leg_call_id")
                if isinstance(other, str) and other in self._legs:
                    record["other_leg"] = other
                    self._legs[other]["other_leg"] = call_id

    def _drop(self, call_id: str) -> None:
        self._legs.pop(call_id, None)
        self._account_of.pop(call_id, None)
        for record in self._legs.values():
            if record.get("other_leg") == call_id:
                del record["other_leg"]  # the other side is unbridged when this one goes

    def listing(self, account_id: str) -> list[dict[str, Any]]:
        """The account's own legs (not its sub-accounts'), in no particular order."""
        now = int(time.time()) + GREGORIAN_OFFSET
        with self._lock:
            return [
                dict(record, elapsed_s=max(0, now - record["timestamp"]))
                for call_id, record in self._legs.items()
                if self._account_of.get(call_id) == account_id
            ]

    def forget(self, call_ids: list[str]) -> None:
        """Legs hung up without a word: gone from the table, no event sent."""
        with self._lock:
            for call_id in call_ids:
                self._drop(call_id)

    def call_ids(self) -> list[str]:
        with self._lock:
            return list(self._legs)
