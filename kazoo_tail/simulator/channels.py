"""ecallmgr's table of live channels, as Crossbar's ``GET /v2/accounts/{id}/channels`` lists
it: kept from the call events the simulator publishes, so that it holds exactly the legs of
its own live calls (docs/calls.md §1).

Each leg is one record, made at its CHANNEL_CREATE and deleted at its CHANNEL_DESTROY
(``ecallmgr_fs_channel:props_to_record/2`` on 4.3, ``jobj_to_record/3`` on master). A leg
knows its ``other_leg`` from its creation when the switch names it (``Other-Leg-Unique-ID``,
``variable_origination_uuid`` or the ``Bridge-ID`` CCV; the event's ``other_leg_call_id``):
the B-leg a bridge rings knows its A-leg, the A-leg learns its B-leg only at the bridge,
which sets it on both. ``answered`` is set by an answer, ``is_onhold`` by a hold; the CCVs
are refreshed from every event (ecallmgr's CHANNEL_DATA and CALL_UPDATE, which the
simulator does not publish: a carrier's leg learns its account's CCVs from routing, after
its CHANNEL_CREATE). ``timestamp`` is when the record was made, in Gregorian seconds.

What an item holds is ``to_props/1`` of the version the simulator plays, less the keys
``cb_channels:delete_keys/1`` removes: 4.3 lists the caller and callee ids and the known CCVs
at the top level; master drops the caller and callee ids and adds every CCV, in Kazoo's
spelling, under ``custom_channel_vars``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .traffic import GREGORIAN_OFFSET, Event

# The CCVs both versions' listings show at the top level of an item (the record's fields).
_LISTED_CCVS = ("username", "authorizing_id", "authorizing_type", "owner_id", "resource_id")
# The caller and callee ids: 4.3's to_props lists them, master's does not.
_IDS = ("caller_id_name", "caller_id_number", "callee_id_name", "callee_id_number")
_KAZOO_VERSIONS = ("4.3", "master")


def kazoo_spelling(key: str) -> str:
    """A CCV's name as Kazoo spells it (``resource_type`` -> ``Resource-Type``), which is how
    master's listing keeps them: blackhole's events lower-case them, the listing does not."""
    parts = key.split("_")
    return "-".join("ID" if part == "id" else part[:1].upper() + part[1:] for part in parts)


class Channels:
    """The live legs of every account, fed with the simulator's call events."""

    def __init__(self, kazoo_version: str = "4.3") -> None:
        if kazoo_version not in _KAZOO_VERSIONS:
            raise ValueError(f"kazoo_version must be one of {', '.join(_KAZOO_VERSIONS)}")
        self.kazoo_version = kazoo_version
        self._lock = threading.Lock()
        self._legs: dict[str, dict[str, Any]] = {}
        self._ccvs: dict[str, dict[str, Any]] = {}
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
                record = self._legs[call_id] = self._create(call_id, data, ccv)
                self._ccvs[call_id] = {}
            elif name == "CHANNEL_BRIDGE":
                # 4.3's update_callee_and_caller/2: an id is filled in only if still unknown.
                for key in _IDS:
                    if isinstance(data.get(key), str) and key not in record:
                        record[key] = data[key]
            for key in _LISTED_CCVS:
                if isinstance(ccv.get(key), str):
                    record[key] = ccv[key]
            self._ccvs[call_id].update(ccv)
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

    @staticmethod
    def _create(call_id: str, data: dict[str, Any], ccv: dict[str, Any]) -> dict[str, Any]:
        """props_to_record/2 (4.3) or jobj_to_record/3 (master) of a CHANNEL_CREATE."""
        record: dict[str, Any] = {
            "uuid": call_id,
            "direction": data.get("call_direction", "inbound"),
            "answered": False,  # Answer-State at the CHANNEL_CREATE
            "timestamp": int(time.time()) + GREGORIAN_OFFSET,  # kz_time:now_s()
            "destination": str(data.get("request", "")).split("@", 1)[0],
            "is_onhold": False,
            "is_loopback": data.get("channel_is_loopback") is True,
            # props:is_true / kz_json:is_true of the Channel-Authorized CCV: never absent.
            "channel_authorized": str(ccv.get("channel_authorized", "")).lower() == "true",
        }
        other = _other_leg(call_id, data, ccv)
        if other:
            record["other_leg"] = other
        for key in ("presence_id", "from_tag", *_IDS):
            if isinstance(data.get(key), str):
                record[key] = data[key]
        cavs = data.get("custom_application_vars")
        record["custom_application_vars"] = dict(cavs) if isinstance(cavs, dict) else {}
        return record

    def _drop(self, call_id: str) -> None:
        self._legs.pop(call_id, None)
        self._ccvs.pop(call_id, None)
        self._account_of.pop(call_id, None)
        for record in self._legs.values():
            if record.get("other_leg") == call_id:
                del record["other_leg"]  # the switch's CHANNEL_UNBRIDGE, when one side goes

    def listing(self, account_id: str) -> list[dict[str, Any]]:
        """The account's own legs (not its sub-accounts'), in no particular order."""
        now = int(time.time()) + GREGORIAN_OFFSET
        with self._lock:
            return [
                self._item(call_id, record, now)
                for call_id, record in self._legs.items()
                if self._account_of.get(call_id) == account_id
            ]

    def _item(self, call_id: str, record: dict[str, Any], now: int) -> dict[str, Any]:
        item = dict(record, elapsed_s=max(0, now - record["timestamp"]))
        cavs = item["custom_application_vars"]
        if self.kazoo_version == "master":
            for key in _IDS:
                item.pop(key, None)
            item["custom_channel_vars"] = {
                kazoo_spelling(key): value for key, value in self._ccvs[call_id].items()
            }
        elif not cavs:
            # 4.3 keeps the CAVs as a proplist, and kz_json:from_list_recursive/1 turns an
            # empty one ([], a list of ASCII codes) into the empty string.
            item["custom_application_vars"] = ""
        else:
            item["custom_application_vars"] = dict(cavs)
        return item

    def forget(self, call_ids: list[str]) -> None:
        """Legs hung up without a word: gone from the table, no event sent."""
        with self._lock:
            for call_id in call_ids:
                self._drop(call_id)

    def call_ids(self) -> list[str]:
        with self._lock:
            return list(self._legs)


def _other_leg(call_id: str, data: dict[str, Any], ccv: dict[str, Any]) -> str:
    """ecallmgr_fs_channel:get_other_leg/2 at a leg's creation: the leg the switch names
    (Other-Leg-Unique-ID, Other-Leg-Call-ID, variable_origination_uuid: the event's
    ``other_leg_call_id``), else the Bridge-ID CCV when it is not the leg itself."""
    for value in (data.get("other_leg_call_id"), ccv.get("bridge_id")):
        if isinstance(value, str) and value and value != call_id:
            return value
    return ""
