"""TLS trust for the websocket (the same as requests uses for Crossbar), and a plain account
of a TLS connection for doctor."""

from __future__ import annotations

import os
import ssl
import time
from datetime import UTC, datetime
from typing import Any

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
        text += f", valid until {datetime.fromtimestamp(expires, UTC).date().isoformat()}"
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
