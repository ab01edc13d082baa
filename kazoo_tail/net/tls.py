"""TLS trust for the websocket (the same as requests uses for Crossbar), and a plain account
of a TLS connection for doctor."""

from __future__ import annotations

import os
import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

CERT_WARN_DAYS = 14


def websocket_sslopt(verify: bool | str) -> dict[str, Any]:
    """websocket-client's TLS options for requests' ``verify``: False, a CA bundle, or True."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if isinstance(verify, str):
        return {"ca_certs": verify}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return {"ca_certs": bundle} if bundle else {}


def tls_details(sock: ssl.SSLSocket) -> tuple[str, bool]:
    """TLS version, cipher and certificate, and whether anything there is worrying."""
    cipher = sock.cipher()
    parts = [f"{sock.version() or 'TLS'} {cipher[0] if cipher else 'unknown cipher'}"]
    cert: dict[str, Any] = dict(sock.getpeercert() or {})
    if not cert:
        parts.append("certificate NOT verified (--insecure)")
        return ", ".join(parts), True
    subject = ", ".join(
        f"{_SHORT_NAMES.get(key, key)}={value}"
        for rdn in cert.get("subject", ())
        for key, value in rdn
    )
    names = [str(value) for _, value in cert.get("subjectAltName", ())][:4]
    text = f"certificate {subject or 'without subject'}"
    if names:
        text += f" for {', '.join(names)}"
    worrying = False
    not_after = cert.get("notAfter")
    if isinstance(not_after, str):
        expires = ssl.cert_time_to_seconds(not_after)
        text += f", valid until {datetime.fromtimestamp(expires, timezone.utc).date().isoformat()}"
        if expires - time.time() < CERT_WARN_DAYS * 86400:
            text += f" (expires within {CERT_WARN_DAYS} days)"
            worrying = True
    parts.append(text)
    return ", ".join(parts), worrying


_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


# -- a URL whose scheme does not match what the server speaks ---------------------------------

# OpenSSL's reasons when the first bytes back are not a TLS record: a plain-HTTP answer
# ("HTTP/1.1 400" read as a record header) names one of these, depending on the version.
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "wrong version number",
    "record layer failure",
    "RECORD_LAYER_FAILURE",
    "packet length too long",
    "PACKET_LENGTH_TOO_LONG",
    "http request",
    "HTTP_REQUEST",
    "unknown protocol",
    "UNKNOWN_PROTOCOL",
)
# A TLS record starts with its type (0x15 an alert, 0x16 a handshake) and major version 3.
_TLS_RECORD_STARTS = ("\x15\x03", "\x16\x03")
# Long enough for a server on the same host:port to answer one small probe.
PROBE_TIMEOUT = 3.0


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and every cause and context behind it (requests wraps urllib3's, which
    wraps the ssl module's), each once, and also the ones urllib3 keeps in ``reason`` and a
    ProtocolError in its arguments."""
    found: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if any(current is seen for seen in found) or len(found) > 20:
            continue
        found.append(current)
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return found


def answered_in_plain_text(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server's first bytes were not TLS (a plain
    HTTP or websocket server answering a ClientHello with an HTTP error)."""
    for link in exception_chain(exc):
        if isinstance(link, ssl.SSLError) and not isinstance(link, ssl.SSLCertVerificationError):
            text = f"{getattr(link, 'reason', '') or ''} {link}"
            if any(reason in text for reason in _NOT_TLS_REASONS):
                return True
    return False


def answered_in_tls(exc: BaseException) -> bool:
    """Whether a plain-text request got TLS bytes back (a TLS server's alert read as an HTTP
    status line)."""
    for link in exception_chain(exc):
        for arg in (*link.args, getattr(link, "line", None)):
            if isinstance(arg, bytes):
                arg = arg.decode("latin-1")
            if isinstance(arg, str) and arg.startswith(_TLS_RECORD_STARTS):
                return True
    return False


def handshake_cut_short(exc: BaseException) -> bool:
    """Whether the server just closed or reset the connection while we opened it: some plain
    servers do that to a ClientHello, and some TLS servers to a plain request, so only a
    probe can tell."""
    return any(
        isinstance(link, (ssl.SSLEOFError, ConnectionResetError, ConnectionAbortedError))
        # By name: http.client's, and websocket-client's for an upgrade answered by a close.
        or type(link).__name__
        in ("RemoteDisconnected", "BadStatusLine", "WebSocketConnectionClosedException")
        or (isinstance(link, ssl.SSLError) and "EOF" in str(link))
        for link in exception_chain(exc)
    )


def speaks_tls(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether host:port completes a TLS handshake (nothing verified, nothing sent after it):
    one cheap look, made only after a plain request there failed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host or None):
                return True
    except (OSError, ValueError):
        return False


def speaks_plain_http(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether host:port answers a plain ``GET /`` with an HTTP status line: one cheap look,
    made only after a TLS handshake there was cut short. A GET in HTTP/1.1, as a websocket
    upgrade is: a websocket-only server (websockets before 17, say) drops anything else
    without a word."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.sendall(request.encode("ascii", "replace"))
            return raw.recv(5) == b"HTTP/"
    except (OSError, ValueError):
        return False


def scheme_mismatch(url: str, exc: BaseException, *, probe: bool = True) -> str | None:
    """ "answered in plain HTTP, not TLS: use http://..." (or the reverse) when ``exc`` shows
    that ``url``'s scheme is not what its server speaks, else None. Only an ambiguous failure
    (a connection closed or reset while opening) costs a probe, to the same host and port."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", _port(parts)
    swapped = _SWAPPED.get(parts.scheme)
    if swapped is None or port is None:
        return None
    # The port stays where the server is: https://host means 443, and http://host would not.
    netloc = parts.netloc if parts.port else f"{parts.netloc}:{port}"
    other = urlunsplit((swapped, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))
    if parts.scheme in ("https", "wss"):
        if answered_in_plain_text(exc) or (
            probe and handshake_cut_short(exc) and speaks_plain_http(host, port)
        ):
            return f"{url} answered in plain HTTP, not TLS: use {other}"
        return None
    if answered_in_tls(exc) or (probe and handshake_cut_short(exc) and speaks_tls(host, port)):
        return f"{url} answered in TLS, not plain HTTP: use {other}"
    return None


_SWAPPED = {"https": "http", "http": "https", "wss": "ws", "ws": "wss"}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
