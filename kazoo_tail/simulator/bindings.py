"""Blackhole binding rules: validation, subscription keys, key matching, the catalogue.

Mirrors the 4.3 modules bh_call, bh_object, bh_fax and bh_conference as described in
docs/protocol.md §4, including their exact error strings.
"""

from __future__ import annotations

import string
from datetime import datetime, timezone

CALL_EVENTS: tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_DESTROY",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "PARK_PARKED",
    "PARK_RETRIEVED",
    "PARK_ABANDONED",
)
OBJECT_ACTIONS: tuple[str, ...] = ("doc_created", "doc_edited", "doc_deleted")
OBJECT_TYPES: tuple[str, ...] = (
    "account",
    "callflow",
    "device",
    "faxbox",
    "media",
    "user",
    "vmbox",
    "fax",
    "mailbox_message",
    "call_recording",
)
MODB_TYPES: tuple[str, ...] = ("fax", "mailbox_message")
CONFERENCE_EVENTS: tuple[str, ...] = (
    "conference-create",
    "conference-destroy",
    "lock",
    "unlock",
    "add-member",
    "del-member",
    "stop-talking",
    "start-talking",
    "mute-member",
    "unmute-member",
    "deaf-member",
    "undeaf-member",
)
# Load order of the default modules; it decides which error wins when a wildcard
# first segment fans a binding out to every module.
MODULES: tuple[str, ...] = ("call", "object", "fax", "conference")

_SAFE = frozenset(string.ascii_letters + string.digits + "-~_")


def amqp_encode(value: str) -> str:
    """kz_amqp_util:encode/1, used for ids inside routing keys."""
    out: list[str] = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in _SAFE:
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def account_db(account_id: str) -> str:
    """Encoded account database name, e.g. account%2F4b%2F8c%2F6fec..."""
    return f"account%2F{account_id[0:2]}%2F{account_id[2:4]}%2F{account_id[4:]}"


def account_modb(account_id: str, when: datetime | None = None) -> str:
    moment = when or datetime.now(timezone.utc)
    return f"{account_db(account_id)}-{moment:%Y%m}"


def _join(keys: list[str]) -> str:
    return ", ".join(keys)


def _validate_call(keys: list[str]) -> str | None:
    if len(keys) != 2:
        return f"invalid format for call subscription : {_join(keys)}"
    event = keys[0]
    if event != "*" and event not in CALL_EVENTS:
        return f"event {event} not supported"
    return None


def _validate_object(keys: list[str]) -> str | None:
    if len(keys) != 2:
        return f"invalid format for object subscription : {_join(keys)}"
    action, doc_type = keys
    if action == "*" and doc_type == "*":
        return None
    if doc_type == "*":
        return None if action in OBJECT_ACTIONS else f"event {action}.* not supported"
    if action == "*":
        return None if doc_type in OBJECT_TYPES else f"event *.{doc_type} not supported"
    if action in OBJECT_ACTIONS and doc_type in OBJECT_TYPES:
        return None
    return f"event {action}.{doc_type} not supported"


def _validate_fax(keys: list[str]) -> str | None:
    if len(keys) == 2 and keys[0] in ("status", "object"):
        return None
    return f"invalid format for fax subscription : {_join(keys)}"


def _validate_conference(keys: list[str]) -> str | None:
    if len(keys) == 2 and keys[0] == "command":
        return "ConferenceId required" if keys[1] == "*" else None
    if len(keys) >= 2 and keys[0] == "event" and keys[1] == "*":
        return "ConferenceId required"
    if len(keys) == 3 and keys[0] == "event" and keys[2] == "*":
        return None
    if len(keys) == 4 and keys[0] == "event" and keys[2] == "*":
        event = keys[3]
        if event == "*" or event in CONFERENCE_EVENTS:
            return None
        return f"Unsupported conference event {event}"
    return f"invalid format for conference subscription : {_join(keys)}"


_VALIDATORS = {
    "call": _validate_call,
    "object": _validate_object,
    "fax": _validate_fax,
    "conference": _validate_conference,
}


def _call_keys(account_id: str, keys: list[str], when: datetime) -> list[str]:
    event, call_id = keys
    events = CALL_EVENTS if event == "*" else (event,)
    return [f"call.{account_id}.{name}.{call_id}" for name in events]


def _object_keys(account_id: str, keys: list[str], when: datetime) -> list[str]:
    action, doc_type = keys
    db = account_db(account_id)
    modb = account_modb(account_id, when)
    if doc_type == "*":
        return [f"{action}.{db}.*.*", f"{action}.{modb}.*.*"]
    chosen = modb if doc_type in MODB_TYPES else db
    return [f"{action}.{chosen}.{doc_type}.*"]


def _fax_keys(account_id: str, keys: list[str], when: datetime) -> list[str]:
    kind, value = keys
    if kind == "status":
        return [f"fax.status.{account_id}.{value}"]
    return [f"{value}.{account_modb(account_id, when)}.fax.*"]


def _conference_keys(account_id: str, keys: list[str], when: datetime) -> list[str]:
    if keys[0] == "command":
        return [f"conference.command.{keys[1]}"]
    conference_id, call_id = keys[1], keys[2]
    event = keys[3] if len(keys) == 4 else "*"
    return [f"conference.event.{event}.{account_id}.{conference_id}.{call_id}"]


_KEY_BUILDERS = {
    "call": _call_keys,
    "object": _object_keys,
    "fax": _fax_keys,
    "conference": _conference_keys,
}


def _modules_for(prefix: str) -> list[str]:
    # blackhole_bindings matches symmetrically, so a wildcard prefix reaches every module.
    if prefix in ("*", "#"):
        return list(MODULES)
    return [prefix] if prefix in _VALIDATORS else []


def validate_binding(binding: str) -> str | None:
    """The validate-step error for this client binding, or None when it is acceptable."""
    prefix, *keys = binding.split(".")
    for module in _modules_for(prefix):
        error = _VALIDATORS[module](keys)
        if error is not None:
            return error
    return None


def subscriptions_for(
    binding: str, account_id: str, when: datetime | None = None
) -> list[tuple[str, str]]:
    """(client binding, subscription key) pairs, one per internal AMQP binding.

    An empty list means no module handles the binding ("no available subscriptions").
    The caller must have validated the binding first.
    """
    moment = when or datetime.now(timezone.utc)
    prefix, *keys = binding.split(".")
    pairs: list[tuple[str, str]] = []
    for module in _modules_for(prefix):
        requested = ".".join([module, *keys])
        pairs.extend((requested, key) for key in _KEY_BUILDERS[module](account_id, keys, moment))
    return pairs


def _matches(pattern: list[str], key: list[str]) -> bool:
    if not pattern:
        return not key
    head = pattern[0]
    if head == "#":
        return any(_matches(pattern[1:], key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    if head == "*" or key[0] == "*" or head == key[0]:
        return _matches(pattern[1:], key[1:])
    return False


def keys_match(subscription_key: str, routing_key: str) -> bool:
    """AMQP topic matching (``*`` one segment, ``#`` zero or more), symmetric like bh_match."""
    a = subscription_key.split(".")
    b = routing_key.split(".")
    return _matches(a, b) or _matches(b, a)


def catalogue() -> dict[str, list[str]]:
    """The 4.3 flavour of system_config blackhole.bindings, served by GET /v2/websockets."""
    conference = ["conference.command.{CONFERENCE_ID}"]
    conference.extend(
        f"conference.event.{{CONFERENCE_ID}}.{{CALL_ID}}.{event}"
        for event in reversed(("*", *CONFERENCE_EVENTS))
    )
    return {
        "call": [f"call.{event}.{{CALL_ID}}" for event in CALL_EVENTS],
        "conference": conference,
        "fax": ["fax.status.{FAX_ID}", "fax.object.{ACTION}"],
        "object": [f"object.{a}.{t}" for a in OBJECT_ACTIONS for t in OBJECT_TYPES],
    }
