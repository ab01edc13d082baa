"""What Kazoo's webhooks app would send for blackhole events (kazoo_tail.kazoo.webhooks).

Every expected payload and encoded string below was written by hand from the Kazoo source
(docs/webhooks.md names the functions), not produced by the code under test. The events are
a device's call to the PSTN as its A-leg sees it, in tests/samples/webhooks/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kazoo_tail.kazoo import fast_json
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.webhook_rules import (
    DEFAULT_FORMAT,
    DEFAULT_METHOD,
    DEFAULT_RETRIES,
    FORMATS,
    MAX_RETRIES,
    METHODS,
    MIN_RETRIES,
    attempts,
)
from kazoo_tail.kazoo.webhooks import (
    HOOK_BINDINGS,
    LOOPBACK,
    NO_COUNTERPART,
    NO_MATCH,
    TOO_DEEP,
    HookOptions,
    HookRequest,
    Skip,
    build_request,
    hook_event_for,
    json_to_querystring,
    retried,
    success,
    url_with_query,
)
from kazoo_tail.simulator import Simulator

SAMPLES = Path(__file__).parent / "samples"
HOOKS = SAMPLES / "webhooks"

ACCOUNT = "4b8c6fec4b2597882c0390202d195419"
CALL_ID = "q2x7k1m9w4c8v5b3n6zt"
B_LEG = "5f0c8e2a-6b1d-4c3e-9a7f-2d8b4e6c1a90"
DEVICE = "d509114b66efabf32dfd78dc464b46dd"
OWNER = "699ed7e3d583e2577ac017c575f87262"
REALM = "wefwefwefwef.2600hz.com"
USER_DOC = "d7a1b9e3c4f24f5a8e0b1c2d3e4f5a6b"


def load(path: Path) -> Event:
    raw = path.read_bytes()
    return Event(raw, json.loads(raw), 0.0)


def hook(name: str) -> Event:
    return load(HOOKS / name)


def sample(name: str) -> Event:
    return load(SAMPLES / name)


def renamed(event: Event, name: str) -> Event:
    envelope = json.loads(event.raw)
    envelope["name"] = name
    envelope["data"]["event_name"] = name
    envelope["routing_key"] = f"call.{ACCOUNT}.{name}.{CALL_ID}"
    raw = json.dumps(envelope).encode()
    return Event(raw, envelope, 0.0)


def request(event: Event, **options: Any) -> HookRequest:
    result = build_request(event, HookOptions(**options))
    assert isinstance(result, HookRequest), result
    return result


# -- the payloads, by hand (webhooks_channel_util:base_hook_event/3 order) --------------------

CREATE: dict[str, Any] = {
    "account_id": ACCOUNT,
    "authorizing_id": DEVICE,
    "authorizing_type": "device",
    "call_direction": "inbound",
    "call_id": CALL_ID,
    "caller_id_name": "Front Desk",
    "caller_id_number": "1001",
    "custom_application_vars": {},
    "emergency_resource_used": False,
    "from": f"1001@{REALM}",
    "local_resource_used": True,
    "is_internal_leg": False,
    "owner_id": OWNER,
    "request": f"+14155550123@{REALM}",
    "timestamp": 63769746600,
    "to": f"+14155550123@{REALM}",
    "hook_event": "channel_create",
}

ANSWER: dict[str, Any] = {
    "account_id": ACCOUNT,
    "authorizing_id": DEVICE,
    "authorizing_type": "device",
    "call_direction": "inbound",
    "call_id": CALL_ID,
    "callee_id_number": "+14155550123",
    "caller_id_name": "Front Desk",
    "caller_id_number": "1001",
    "custom_application_vars": {"campaign": "spring sale"},
    "emergency_resource_used": False,
    "from": f"1001@{REALM}",
    "local_resource_used": True,
    "is_internal_leg": False,
    "other_leg_call_id": B_LEG,
    "owner_id": OWNER,
    "request": f"+14155550123@{REALM}",
    "timestamp": 63769746604,
    "to": f"+14155550123@{REALM}",
    "hook_event": "channel_answer",
}

BRIDGE: dict[str, Any] = {
    "account_id": ACCOUNT,
    "authorizing_id": DEVICE,
    "authorizing_type": "device",
    "call_direction": "inbound",
    "call_id": CALL_ID,
    "callee_id_number": "+14155550123",
    "caller_id_name": "Front Desk",
    "caller_id_number": "1001",
    "custom_application_vars": {"campaign": "spring sale"},
    "emergency_resource_used": False,
    "from": f"1001@{REALM}",
    "local_resource_used": True,
    "is_internal_leg": False,
    "other_leg_call_id": B_LEG,
    "owner_id": OWNER,
    "request": f"+14155550123@{REALM}",
    "timestamp": 63769746604,
    "to": f"+14155550123@{REALM}",
    "hook_event": "channel_bridge",
    # original_number: a CCV stepswitch sets on the carrier leg, not on this one: left out.
    "other_leg_destination_number": "+14155550123",
}

DESTROY: dict[str, Any] = {
    "account_id": ACCOUNT,
    "authorizing_id": DEVICE,
    "authorizing_type": "device",
    "call_direction": "inbound",
    "call_id": CALL_ID,
    "callee_id_number": "+14155550123",
    "caller_id_name": "Front Desk",
    "caller_id_number": "1001",
    "custom_application_vars": {"campaign": "spring sale"},
    "emergency_resource_used": False,
    "from": f"1001@{REALM}",
    "local_resource_used": True,
    "is_internal_leg": False,
    "other_leg_call_id": B_LEG,
    "owner_id": OWNER,
    "request": f"+14155550123@{REALM}",
    "timestamp": 63769746647,
    "to": f"+14155550123@{REALM}",
    "hook_event": "channel_destroy",
    "hangup_cause": "NORMAL_CLEARING",
    "hangup_code": "sip:200",
    "duration_seconds": 47,
    "ringing_seconds": 4,
    "billing_seconds": 42,
}

A_LEG = [
    ("01_a_leg_channel_create.json", "channel_create", CREATE),
    ("02_a_leg_channel_answer.json", "channel_answer", ANSWER),
    ("03_a_leg_channel_bridge.json", "channel_bridge", BRIDGE),
    ("04_a_leg_channel_destroy.json", "channel_destroy", DESTROY),
]


@pytest.mark.parametrize(("name", "hook_event", "expected"), A_LEG)
def test_a_device_to_pstn_a_leg_gives_kazoo_s_payloads(
    name: str, hook_event: str, expected: dict[str, Any]
) -> None:
    event = hook(name)
    assert hook_event_for(event) == hook_event
    sent = request(event, format="json")
    assert sent.hook_event == hook_event
    assert sent.payload == expected
    # Field order follows kz_json:from_list's (the receiver should not care, but it is cheap).
    assert list(sent.payload) == list(expected)
    assert sent.method == "POST"
    assert sent.content_type == "application/json"
    assert sent.query == ""
    assert json.loads(sent.body) == expected


def test_the_json_body_is_jiffy_s_pretty_layout() -> None:
    body = request(hook("01_a_leg_channel_create.json"), format="json").body
    assert body.startswith(b'{\n  "account_id" : "' + ACCOUNT.encode() + b'",\n  "authorizing_id"')
    # jiffy's pretty printer writes an empty object over three lines.
    assert b'\n  "custom_application_vars" : {\n    \n  },\n' in body
    assert body.endswith(b'\n  "hook_event" : "channel_create"\n}')


def test_form_data_is_kazoo_s_query_string() -> None:
    sent = request(hook("01_a_leg_channel_create.json"))
    assert sent.method == "POST"
    assert sent.content_type == "application/x-www-form-urlencoded"
    # The empty custom_application_vars encodes to nothing between two "&" (fold_kvs/4).
    assert sent.body == (
        b"account_id=4b8c6fec4b2597882c0390202d195419"
        b"&authorizing_id=d509114b66efabf32dfd78dc464b46dd"
        b"&authorizing_type=device&call_direction=inbound&call_id=q2x7k1m9w4c8v5b3n6zt"
        b"&caller_id_name=Front+Desk&caller_id_number=1001"
        b"&&emergency_resource_used=false"
        b"&from=1001%40wefwefwefwef.2600hz.com"
        b"&local_resource_used=true&is_internal_leg=false"
        b"&owner_id=699ed7e3d583e2577ac017c575f87262"
        b"&request=%2B14155550123%40wefwefwefwef.2600hz.com"
        b"&timestamp=63769746600"
        b"&to=%2B14155550123%40wefwefwefwef.2600hz.com"
        b"&hook_event=channel_create"
    )


def test_get_puts_the_fields_in_the_query_string() -> None:
    sent = request(hook("04_a_leg_channel_destroy.json"), method="get", format="json")
    assert sent.method == "GET"
    assert sent.body == b""
    assert sent.content_type is None
    assert sent.query == (
        "account_id=4b8c6fec4b2597882c0390202d195419"
        "&authorizing_id=d509114b66efabf32dfd78dc464b46dd"
        "&authorizing_type=device&call_direction=inbound&call_id=q2x7k1m9w4c8v5b3n6zt"
        "&callee_id_number=%2B14155550123"
        "&caller_id_name=Front+Desk&caller_id_number=1001"
        "&custom_application_vars[campaign]=spring+sale"
        "&emergency_resource_used=false"
        "&from=1001%40wefwefwefwef.2600hz.com"
        "&local_resource_used=true&is_internal_leg=false"
        "&other_leg_call_id=5f0c8e2a-6b1d-4c3e-9a7f-2d8b4e6c1a90"
        "&owner_id=699ed7e3d583e2577ac017c575f87262"
        "&request=%2B14155550123%40wefwefwefwef.2600hz.com"
        "&timestamp=63769746647"
        "&to=%2B14155550123%40wefwefwefwef.2600hz.com"
        "&hook_event=channel_destroy&hangup_cause=NORMAL_CLEARING&hangup_code=sip%3A200"
        "&duration_seconds=47&ringing_seconds=4&billing_seconds=42"
    )
    assert url_with_query("http://hooks.example/in", sent.query).startswith(
        "http://hooks.example/in?account_id=4b8c"
    )


def test_the_query_string_is_appended_after_a_question_mark_always() -> None:
    assert url_with_query("http://h/p", "a=1") == "http://h/p?a=1"
    assert url_with_query("http://h/p?x=1", "a=1") == "http://h/p?x=1?a=1"
    assert url_with_query("http://h/p", "") == "http://h/p?"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"a": "x y", "b": 3}, "a=x+y&b=3"),
        ({"a": {"b": {"c": "d"}}, "e": True}, "a[b][c]=d&e=true"),
        ({"l": ["a b", "c&d"], "f": False}, "l[]=a+b&l[]=c%26d&f=false"),
        ({"a": 1, "e": [], "b": 2}, "a=1&&b=2"),
        ({"a": {}, "b": 2}, "&b=2"),
        ({"k": "~._-*/:@+é"}, "k=~._-%2A%2F%3A%40%2B%C3%A9"),
        ({"f": 2.5, "g": 1234.5, "h": -0.125}, "f=2.50&g=1.23&h=-1.25"),
        ({"o": {"l": [1, True]}}, "o[l][]=1&o[l][]=true"),
        ({"key with space": "v"}, "key with space=v"),
        ({}, ""),
    ],
)
def test_json_to_querystring_matches_kz_http_util(payload: dict[str, Any], expected: str) -> None:
    assert json_to_querystring(payload) == expected


def test_custom_data_wins_a_clash_and_new_keys_come_last_in_reverse() -> None:
    custom = (("call_direction", "outbound"), ("zone", "east"), ("tier", "gold"))
    sent = request(hook("01_a_leg_channel_create.json"), format="json", custom_data=custom)
    expected = dict(CREATE, call_direction="outbound")
    expected["tier"] = "gold"
    expected["zone"] = "east"
    assert sent.payload == expected
    assert list(sent.payload) == list(expected)
    assert list(sent.payload)[3] == "call_direction"
    assert list(sent.payload)[-2:] == ["tier", "zone"]


def test_custom_data_given_twice_keeps_the_last_value() -> None:
    custom = (("zone", "east"), ("zone", "west"))
    sent = request(hook("01_a_leg_channel_create.json"), custom_data=custom)
    assert sent.payload["zone"] == "west"


def test_loopback_legs_are_skipped_unless_asked_for() -> None:
    event = hook("05_loopback_channel_create.json")
    assert build_request(event, HookOptions(include_internal_legs=False)) == Skip(
        "channel_create", LOOPBACK
    )
    sent = request(event, include_internal_legs=True, format="json")
    assert sent.payload == {
        "account_id": ACCOUNT,
        "authorizing_id": DEVICE,
        "authorizing_type": "device",
        "call_direction": "outbound",
        "call_id": "7c1d9e3f-2a4b-4c6d-8e0f-1a2b3c4d5e6f",
        "caller_id_name": "Front Desk",
        "caller_id_number": "1001",
        "custom_application_vars": {},
        "emergency_resource_used": False,
        "from": f"1001@{REALM}",
        "local_resource_used": True,
        "is_internal_leg": True,
        "owner_id": OWNER,
        "request": f"1002@{REALM}",
        "timestamp": 63769746601,
        "to": f"1002@{REALM}",
        "hook_event": "channel_create",
    }


def test_a_loopback_channel_name_alone_makes_a_leg_internal() -> None:
    envelope = json.loads(hook("01_a_leg_channel_create.json").raw)
    envelope["data"]["channel_name"] = "loopback/1002-b"
    event = Event(json.dumps(envelope).encode(), envelope, 0.0)
    assert build_request(event, HookOptions(include_internal_legs=False)) == Skip(
        "channel_create", LOOPBACK
    )
    # is_internal_leg reads Channel-Is-Loopback only.
    assert request(event, include_internal_legs=True).payload["is_internal_leg"] is False


def test_parking_sends_the_event_itself_less_its_bookkeeping() -> None:
    parked = renamed(hook("02_a_leg_channel_answer.json"), "PARK_PARKED")
    assert hook_event_for(parked) == "parking"
    payload = request(parked, format="json").payload
    # webhooks_parking:format/1 removes these and sets Account-ID.
    for gone in ("custom_channel_vars", "msg_id", "app_name", "app_version", "event_category"):
        assert gone not in payload
    assert list(payload)[-1] == "account_id"
    assert payload["account_id"] == ACCOUNT
    assert payload["event_name"] == "PARK_PARKED"
    assert payload["call_id"] == CALL_ID
    assert payload["custom_application_vars"] == {"campaign": "spring sale"}
    assert "hook_event" not in payload


OBJECT_CREATED = {
    "id": USER_DOC,
    "account_id": ACCOUNT,
    "action": "doc_created",
    "type": "user",
}
OBJECT_EDITED = dict(OBJECT_CREATED, action="doc_edited")


def test_object_hooks_for_a_user_created_and_edited() -> None:
    created = sample("08_event_object_doc_created_user.json")
    edited = hook("06_object_doc_edited_user.json")
    assert hook_event_for(created) == hook_event_for(edited) == "object"
    sent = request(created, format="json")
    assert sent.hook_event == "object"
    assert sent.payload == OBJECT_CREATED
    assert list(sent.payload) == list(OBJECT_CREATED)
    assert request(edited, format="json").payload == OBJECT_EDITED
    assert request(edited).body == (
        b"id=d7a1b9e3c4f24f5a8e0b1c2d3e4f5a6b&account_id=4b8c6fec4b2597882c0390202d195419"
        b"&action=doc_edited&type=user"
    )


def test_object_custom_data_action_and_type_pick_the_events() -> None:
    created = sample("08_event_object_doc_created_user.json")
    edited = hook("06_object_doc_edited_user.json")
    custom = (("action", "doc_created"), ("type", "user"))
    sent = request(created, custom_data=custom, format="json")
    # 4.3 merges them into the payload (the same values); master drops them first.
    assert sent.payload == OBJECT_CREATED
    assert build_request(edited, HookOptions(custom_data=custom)) == Skip("object", NO_MATCH)
    other_type = (("action", "doc_edited"), ("type", "device"))
    assert build_request(edited, HookOptions(custom_data=other_type)) == Skip("object", NO_MATCH)


def test_object_custom_data_without_action_and_type_never_fires_in_4_3() -> None:
    created = sample("08_event_object_doc_created_user.json")
    custom = (("team", "blue"),)
    assert build_request(created, HookOptions(custom_data=custom)) == Skip("object", NO_MATCH)
    # The channel hooks have no such rule.
    sent = request(hook("01_a_leg_channel_create.json"), custom_data=custom)
    assert sent.payload["team"] == "blue"


def test_events_without_a_webhook_are_skipped_for_one_reason() -> None:
    answer = hook("02_a_leg_channel_answer.json")
    conference = {
        "action": "event",
        "subscribed_key": "conference.event.*",
        "subscription_key": f"conference.{ACCOUNT}.event.*",
        "name": "event",
        "routing_key": f"conference.event.{ACCOUNT}.8a1b",
        "data": {"event": "add-member", "conference_id": "8a1b", "event_category": "conference"},
    }
    events = [
        renamed(answer, "CHANNEL_HOLD"),
        renamed(answer, "CHANNEL_UNHOLD"),
        # webhooks_channel_util maps it to CHANNEL_DESTROY, but no hook module binds it.
        renamed(answer, "CHANNEL_DISCONNECTED"),
        sample("09_event_fax_status.json"),
        Event(json.dumps(conference).encode(), conference, 0.0),
    ]
    for event in events:
        assert hook_event_for(event) is None
        for fmt in ("form-data", "json"):
            assert build_request(event, HookOptions(format=fmt)) == Skip(None, NO_COUNTERPART)


def test_format_event_sends_the_frame_as_received_for_every_event() -> None:
    for event in (
        hook("03_a_leg_channel_bridge.json"),
        hook("05_loopback_channel_create.json"),
        sample("09_event_fax_status.json"),
        renamed(hook("02_a_leg_channel_answer.json"), "CHANNEL_HOLD"),
    ):
        sent = request(event, format="event")
        assert sent.hook_event == event.name
        assert sent.body == event.raw
        assert sent.payload == event.envelope
        assert sent.content_type == "application/json"
        assert sent.method == "POST"


def test_nested_json_is_laid_out_as_jiffy_does() -> None:
    sent = request(hook("04_a_leg_channel_destroy.json"), format="json")
    assert b'\n  "custom_application_vars" : {\n    "campaign" : "spring sale"\n  },\n' in sent.body
    assert b'"duration_seconds" : 47,' in sent.body


def test_headers() -> None:
    sent = request(hook("01_a_leg_channel_create.json"), hook_id="a1b2", method="put")
    assert sent.method == "PUT"
    assert sent.headers == (
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Hook-ID", "a1b2"),
        ("X-Account-ID", ACCOUNT),
    )
    got = request(hook("01_a_leg_channel_create.json"), method="get")
    assert got.headers == (("X-Account-ID", ACCOUNT),)


def test_kazoo_s_settings() -> None:
    assert (DEFAULT_METHOD, METHODS[0]) == ("post", "post")
    assert (DEFAULT_FORMAT, FORMATS[0]) == ("form-data", "form-data")
    assert set(METHODS) == {"get", "post", "put"}
    assert "event" in FORMATS
    assert (DEFAULT_RETRIES, MIN_RETRIES, MAX_RETRIES) == (2, 0, 4)
    assert [attempts(n) for n in (0, 1, 2, 4, 9)] == [1, 1, 2, 4, 5]
    assert success("post", 200) and success("put", 200)
    assert not success("put", 201) and not success("post", 204)
    assert retried(None)
    assert not retried(500) and not retried(404)
    assert "object.*.*" in HOOK_BINDINGS
    assert "call.CHANNEL_DESTROY.*" in HOOK_BINDINGS
    with pytest.raises(ValueError):
        build_request(hook("01_a_leg_channel_create.json"), HookOptions(method="delete"))


def test_the_simulator_s_device_to_pstn_call_gives_well_formed_payloads(sim: Simulator) -> None:
    from kazoo_tail.simulator.blackhole_server import event_frame

    account = sim.traffic.account().id
    scheduled = sim.traffic.call(account, answered=True, talk_seconds=12.0, kind="outbound")
    events = []
    for item in scheduled:
        name = item.event.name
        raw = event_frame("call.*.*", f"call.{account}.{name}.*", item.event).encode()
        events.append(Event(raw, json.loads(raw), 0.0))
    a_legs = [e for e in events if e.data["custom_channel_vars"].get("authorizing_type")]
    a_call_id = a_legs[0].data["call_id"]
    a_legs = [e for e in events if e.data["call_id"] == a_call_id]
    names = [e.name for e in a_legs if e.name in ("CHANNEL_CREATE", "CHANNEL_ANSWER")]
    names += [e.name for e in a_legs if e.name in ("CHANNEL_BRIDGE", "CHANNEL_DESTROY")]
    assert names == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_DESTROY"]
    b_call_id = next(e.data["call_id"] for e in events if e.data["call_id"] != a_call_id)
    for event in events:
        sent = build_request(event, HookOptions(format="json"))
        if event.name in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
            assert sent == Skip(None, NO_COUNTERPART)
            continue
        assert isinstance(sent, HookRequest)
        payload = sent.payload
        assert json.loads(sent.body) == payload
        assert payload["hook_event"] == str(event.name).lower()
        assert payload["account_id"] == account
        assert payload["call_id"] == event.data["call_id"]
        assert isinstance(payload["timestamp"], int)
        assert payload["is_internal_leg"] is False
        form = request(event).body.decode()
        assert form.startswith(f"account_id={account}&")
        if event.data["call_id"] == a_call_id:
            assert payload["authorizing_type"] == "device"
            assert payload["local_resource_used"] is True
            if event.name != "CHANNEL_CREATE":
                assert payload["other_leg_call_id"] == b_call_id
        else:
            # The carrier leg: a global resource, so no local resource id.
            assert payload["local_resource_used"] is False
            assert "local_resource_id" not in payload
        if event.name == "CHANNEL_BRIDGE":
            assert payload["other_leg_destination_number"] == event.data["callee_id_number"]
        if event.name == "CHANNEL_DESTROY":
            assert payload["hangup_cause"] == "NORMAL_CLEARING"
            assert payload["hangup_code"] == "sip:200"
            for field in ("duration_seconds", "ringing_seconds", "billing_seconds"):
                assert isinstance(payload[field], int)
            assert payload["billing_seconds"] >= 11


@pytest.mark.parametrize(
    "options",
    [HookOptions(), HookOptions(format="json"), HookOptions(format="event", method="get")],
    ids=["form-data", "json", "event-get"],
)
def test_custom_application_vars_nested_as_deep_as_a_frame_may_be_are_skipped(
    options: HookOptions,
) -> None:
    """A frame may nest 1,024 deep; the encoders recurse: such an event is skipped with its
    reason, never a crash of the whole forward."""
    envelope = json.loads(hook("01_a_leg_channel_create.json").raw)
    envelope["data"]["custom_application_vars"] = "DEEP"
    deep = '{"a":' * 1000 + "{}" + "}" * 1000
    raw = json.dumps(envelope).replace('"DEEP"', deep).encode()
    event = Event(raw, fast_json.loads(raw), 0.0)
    assert build_request(event, options) == Skip(hook_event_for(event), TOO_DEEP)
