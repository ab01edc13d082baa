"""Demo directory (accounts, users, API keys) and the JWT-shaped Crossbar auth tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class DemoIdentity:
    """The fixed identity every simulator serves; tests and docs rely on these values."""

    account_id: str = "4b8c6fec4b2597882c0390202d195419"
    account_name: str = "demo"
    realm: str = "demo.kazoo.test"
    phone_number: str = "+15555550100"
    username: str = "demo"
    password: str = "demo"
    owner_id: str = "699ed7e3d583e2577ac017c575f87262"
    first_name: str = "Demo"
    last_name: str = "User"
    api_key: str = "d3m0" * 16
    sub_account_ids: tuple[str, str] = (
        "5a1c7e2f9b3d4c8e8f0a1b2c3d4e5f61",
        "6b2d8f3a0c4e5d9f9a1b2c3d4e5f6a72",
    )
    sub_account_names: tuple[str, str] = ("demo-sub-1", "demo-sub-2")
    sub_account_realms: tuple[str, str] = ("sub1.demo.kazoo.test", "sub2.demo.kazoo.test")
    other_account_id: str = "9e8d7c6b5a4f43e2a1b0c9d8e7f6a5b4"
    other_account_name: str = "elsewhere"
    other_realm: str = "elsewhere.kazoo.test"
    other_username: str = "other"
    other_password: str = "other"
    other_owner_id: str = "0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a59"
    # As a human would type it; the directory stores it lower-cased, like Kazoo does.
    admin_username: str = "Admin@Demo.Test"
    admin_password: str = "S3cret!"
    admin_owner_id: str = "3f2e1d0c9b8a47f6e5d4c3b2a1f0e9d8"
    reseller_id: str = "6b71cb72c876b5b1396a335f8f8a2594"


DEMO = DemoIdentity()


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    realm: str
    parent_id: str | None
    phone_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class User:
    id: str
    account_id: str
    username: str  # already lower-cased
    password: str
    first_name: str
    last_name: str


def _normalize_account_name(name: str) -> str:
    # kzd_accounts:normalize_name/1: lower-case, only alphanumerics kept.
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalize_phone_number(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    if number.strip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return "+" + digits


@dataclass
class Directory:
    """Who exists: the demo tree plus one unrelated account."""

    accounts: dict[str, Account] = field(default_factory=dict)
    users: list[User] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def demo(cls) -> Directory:
        d = DEMO
        directory = cls()
        directory.add_account(
            Account(d.account_id, d.account_name, d.realm, None, (d.phone_number,))
        )
        for sub_id, sub_name, sub_realm in zip(
            d.sub_account_ids, d.sub_account_names, d.sub_account_realms
        ):
            directory.add_account(Account(sub_id, sub_name, sub_realm, d.account_id))
        directory.add_account(
            Account(d.other_account_id, d.other_account_name, d.other_realm, None)
        )
        directory.add_user(
            User(d.owner_id, d.account_id, d.username, d.password, d.first_name, d.last_name)
        )
        directory.add_user(
            User(d.admin_owner_id, d.account_id, d.admin_username, d.admin_password, "Ada", "Admin")
        )
        directory.add_user(
            User(d.other_owner_id, d.other_account_id, d.other_username, d.other_password, "O", "T")
        )
        directory.api_keys[d.api_key] = d.account_id
        return directory

    def add_account(self, account: Account) -> None:
        self.accounts[account.id] = account

    def add_user(self, user: User) -> None:
        self.users.append(
            User(
                user.id,
                user.account_id,
                user.username.lower(),
                user.password,
                user.first_name,
                user.last_name,
            )
        )

    def descendants(self, account_id: str) -> list[Account]:
        found: list[Account] = []
        frontier = [account_id]
        while frontier:
            parent = frontier.pop(0)
            for account in self.accounts.values():
                if account.parent_id == parent:
                    found.append(account)
                    frontier.append(account.id)
        return found

    def is_in_hierarchy(self, ancestor_id: str, account_id: object) -> bool:
        """True when account_id is ancestor_id itself or one of its descendants."""
        if not isinstance(account_id, str) or account_id not in self.accounts:
            return False
        current: str | None = account_id
        while current is not None:
            if current == ancestor_id:
                return True
            current = self.accounts[current].parent_id
        return False

    def find_accounts(
        self, phone_number: str | None, realm: str | None, name: str | None
    ) -> list[Account]:
        """Candidate accounts in cb_user_auth's order: phone number, realm, then name."""
        if phone_number:
            wanted = normalize_phone_number(phone_number)
            hits = [a for a in self.accounts.values() if wanted in a.phone_numbers]
            if hits:
                return hits
        if realm:
            hits = [a for a in self.accounts.values() if a.realm.lower() == realm.lower()]
            if hits:
                return hits
        if name:
            wanted = _normalize_account_name(name)
            return [a for a in self.accounts.values() if _normalize_account_name(a.name) == wanted]
        return []

    def check_credentials(self, account_id: str, credentials: str, method: str) -> User | None:
        for user in self.users:
            if user.account_id != account_id:
                continue
            if hmac.compare_digest(credentials.lower(), credential_hash(user, method)):
                return user
        return None


def credential_hash(user: User, method: str) -> str:
    """The hex digest a client must send: hash of "<lower-cased username>:<password>"."""
    secret = f"{user.username.lower()}:{user.password}".encode()
    if method == "sha":
        return hashlib.sha1(secret).hexdigest()
    return hashlib.md5(secret).hexdigest()


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


class TokenStatus(Enum):
    VALID = "valid"
    INVALID = "invalid"
    # JWT-shaped but undecodable or without "iss": blackhole crashes on these (close 1011).
    MALFORMED = "malformed"


@dataclass(frozen=True)
class TokenCheck:
    status: TokenStatus
    claims: dict[str, Any]


class TokenAuthority:
    """Mints and validates tokens shaped like Kazoo's RS256 JWTs (HMAC stands in for RSA)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.kid = os.urandom(16).hex()
        self._signing_key = os.urandom(32)
        self._identity_secret = os.urandom(32)
        self._lock = threading.Lock()

    def revoke_all(self) -> None:
        # Rotating the identity secret is what a password change does to real tokens.
        with self._lock:
            self._identity_secret = os.urandom(32)

    def _identity_sig(self, account_id: str, owner_id: str | None) -> str:
        with self._lock:
            secret = self._identity_secret
        digest = hmac.new(secret, f"{account_id}:{owner_id or ''}".encode(), hashlib.sha256)
        return b64url_encode(digest.digest())

    def _sign(self, signing_input: str) -> str:
        mac = hmac.new(self._signing_key, signing_input.encode("ascii"), hashlib.sha256)
        return b64url_encode(mac.digest())

    def mint(
        self,
        account_id: str,
        owner_id: str | None,
        method: str,
        exp: float | None = None,
    ) -> str:
        expires = int(exp if exp is not None else time.time() + self.ttl)
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        payload: dict[str, Any] = {
            "identity_sig": self._identity_sig(account_id, owner_id),
            "iss": "kazoo",
            "account_id": account_id,
        }
        if owner_id is not None:
            payload["owner_id"] = owner_id
        payload["method"] = method
        payload["exp"] = expires
        signing_input = ".".join(
            b64url_encode(json.dumps(part, separators=(",", ":")).encode())
            for part in (header, payload)
        )
        return f"{signing_input}.{self._sign(signing_input)}"

    def check(self, token: str) -> TokenCheck:
        parts = token.split(".")
        if len(parts) != 3:
            return TokenCheck(TokenStatus.INVALID, {})
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return TokenCheck(TokenStatus.MALFORMED, {})
        if not isinstance(header, dict) or not isinstance(claims, dict) or "iss" not in claims:
            return TokenCheck(TokenStatus.MALFORMED, {})
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            return TokenCheck(TokenStatus.INVALID, claims)
        expected = self._sign(f"{parts[0]}.{parts[1]}")
        if not hmac.compare_digest(expected, parts[2]):
            return TokenCheck(TokenStatus.INVALID, claims)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= time.time():
            return TokenCheck(TokenStatus.INVALID, claims)
        account_id = claims.get("account_id")
        owner_id = claims.get("owner_id")
        if not isinstance(account_id, str) or not (owner_id is None or isinstance(owner_id, str)):
            return TokenCheck(TokenStatus.INVALID, claims)
        sig = claims.get("identity_sig")
        if not isinstance(sig, str) or not hmac.compare_digest(
            sig, self._identity_sig(account_id, owner_id)
        ):
            return TokenCheck(TokenStatus.INVALID, claims)
        return TokenCheck(TokenStatus.VALID, claims)

    def validate(self, token: str) -> dict[str, Any] | None:
        result = self.check(token)
        return result.claims if result.status is TokenStatus.VALID else None
