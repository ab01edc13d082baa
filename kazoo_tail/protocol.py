"""Blackhole's wire format, as pure functions: no sockets here.

See shared/kazoo/blackhole-protocol.md: one ``binding`` per subscribe, ``auth_token`` and a
unique ``request_id`` on every message, replies matched by ``request_id`` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from kazoo_tail import catalog
from kazoo_tail.errors import UsageError
from kazoo_tail.events import Event

KNOWN_MODULES = ("call", "object", "fax", "conference", "presence")
OBJECT_ACTIONS = ("doc_created", "doc_edited", "doc_deleted")


class BadFrame(Exception):
    """A frame that is not a JSON object; the reason is safe to show."""


@dataclass(frozen=True, slots=True)
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
            return [str(error) for error in errors]
        return [json.dumps(self.data)[:200]]


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
        # most of the cost of an event; json's leniency (huge integers, NaN) is the fallback.
        envelope = orjson.loads(payload)
    except orjson.JSONDecodeError:
        envelope = _parse_leniently(payload)
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


def _parse_leniently(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFrame("a text frame that is not valid UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BadFrame("a frame nested too deeply to parse") from None
    except ValueError:
        raise BadFrame("a frame that is not JSON") from None


def check_binding(binding: str) -> None:
    """Reject bindings that blackhole can never accept, suggesting the form it wants.

    Deliberately liberal: an operator may load modules we do not know, so anything that could
    be valid goes to the server, which has the last word.
    """
    if not binding or binding != binding.strip() or " " in binding:
        raise UsageError(f"binding {binding!r} is not valid: it must be non-empty, without spaces")
    segments = binding.split(".")
    if any(segment == "" for segment in segments):
        raise UsageError(f"binding {binding!r} is not valid: it has an empty segment")
    module = segments[0]
    if module in ("*", "#"):
        raise UsageError(
            f"binding {binding!r} is not valid: the first segment must name a module "
            f"({', '.join(KNOWN_MODULES)}), e.g. 'call.*.*'"
        )
    suggestion = suggest_binding(binding)
    if suggestion is not None:
        raise UsageError(
            f"binding {binding!r} is not a blackhole binding; did you mean {suggestion!r}?"
        )
    reason = catalog.problem(binding)
    if reason is not None:
        closest = catalog.nearest(binding)
        hint = f"; did you mean {closest!r}?" if closest else ""
        raise UsageError(f"binding {binding!r} cannot exist: {reason}{hint}")


def suggest_binding(binding: str) -> str | None:
    """The blackhole form of an AMQP-style routing pattern, as Kazoo's old docs showed them."""
    segments = binding.split(".")
    if segments[0] in OBJECT_ACTIONS and len(segments) >= 3:
        return f"object.{segments[0]}.{segments[2]}"
    if segments[0] in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY", "CHANNEL_BRIDGE"):
        return f"call.{segments[0]}.*"
    if segments[0] == "call" and len(segments) == 4:
        return f"call.{segments[2]}.{segments[3]}"
    return None


def check_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    """A usage error, before any connection, for a URL that cannot work."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        port, parts = -1, urlsplit("")
    if parts.scheme not in schemes or not parts.hostname or port == -1:
        raise UsageError(
            f"{what} {url!r} is not a valid URL: it must look like "
            f"{schemes[0]}://HOST:PORT (scheme {' or '.join(schemes)})"
        )


def default_ws_url(crossbar_url: str) -> str:
    """Blackhole's usual address on the Crossbar host: ws on 5555, or wss on 7777 via HAProxy."""
    parts = urlsplit(crossbar_url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    if parts.scheme == "https":
        return f"wss://{host}:7777"
    return f"ws://{host}:5555"
