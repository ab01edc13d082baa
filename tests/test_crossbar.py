"""The Crossbar client against a raw HTTP server on 127.0.0.1 that answers what each test tells
it to: odd envelopes, missing fields, errors, silence. Every failure is one sentence."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kazoo_tail.errors import AuthError, ConnectError
from kazoo_tail.net import crossbar as crossbar_module
from kazoo_tail.net.crossbar import Crossbar


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"


@dataclass
class Scripted:
    url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, status: int = 200, envelope: Any = None, **kw: Any) -> None:
        body = kw.pop("body", None)
        if body is None:
            body = json.dumps(envelope if envelope is not None else {}).encode()
        self.answers[path] = Answer(status, body, **kw)


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted(url="")

    class Handler(BaseHTTPRequestHandler):
        def _respond(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self.server_body = json.loads(raw) if raw else None
            scripted.requests.append((self.command, self.path, self.server_body))
            if self.path == "/v2/silent":
                scripted.hold.wait(30)  # the client gives up first
            answer = scripted.answers.get(self.path, Answer(404, b'{"message":"not_found"}'))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_PUT = _respond

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield scripted
    scripted.hold.set()
    httpd.shutdown()
    httpd.server_close()


GOOD = {"auth_token": "tok-" + "x" * 40, "data": {"account_id": "acc1", "owner_id": "u1"}}


def test_a_login_and_what_it_advertises(server: Scripted) -> None:
    ws = {"ui_config": {"api": {"kazoo_websocket": {"url": "wss://bh.example.com:7777"}}}}
    server.answer("/v2/user_auth", 201, {**GOOD, "data": {**GOOD["data"], **ws}})
    result = Crossbar(server.url + "/v2/").user_auth("Ops", "pw", realm="acme.example.com")
    assert (result.account_id, result.owner_id, result.ws_url) == (
        "acc1",
        "u1",
        "wss://bh.example.com:7777",
    )
    method, path, body = server.requests[-1]
    assert (method, path) == ("PUT", "/v2/user_auth")
    assert body is not None and body["data"]["account_realm"] == "acme.example.com"
    assert body["data"]["credentials"] == crossbar_module.credentials_hash("ops", "pw")


@pytest.mark.parametrize(
    ("status", "envelope", "error", "sentence"),
    [
        (400, {"message": "invalid_request"}, AuthError, "rejected the login request"),
        (401, {"message": "invalid_credentials"}, AuthError, "invalid credentials"),
        (201, {"data": {"account_id": "a"}}, ConnectError, "without an auth token"),
        (201, {"auth_token": "t" * 40, "data": {}}, ConnectError, "without an account id"),
        (500, {"data": {"message": "db down"}}, ConnectError, "HTTP 500 to /v2/api_auth: db down"),
        (503, {"message": "e", "data": {"k": 1}}, ConnectError, 'e: {"k": 1}'),
        (502, {}, ConnectError, "no reason given"),
        (429, {"message": "slow down"}, ConnectError, "rate limiting us (HTTP 429)"),
    ],
)
def test_login_failures_are_one_sentence(
    server: Scripted, status: int, envelope: Any, error: type[Exception], sentence: str
) -> None:
    server.answer("/v2/api_auth", status, envelope)
    with pytest.raises(error) as failed:
        Crossbar(server.url).api_auth("k" * 64)
    assert sentence in str(failed.value) and "\n" not in str(failed.value)


def test_what_is_not_crossbar_is_named(server: Scripted) -> None:
    server.answer("/v2/websockets", 200, body=b"<html>hi</html>", content_type="text/html")
    with pytest.raises(ConnectError, match="does not look like Crossbar: HTTP 200 with text/html"):
        Crossbar(server.url).get("websockets")
    server.answer("/v2/websockets", 429, body=b"busy", content_type="text/plain")
    with pytest.raises(ConnectError, match="rate limiting us"):
        Crossbar(server.url).get("websockets")
    server.answer("/v2/websockets", 403, {"message": "forbidden"})
    with pytest.raises(AuthError, match="refused GET /v2/websockets: forbidden"):
        Crossbar(server.url).get("websockets")


def test_silence_is_a_timeout_not_a_hang(server: Scripted) -> None:
    with pytest.raises(ConnectError, match="did not answer in time"):
        Crossbar(server.url, timeout=0.3).get("silent")


def test_a_login_needs_an_account(server: Scripted) -> None:
    with pytest.raises(AuthError, match="cannot log in without an account"):
        Crossbar(server.url).user_auth("ops", "pw")
    assert server.requests == []


def test_connection_reasons_are_plain_words() -> None:
    reason = crossbar_module._connection_reason
    assert reason(Exception("[Errno -2] Name or service not known")) == "unknown host name"
    assert reason(Exception("NameResolutionError(...)")) == "host name could not be resolved"
    assert reason(Exception("[Errno 111] Connection refused")) == "connection refused"
    assert reason(Exception("Read timed out.")) == "connection timed out"
    assert reason(Exception("Connection reset by peer")) == "connection reset"
    assert reason(Exception("something else")) == "connection failed"
    ssl_reason = crossbar_module._ssl_reason
    assert ssl_reason(Exception("CERTIFICATE_VERIFY_FAILED")) == "certificate verify failed"
    assert ssl_reason(Exception("handshake failure")) == "TLS handshake failed"


def test_descendants_pages_that_go_round_in_a_loop_are_an_error(server: Scripted) -> None:
    from kazoo_tail.session.resolve import descendant_ids

    page = {"data": [{"id": "child-a"}], "next_start_key": "child-a"}
    server.answer("/v2/accounts/acc1/descendants?paginate=false", 200, page)
    server.answer("/v2/accounts/acc1/descendants?start_key=child-a", 200, page)
    found = descendant_ids(Crossbar(server.url), "acc1", "token")
    with pytest.raises(ConnectError, match="go round in a loop"):
        list(found)
    assert [path for _, path, _ in server.requests] == [
        "/v2/accounts/acc1/descendants?paginate=false",
        "/v2/accounts/acc1/descendants?start_key=child-a",
    ]
