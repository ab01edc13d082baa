"""A URL whose scheme does not match what its server speaks (https to a plain-HTTP Crossbar,
ws to a TLS blackhole...) is named as such, over real sockets: no CA bundle or --insecure
cures it, and no retry does."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest

from kazoo_tail.errors import ConnectError
from kazoo_tail.net.crossbar import Crossbar
from kazoo_tail.net.transport import ConnectFailed, Transport
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .inprocess import run

trustme = pytest.importorskip("trustme")

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


@pytest.fixture(scope="module")
def server_tls() -> ssl.SSLContext:
    cert = trustme.CA().issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture
def plain_sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(event_rate=0, advertise_ws_url=True)) as simulator:
        yield simulator


@pytest.fixture
def tls_sim(server_tls: ssl.SSLContext) -> Iterator[Simulator]:
    config = SimulatorConfig(event_rate=0, ssl_context=server_tls, advertise_ws_url=True)
    with Simulator(config) as simulator:
        yield simulator


def swapped(url: str, old: str, new: str) -> str:
    assert url.startswith(f"{old}://")
    return new + url[len(old) :]


def one_shot_server(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that reads what comes and answers each connection with
    ``answer``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if stopping.is_set():  # the wake-up below
                conn.close()
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                    answer(conn)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        # Closing the listener does not wake an accept() blocked on it: a connection does.
        stopping.set()
        socket.create_connection(listener.getsockname()).close()
        thread.join(5)
        listener.close()
        assert not thread.is_alive()


@pytest.fixture
def tls_alert_port() -> Iterator[int]:
    """A server that answers anything with a TLS alert record (what many TLS servers send to
    a plain-text request) and closes."""
    yield from one_shot_server(lambda conn: conn.sendall(b"\x15\x03\x01\x00\x02\x02\x46"))


@pytest.fixture
def http_400_port() -> Iterator[int]:
    """A plain-HTTP server that answers anything, a TLS ClientHello too, with HTTP 400."""
    yield from one_shot_server(
        lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    )


# -- Crossbar ----------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", [True, False])
def test_https_to_a_plain_http_crossbar_is_named(plain_sim: Simulator, verify: bool) -> None:
    url = swapped(plain_sim.crossbar_url, "http", "https")
    with pytest.raises(ConnectError) as failure:
        Crossbar(url, verify=verify).get("token_auth")
    assert failure.value.message == (
        f"{url} answered in plain HTTP, not TLS: use {plain_sim.crossbar_url}"
    )


def test_https_to_a_bare_plain_http_server_is_named(http_400_port: int) -> None:
    with pytest.raises(ConnectError) as failure:
        Crossbar(f"https://127.0.0.1:{http_400_port}").get("token_auth")
    assert "answered in plain HTTP, not TLS: use http://127.0.0.1:" in failure.value.message
    assert "--ca-bundle" not in failure.value.message


def test_http_to_a_tls_crossbar_is_named(tls_sim: Simulator) -> None:
    url = swapped(tls_sim.crossbar_url, "https", "http")
    with pytest.raises(ConnectError) as failure:
        Crossbar(url).get("token_auth")
    assert failure.value.message == (
        f"{url} answered in TLS, not plain HTTP: use {tls_sim.crossbar_url}"
    )
    # The right scheme with an untrusted certificate still gets the TLS advice.
    with pytest.raises(ConnectError) as untrusted:
        Crossbar(tls_sim.crossbar_url).get("token_auth")
    assert "TLS verification failed" in untrusted.value.message
    assert "answered in" not in untrusted.value.message


def test_http_answered_by_a_tls_alert_is_named(tls_alert_port: int) -> None:
    url = f"http://127.0.0.1:{tls_alert_port}"
    with pytest.raises(ConnectError) as failure:
        Crossbar(url).get("token_auth")
    assert failure.value.message == (
        f"{url} answered in TLS, not plain HTTP: use https://127.0.0.1:{tls_alert_port}"
    )


def test_a_port_left_out_is_kept_in_the_advice() -> None:
    from kazoo_tail.net.tls import scheme_mismatch

    alert = ConnectionError(OSError("Connection aborted."), "\x15\x03\x01\x00\x02\x02P")
    assert scheme_mismatch("http://kazoo.test/v2", alert, probe=False) == (
        "http://kazoo.test/v2 answered in TLS, not plain HTTP: use https://kazoo.test:80/v2"
    )


# -- blackhole ---------------------------------------------------------------------------------

INSECURE = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}


@pytest.mark.parametrize("sslopt", [{}, INSECURE])
def test_wss_to_a_plain_blackhole_is_named(plain_sim: Simulator, sslopt: dict[str, object]) -> None:
    url = swapped(plain_sim.blackhole_url, "ws", "wss")
    with pytest.raises(ConnectFailed) as failure:
        Transport.open(url, sslopt=sslopt, timeout=5, tick=0.05)
    assert failure.value.sentence == (
        f"blackhole at {url} answered in plain HTTP, not TLS: use {plain_sim.blackhole_url}"
    )
    assert not failure.value.retryable


def test_wss_to_a_bare_plain_http_server_is_named(http_400_port: int) -> None:
    with pytest.raises(ConnectFailed) as failure:
        Transport.open(f"wss://127.0.0.1:{http_400_port}", sslopt={}, timeout=5, tick=0.05)
    assert "answered in plain HTTP, not TLS: use ws://127.0.0.1:" in failure.value.sentence


def test_ws_to_a_tls_blackhole_is_named(tls_sim: Simulator) -> None:
    url = swapped(tls_sim.blackhole_url, "wss", "ws")
    with pytest.raises(ConnectFailed) as failure:
        Transport.open(url, sslopt={}, timeout=5, tick=0.05)
    assert failure.value.sentence == (
        f"blackhole at {url} answered in TLS, not plain HTTP: use {tls_sim.blackhole_url}"
    )
    assert not failure.value.retryable


# -- the installed command ---------------------------------------------------------------------


def login(url: str) -> list[str]:
    return ["--url", url, "--account-name", "demo", "--username", "demo", "-b", "call.*.*"]


@pytest.mark.parametrize("extra", [[], ["--insecure"]])
def test_kazoo_tail_names_https_to_plain_http(plain_sim: Simulator, extra: list[str]) -> None:
    url = swapped(plain_sim.crossbar_url, "http", "https")
    result = run(*login(url), *extra, "--count", "1", **PASSWORD)
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"kazoo-tail: error: {url} answered in plain HTTP, not TLS: use {plain_sim.crossbar_url}\n"
    )


def test_kazoo_tail_names_http_to_tls(tls_sim: Simulator) -> None:
    url = swapped(tls_sim.crossbar_url, "https", "http")
    result = run(*login(url), "--count", "1", **PASSWORD)
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        f"kazoo-tail: error: {url} answered in TLS, not plain HTTP: use {tls_sim.crossbar_url}\n"
    )


def test_kazoo_tail_names_wss_to_a_plain_blackhole(plain_sim: Simulator) -> None:
    url = swapped(plain_sim.blackhole_url, "ws", "wss")
    token = plain_sim.mint_token()
    result = run("--ws-url", url, "-b", "call.*.*", "--count", "1", KAZOO_AUTH_TOKEN=token)
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        f"kazoo-tail: error: blackhole at {url} answered in plain HTTP, not TLS: "
        f"use {plain_sim.blackhole_url}\n"
    )
    assert plain_sim.stats["subscribes"] == 0


def test_kazoo_tail_names_ws_to_a_tls_blackhole(tls_sim: Simulator) -> None:
    url = swapped(tls_sim.blackhole_url, "wss", "ws")
    token = tls_sim.mint_token()
    result = run("--ws-url", url, "-b", "call.*.*", "--count", "1", KAZOO_AUTH_TOKEN=token)
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        f"kazoo-tail: error: blackhole at {url} answered in TLS, not plain HTTP: "
        f"use {tls_sim.blackhole_url}\n"
    )
