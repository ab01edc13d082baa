"""Reading a Crossbar JWT's claims without verifying it (the server does that)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, or {} when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a payload nested deeper than json's parser goes, which no issuer of
        # real tokens writes; like any unreadable payload, it only means no claims are known.
        return {}
    return claims if isinstance(claims, dict) else {}


def is_jwt(token: str) -> bool:
    """Whether the token has a JWT's shape: three segments, the first a JSON object header.

    The header, not the payload, decides: a JWT whose claims cannot be read is still a JWT (and
    names no account), while a pasted password, API key or typo is not one at all."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    segment = parts[0] + "=" * (-len(parts[0]) % 4)
    try:
        header = json.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(header, dict)


def token_expiry(token: str) -> float | None:
    """Unix time at which the token expires, when it says so."""
    exp = token_claims(token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None
