"""Blackhole's wire format, as pure functions: no sockets here.

See docs/protocol.md §3: one ``binding`` per subscribe, ``auth_token`` and a
unique ``request_id`` on every message, replies matched by ``request_id`` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kazoo_tail.kazoo import fast_json
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.json_text import compact_json, standard_json


class BadFrame(Exception):
    """A frame that is not a JSON object; the reason is safe to show."""


@dataclass(frozen=True)
class Reply:
    request_id: str
    status: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def errors(self) -> list[str]:
        errors = self.data.get("errors") if isinstance(self.data, dict) else None
        if isinstance(errors, list) and errors:
            return [
                error if isinstance(error, str) else compact_json(error)[:200] for error in errors
            ]
        return [compact_json(self.data)[:200]]


def subscribe_message(request_id: str, token: str, account_id: str, binding: str) -> str:
    return json.dumps(
        {
            "action": "subscribe",
            "auth_token": token,
            "request_id": request_id,
            "data": {"account_id": account_id, "binding": binding},
        },
        separators=(",", ":"),
    )


def parse_frame(payload: bytes, received_at: float) -> Event | Reply | None:
    """An event, a reply, or None for a well-formed frame of an action we do not know."""
    try:
        # orjson validates UTF-8 and parses about three times faster than json, which is
        # most of the cost of an event. It refuses what is not standard JSON; such a frame
        # is made standard first, and the event carries that text (see json_text.py).
        # Without orjson (the one-file build), fast_json's fallback refuses the same.
        envelope = fast_json.loads(payload)
    except fast_json.DECODE_ERRORS:
        payload, envelope = _parse_leniently(payload)
    if not isinstance(envelope, dict):
        raise BadFrame(f"a JSON {type(envelope).__name__} instead of an object")
    action = envelope.get("action")
    if action == "event":
        return Event(payload, envelope, received_at)
    if action == "reply":
        request_id = envelope.get("request_id")
        return Reply(
            request_id=str(request_id) if request_id is not None else "",
            status=str(envelope.get("status", "")),
            data=envelope.get("data"),
        )
    return None


def _parse_leniently(payload: bytes) -> tuple[bytes, Any]:
    """The frame made standard JSON, and what it holds."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFrame("a text frame that is not valid UTF-8") from None
    standard = standard_json(text)
    try:
        # json, for its leniency beyond the repairs (a number too big for a double).
        envelope = json.loads(standard)
    except RecursionError:
        raise BadFrame("a frame nested too deeply to parse") from None
    except ValueError:
        raise BadFrame("a frame that is not JSON") from None
    return (payload if standard == text else standard.encode()), envelope
