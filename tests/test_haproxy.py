"""wss through a real HAProxy terminating TLS in front of the simulator's blackhole, the way
Kazoo's documentation deploys it on port 7777."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import login_args, run, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def haproxy_wss(tmp_path: Path) -> Iterator[tuple[Simulator, str, Path]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = tmp_path / "haproxy.pem"
    pem.write_bytes(
        cert.private_key_pem.bytes() + b"".join(c.bytes() for c in cert.cert_chain_pems)
    )
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    with Simulator(SimulatorConfig(event_rate=50, seed=5)) as simulator:
        backend = urlsplit(simulator.blackhole_url).port
        port = free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            f"""
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend blackhole_wss
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend blackhole
backend blackhole
    server bh1 127.0.0.1:{backend}
"""
        )
        proxy = subprocess.Popen(
            ["haproxy", "-f", str(config), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: listening(port), what=f"haproxy listening on port {port}")
            yield simulator, f"wss://127.0.0.1:{port}", ca_path
        finally:
            proxy.terminate()
            proxy.wait(5)


def test_wss_through_haproxy(haproxy_wss: tuple[Simulator, str, Path]) -> None:
    simulator, wss_url, ca_path = haproxy_wss
    result = run(
        *login_args(simulator),
        "--ws-url",
        wss_url,
        "--ca-bundle",
        str(ca_path),
        "-b",
        "call.*.*",
        "--count",
        "5",
        KAZOO_PASSWORD=DEMO.password,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.json_lines()) == 5 and f"on {wss_url}" in result.stderr
    untrusted = run(
        *login_args(simulator),
        "--ws-url",
        wss_url,
        "-b",
        "call.*.*",
        "--count",
        "1",
        KAZOO_PASSWORD=DEMO.password,
    )
    assert untrusted.returncode == 4 and "TLS verification failed" in untrusted.stderr
