"""From what the user said to where to connect and what to subscribe: the one place that does it.

``ConnectionConfig`` is everything a caller can set, for the CLI and the Python API alike: a
new connection setting is one field here. ``resolve`` turns it, with a token, into a
``Target`` (the websocket URLs and why, the accounts, the subscriptions), and ``open_session``
gives a ``Session`` from a config alone; the session reads its settings from the config.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from kazoo_tail.auth.provider import Credentials, TokenProvider
from kazoo_tail.errors import ConnectError, KazooTailError, UsageError
from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.kazoo.tokens import is_jwt
from kazoo_tail.net.urls import check_url, default_ws_url, split_urls
from kazoo_tail.session.subscriber import Subscription

if TYPE_CHECKING:
    from kazoo_tail.auth.store import CachedToken, ConfigStore
    from kazoo_tail.net.crossbar import Crossbar
    from kazoo_tail.session.link import FrameObserver
    from kazoo_tail.session.session import Session


DEFAULT_PING_TIMEOUT = 10.0


@dataclass
class ConnectionConfig:
    """Where the cluster is, who logs in, what to subscribe, and how to stay connected."""

    bindings: Sequence[str] = ()
    url: str | None = None  # Crossbar, e.g. http://kazoo.example.com:8000
    # Blackhole: one URL, or several apart by spaces or commas (one link to each node of a
    # cluster); default: what Crossbar advertises, else guessed.
    ws_url: str | None = None
    username: str | None = None
    password: str | Callable[[], str | None] | None = None
    account_name: str | None = None
    realm: str | None = None
    phone_number: str | None = None
    api_key: str | None = None
    # What a saved profile knows of an API key login whose key is not at hand: its cache key.
    api_key_hash: str | None = None
    token: str | None = None  # use this token, no login
    account_ids: Sequence[str] = ()  # default: the token's account
    descendants: bool = False
    verify: bool | str = True  # requests' meaning: False, a CA bundle path, or True
    ping_interval: float = 30.0
    ping_timeout: float | None = None  # default: dead_link_after()
    reconnect: bool = True
    max_reconnect_time: float | None = None
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    # How long a websocket handshake may take before the attempt counts as failed.
    connect_timeout: float = 10.0
    dedupe: bool = True

    def dead_link_after(self) -> float:
        """Seconds without an answer to a ping before the link counts as dead: as given, else
        three ping intervals, at most 10 s (so short pings notice a dead link quickly)."""
        if self.ping_timeout is not None:
            return self.ping_timeout
        return min(DEFAULT_PING_TIMEOUT, 3 * self.ping_interval)

    def credentials(self) -> Credentials:
        password = self.password
        source = password if callable(password) or password is None else (lambda: password)
        return Credentials(
            url=self.url,
            username=self.username,
            account_name=self.account_name,
            realm=self.realm,
            phone_number=self.phone_number,
            api_key=self.api_key,
            api_key_hash=self.api_key_hash,
            token=self.token,
            password=source,
        )


@dataclass(frozen=True)
class Target:
    ws_urls: list[str]
    account_ids: list[str]
    subscriptions: list[Subscription] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        """The first node's URL (the only one, unless several were configured)."""
        return self.ws_urls[0]


def blackhole_urls(config: ConnectionConfig, token: CachedToken) -> tuple[list[str], str]:
    """The websocket URLs and where they came from: configured, advertised, or the default."""
    if config.ws_url:
        urls, source = split_urls(config.ws_url), "as configured"
    elif token.ws_url:
        urls, source = [token.ws_url], "advertised by Crossbar"
    elif config.url:
        urls, source = [default_ws_url(config.url)], GUESSED
    else:
        raise UsageError("no blackhole URL: pass --ws-url or --url")
    if not urls:
        raise UsageError("no blackhole URL: pass --ws-url or --url")
    for url in urls:
        check_url(url, ("ws", "wss"), "the blackhole URL")
    return urls, source


def with_advertised_ws_url(
    config: ConnectionConfig, provider: TokenProvider, token: CachedToken
) -> tuple[CachedToken, str]:
    """The token, with the websocket URL Crossbar advertises for it when it was given with
    --token and no --ws-url (a login's answer carries the URL; a bare token's needs asking),
    and why none is known otherwise."""
    if config.ws_url or token.ws_url or not config.url or not config.token:
        return token, "no login answer named it"
    try:
        advertised = provider.crossbar().advertised_ws_url(token.token)
    except KazooTailError as exc:
        # Blackhole, asked next, is the judge of the token; Crossbar's view only helps.
        return token, f"asking it failed: {exc.message}"
    if advertised is None:
        return token, "GET /v2/token_auth named none"
    return dataclasses.replace(token, ws_url=advertised), ""


def account_ids(config: ConnectionConfig, token: CachedToken) -> list[str]:
    chosen = list(dict.fromkeys(config.account_ids)) or (
        [token.account_id] if token.account_id else []
    )
    if not chosen:
        if not is_jwt(token.token):
            # Said first because it is the likelier mistake (a pasted API key, password or
            # half a token); --account-id still helps a server whose tokens are not JWTs.
            raise UsageError(
                "the token given is not a Kazoo auth token (not a JWT), so it names no account:"
                " check --token (or KAZOO_AUTH_TOKEN), or pass --account-id"
            )
        raise UsageError("the token does not name its account: pass --account-id")
    return chosen


GUESSED = "the default for the Crossbar host"


def resolve(config: ConnectionConfig, provider: TokenProvider) -> Target:
    token = provider.current()
    # The accounts first: a token that is not one is told as such before any round trip.
    accounts = account_ids(config, token)
    token, why_not = with_advertised_ws_url(config, provider, token)
    urls, source = blackhole_urls(config, token)
    if source == GUESSED and config.token:
        provider.warn(
            f"Crossbar did not advertise blackhole's websocket URL ({why_not}), so guessing "
            f"{urls[0]}: pass --ws-url if blackhole is elsewhere"
        )
    if config.descendants:
        accounts = with_descendants(provider, accounts)
    subscriptions = [Subscription(a, b) for a in accounts for b in config.bindings]
    return Target(urls, accounts, subscriptions)


def with_descendants(provider: TokenProvider, accounts: list[str]) -> list[str]:
    """The selected accounts and every descendant of theirs, on the same socket."""
    token = provider.current().token
    crossbar = provider.crossbar()
    found = dict.fromkeys(accounts)
    for account_id in accounts:
        for child_id in descendant_ids(crossbar, account_id, token):
            found.setdefault(child_id)
    return list(found)


def descendant_ids(crossbar: Crossbar, account_id: str, token: str) -> Iterator[str]:
    """GET .../descendants, every page of it: Crossbar v2 pages by 50 and names the next page's
    first key in ``next_start_key``; ``paginate=false`` asks for everything at once, which not
    every Crossbar honours (docs/protocol.md §5)."""
    path = f"accounts/{quote(account_id, safe='')}/descendants"
    params = {"paginate": "false"}
    seen: set[str] = set()
    while True:
        envelope = crossbar.get_envelope(path, token=token, params=params)
        children = envelope.get("data")
        for child in children if isinstance(children, list) else []:
            child_id = child.get("id") if isinstance(child, dict) else None
            if isinstance(child_id, str):
                yield child_id
        next_key = envelope.get("next_start_key")
        if next_key is None or next_key == "":
            return
        start_key = next_key if isinstance(next_key, str) else compact_json(next_key)
        if start_key in seen:
            raise ConnectError(
                f"Crossbar's pages of the descendants of account {account_id} go round in a "
                f"loop (next_start_key {start_key[:80]!r} again)"
            )
        seen.add(start_key)
        params = {"start_key": start_key}


def token_provider(
    config: ConnectionConfig,
    store: ConfigStore | None = None,
    *,
    clock: Callable[[], float] = time.time,
    warn: Callable[[str], None] | None = None,
) -> TokenProvider:
    return TokenProvider(config.credentials(), store, verify=config.verify, clock=clock, warn=warn)


def open_session(
    config: ConnectionConfig,
    *,
    provider: TokenProvider | None = None,
    store: ConfigStore | None = None,
    on_frame: FrameObserver | None = None,
) -> Session:
    """Log in (or reuse a cached token), resolve the target, and return a session to iterate,
    with one link to each blackhole node given (most often one).

    Nothing is subscribed until the session is iterated; iterate ``session.events()`` for idle
    ticks too, and close it (or use it as a context manager) when done.
    """
    if not config.bindings:
        raise UsageError("no binding given: pass at least one binding, e.g. 'call.*.*'")
    provider = provider or token_provider(config, store)
    return session_for(config, resolve(config, provider), provider, on_frame=on_frame)


def session_for(
    config: ConnectionConfig,
    target: Target,
    provider: TokenProvider,
    *,
    on_frame: FrameObserver | None = None,
) -> Session:
    """One link to each of the target's nodes (most often one), merged."""
    from kazoo_tail.session.session import Session

    return Session(
        config,
        target.ws_urls,
        target.subscriptions,
        provider,
        keep_fresh=provider.keep_fresh,
        on_frame=on_frame,
    )
