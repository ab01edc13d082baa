"""The webhook sender against real local endpoints: answers, transport errors, redirects,
credentials that must not leak, a bounded answer, TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from kazoo_tail.net.hook_http import BODY_LIMIT, HookSender
from kazoo_tail.net.urls import shown_url, text_without_userinfo

from .hook_receiver import Behaviour, HookReceiver, refused_url

FORM = {"Content-Type": "application/x-www-form-urlencoded", "X-Hook-ID": "h1"}


@pytest.fixture
def sender() -> Iterator[HookSender]:
    hooks = HookSender(read_timeout=5.0, user_agent="kazoo-tail/test")
    yield hooks
    hooks.close()


def test_200_is_sent_with_the_given_headers_and_body(sender: HookSender) -> None:
    with HookReceiver() as receiver:
        attempt = sender.send("POST", receiver.url + "?a=1", FORM, b"x=1&y=2")
        (got,) = receiver.wait_for(1)
    assert (attempt.status, attempt.error, attempt.location) == (200, None, None)
    assert attempt.seconds >= 0
    assert (got.method, got.path, got.query, got.form) == (
        "POST",
        "/hook",
        "a=1",
        [("x", "1"), ("y", "2")],
    )
    assert got.headers["x-hook-id"] == "h1"
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    assert got.headers["user-agent"] == "kazoo-tail/test"
    assert "authorization" not in got.headers and "cookie" not in got.headers


def test_500_is_an_answer_not_an_error(sender: HookSender) -> None:
    with HookReceiver(Behaviour(status=500)) as receiver:
        attempt = sender.send("PUT", receiver.url, FORM, b"x=1")
    assert (attempt.status, attempt.error) == (500, None)


def test_refused(sender: HookSender) -> None:
    attempt = sender.send("POST", refused_url(), FORM, b"x=1")
    assert (attempt.status, attempt.error) == (None, "connection refused")
    assert not attempt.unanswered  # nothing reached the endpoint: Kazoo tries again


def test_no_answer_within_the_read_timeout() -> None:
    sender = HookSender(read_timeout=0.2)
    with HookReceiver() as receiver:
        receiver.hold()
        attempt = sender.send("POST", receiver.url, FORM, b"x=1")
        receiver.release()
    sender.close()
    assert (attempt.status, attempt.error) == (None, "no answer within 0.2 s")
    assert attempt.unanswered  # the endpoint has the request: never sent twice


def test_a_url_is_shown_without_its_userinfo_or_query_values() -> None:
    assert shown_url(
        "https://alice:s3cret@hooks.example:8443/in?token=abc&env=dev", hide_query_values=True
    ) == ("https://hooks.example:8443/in?token=…&env=…")
    assert shown_url("http://127.0.0.1:4242/hooks", hide_query_values=True) == (
        "http://127.0.0.1:4242/hooks"
    )


def test_hang_up(sender: HookSender) -> None:
    with HookReceiver(Behaviour(hang_up=True)) as receiver:
        attempt = sender.send("POST", receiver.url, FORM, b"x=1")
    assert attempt.status is None
    assert attempt.error in (
        "the connection was reset",
        "the endpoint closed the connection without answering",
    )


def test_get_redirect_to_the_same_host_is_followed(sender: HookSender) -> None:
    with HookReceiver(Behaviour(redirect_to="/moved?b=2", redirects=1)) as receiver:
        attempt = sender.send("GET", receiver.url + "?a=1", {"X-Hook-ID": "h1"}, b"")
        first, second = receiver.wait_for(2)
    assert (attempt.status, attempt.error) == (200, None)
    assert (first.path, second.path, second.query, second.method) == (
        "/hook",
        "/moved",
        "b=2",
        "GET",
    )
    assert second.headers["x-hook-id"] == "h1"


def test_get_redirects_stop_after_five_hops(sender: HookSender) -> None:
    with HookReceiver(Behaviour(redirect_to="/again")) as receiver:
        attempt = sender.send("GET", receiver.url, {}, b"")
        assert len(receiver.received) == 6
    assert attempt.status == 302
    assert attempt.error is not None and "more than 5 redirects" in attempt.error


def test_post_redirect_is_not_followed(sender: HookSender) -> None:
    """httpc (OTP 19, Kazoo 4.3's) answers a POST's 301/302/307 itself: no second request."""
    with HookReceiver(Behaviour(redirect_to="/moved")) as receiver:
        attempt = sender.send("POST", receiver.url, FORM, b"x=1")
        assert len(receiver.received) == 1
    assert attempt.status == 302
    assert attempt.location == f"http://127.0.0.1:{receiver.port}/moved"
    assert attempt.error == f"redirected (302) to {attempt.location}: not followed for POST"


@pytest.mark.parametrize(("host", "other"), [("localhost", "host"), ("127.0.0.1", "port")])
def test_redirect_to_another_host_is_not_followed(
    sender: HookSender, host: str, other: str
) -> None:
    """Another host name (localhost is not 127.0.0.1) or another port: nothing reaches it."""
    with HookReceiver() as elsewhere:
        port = elsewhere.port
        target = f"http://{host}:{port}/hook"
        with HookReceiver(Behaviour(redirect_to=target)) as receiver:
            attempt = sender.send("GET", receiver.url, {}, b"")
            assert len(receiver.received) == 1
        assert elsewhere.received == []
    assert (attempt.status, attempt.location) == (302, target)
    assert attempt.error == f"redirected to another {other} (http://{host}:{port}/): not followed"


def test_userinfo_is_never_shown(sender: HookSender) -> None:
    url = refused_url().replace("//", "//user:s3cret@")
    assert "s3cret" not in str(sender.send("POST", url, FORM, b"x=1"))
    with HookReceiver() as other:
        target = f"http://user:s3cret@localhost:{other.port}/hook"
        with HookReceiver(Behaviour(redirect_to=target)) as receiver:
            attempt = sender.send("GET", receiver.url, {}, b"")
    assert attempt.error is not None and attempt.location is not None
    assert "s3cret" not in attempt.error and "s3cret" not in attempt.location
    assert (
        text_without_userinfo("see http://a:b@h:1/x and https://c@d/")
        == "see http://h:1/x and https://d/"
    )


def test_no_netrc_credentials(
    sender: HookSender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")  # would be refused if used
    with HookReceiver() as receiver:
        # The .netrc is one requests reads by default: the check below means something.
        assert requests.get(receiver.url, proxies={"http": ""}).request.headers.get("Authorization")
        attempt = sender.send("POST", receiver.url, FORM, b"x=1")
        got = receiver.wait_for(2)[1]
    assert (attempt.status, attempt.error) == (200, None)
    assert "authorization" not in got.headers


class _HugeAnswer:
    """Answers 200 with a body that never ends; counts what it managed to write."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.written = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
            chunk = b"x" * 65536
            try:
                while self.written < 1_000_000_000:
                    conn.sendall(chunk)
                    self.written += len(chunk)
            except OSError:
                pass


def test_a_huge_answer_is_read_only_so_far(sender: HookSender) -> None:
    huge = _HugeAnswer()
    attempt = sender.send("POST", huge.url, FORM, b"x=1")
    huge.thread.join(10)
    huge.listener.close()
    assert (attempt.status, attempt.error) == (200, None)
    assert not huge.thread.is_alive()
    # What the kernel buffered, at most; not the gigabyte announced.
    assert BODY_LIMIT <= huge.written < 100_000_000


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[str, str]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the refused handshake of the untrusted test

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hook", str(ca_path)
    finally:
        server.shutdown()
        server.server_close()


def test_tls_verified_with_a_ca_bundle_and_refused_without(tls_receiver: tuple[str, str]) -> None:
    url, ca_path = tls_receiver
    trusted = HookSender(verify=ca_path)
    untrusted = HookSender()
    ok = trusted.send("POST", url, FORM, b"x=1")
    refused = untrusted.send("POST", url, FORM, b"x=1")
    trusted.close()
    untrusted.close()
    assert (ok.status, ok.error) == (200, None)
    assert (refused.status, refused.error) == (None, "TLS certificate not trusted")


def test_an_answer_whose_body_never_comes_is_still_an_answer() -> None:
    """The status line and headers came; the body stalls: the status stands, nothing raises."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
            stop.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    sender = HookSender(read_timeout=0.2)
    attempt = sender.send("POST", url, FORM, b"x=1")
    stop.set()
    thread.join(10)
    listener.close()
    sender.close()
    assert (attempt.status, attempt.error) == (200, None)


def test_redirect_to_another_scheme_on_the_same_host_is_not_followed(sender: HookSender) -> None:
    with HookReceiver() as receiver:
        target = f"https://127.0.0.1:{receiver.port}/hook"
        receiver.behaviour.redirect_to = target
        attempt = sender.send("GET", receiver.url, {}, b"")
        assert len(receiver.received) == 1
    assert attempt.error == f"redirected to another scheme ({target[:-4]}): not followed"
