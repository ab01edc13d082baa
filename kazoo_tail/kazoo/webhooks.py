"""The HTTP request Kazoo's webhooks app would send for a blackhole event.

Pure: no I/O. ``build_request`` turns one event into a ``HookRequest`` (or a ``Skip`` saying
why Kazoo would send nothing); the sending, retrying and queueing live elsewhere. Every rule
here is read from the Kazoo source (4.3, with master's differences noted) and written down,
with the file and function for each fact, in docs/webhooks.md.

Blackhole's event ``data`` is the AMQP message normalised (keys lower-cased, ``-`` made ``_``,
nulls dropped; docs/protocol.md §3), so each field the webhooks app reads from the message is
read here under its normalised key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.webhook_rules import DEFAULT_FORMAT, DEFAULT_METHOD, FORMATS, METHODS

# The call events each channel hook binds (modules/webhooks_channel_*.erl, restrict_to).
CHANNEL_HOOKS = {
    "CHANNEL_CREATE": "channel_create",
    "CHANNEL_ANSWER": "channel_answer",
    "CHANNEL_BRIDGE": "channel_bridge",
    "CHANNEL_DESTROY": "channel_destroy",
}
# modules/webhooks_parking.erl binds these three.
PARKING_EVENTS = ("PARK_PARKED", "PARK_RETRIEVED", "PARK_ABANDONED")
# modules/webhooks_object.erl binds conf doc_updates: ?DOC_ACTIONS.
OBJECT_ACTIONS = ("doc_created", "doc_edited", "doc_deleted")

# The blackhole bindings that deliver every event the hooks above fire on.
HOOK_BINDINGS: tuple[str, ...] = (
    *(f"call.{name}.*" for name in CHANNEL_HOOKS),
    *(f"call.{name}.*" for name in PARKING_EVENTS),
    "object.*.*",
)

# kapps_call_command_types.hrl ?DEFAULT_CCV_KEYS, normalised as blackhole sends CCV keys. Only
# used when a reserved-key list is given (HookOptions.reserved_ccv_keys): see docs/webhooks.md.
DEFAULT_RESERVED_CCV_KEYS: tuple[str, ...] = tuple(
    key.lower().replace("-", "_")
    for key in (
        "Account-ID", "Account-Name", "Account-Realm", "Authorizing-ID", "Authorizing-Type",
        "Auto-Answer", "Call-Forward", "Call-Interaction-ID", "Ecallmgr-Node",
        "Call-Waiting-Disabled", "Confirm-Cancel-Timeout", "Confirm-File", "Confirm-Key",
        "Fax-Enabled", "Fetch-ID", "Loopback-Bowout", "Media-Encryption-Enforce-Security",
        "Media-Webrtc", "Owner-ID", "Presence-ID", "RTCP-MUX", "Realm",
        "Require-Ignore-Early-Media", "Retain-CID", "SIP-Invite-Domain", "Simplify-Loopback",
        "Username",
    )
)  # fmt: skip

# webhooks_parking:format/1 removes these (normalised) before sending the event itself.
_PARKING_REMOVED = (
    "node",
    "msg_id",
    "app_version",
    "app_name",
    "event_category",
    "custom_channel_vars",
)

NO_COUNTERPART = "no webhook counterpart"
LOOPBACK = "a loopback leg, left out by --exclude-internal-legs"
NO_MATCH = "custom data action/type do not match"
NO_ACCOUNT = "no account id in the event"
TOO_DEEP = "nested too deeply to encode"


def success(method: str, status: int) -> bool:
    """Whether Kazoo 4.3 counts the answer as delivered: 200 only, whatever the verb
    (webhooks_util:handle_resp/5). Master also takes 201 for a PUT."""
    del method  # 4.3 ignores it; kept so master's rule could be told apart here
    return status == 200


def retried(status: int | None) -> bool:
    """Whether Kazoo tries again: only when no answer came at all (kz_http {error, _});
    any status, 500 included, ends the delivery."""
    return status is None


@dataclass(frozen=True)
class HookOptions:
    method: str = DEFAULT_METHOD
    format: str = DEFAULT_FORMAT
    # --custom-data key=value, in the order given; values are strings, as the schema says.
    custom_data: tuple[tuple[str, str], ...] = ()
    # A webhook's include_internal_legs: true unless saved false (the schema's default, and
    # kzd_webhook:include_internal_legs/1's).
    include_internal_legs: bool = True
    # call_command's reserved_ccv_keys: None (a fresh system_config, the default) leaves
    # custom_channel_vars out of channel payloads; a tuple sends the CCVs not in it.
    reserved_ccv_keys: tuple[str, ...] | None = None
    # Sent as X-Hook-ID when not empty (Kazoo sends the webhook document's id).
    hook_id: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")


@dataclass(frozen=True)
class HookRequest:
    hook_event: str  # "channel_create" ... "object", "parking"; under format "event" the name
    method: str  # "POST" | "PUT" | "GET"
    query: str  # for GET: what Kazoo appends after "?"; else ""
    body: bytes  # b"" for GET
    content_type: str | None  # None for GET
    payload: dict[str, Any]  # the fields sent (after custom data), for display
    # Content-Type (not for GET), X-Hook-ID (when HookOptions.hook_id), X-Account-ID.
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Skip:
    hook_event: str | None  # None when no webhook counterpart
    reason: str


# -- which hook -------------------------------------------------------------------------------


def _is_call(event: Event) -> bool:
    return event.kind == "call" or event.data.get("event_category") == "call_event"


def _is_object(event: Event) -> bool:
    return event.kind == "object" or event.data.get("event_category") == "configuration"


def hook_event_for(event: Event) -> str | None:
    """The webhook an event would fire: channel_create/answer/bridge/destroy, parking,
    object, or None. CHANNEL_DISCONNECTED is None: webhooks_channel_util maps it to
    CHANNEL_DESTROY, but no hook module binds it, so it never reaches the app."""
    name = event.name
    if name is None:
        value = event.data.get("event_name")
        name = value if isinstance(value, str) else None
    if name is None:
        return None
    if _is_call(event):
        if name in CHANNEL_HOOKS:
            return CHANNEL_HOOKS[name]
        if name in PARKING_EVENTS:
            return "parking"
        return None
    if _is_object(event) and name in OBJECT_ACTIONS:
        return "object"
    return None


# -- Erlang's readers, on normalised data ------------------------------------------------------


def _ne_binary(value: Any) -> str | None:
    """kz_json:get_ne_binary_value: kz_term:to_binary of the value; empty means absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value or None
    return None


def _integer(value: Any) -> int | None:
    """kz_json:get_integer_value: kz_term:to_integer, not strict (floats are rounded)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            return int(value.strip(), 10) if value.strip() else None
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
    else:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    # Erlang's round/1 rounds halves away from zero.
    return int(math.floor(abs(number) + 0.5)) * (1 if number >= 0 else -1)


def _is_true(value: Any) -> bool:
    """kz_term:is_true: the atom true or the text "true", nothing else."""
    return value is True or value == "true"


def _ccvs(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("custom_channel_vars")
    return value if isinstance(value, dict) else {}


def _json_object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _account_from_key(key: str) -> str | None:
    # call.<ACCOUNT>.<EVENT>.<CALL ID>: the account the subscription was for.
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "call" and parts[1] not in ("", "*"):
        return parts[1]
    return None


def _call_account_id(event: Event) -> str | None:
    """kz_hooks_util:lookup_account_id/1: the CCV Account-ID; failing that Kazoo looks the
    dialled number up, which a client cannot; the subscription's account stands in."""
    found = _ne_binary(_ccvs(event.data).get("account_id"))
    if found is not None:
        return found
    for key in (event.envelope.get("subscription_key"), event.routing_key):
        if isinstance(key, str):
            account = _account_from_key(key)
            if account is not None:
                return account
    return None


def _is_loopback(data: dict[str, Any]) -> bool:
    name = _ne_binary(data.get("channel_name"))
    return (name is not None and name.startswith("loopback/")) or _is_true(
        data.get("channel_is_loopback")
    )


def _drop_undefined(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """kz_json:from_list: pairs whose value is undefined are left out."""
    return {key: value for key, value in pairs if value is not None}


def _channel_payload(
    event: Event, hook_event: str, account_id: str, options: HookOptions
) -> dict[str, Any]:
    """webhooks_channel_util:format_event/3 and base_hook_event/3."""
    data = event.data
    ccvs = _ccvs(data)

    def ccv(key: str) -> str | None:
        return _ne_binary(ccvs.get(key))

    was_global = _is_true(ccv("global_resource"))
    custom_channel_vars: dict[str, Any] | None = None
    if options.reserved_ccv_keys is not None:
        reserved = set(options.reserved_ccv_keys)
        custom_channel_vars = {k: v for k, v in ccvs.items() if k not in reserved}
    # handle_event/2 sets CCV Account-ID to the account it looked up before this runs.
    pairs: list[tuple[str, Any]] = [
        ("account_id", account_id),
        ("authorizing_id", ccv("authorizing_id")),
        ("authorizing_type", ccv("authorizing_type")),
        ("call_direction", data.get("call_direction")),
        ("call_forwarded", None if ccv("call_forward") is None else _is_true(ccv("call_forward"))),
        ("call_id", _ne_binary(data.get("call_id"))),
        ("callee_id_name", data.get("callee_id_name")),
        ("callee_id_number", data.get("callee_id_number")),
        ("caller_id_name", data.get("caller_id_name")),
        ("caller_id_number", data.get("caller_id_number")),
        ("custom_channel_vars", custom_channel_vars),
        ("custom_application_vars", _json_object(data.get("custom_application_vars"))),
        ("emergency_resource_used", _is_true(ccv("emergency_resource"))),
        ("from", data.get("from")),
        ("inception", data.get("inception")),
        ("local_resource_id", None if was_global else ccv("resource_id")),
        ("local_resource_used", not was_global),
        ("is_internal_leg", _is_true(data.get("channel_is_loopback"))),
        ("other_leg_call_id", _ne_binary(data.get("other_leg_call_id"))),
        ("owner_id", ccv("owner_id")),
        ("request", data.get("request")),
        # reseller_id: kz_services_reseller:get_id(AccountId), unknowable here.
        ("timestamp", _integer(data.get("timestamp"))),
        ("to", data.get("to")),
    ]
    if hook_event == "channel_bridge":
        pairs += [
            ("hook_event", hook_event),
            ("original_number", ccv("original_number")),
            ("other_leg_destination_number", _ne_binary(data.get("other_leg_destination_number"))),
        ]
    elif hook_event == "channel_destroy":
        pairs += [
            ("hook_event", hook_event),
            ("hangup_cause", _ne_binary(data.get("hangup_cause"))),
            ("hangup_code", _ne_binary(data.get("hangup_code"))),
            ("duration_seconds", _integer(data.get("duration_seconds"))),
            ("ringing_seconds", _integer(data.get("ringing_seconds"))),
            ("billing_seconds", _integer(data.get("billing_seconds"))),
        ]
    else:
        # create and answer: kz_json:set_value appends hook_event after the base fields.
        pairs.append(("hook_event", hook_event))
    return _drop_undefined(pairs)


def _object_account_id(data: dict[str, Any]) -> str | None:
    """webhooks_object:find_account_id/1: from the database the doc is in (an account or
    monthly database: its account; the accounts database: the doc's own id)."""
    database = _ne_binary(data.get("database"))
    if database is None:
        return _ne_binary(data.get("account_id"))
    if database == "accounts":
        return _ne_binary(data.get("id"))
    raw = database.replace("%2F", "/").replace("%2f", "/")
    if not raw.startswith("account/"):
        return None
    digits = raw[len("account/") :].replace("/", "")
    account = digits[:32]
    if len(account) == 32 and (len(digits) == 32 or digits[32] == "-"):
        return account
    return None


def _parking_payload(data: dict[str, Any], account_id: str) -> dict[str, Any]:
    """webhooks_parking:format/1: the event itself, normalised, minus bookkeeping, plus
    account_id (kz_json:set_value: replaced in place, else appended)."""
    payload = {k: v for k, v in data.items() if k not in _PARKING_REMOVED}
    payload["account_id"] = account_id
    return payload


def _custom_dict(options: HookOptions) -> dict[str, str]:
    custom: dict[str, str] = {}
    for key, value in options.custom_data:
        custom[key] = value
    return custom


def _merge_custom(custom: dict[str, str], payload: dict[str, Any]) -> dict[str, Any]:
    """kz_json:merge_jobjs(CustomData, JObj): each custom key is set on the payload, so custom
    data wins a clash; a clashing key keeps its place, new keys are appended, and as the fold
    runs from the right they come out in reverse order."""
    merged = dict(payload)
    for key, value in reversed(list(custom.items())):
        merged[key] = value
    return merged


# -- encodings -----------------------------------------------------------------------------------


def _urlencode_text(text: str) -> str:
    """kz_http_util:urlencode/2 (4.3; master's 'legacy'): space as +, [A-Za-z0-9.-~_] kept,
    every other byte of the UTF-8 text as %XX in upper-case hex: quote_plus's own rule when
    nothing else is declared safe."""
    return quote_plus(text, safe="")


def _erlang_float(value: float) -> str:
    """kz_http_util:urlencode/1 on a float (4.3): float_to_list/1 ("%.20e"), cut two
    characters after the point: 2.5 -> "2.50", 1234.5 -> "1.23" (the exponent is lost)."""
    text = f"{value:.20e}"
    return text[: text.index(".") + 3]


def _urlencode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _urlencode_text(_erlang_float(value))
    if isinstance(value, str):
        return _urlencode_text(value)
    if value is None:
        return "null"
    # An object or list inside a list: Kazoo's urlencode has no clause for it (the hook
    # crashes); its JSON text is sent instead.
    return _urlencode_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _encode_kv(prefix: str | None, key: str, value: Any) -> str:
    name = key if prefix is None else f"{prefix}[{key}]"
    if isinstance(value, dict):
        return _fold_kvs(value, name)
    if isinstance(value, list):
        return "&".join(f"{name}[]={_urlencode_value(item)}" for item in value)
    if value is None:
        # Kazoo has no clause for null (normalised data has none); an empty value is sent.
        return f"{name}="
    return f"{name}={_urlencode_value(value)}"


def _fold_kvs(obj: dict[str, Any], prefix: str | None) -> str:
    # fold_kvs/4 puts "&" between the pieces even when one is empty (an empty object or
    # list encodes to nothing), so "a=1&&b=2" is what Kazoo sends then.
    return "&".join(_encode_kv(prefix, str(key), value) for key, value in obj.items())


def json_to_querystring(payload: dict[str, Any]) -> str:
    """kz_http_util:json_to_querystring/1: ``k=v`` joined by ``&``, nested objects as
    ``k[sub]=v``, lists as ``k[]=v`` once per item, booleans as true/false, keys as they are
    (not encoded), values url-encoded with ``+`` for a space."""
    return _fold_kvs(payload, None)


def url_with_query(url: str, query: str) -> str:
    """webhooks_util:do_fire/3 for get: the hook's uri, "?", the query string: always a "?",
    even after a uri that has a query of its own or before an empty query."""
    return f"{url}?{query}"


def _jiffy(value: Any, level: int) -> str:
    inner = "\n" + "  " * (level + 1)
    outer = "\n" + "  " * level
    if isinstance(value, dict):
        members = [f"{_jiffy(str(k), 0)} : {_jiffy(v, level + 1)}" for k, v in value.items()]
        return "{" + inner + ("," + inner).join(members) + outer + "}"
    if isinstance(value, list):
        items = [_jiffy(item, level + 1) for item in value]
        return "[" + inner + ("," + inner).join(items) + outer + "]"
    return json.dumps(value, ensure_ascii=False)


def pretty_json(payload: Any) -> bytes:
    """kz_json:encode(JObj, [pretty]), laid out as jiffy's encoder does it: a newline and two
    spaces a level after every opening bracket and comma and before every closing one, so an
    empty object is "{", a blank line, "}"; " : " between a key and its value; UTF-8 written as
    is, "/" not escaped. Numbers are Python's (jiffy's shortest form agrees for integers)."""
    return _jiffy(payload, 0).encode("utf-8")


# -- the request -----------------------------------------------------------------------------------


def _headers(
    options: HookOptions, content_type: str | None, account_id: str | None
) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if options.hook_id:
        headers.append(("X-Hook-ID", options.hook_id))
    if account_id:
        headers.append(("X-Account-ID", account_id))
    return tuple(headers)


def _request(
    hook_event: str,
    options: HookOptions,
    payload: dict[str, Any],
    account_id: str | None,
    body: bytes | None = None,
) -> HookRequest:
    method = options.method.upper()
    if options.method == "get":
        # do_fire/3 for get ignores the format: the fields go in the query string.
        return HookRequest(
            hook_event=hook_event,
            method=method,
            query=json_to_querystring(payload),
            body=b"",
            content_type=None,
            payload=payload,
            headers=_headers(options, None, account_id),
        )
    if body is not None:
        content_type = "application/json"
    elif options.format == "json":
        content_type = "application/json"
        body = pretty_json(payload)
    else:
        content_type = "application/x-www-form-urlencoded"
        body = json_to_querystring(payload).encode("utf-8")
    return HookRequest(
        hook_event=hook_event,
        method=method,
        query="",
        body=body,
        content_type=content_type,
        payload=payload,
        headers=_headers(options, content_type, account_id),
    )


def build_request(event: Event, options: HookOptions) -> HookRequest | Skip:
    """The request Kazoo's webhooks app would send for ``event`` to a hook set up as
    ``options`` says, or why it would send none."""
    try:
        return _build_request(event, options)
    except RecursionError:
        # A frame may nest 1,024 deep (the parser's limit); the encoders recurse.
        return Skip(hook_event_for(event), TOO_DEEP)


def _build_request(event: Event, options: HookOptions) -> HookRequest | Skip:
    if options.format == "event":
        # Ours: the frame as blackhole sent it (envelope and all), for every event.
        envelope = event.envelope
        data_account = event.data.get("account_id")
        account = _ne_binary(_ccvs(event.data).get("account_id")) or _ne_binary(data_account)
        return _request(event.name or "", options, envelope, account, body=event.raw)
    hook_event = hook_event_for(event)
    if hook_event is None:
        return Skip(None, NO_COUNTERPART)
    custom = _custom_dict(options)
    data = event.data
    payload: dict[str, Any]
    if hook_event == "object":
        account_id = _object_account_id(data)
        if account_id is None:
            return Skip(hook_event, NO_ACCOUNT)
        action = event.name or _ne_binary(data.get("event_name"))
        doc_type = _ne_binary(data.get("type"))
        # webhooks_object:match_action_type/3 (4.3): with custom data, both must match.
        if custom and (custom.get("action") != action or custom.get("type") != doc_type):
            return Skip(hook_event, NO_MATCH)
        payload = _drop_undefined(
            [
                ("id", _ne_binary(data.get("id"))),
                ("account_id", account_id),
                ("action", action),
                ("type", doc_type),
            ]
        )
    elif hook_event == "parking":
        account_id = _ne_binary(_ccvs(data).get("account_id"))
        if account_id is None:
            return Skip(hook_event, NO_ACCOUNT)
        payload = _parking_payload(data, account_id)
    else:
        found = _call_account_id(event)
        if found is None:
            return Skip(hook_event, NO_ACCOUNT)
        account_id = found
        if not options.include_internal_legs and _is_loopback(data):
            return Skip(hook_event, LOOPBACK)
        payload = _channel_payload(event, hook_event, account_id, options)
    # webhooks_util:fire_hook/2: custom data over the payload, then cluster_id (unknowable).
    payload = _merge_custom(custom, payload)
    return _request(hook_event, options, payload, account_id)
