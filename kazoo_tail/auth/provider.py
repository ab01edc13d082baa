"""Getting a valid Crossbar token: from --token, the cache, a refresh, or a fresh login.

``requests`` (through ``crossbar``) is imported only when a network round trip is really needed,
so a tail with a valid cached token starts without paying for it. The cache is a convenience:
a token in hand that cannot be cached (a full disk, a read-only config directory) is still
used, and the failure is told once through ``warn``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kazoo_tail.auth.store import CachedToken, ConfigStore
from kazoo_tail.errors import AuthError, ConfigError, register_secret
from kazoo_tail.kazoo.tokens import token_claims

if TYPE_CHECKING:
    from kazoo_tail.net.crossbar import Crossbar, LoginResult

# Renew a token this long before its exp, so that a reconnect never presents a dead one.
RENEW_MARGIN_SECONDS = 120.0

# Why a login needs the password now ("token rejected", "token expired"; None for a first
# login), set while ``Credentials.password`` is called: a prompt in the middle of a running
# tail can then say why it interrupts, and password sources keep taking no argument.
login_reason: ContextVar[str | None] = ContextVar("login_reason", default=None)
# False in a thread that must never ask for a password (the calls board's listings): a
# password source then gives only what it has without asking (the environment, one typed
# before) and a login that needs more fails with PasswordNeeded. A new thread starts with the
# default, so the quiet context is set in the thread that needs it.
may_prompt: ContextVar[bool] = ContextVar("may_prompt", default=True)


@dataclass
class Credentials:
    url: str | None = None
    username: str | None = None
    account_name: str | None = None
    realm: str | None = None
    phone_number: str | None = None
    api_key: str | None = None
    api_key_hash: str | None = None
    token: str | None = None
    # Called only when a login is needed, so nobody is prompted while a cached token is good.
    password: Callable[[], str | None] | None = None

    def cache_key(self) -> str | None:
        if not self.url:
            return None
        server = self.url.rstrip("/").removesuffix("/v2")
        if self.api_key or self.api_key_hash:
            return f"{server} api-key:{self.api_key_hash or api_key_hash(self.api_key or '')}"
        if self.username:
            account = self.phone_number or self.realm or self.account_name or ""
            return f"{server} {account.lower()} {self.username.lower()}"
        return None


class PasswordNeeded(AuthError):
    """A login needs a password and none is at hand."""


def api_key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class TokenProvider:
    """Hands out a token that is valid now, renewing it as quietly as possible."""

    def __init__(
        self,
        credentials: Credentials,
        store: ConfigStore | None,
        *,
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        """``warn`` is told, once, that a new token could not be cached; by default it becomes
        a Python warning, the library's way of saying something that is not an error."""
        self.credentials = credentials
        self.store = store
        self.verify = verify
        self.clock = clock
        self.warn = warn or _python_warning
        self._told_cache_failure = False
        self._current: CachedToken | None = None
        self._lock = threading.Lock()
        self._crossbar: Crossbar | None = None
        self._refresher: threading.Thread | None = None
        register_secret(credentials.token)
        register_secret(credentials.api_key)

    # -- public -----------------------------------------------------------------------------

    def __call__(self, *, refresh: bool = False) -> str:
        return self.current(refresh=refresh).token

    def current(self, *, refresh: bool = False) -> CachedToken:
        """A usable token; ``refresh`` means the server just rejected the one we had."""
        with self._lock:
            return self._current_locked(rejected=refresh)

    def current_quietly(self, *, rejected: str | None = None) -> CachedToken:
        """As ``current``, for a background thread: never asks for a password. ``rejected``
        is a token the server just refused: renewed unless another caller has already."""
        told = may_prompt.set(False)
        try:
            with self._lock:
                held = self._current
                again = rejected is not None and (held is None or held.token == rejected)
                return self._current_locked(rejected=again)
        finally:
            may_prompt.reset(told)

    def login(self) -> CachedToken:
        """Log in afresh with the credentials at hand and cache the result."""
        with self._lock:
            token = self._login()
            if token is None:
                raise AuthError("no credentials to log in with: give a username or an API key")
            return token

    def keep_fresh(self) -> None:
        """Renew in the background when the token nears expiry, while it can still be renewed.

        A long tail may need a new token only at its next reconnect, hours from now, when the
        old one can no longer be refreshed and no password may be at hand.
        """
        token = self._current
        if token is None or self.credentials.token or self._is_fresh(token):
            return
        if self._refresher is not None and self._refresher.is_alive():
            return
        self._refresher = threading.Thread(target=self._refresh_quietly, daemon=True)
        self._refresher.start()

    # -- internals --------------------------------------------------------------------------

    def _refresh_quietly(self) -> None:
        """Refresh only: a background thread must never prompt for a password."""
        with self._lock:
            token = self._current
            if token is None or self._is_fresh(token) or self._is_expired(token):
                return
            try:
                self._remember(self._crossbar_client().refresh(token.token), token)
            except Exception:  # noqa: BLE001 - the next reconnect reports any real problem
                pass

    def _current_locked(self, *, rejected: bool) -> CachedToken:
        if self.credentials.token:
            if rejected:
                raise AuthError("the server rejected the token given with --token")
            return self._explicit_token(self.credentials.token)

        cached = self._current or self._load_cached()
        if cached is not None and not rejected and self._is_fresh(cached):
            self._current = cached
            return cached
        if cached is not None and self.credentials.url and not self._is_expired(cached):
            try:
                return self._remember(self._crossbar_client().refresh(cached.token), cached)
            except AuthError:
                pass  # e.g. the password was changed: a fresh login may still work
        reason = None
        if cached is not None:
            reason = "token rejected" if rejected else "token expired"
        try:
            token = self._login(reason)
        except PasswordNeeded:
            if cached is None:
                raise
            token = None
        if token is not None:
            return token
        if cached is not None:
            raise AuthError(
                "the cached token has expired or was rejected and no password is at hand: "
                "run 'kazoo-tail login' or set KAZOO_PASSWORD"
            )
        raise AuthError(
            "not logged in: run 'kazoo-tail login', or pass --username, --api-key or --token"
        )

    def _login(self, reason: str | None = None) -> CachedToken | None:
        creds = self.credentials
        if not creds.url:
            return None
        if creds.api_key:
            return self._remember(self._crossbar_client().api_auth(creds.api_key))
        if creds.username:
            password = _ask(creds.password, reason) if creds.password else None
            if not password:
                raise PasswordNeeded(
                    f"no password for user {creds.username!r}: set KAZOO_PASSWORD, use "
                    "--password-stdin, or run in a terminal to be asked"
                )
            result = self._crossbar_client().user_auth(
                creds.username,
                password,
                account_name=creds.account_name,
                realm=creds.realm,
                phone_number=creds.phone_number,
            )
            return self._remember(result)
        return None

    def _remember(self, result: LoginResult, previous: CachedToken | None = None) -> CachedToken:
        token = CachedToken(
            token=result.token,
            account_id=result.account_id,
            owner_id=result.owner_id or (previous.owner_id if previous else None),
            account_name=result.account_name or (previous.account_name if previous else None),
            ws_url=result.ws_url or (previous.ws_url if previous else None),
        )
        self._current = token
        key = self.credentials.cache_key()
        if self.store is not None and key is not None:
            try:
                self.store.save_token(key, token)
            except ConfigError as exc:
                # Failing to cache must not end a tail that holds a valid token: the cost is
                # only a login on the next start.
                if not self._told_cache_failure:
                    self._told_cache_failure = True
                    self.warn(
                        f"the token could not be cached ({exc.message}), "
                        "so the next kazoo-tail logs in again"
                    )
        return token

    def _load_cached(self) -> CachedToken | None:
        key = self.credentials.cache_key()
        if self.store is None or key is None:
            return None
        cached = self.store.token(key)
        if cached is not None:
            register_secret(cached.token)
        return cached

    def _explicit_token(self, token: str) -> CachedToken:
        claims = token_claims(token)
        account_id = claims.get("account_id")
        owner_id = claims.get("owner_id")
        return CachedToken(
            token=token,
            account_id=account_id if isinstance(account_id, str) else "",
            owner_id=owner_id if isinstance(owner_id, str) else None,
        )

    def crossbar(self) -> Crossbar:
        """A Crossbar client for this server, sharing the provider's TLS settings."""
        if not self.credentials.url:
            from kazoo_tail.errors import UsageError

            raise UsageError("this needs Crossbar: pass --url (or set KAZOO_URL)")
        return self._crossbar_client()

    def _crossbar_client(self) -> Crossbar:
        if self._crossbar is None:
            from kazoo_tail.net.crossbar import Crossbar

            assert self.credentials.url is not None
            self._crossbar = Crossbar(self.credentials.url, verify=self.verify)
        return self._crossbar

    def _is_fresh(self, token: CachedToken) -> bool:
        return token.expires_at is None or token.expires_at - self.clock() > RENEW_MARGIN_SECONDS

    def _is_expired(self, token: CachedToken) -> bool:
        return token.expires_at is not None and token.expires_at <= self.clock() + 5


def _ask(password: Callable[[], str | None], reason: str | None) -> str | None:
    told = login_reason.set(reason)
    try:
        return password()
    finally:
        login_reason.reset(told)


def _python_warning(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)
