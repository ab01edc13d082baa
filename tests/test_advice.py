"""Issue 12, item 7 ("advice that is right"): each piece of advice names the mistake that was
actually made. Errors are read from kazoo-tail run in-process (tests/inprocess.py)."""

from __future__ import annotations

import base64
import json

from kazoo_tail.kazoo.tokens import is_jwt

from .inprocess import run

# Never connected to: the token is judged before any socket is opened.
NOWHERE = "ws://127.0.0.1:9"


def segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_jwt_is_known_by_its_header() -> None:
    assert is_jwt(f"{segment({'alg': 'RS256'})}.{segment({'account_id': 'a'})}.sig")
    # Unreadable claims do not make it less of a JWT; that is a token naming no account.
    assert is_jwt(f"{segment({'alg': 'RS256'})}.!!!.sig")
    assert not is_jwt("garbage")
    assert not is_jwt("0123456789abcdef0123456789abcdef")
    assert not is_jwt("a.b.c")
    assert not is_jwt(f"{segment(['not', 'an', 'object'])}.{segment({})}.sig")


def test_a_token_that_is_not_a_jwt_is_called_that() -> None:
    result = run("-b", "call.*.*", "--ws-url", NOWHERE, "--token", "garbage")
    assert result.returncode == 2, result.stderr
    assert "the token given is not a Kazoo auth token (not a JWT)" in result.stderr
    assert "does not name its account" not in result.stderr
    assert "garbage" not in result.stderr


def test_a_jwt_without_an_account_still_says_so() -> None:
    token = f"{segment({'alg': 'RS256'})}.{segment({'owner_id': 'o'})}.sig"
    result = run("-b", "call.*.*", "--ws-url", NOWHERE, KAZOO_AUTH_TOKEN=token)
    assert result.returncode == 2, result.stderr
    assert "the token does not name its account: pass --account-id" in result.stderr
