"""The one websocket transport: its failure sentences, and what it does over real sockets when
the server closes, resets, or answers pings in the middle of other traffic."""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

import pytest
import websocket
from websockets.sync.server import ServerConnection

from kazoo_tail.net.transport import (
    ConnectFailed,
    LinkLost,
    Transport,
    connect_failure,
    describe_close,
    describe_error,
)
from kazoo_tail.session.decoder import Decoder
from kazoo_tail.session.link import Link

from .conftest import wait_until

URL = "ws://kazoo.example.com:5555"


def status_error(code: int) -> websocket.WebSocketBadStatusException:
    return websocket.WebSocketBadStatusException("Handshake status %d %s", code, "x")


@pytest.mark.parametrize(
    ("exc", "sentence", "retryable"),
    [
        (status_error(429), "HTTP 429 (too many connections from this address)", True),
        (status_error(400), "HTTP 400 (a proxy may be adding a Sec-WebSocket-Protocol", False),
        (status_error(503), "HTTP 503 (blackhole or a proxy in front of it is failing)", True),
        (status_error(404), "refused the websocket upgrade with HTTP 404", False),
        (socket.gaierror(-2, "Name or service not known"), "could not be resolved", True),
        (websocket.WebSocketAddressException("x"), "could not be resolved", True),
        (ConnectionRefusedError(111, "refused"), "connection refused", True),
        (TimeoutError(), "timed out while connecting", True),
        (websocket.WebSocketTimeoutException("t"), "timed out while connecting", True),
        (ConnectionResetError(), "connection reset by the server", True),
        (ssl.SSLError(1, "EOF occurred"), "TLS handshake with", True),
    ],
)
def test_connect_failures_are_one_sentence_with_a_retry_decision(
    exc: BaseException, sentence: str, retryable: bool
) -> None:
    text, may_retry = connect_failure(URL, exc)
    assert sentence in text and URL in text
    assert may_retry is retryable
    assert "\n" not in text


def test_an_untrusted_certificate_is_not_retried() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    text, retryable = connect_failure("wss://kazoo.example.com:7777", exc)
    assert "self-signed certificate" in text and "--ca-bundle" in text and not retryable


def test_close_and_error_descriptions() -> None:
    assert describe_close(b"\x03\xe9going away") == " (code 1001: going away)"
    assert describe_close(b"\x03\xe8") == " (code 1000)"
    assert describe_close(b"") == " (no close code)"
    assert describe_error(BrokenPipeError()) == "connection broken"
    assert describe_error(TimeoutError()) == "timed out"
    assert describe_error(OSError()) == "OSError"
    assert len(describe_error(OSError("x" * 500))) == 200


def test_a_refused_port_fails_to_open() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the connect: nothing listens
    with pytest.raises(ConnectFailed) as failed:
        Transport.open(f"ws://127.0.0.1:{port}", sslopt={}, timeout=5, tick=0.05)
    assert failed.value.retryable and "connection refused" in failed.value.sentence


def link(url: str) -> Link:
    return Link(Transport.open(url, sslopt={}, timeout=5, tick=0.05), Decoder())


def test_a_close_frame_loses_the_link_with_its_code(scripted: Any) -> None:
    def script(ws: ServerConnection) -> None:
        ws.close(1001, "node going down")

    subject = link(scripted(script))
    with pytest.raises(LinkLost, match=r"closed the connection \(code 1001: node going down\)"):
        while True:
            subject.receive()
    subject.transport.drop()


def test_a_ping_round_trip_counts_events_that_arrive_first(scripted: Any) -> None:
    event = {"action": "event", "routing_key": "call.a.CHANNEL_CREATE.c", "data": {"msg_id": "1"}}

    def script(ws: ServerConnection) -> None:
        ws.send(json.dumps(event))
        ws.send(b"\x00binary")
        for _ in ws:
            pass

    subject = link(scripted(script))
    # The event is on our side of the socket before the ping leaves, so it must come first.
    wait_until(subject.transport.data_waiting, what="the server's first frames")
    seconds = subject.ping_round_trip(timeout=10)
    assert seconds >= 0 and subject.events_seen == 1
    subject.transport.close()


def test_a_request_without_its_reply_times_out(scripted: Any) -> None:
    def script(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            ws.send(json.dumps({"action": "reply", "request_id": "not-" + request["request_id"]}))

    subject = link(scripted(script))
    with pytest.raises(LinkLost, match="no reply to app ping within 0.3 s"):
        subject.request('{"action":"ping","request_id":"r1"}', "r1", 0.3, "app ping")
    subject.transport.drop()
    with pytest.raises(LinkLost):
        subject.transport.send_text("after the drop")
