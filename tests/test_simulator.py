"""Tests of the Kazoo simulator against the protocol notes, over real loopback sockets."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from kazoo_tail.simulator.bindings import keys_match
from kazoo_tail.simulator.traffic import TrafficFactory

from .conftest import wait_until

pytestmark = pytest.mark.timeout(20)

SAMPLES = Path(__file__).parent / "samples"
SUB1, SUB2 = DEMO.sub_account_ids
ACCT = DEMO.account_id


# -- fixtures and helpers --------------------------------------------------------------

MakeSim = Callable[..., Simulator]


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    started: list[Simulator] = []

    def factory(**overrides: Any) -> Simulator:
        settings: dict[str, Any] = {"event_rate": 0.0, "early_events": False, "seed": 7}
        settings.update(overrides)
        sim = Simulator(SimulatorConfig(**settings)).start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: MakeSim) -> Simulator:
    return make_sim()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def user_auth(sim: Simulator, data: dict[str, Any], **kwargs: Any) -> requests.Response:
    return requests.put(
        f"{sim.crossbar_url}/v2/user_auth", json={"data": data}, timeout=5, **kwargs
    )


def login(sim: Simulator) -> str:
    reply = user_auth(
        sim, {"credentials": md5("demo:demo"), "method": "md5", "account_name": "demo"}
    )
    assert reply.status_code == 200, reply.text
    token = reply.json()["auth_token"]
    assert isinstance(token, str)
    return token


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def ws_open(sim: Simulator, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("open_timeout", 20)  # a bound on failure only: a loaded machine is slow
    kwargs.setdefault("close_timeout", 1)
    return connect(sim.blackhole_url, **kwargs)


def recv_json(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=timeout))
    assert isinstance(message, dict)
    return message


def call(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    """Send a request and return its reply, skipping events that arrive first."""
    ws.send(json.dumps(message))
    while True:
        frame = recv_json(ws)
        if frame["action"] == "reply":
            return frame


def subscribe(
    ws: ClientConnection, token: str | None, binding: str, account_id: str = ACCT, rid: str = "s"
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "action": "subscribe",
        "request_id": rid,
        "data": {"account_id": account_id, "binding": binding},
    }
    if token is not None:
        message["auth_token"] = token
    return call(ws, message)


def expect_close(ws: ClientConnection, timeout: float = 3.0) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=timeout)
    return info.value


def raw_upgrade(sim: Simulator, extra: dict[str, str] | None = None) -> tuple[int, bytes]:
    port = int(sim.blackhole_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    headers.update(extra or {})
    try:
        conn.request("GET", "/any/path?x=1", headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- Crossbar -------------------------------------------------------------------------


def test_urls_have_no_v2(make_sim: MakeSim) -> None:
    sim = make_sim()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.crossbar_url)
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", sim.blackhole_url)


def test_user_auth_md5_success_shape(sim: Simulator) -> None:
    reply = user_auth(
        sim,
        {"credentials": md5("demo:demo"), "method": "md5", "account_name": "demo"},
        headers={"X-Request-ID": "req-123"},
    )
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert body["status"] == "success"
    assert body["request_id"] == "req-123"
    assert body["revision"] == "automatic"
    assert len(body["node"]) == 22 and body["version"].startswith("4.3")
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert data["account_id"] == ACCT and data["owner_id"] == DEMO.owner_id
    assert data["account_name"] == "demo" and data["language"] == "en-us"
    assert data["is_reseller"] is False and "reseller_id" in data and data["apps"]
    assert "ui_config" not in data
    header, claims = jwt_part(body["auth_token"], 0), jwt_part(body["auth_token"], 1)
    assert header["alg"] == "RS256" and header["typ"] == "JWT" and header["kid"]
    assert claims["account_id"] == ACCT and claims["owner_id"] == DEMO.owner_id
    assert claims["method"] == "cb_user_auth" and claims["iss"] == "kazoo"
    assert isinstance(claims["exp"], int) and abs(claims["exp"] - (time.time() + 3600)) < 5
    assert claims["identity_sig"]
    assert sim.stats.user_auth == 1


@pytest.mark.parametrize(
    "data",
    [
        {"credentials": md5("demo:demo"), "account_realm": "demo.kazoo.test"},
        {"credentials": md5("demo:demo"), "realm": "DEMO.kazoo.test"},
        {"credentials": md5("demo:demo"), "phone_number": "+15555550100"},
        {"credentials": md5("demo:demo"), "account_name": "Demo"},
        {
            "credentials": hashlib.sha1(b"demo:demo").hexdigest(),
            "method": "sha",
            "realm": "demo.kazoo.test",
        },
        {"credentials": md5("admin@demo.test:S3cret!"), "account_name": "demo"},
    ],
)
def test_user_auth_identifiers_and_methods(sim: Simulator, data: dict[str, Any]) -> None:
    reply = user_auth(sim, data)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["account_id"] == ACCT


def test_admin_username_must_be_lower_cased(sim: Simulator) -> None:
    reply = user_auth(sim, {"credentials": md5("Admin@Demo.Test:S3cret!"), "account_name": "demo"})
    assert reply.status_code == 401
    reply = user_auth(sim, {"credentials": md5("admin@demo.test:s3cret!"), "account_name": "demo"})
    assert reply.status_code == 401, "the password keeps its case"


@pytest.mark.parametrize(
    "data",
    [
        {"credentials": md5("demo:wrong"), "account_name": "demo"},
        {"credentials": md5("demo:demo"), "account_name": "nosuchaccount"},
        {"credentials": md5("demo:demo")},
        {"credentials": md5("demo:demo"), "account_name": DEMO.other_account_name},
    ],
)
def test_user_auth_401_matches_sample(sim: Simulator, data: dict[str, Any]) -> None:
    reply = user_auth(sim, data)
    assert reply.status_code == 401
    body = reply.json()
    sample = json.loads((SAMPLES / "12_user_auth_401.json").read_text())
    assert set(body) == set(sample)
    for key in ("auth_token", "data", "error", "message", "status"):
        assert body[key] == sample[key]


def test_user_auth_400_validation(sim: Simulator) -> None:
    reply = user_auth(sim, {"method": "md5", "account_name": "demo"})
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "400" and body["message"] == "validation error"
    assert body["data"]["credentials"]["required"]["message"] == "Field is required but missing"
    reply = user_auth(sim, {"credentials": md5("demo:demo"), "method": "sha1", "realm": "x.test"})
    assert reply.status_code == 400
    assert reply.json()["data"]["method"]["enum"]["target"] == ["md5", "sha"]
    bad = requests.put(f"{sim.crossbar_url}/v2/user_auth", data=b"{nope", timeout=5)
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_api_auth(sim: Simulator) -> None:
    url = f"{sim.crossbar_url}/v2/api_auth"
    ok = requests.put(url, json={"data": {"api_key": DEMO.api_key}}, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["data"]["account_id"] == ACCT and "owner_id" not in ok.json()["data"]
    claims = jwt_part(ok.json()["auth_token"], 1)
    assert claims["method"] == "cb_api_auth" and "owner_id" not in claims
    short = requests.put(url, json={"data": {"api_key": "abc"}}, timeout=5)
    assert short.status_code == 400
    empty = requests.put(url, json={"data": {"api_key": ""}}, timeout=5)
    assert empty.status_code == 401
    unknown = "f" * 64
    missing = requests.put(url, json={"data": {"api_key": unknown}}, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["message"] == "bad identifier" and missing.json()["data"] == [unknown]
    assert sim.stats.api_auth == 4


def test_refresh_token_and_token_auth(sim: Simulator) -> None:
    token = login(sim)
    url = f"{sim.crossbar_url}/v2/auth"
    reply = requests.put(
        url,
        json={"action": "refresh_token", "data": {}},
        headers={"X-Auth-Token": token},
        timeout=5,
    )
    assert reply.status_code == 200
    fresh = reply.json()["auth_token"]
    assert fresh != token
    claims = jwt_part(fresh, 1)
    assert claims["method"] == "cb_auth" and claims["owner_id"] == DEMO.owner_id
    info = requests.get(
        f"{sim.crossbar_url}/v2/token_auth", headers={"X-Auth-Token": fresh}, timeout=5
    )
    assert info.status_code == 200 and info.json()["data"]["account_id"] == ACCT
    expired = sim.mint_token(exp=time.time() - 10)
    for bad in (expired, "garbage", fresh[:-4] + "AAAA"):
        denied = requests.put(
            url, json={"action": "refresh_token", "data": {}}, headers={"X-Auth-Token": bad}
        )
        assert denied.status_code == 401
        check = requests.get(f"{sim.crossbar_url}/v2/token_auth", headers={"X-Auth-Token": bad})
        assert check.status_code == 401
    sim.revoke_tokens()
    revoked = requests.get(
        f"{sim.crossbar_url}/v2/token_auth", headers={"X-Auth-Token": fresh}, timeout=5
    )
    assert revoked.status_code == 401
    assert sim.stats.refresh == 4 and sim.stats.token_auth == 5


def test_websockets_catalogue(sim: Simulator) -> None:
    reply = requests.get(f"{sim.crossbar_url}/v2/websockets", timeout=5)
    assert reply.status_code == 200
    data = reply.json()["data"]
    assert len(data["call"]) == 9 and data["call"][0] == "call.CHANNEL_CREATE.{CALL_ID}"
    assert data["fax"] == ["fax.status.{FAX_ID}", "fax.object.{ACTION}"]
    assert len(data["object"]) == 30 and "object.doc_deleted.call_recording" in data["object"]
    assert data["conference"][0] == "conference.command.{CONFERENCE_ID}"
    assert len(data["conference"]) == 14
    assert data["conference"][-1] == "conference.event.{CONFERENCE_ID}.{CALL_ID}.*"
    assert sim.stats.websockets_catalog == 1


def test_account_endpoints_and_authorization(sim: Simulator) -> None:
    token = login(sim)
    auth = {"X-Auth-Token": token}
    base = f"{sim.crossbar_url}/v2/accounts"
    desc = requests.get(f"{base}/{ACCT}/descendants", headers=auth, timeout=5)
    assert desc.status_code == 200
    names = {item["name"]: item["id"] for item in desc.json()["data"]}
    assert names == dict(zip(DEMO.sub_account_names, DEMO.sub_account_ids))
    doc = requests.get(f"{base}/{SUB1}", headers=auth, timeout=5)
    assert doc.json()["data"]["name"] == "demo-sub-1"
    other = requests.get(f"{base}/{DEMO.other_account_id}/websockets", headers=auth, timeout=5)
    assert other.status_code == 403 and other.json()["status"] == "error"
    anonymous = requests.get(f"{base}/{ACCT}/websockets", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["auth_token"] == "undefined"
    unknown = requests.get(f"{sim.crossbar_url}/v2/nonsense", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error"] == "404"


def test_descendants_are_paged_by_50(make_sim: MakeSim) -> None:
    from kazoo_tail.simulator.accounts import Account

    sim = make_sim()
    for n in range(60):
        sim.directory.add_account(Account(f"{n:032x}", f"c{n}", f"c{n}.example.com", ACCT))
    auth = {"X-Auth-Token": login(sim)}
    url = f"{sim.crossbar_url}/v2/accounts/{ACCT}/descendants"
    first = requests.get(url, headers=auth, timeout=5).json()
    assert first["page_size"] == 50 and len(first["data"]) == 50
    rest = requests.get(
        url, headers=auth, params={"start_key": first["next_start_key"]}, timeout=5
    ).json()
    assert rest["start_key"] == first["next_start_key"] and "next_start_key" not in rest
    ids = [item["id"] for item in first["data"] + rest["data"]]
    assert len(ids) == 62 and ids == sorted(ids)
    ignored = requests.get(url, headers=auth, params={"paginate": "false"}, timeout=5).json()
    assert len(ignored["data"]) == 50  # not honoured by default: the harsher case


def test_account_websockets_listing(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws, ws_open(sim):
        call(
            ws,
            {
                "action": "subscribe",
                "auth_token": token,
                "request_id": "1",
                "name": "my tail",
                "metadata": {"k": "v"},
                "data": {"account_id": ACCT, "binding": "object.doc_created.*"},
            },
        )
        reply = requests.get(
            f"{sim.crossbar_url}/v2/accounts/{ACCT}/websockets",
            headers={"X-Auth-Token": token},
            timeout=5,
        )
        items = reply.json()["data"]
        assert len(items) == 1, "the unauthenticated socket is not listed"
        item = items[0]
        local = ws.local_address
        assert item["websocket_session_id"] == f"{local[0]}:{local[1]}"
        assert item["source"] == "127.0.0.1"
        assert item["bindings"] == ["object.doc_created.*", "object.doc_created.*"]
        assert item["name"] == "my tail" and item["metadata"] == {"k": "v"}
        assert item["timestamp"] > 63_000_000_000
        assert sim.sockets() == items


def test_advertised_websocket_url(make_sim: MakeSim) -> None:
    sim = make_sim(advertise_ws_url=True)
    reply = user_auth(sim, {"credentials": md5("demo:demo"), "account_name": "demo"})
    assert reply.json()["data"]["ui_config"]["api"]["kazoo_websocket"]["url"] == sim.blackhole_url


# -- blackhole: subscribe semantics ---------------------------------------------------


def test_subscribe_replies_list_every_internal_binding(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        first = subscribe(ws, token, "call.CHANNEL_CREATE.*", rid="c1")
        sample = json.loads((SAMPLES / "01_subscribe_reply.json").read_text())
        assert list(first) == ["action", "request_id", "status", "data"]
        assert first["data"] == sample["data"] and first["request_id"] == "c1"
        reply = subscribe(ws, token, "call.*.*")
        assert reply["data"]["subscribed"] == ["call.CHANNEL_CREATE.*"] + ["call.*.*"] * 9
        subscribe(ws, token, "object.*.*")
        subscribe(ws, token, "object.doc_created.*")
        reply = subscribe(ws, token, "object.doc_created.user")
        expected = (
            ["call.CHANNEL_CREATE.*"]
            + ["call.*.*"] * 9
            + ["object.*.*"] * 2
            + ["object.doc_created.*"] * 2
            + ["object.doc_created.user"]
        )
        assert reply["data"]["subscribed"] == expected
        again = subscribe(ws, token, "call.*.*")
        assert again["status"] == "success" and again["data"]["subscribed"] == expected
        gone = call(
            ws,
            {
                "action": "unsubscribe",
                "request_id": "u",
                "data": {"account_id": ACCT, "binding": "call.*.*"},
            },
        )
        assert gone["data"] == {
            "unsubscribed": ["call.*.*"],
            "subscribed": [b for b in expected if b != "call.*.*"],
        }
        never = call(
            ws,
            {
                "action": "unsubscribe",
                "request_id": "n",
                "data": {"account_id": DEMO.other_account_id, "binding": "fax.status.*"},
            },
        )
        assert never["status"] == "success" and never["data"]["unsubscribed"] == ["fax.status.*"]
    assert sim.stats.subscribes == 6 and sim.stats.unsubscribes == 2


def test_unsubscribe_reply_matches_sample(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        subscribe(ws, token, "call.CHANNEL_CREATE.*")
        reply = call(
            ws,
            {
                "action": "unsubscribe",
                "request_id": "x",
                "data": {"account_id": ACCT, "binding": "call.CHANNEL_CREATE.*"},
            },
        )
        sample = json.loads((SAMPLES / "02_unsubscribe_reply.json").read_text())
        assert reply["data"] == sample["data"]


ERROR_CASES: list[tuple[dict[str, Any] | None, str]] = [
    (None, "missing required keys in data object"),
    ({}, "missing required keys in data object"),
    ({"account_id": ACCT}, "missing required keys : binding"),
    ({"binding": "call.*.*"}, "missing required keys : account_id"),
    ({"bindings": ["call.*.*"]}, "missing required keys : account_id, binding"),
    ({"account_id": ACCT, "bindings": ["call.*.*"]}, "missing required keys : binding"),
    ({"account_id": ACCT, "binding": "call.FOO.*"}, "event FOO not supported"),
    (
        {"account_id": ACCT, "binding": "call.CHANNEL_CREATE"},
        "invalid format for call subscription : CHANNEL_CREATE",
    ),
    (
        {"account_id": ACCT, "binding": "call.a.b.c"},
        "invalid format for call subscription : a, b, c",
    ),
    ({"account_id": ACCT, "binding": "object.foo.*"}, "event foo.* not supported"),
    ({"account_id": ACCT, "binding": "object.*.bar"}, "event *.bar not supported"),
    ({"account_id": ACCT, "binding": "object.foo.bar"}, "event foo.bar not supported"),
    (
        {"account_id": ACCT, "binding": "object.doc_created.bar"},
        "event doc_created.bar not supported",
    ),
    (
        {"account_id": ACCT, "binding": "object.user"},
        "invalid format for object subscription : user",
    ),
    ({"account_id": ACCT, "binding": "fax.foo.1"}, "invalid format for fax subscription : foo, 1"),
    ({"account_id": ACCT, "binding": "conference.command.*"}, "ConferenceId required"),
    ({"account_id": ACCT, "binding": "conference.event.*.*"}, "ConferenceId required"),
    (
        {"account_id": ACCT, "binding": "conference.event.c1.*.bogus"},
        "Unsupported conference event bogus",
    ),
    (
        {"account_id": ACCT, "binding": "conference.event.c1.x1"},
        "invalid format for conference subscription : event, c1, x1",
    ),
    ({"account_id": "*", "binding": "call.*.*"}, "unauthorized wildcard account id"),
    ({"account_id": DEMO.other_account_id, "binding": "call.*.*"}, "unauthorized account id"),
    ({"account_id": "nope", "binding": "call.*.*"}, "unauthorized account id"),
    (
        {"account_id": ACCT, "binding": "doc_created.*.user.*"},
        "no available subscriptions to requested binding",
    ),
]


@pytest.mark.parametrize(("data", "expected"), ERROR_CASES)
def test_subscribe_error_strings(
    sim: Simulator, data: dict[str, Any] | None, expected: str
) -> None:
    token = login(sim)
    message: dict[str, Any] = {"action": "subscribe", "auth_token": token, "request_id": "e"}
    if data is not None:
        message["data"] = data
    with ws_open(sim) as ws:
        reply = call(ws, message)
    assert reply == {
        "action": "reply",
        "request_id": "e",
        "status": "error",
        "data": {"errors": [expected]},
    }


def test_authentication_errors_and_token_used_once(sim: Simulator) -> None:
    token = login(sim)
    expired = sim.mint_token(exp=time.time() - 5)
    with ws_open(sim) as ws:
        sample = json.loads((SAMPLES / "03_error_reply_auth_required.json").read_text())
        reply = subscribe(ws, None, "call.*.*")
        assert reply["data"] == sample["data"]
        for bad in ("not-a-jwt", expired):
            reply = subscribe(ws, bad, "call.*.*")
            assert reply["data"]["errors"] == [f"failed to authenticate token {bad}"]
        # A valid token in a message that fails later leaves the socket unauthenticated.
        reply = subscribe(ws, token, "call.NOPE.*")
        assert reply["data"]["errors"] == ["event NOPE not supported"]
        reply = subscribe(ws, None, "call.*.*")
        assert reply["data"]["errors"] == ["authentication token required"]
        assert subscribe(ws, token, "call.CHANNEL_CREATE.*")["status"] == "success"
        # From now on tokens are ignored, even missing or garbage ones.
        assert subscribe(ws, None, "call.CHANNEL_ANSWER.*")["status"] == "success"
        assert subscribe(ws, "garbage", "call.CHANNEL_DESTROY.*")["status"] == "success"
    sim.revoke_tokens()
    with ws_open(sim) as ws:
        reply = subscribe(ws, token, "call.*.*")
        assert reply["data"]["errors"] == [f"failed to authenticate token {token}"]


def test_other_account_token_and_sub_accounts(sim: Simulator) -> None:
    other = sim.mint_token(DEMO.other_account_id, DEMO.other_owner_id)
    token = login(sim)
    with ws_open(sim) as ws:
        reply = subscribe(ws, other, "call.*.*", account_id=ACCT)
        assert reply["data"]["errors"] == ["unauthorized account id"]
    with ws_open(sim) as ws:
        assert subscribe(ws, token, "call.*.*", account_id=SUB2)["status"] == "success"
        sub_token = sim.mint_token(SUB1, None, method="cb_api_auth")
    with ws_open(sim) as ws:
        reply = subscribe(ws, sub_token, "call.*.*", account_id=ACCT)
        assert reply["data"]["errors"] == ["unauthorized account id"], "parents are off limits"


def test_request_id_generation_and_coercion(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        ws.send(json.dumps({"action": "noop", "auth_token": token}))
        assert re.fullmatch(r"[0-9a-f]{32}", recv_json(ws)["request_id"])
        ws.send(json.dumps({"action": "noop", "request_id": ""}))
        assert re.fullmatch(r"[0-9a-f]{32}", recv_json(ws)["request_id"])
        ws.send(json.dumps({"action": "noop", "request_id": 42}))
        assert recv_json(ws)["request_id"] == "42"


def test_unknown_actions_return_stale_resp_data(make_sim: MakeSim) -> None:
    sim = make_sim()
    token = login(sim)
    with ws_open(sim) as ws:
        assert call(ws, {"auth_token": token, "request_id": "1"}) == {
            "action": "reply",
            "request_id": "1",
            "status": "success",
            "data": {},
        }
        subscribed = subscribe(ws, None, "fax.status.*")["data"]
        for action in ("Subscribe", "ping", "noop", "list"):
            reply = call(ws, {"action": action, "request_id": action})
            assert reply["status"] == "success" and reply["data"] == subscribed
    assert sim.stats.pings == 1
    with ws_open(sim) as ws:
        reply = call(ws, {"action": "ping", "request_id": "p"})
        assert reply["data"]["errors"] == ["authentication token required"]
    with_ping = make_sim(ping_module=True)
    with ws_open(with_ping) as ws:
        reply = call(ws, {"action": "ping", "request_id": "p", "auth_token": login(with_ping)})
        sample = json.loads((SAMPLES / "10_ping_reply.json").read_text())
        assert reply["data"] == sample["data"] and reply["status"] == "success"


def test_rate_limit(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        replies = []
        for batch in range(0, 104, 8):  # a few at a time: 50 queued replies would be shed
            for n in range(batch, min(batch + 8, 104)):
                message = {"action": "noop", "auth_token": token, "request_id": str(n)}
                ws.send(json.dumps(message))
            replies += [recv_json(ws) for _ in range(batch, min(batch + 8, 104))]
        local = ws.local_address
    errors = [r for r in replies if r["status"] == "error"]
    assert errors, "a burst over 100 must hit the bucket"
    assert errors[0]["data"]["errors"] == [f"rate limiting threshold hit for 127.0.0.1:{local[1]}!"]


# -- blackhole: connection level --------------------------------------------------------


def test_subprotocol_header_gets_400(sim: Simulator) -> None:
    status, body = raw_upgrade(sim, {"Sec-WebSocket-Protocol": "json"})
    assert (status, body) == (400, b"")
    status, _ = raw_upgrade(sim)
    assert status == 101
    assert sim.stats.rejected_upgrades == 1


def test_connection_limit_per_ip(make_sim: MakeSim) -> None:
    sim = make_sim(max_connections_per_ip=1)
    with ws_open(sim):
        with pytest.raises(InvalidStatus) as info:
            ws_open(sim)
        assert info.value.response.status_code == 429
        assert info.value.response.body == b""
    deadline = time.monotonic() + 3
    while sim.blackhole.sockets() or time.monotonic() < deadline:
        try:
            with ws_open(sim):
                break
        except InvalidStatus:
            time.sleep(0.05)
    else:
        pytest.fail("slot never freed")


def test_reject_upgrades(sim: Simulator) -> None:
    sim.reject_upgrades(503, 2)
    for _ in range(2):
        with pytest.raises(InvalidStatus) as info:
            ws_open(sim)
        assert info.value.response.status_code == 503
    with ws_open(sim):
        pass
    assert sim.stats.rejected_upgrades == 2


@pytest.mark.parametrize(
    "frame",
    [
        "[1, 2]",
        '"just a string"',
        "42",
        "{not json",
        json.dumps({"action": "subscribe", "data": {"account_id": ACCT, "binding": ["call.*.*"]}}),
    ],
)
def test_crashing_inputs_close_1011(sim: Simulator, frame: str) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        subscribe(ws, token, "call.*.*")
        ws.send(frame)
        closed = expect_close(ws)
    assert isinstance(closed, ConnectionClosedError)
    assert closed.rcvd is not None and closed.rcvd.code == 1011 and closed.rcvd.reason == ""


def test_jwt_shaped_garbage_token_crashes(sim: Simulator) -> None:
    with ws_open(sim) as ws:
        ws.send(json.dumps({"action": "noop", "auth_token": "aaa.bbb.ccc"}))
        closed = expect_close(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1011


def test_binary_frames_are_ignored(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        ws.send(b'{"action":"subscribe"}')
        reply = call(ws, {"action": "noop", "auth_token": token, "request_id": "after"})
        assert reply["request_id"] == "after"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)


def test_idle_timeout_closes_1000_even_while_streaming(make_sim: MakeSim) -> None:
    sim = make_sim(idle_timeout=0.6)
    token = login(sim)
    with ws_open(sim, ping_interval=None) as ws:
        subscribe(ws, token, "object.*.*")
        began = time.monotonic()
        seen = 0
        with pytest.raises(ConnectionClosed) as info:
            while True:
                # Only bounds a failure (a server that never closes); the pace is not tested.
                assert time.monotonic() - began < 30, "no idle close while streaming"
                sim.publish_object()
                try:
                    ws.recv(timeout=0.1)
                    seen += 1
                except TimeoutError:
                    pass
        assert seen > 0
        assert time.monotonic() - began > 0.5
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1000 and info.value.rcvd.reason == ""


def test_client_pings_keep_the_socket_open(make_sim: MakeSim) -> None:
    sim = make_sim(idle_timeout=0.5)
    with ws_open(sim, ping_interval=None) as ws:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            assert ws.ping().wait(1)
            time.sleep(0.15)
        assert sim.stats.ws_pings >= 5
        closed = expect_close(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1000


# -- blackhole: events ------------------------------------------------------------------


EVENT_KEYS = ["action", "subscribed_key", "subscription_key", "name", "routing_key", "data"]


def test_event_delivered_once_per_matching_subscription(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        subscribe(ws, token, "call.*.*")
        subscribe(ws, token, "call.CHANNEL_CREATE.*")
        subscribe(ws, token, "call.CHANNEL_CREATE.*", account_id=SUB1)
        routing = f"call.{ACCT}.CHANNEL_CREATE.abc123"
        data = {"call_id": "abc123", "custom_channel_vars": {"account_id": ACCT}}
        assert sim.publish(routing, "CHANNEL_CREATE", data) == 2
        frames = [recv_json(ws), recv_json(ws)]
        assert [f["subscribed_key"] for f in frames] == ["call.*.*", "call.CHANNEL_CREATE.*"]
        for frame in frames:
            assert list(frame) == EVENT_KEYS
            assert frame["subscription_key"] == f"call.{ACCT}.CHANNEL_CREATE.*"
            assert frame["routing_key"] == routing and frame["data"] == data
        assert sim.publish(f"call.{ACCT}.CHANNEL_ANSWER.abc123", None, {"x": 1}) == 1
        nameless = recv_json(ws)
        assert "name" not in nameless and nameless["subscribed_key"] == "call.*.*"
        assert sim.publish(f"call.{SUB1}.CHANNEL_CREATE.zz", "CHANNEL_CREATE", {}) == 1
        assert recv_json(ws)["subscription_key"] == f"call.{SUB1}.CHANNEL_CREATE.*"
        assert sim.publish(f"call.{SUB2}.CHANNEL_CREATE.zz", "CHANNEL_CREATE", {}) == 0


def test_publish_call_is_realistic(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim) as ws:
        subscribe(ws, token, "call.*.*")
        events = sim.publish_call(answered=True, talk_seconds=31)
        frames = [recv_json(ws) for _ in events]
    names = [f["name"] for f in frames]
    assert names.count("CHANNEL_CREATE") == 2 and names.count("CHANNEL_DESTROY") == 2
    assert "CHANNEL_ANSWER" in names and "CHANNEL_BRIDGE" in names
    legs = {f["data"]["call_direction"]: f["data"] for f in frames if f["name"] == "CHANNEL_CREATE"}
    assert legs["outbound"]["other_leg_call_id"] == legs["inbound"]["call_id"]
    destroy = next(f["data"] for f in frames if f["name"] == "CHANNEL_DESTROY")
    assert destroy["hangup_cause"] == "NORMAL_CLEARING"
    assert destroy["billing_seconds"] == "31" and isinstance(destroy["duration_seconds"], str)
    assert "v=0" in destroy["remote_sdp"]
    sample = json.loads((SAMPLES / "05_event_call_channel_create.json").read_text())["data"]
    first = frames[0]["data"]
    missing = {k for k in sample if k not in first} - {"channel_name", "disposition"}
    assert not missing - {"from_tag", "to_tag"}, missing
    assert first["custom_channel_vars"]["account_id"] == ACCT
    assert abs(first["timestamp"] - (time.time() + 62167219200)) < 60
    assert len({f["data"]["msg_id"] for f in frames}) == len(frames)
    for frame in frames:
        call_id = frame["data"]["call_id"]
        encoded = frame["routing_key"].rsplit(".", 1)[1]
        assert "." not in encoded and "@" not in encoded
        assert call_id.replace(".", "%2E").replace("@", "%40") == encoded


def test_unanswered_call(sim: Simulator) -> None:
    events = sim.publish_call(answered=False, hangup_cause="NO_ANSWER")
    names = [e.name for e in events]
    assert "CHANNEL_ANSWER" not in names
    destroy = [e.data for e in events if e.name == "CHANNEL_DESTROY"]
    assert all(d["hangup_cause"] == "NO_ANSWER" and d["billing_seconds"] == "0" for d in destroy)


def test_object_fax_and_conference_keys(sim: Simulator) -> None:
    token = login(sim)
    month = time.strftime("%Y%m", time.gmtime())
    db = "account%2F4b%2F8c%2F6fec4b2597882c0390202d195419"
    with ws_open(sim) as ws:
        subscribe(ws, token, "object.doc_created.user")
        subscribe(ws, token, "object.*.fax")
        subscribe(ws, token, "fax.status.*")
        subscribe(ws, token, "conference.event.conf1.*")
        subscribe(ws, token, "conference.event.conf1.*.del-member")
        user = sim.publish_object(action="doc_created", doc_type="user")
        frame = recv_json(ws)
        assert frame["subscription_key"] == f"doc_created.{db}.user.*"
        assert frame["routing_key"] == f"doc_created.{db}.user.{user.data['id']}"
        sample = json.loads((SAMPLES / "08_event_object_doc_created_user.json").read_text())
        assert set(frame["data"]) == set(sample["data"])
        deleted = sim.publish_object(action="doc_deleted", doc_type="user")
        assert deleted.data["is_soft_deleted"] is True
        sim.publish_object(action="doc_edited", doc_type="fax")
        frame = recv_json(ws)
        assert frame["subscription_key"] == f"*.{db}-{month}.fax.*"
        faxes = sim.publish_fax(pages=2)
        frames = [recv_json(ws) for _ in faxes]
        assert [f["data"]["fax_state"] for f in frames] == [
            "start",
            "prepare",
            "send",
            "send",
            "end",
        ]
        assert frames[2]["data"]["status"] == "Sent Page 1 of 2"
        assert (
            frames[0]["subscription_key"] == f"fax.status.{ACCT}.*"
            and frames[0]["name"] == "status"
        )
        sim.publish_conference(event="add-member", conference_id="conf1", call_id="c1")
        frame = recv_json(ws)
        assert frame["subscription_key"] == f"conference.event.*.{ACCT}.conf1.*"
        assert frame["routing_key"] == f"conference.event.add-member.{ACCT}.conf1.c1"
        assert frame["name"] == "event" and frame["data"]["event"] == "add-member"
        sim.publish_conference(event="del-member", conference_id="conf1", call_id="c1")
        keys = {recv_json(ws)["subscribed_key"] for _ in range(2)}
        assert keys == {"conference.event.conf1.*", "conference.event.conf1.*.del-member"}


def test_early_event_arrives_before_the_reply(make_sim: MakeSim) -> None:
    sim = make_sim(early_events=True)
    token = login(sim)
    with ws_open(sim) as ws:
        for binding in ("call.CHANNEL_DESTROY.*", "object.doc_edited.device", "fax.status.*"):
            ws.send(
                json.dumps(
                    {
                        "action": "subscribe",
                        "auth_token": token,
                        "request_id": binding,
                        "data": {"account_id": SUB1, "binding": binding},
                    }
                )
            )
            early, reply = recv_json(ws), recv_json(ws)
            assert early["action"] == "event" and early["subscribed_key"] == binding
            assert keys_match(early["subscription_key"], early["routing_key"])
            assert reply["action"] == "reply" and reply["request_id"] == binding
        # Already subscribed: nothing new, so no early event either.
        ws.send(
            json.dumps(
                {
                    "action": "subscribe",
                    "request_id": "again",
                    "data": {"account_id": SUB1, "binding": "fax.status.*"},
                }
            )
        )
        assert recv_json(ws)["request_id"] == "again"


def test_background_traffic(make_sim: MakeSim) -> None:
    sim = make_sim(event_rate=60.0, seed=3)
    token = login(sim)
    with ws_open(sim) as ws:
        for account in (ACCT, SUB1, SUB2):
            subscribe(ws, token, "call.*.*", account_id=account)
            subscribe(ws, token, "object.*.*", account_id=account)
        seen = [recv_json(ws, timeout=3) for _ in range(10)]
    assert all(f["action"] in ("event", "reply") for f in seen)
    assert any(f["action"] == "event" for f in seen)


def test_traffic_is_deterministic_with_a_seed() -> None:
    from kazoo_tail.simulator.accounts import Directory

    runs = []
    for _ in range(2):
        factory = TrafficFactory(Directory.demo(), ACCT, seed=11)
        calls = [factory.call(start=1_600_000_000.0) for _ in range(3)]
        runs.append(
            [[(s.event.routing_key, s.event.data.get("hangup_cause")) for s in c] for c in calls]
        )
    assert runs[0] == runs[1]


# -- fault injection --------------------------------------------------------------------


def test_send_raw_close_and_drop(sim: Simulator) -> None:
    with ws_open(sim) as ws:
        # One round trip first: the server registers a socket just after the handshake.
        call(ws, {"action": "noop", "request_id": "ready"})
        sim.send_raw("this is not json")
        sim.send_raw(b"\x00\x01")
        assert ws.recv(timeout=2) == "this is not json"
        assert ws.recv(timeout=2) == b"\x00\x01"
        sim.close_connections(4001, "bye")
        closed = expect_close(ws)
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4001, "bye")
    with ws_open(sim) as ws:
        call(ws, {"action": "noop", "auth_token": login(sim), "request_id": "1"})
        sim.drop_connections()
        dropped = expect_close(ws)
        assert dropped.rcvd is None, "no close frame on a dropped connection"


def test_stalled_node_ignores_pings(sim: Simulator) -> None:
    token = login(sim)
    with ws_open(sim, ping_interval=None) as ws:
        subscribe(ws, token, "call.*.*")
        sim.set_stalled(True)
        pong = ws.ping()
        assert not pong.wait(0.4)
        assert sim.publish(f"call.{ACCT}.CHANNEL_CREATE.x", "CHANNEL_CREATE", {}) == 0
        sim.set_stalled(False)
        assert pong.wait(2)
        assert call(ws, {"action": "noop", "request_id": "back"})["request_id"] == "back"


# -- TLS and the standalone server ------------------------------------------------------


def test_tls_https_and_wss(make_sim: MakeSim, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    sim = make_sim(ssl_context=server_ctx)
    assert sim.crossbar_url.startswith("https://") and sim.blackhole_url.startswith("wss://")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    reply = user_auth(
        sim, {"credentials": md5("demo:demo"), "account_name": "demo"}, verify=str(ca_file)
    )
    assert reply.status_code == 200
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with ws_open(sim, ssl=client_ctx) as ws:
        reply = subscribe(ws, reply.json()["auth_token"], "call.*.*")
        assert reply["status"] == "success"


@pytest.mark.e2e
def test_module_main_runs_and_exits_cleanly() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kazoo_tail.simulator",
            "--crossbar-port",
            "0",
            "--blackhole-port",
            "0",
            "--event-rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(3)]
        url = re.search(r"(http://\S+)/v2", "".join(lines))
        assert url, lines
        catalogue = requests.get(f"{url.group(1)}/v2/websockets", timeout=5)
        assert catalogue.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == "" and "Traceback" not in err


def test_blackhole_ignores_path_and_plain_http_is_refused(sim: Simulator) -> None:
    with connect(sim.blackhole_url + "/socket.io/?EIO=3", open_timeout=20) as ws:
        assert call(ws, {"action": "noop", "request_id": "p"})["status"] == "error"
    port = int(sim.blackhole_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 4")


# -- blackhole: a busy 4.3 node ------------------------------------------------------------


def test_the_bucket_refills_in_blocks_of_ten_each_second() -> None:
    from kazoo_tail.simulator.blackhole_server import TokenBucket

    now = [0.0]
    bucket = TokenBucket(clock=lambda: now[0])
    assert all(bucket.take() for _ in range(100)) and not bucket.take()
    now[0] = 0.99
    assert not bucket.take()  # no trickle in between
    now[0] = 1.0
    assert all(bucket.take() for _ in range(10)) and not bucket.take()
    now[0] = 60.0
    assert sum(bucket.take() for _ in range(150)) == 100  # never more than a full bucket


def stalled_reader(sim: Simulator) -> Any:
    """A websocket-client connection, subscribed, that then reads nothing (a tiny receive
    buffer, so the node's queue builds up quickly)."""
    import websocket

    ws = websocket.create_connection(
        sim.blackhole_url, timeout=20, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
    )
    message = {
        "action": "subscribe",
        "auth_token": login(sim),
        "request_id": "s",
        "data": {"account_id": ACCT, "binding": "call.CHANNEL_CREATE.*"},
    }
    ws.send(json.dumps(message))
    assert json.loads(ws.recv())["status"] == "success"
    return ws


def publish_big(sim: Simulator, count: int) -> None:
    for n in range(count):
        sim.publish(
            f"call.{ACCT}.CHANNEL_CREATE.big{n}",
            "CHANNEL_CREATE",
            {"call_id": f"big{n}", "msg_id": f"big{n}", "padding": "x" * 200_000},
        )


@pytest.mark.soak
def test_a_reader_that_stops_reading_is_shed_then_killed_on_4_3(make_sim: MakeSim) -> None:
    sim = make_sim()  # 4.3's defaults: 50 queued frames, a 5 s send timeout
    ws = stalled_reader(sim)
    try:
        publish_big(sim, 120)
        assert sim.stats.frames_shed > 0  # silently: nothing tells the client
        wait_until(lambda: sim.stats.send_timeouts == 1, timeout=30)
        wait_until(lambda: not sim.sockets(), timeout=10)
    finally:
        ws.shutdown()


def test_master_neither_sheds_nor_kills(make_sim: MakeSim) -> None:
    sim = make_sim(kazoo_version="master")
    assert sim.config.max_queued_messages is None and sim.config.send_timeout == 30.0
    ws = stalled_reader(sim)
    try:
        publish_big(sim, 120)
        assert sim.stats.frames_shed == 0
    finally:
        ws.shutdown()


def test_explicit_settings_win_over_the_flavour() -> None:
    config = SimulatorConfig(kazoo_version="master", max_queued_messages=10)
    assert config.max_queued_messages == 10 and config.send_timeout == 30.0
    assert config.bind_delay > 0
    with pytest.raises(ValueError, match="kazoo_version"):
        SimulatorConfig(kazoo_version="4.2")


def test_shed_replies_are_lost_but_the_binding_is_made(sim: Simulator) -> None:
    token = login(sim)
    sim.shed_replies(1)
    with ws_open(sim) as ws:
        message = {
            "action": "subscribe",
            "auth_token": token,
            "request_id": "first",
            "data": {"account_id": ACCT, "binding": "call.CHANNEL_CREATE.*"},
        }
        ws.send(json.dumps(message))
        wait_until(lambda: sim.stats.replies_shed == 1)
        assert subscribe(ws, token, "call.CHANNEL_CREATE.*", rid="again")["request_id"] == "again"
        sim.publish(f"call.{ACCT}.CHANNEL_CREATE.c1", "CHANNEL_CREATE", {"call_id": "c1"})
        assert recv_json(ws)["action"] == "event"
