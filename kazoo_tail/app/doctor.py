"""``kazoo-tail doctor``: why events do or do not arrive, one check at a time.

``run_doctor`` follows the path an event takes to the user, one check at a time, and prints one
line per check as soon as it is done: Crossbar reachable, login, token time left, blackhole
reachable, a subscribe round trip, a ping round trip, and which bindings the account can use.
A check whose prerequisite failed is printed as ``skip``; the exit code is the one of the first
failed check (0 when none failed). It connects and subscribes through the same transport
and subscribe rules as a tail.

Server text is untrusted: every detail goes through ``redact`` and ``sanitize`` before printing.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Literal

from kazoo_tail.auth.provider import TokenProvider
from kazoo_tail.auth.store import CachedToken
from kazoo_tail.errors import AuthError, ConnectError, ExitCode, KazooTailError, redact
from kazoo_tail.kazoo.tokens import token_claims, token_expiry
from kazoo_tail.net.crossbar import Crossbar, advertised_ws_url_in
from kazoo_tail.net.tls import tls_details, websocket_sslopt
from kazoo_tail.net.transport import ConnectFailed, LinkLost, Transport
from kazoo_tail.net.urls import node_label
from kazoo_tail.output.terminal import sanitize
from kazoo_tail.session.decoder import Decoder
from kazoo_tail.session.link import Link, run_to_end
from kazoo_tail.session.resolve import ConnectionConfig, account_ids, blackhole_urls
from kazoo_tail.session.subscriber import SubscribeRound, Subscription

Status = Literal["ok", "warn", "FAIL", "skip"]

# The binding families every account normally has; the user's own --binding values are added.
FAMILIES = ("call.*.*", "object.*.*", "fax.status.*", "fax.object.*")
DEFAULT_BINDING = "call.*.*"
TOKEN_WARN_SECONDS = 300.0
# A check that waits for ever explains nothing: a subscribe still rate limited after this many
# tries (a second apart) is reported as refused.
RATE_LIMIT_RETRIES = 3
NAME_WIDTH = 20


# -- check results ----------------------------------------------------------------------------


@dataclass
class Outcome:
    status: Status
    detail: str
    exit_code: ExitCode = ExitCode.OK
    seconds: float | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome


def _ok(detail: str, seconds: float | None = None) -> Outcome:
    return Outcome("ok", detail, seconds=seconds)


def _warn(detail: str, seconds: float | None = None) -> Outcome:
    return Outcome("warn", detail, seconds=seconds)


def _fail(code: ExitCode, detail: str) -> Outcome:
    return Outcome("FAIL", detail, exit_code=code)


def _skip(reason: str) -> Outcome:
    return Outcome("skip", reason)


def format_line(result: CheckResult, width: int = NAME_WIDTH) -> str:
    outcome = result.outcome
    elapsed = "-" if outcome.status == "skip" else _elapsed(outcome.seconds)
    detail = sanitize(redact(outcome.detail))
    return f"{outcome.status:<5} {result.name:<{width}} {elapsed:>8}  {detail}"


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    millis = seconds * 1000
    if millis < 10:
        return f"{millis:.1f} ms"
    if millis < 10_000:
        return f"{millis:.0f} ms"
    return f"{seconds:.1f} s"


# -- the checks -------------------------------------------------------------------------------


class Doctor:
    def __init__(
        self, config: ConnectionConfig, provider: TokenProvider, out: IO[str], *, timeout: float
    ) -> None:
        self.config = config
        self.provider = provider
        self.out = out
        # How long each check may wait for an answer (doctor's --timeout).
        self.timeout = timeout
        self.crossbar: Crossbar | None = None
        self.token: CachedToken | None = None
        self.token_unusable = False
        self.link: Link | None = None
        # The node being checked, when there are several.
        self.node_url: str | None = None
        self.name_width = NAME_WIDTH
        self.account_ids: list[str] = []
        self.events_seen = 0
        self.results: list[CheckResult] = []

    def run(self) -> ExitCode:
        login: list[tuple[str, Callable[[], Outcome]]] = [
            ("crossbar reachable", self.check_crossbar),
            ("login", self.check_login),
            ("token time left", self.check_token_time),
        ]
        node: list[tuple[str, Callable[[], Outcome]]] = [
            ("blackhole reachable", self.check_blackhole),
            ("subscribe round trip", self.check_subscribe),
            ("ping round trip", self.check_ping),
        ]
        try:
            self._run_checks(login)
            urls = self._node_urls()
            if len(urls) > 1:  # the node checks are named after their node: widen the column
                longest = max(len(node_label(url)) for url in urls if url is not None)
                self.name_width = max(NAME_WIDTH, len("subscribe round trip ()") + longest)
            for number, url in enumerate(urls):
                # Several nodes: each is checked, and named; which bindings the account may
                # use is asked of the first.
                self.node_url = url
                label = f" ({node_label(url)})" if url is not None and len(urls) > 1 else ""
                self._run_checks([(name + label, check) for name, check in node])
                if number == 0:
                    self._run_checks([("bindings", self.check_bindings)])
                self._close_link()
        finally:
            self._close_link()
        self._print(self._summary())
        failures = [r.outcome.exit_code for r in self.results if r.outcome.status == "FAIL"]
        return failures[0] if failures else ExitCode.OK

    def _run_checks(self, checks: list[tuple[str, Callable[[], Outcome]]]) -> None:
        for name, check in checks:
            result = CheckResult(name, self._run_check(check))
            self.results.append(result)
            self._print(format_line(result, self.name_width))

    def _node_urls(self) -> list[str | None]:
        """Every node's websocket URL; [None] when it cannot be known yet, so the checks say
        why."""
        if self.token is None:
            return [None]
        try:
            return list(blackhole_urls(self.config, self.token)[0])
        except KazooTailError:
            return [None]

    def _close_link(self) -> None:
        if self.link is not None:
            self.events_seen += self.link.events_seen
            self.link.transport.close()
            self.link = None

    def _run_check(self, check: Callable[[], Outcome]) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = check()
        except LinkLost as exc:
            self._drop_link()
            outcome = _fail(ExitCode.CONNECT, str(exc))
        except KazooTailError as exc:
            outcome = _fail(exc.exit_code, exc.message)
        except Exception as exc:  # noqa: BLE001 - one line per check, never a traceback
            outcome = _fail(ExitCode.ERROR, f"unexpected {type(exc).__name__}: {exc}")
        if outcome.seconds is None and outcome.status != "skip":
            outcome.seconds = time.perf_counter() - started
        return outcome

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _summary(self) -> str:
        by_status: Counter[str] = Counter(r.outcome.status for r in self.results)
        notes = []
        if by_status["warn"]:
            notes.append(_plural(by_status["warn"], "warning"))
        if by_status["skip"]:
            notes.append(f"{by_status['skip']} skipped")
        if self.events_seen:
            notes.append(f"{_plural(self.events_seen, 'event')} arrived while checking")
        extra = f" ({', '.join(notes)})" if notes else ""
        failed = [r for r in self.results if r.outcome.status == "FAIL"]
        if not failed:
            return f"all {by_status['ok'] + by_status['warn']} checks passed{extra}"
        first = failed[0]
        code = int(first.outcome.exit_code)
        return f"{_plural(len(failed), 'check')} failed{extra}; first: {first.name} (exit {code})"

    def _drop_link(self) -> None:
        if self.link is not None:
            self.events_seen += self.link.events_seen
            self.link.transport.drop()
            self.link = None

    # -- Crossbar ---------------------------------------------------------------------------

    def check_crossbar(self) -> Outcome:
        url = self.config.url
        if not url:
            return _skip("no Crossbar URL given (only --token and --ws-url)")
        crossbar = Crossbar(url, verify=self.config.verify)
        envelope = crossbar.get_envelope("websockets")
        self.crossbar = crossbar
        detail = crossbar.base_url
        version = envelope.get("version")
        if isinstance(version, str) and version:
            detail += f" (Kazoo {version})"
        modules = envelope.get("data")
        if isinstance(modules, dict) and modules:
            detail += f"; blackhole modules: {', '.join(sorted(str(m) for m in modules))}"
        if self.config.verify is False:
            return _warn(detail + "; TLS certificates not verified (--insecure)")
        return _ok(detail)

    def check_login(self) -> Outcome:
        provider = self.provider
        given = provider.credentials.token
        if given:
            self.token = provider.current()
            return self._check_given_token(given)
        if self.crossbar is None:
            return _skip("needs Crossbar")
        before = self._cached_token()
        self.token = provider.current()
        return _ok(f"{_account_label(self.token)}; {self._login_method(before, self.token)}")

    def _check_given_token(self, token: str) -> Outcome:
        assert self.token is not None
        if self.crossbar is None:
            reason = "Crossbar unreachable" if self.config.url else "no URL"
            return _skip(f"{reason}: using the token given with --token unchecked")
        try:
            data = self.crossbar.get("token_auth", token=token)
        except AuthError:
            self.token_unusable = True
            return _fail(ExitCode.AUTH, "Crossbar rejected the token given with --token")
        except ConnectError as exc:
            return _warn(f"could not check the token given with --token: {exc.message}")
        if isinstance(data, dict) and isinstance(data.get("account_name"), str):
            self.token.account_name = data["account_name"]
        if isinstance(data, dict) and not self.config.ws_url and not self.token.ws_url:
            # The answer advertises blackhole as a login's does: checked where a tail goes.
            self.token.ws_url = advertised_ws_url_in(data)
        return _ok(f"{_account_label(self.token)}; the token given with --token is valid")

    def _cached_token(self) -> CachedToken | None:
        provider = self.provider
        key = provider.credentials.cache_key()
        if provider.store is None or key is None:
            return None
        return provider.store.token(key)

    def _login_method(self, before: CachedToken | None, token: CachedToken) -> str:
        if before is not None and before.token == token.token:
            return "cached token reused"
        method = token_claims(token.token).get("method")
        username = self.provider.credentials.username
        if method == "cb_user_auth":
            return f"logged in as user {username or token.owner_id} (user_auth)"
        if method == "cb_api_auth":
            return "logged in with the API key (api_auth)"
        if method == "cb_auth":
            return "renewed the cached token (PUT /v2/auth)"
        return "logged in"

    def check_token_time(self) -> Outcome:
        if self.token is None:
            return _skip("needs a token")
        expiry = token_expiry(self.token.token)
        if expiry is None:
            return _warn("the token does not say when it expires (no exp claim)")
        left = expiry - time.time()
        until = datetime.fromtimestamp(expiry).strftime("%Y-%m-%d %H:%M:%S")
        if left <= 0:
            self.token_unusable = True
            return _fail(
                ExitCode.AUTH,
                f"the token expired {_span(-left)} ago ({until}); log in again or get a new one",
            )
        if left < TOKEN_WARN_SECONDS:
            return _warn(f"only {_span(left)} left (expires {until}); it will be renewed soon")
        return _ok(f"{_span(left)} left (expires {until})")

    # -- blackhole --------------------------------------------------------------------------

    def check_blackhole(self) -> Outcome:
        if self.token is None:
            return _skip("needs a token (the blackhole URL may come from the login)")
        urls, source = blackhole_urls(self.config, self.token)
        url = self.node_url or urls[0]
        started = time.perf_counter()
        try:
            transport = Transport.open(
                url, sslopt=websocket_sslopt(self.config.verify), timeout=self.timeout, tick=0.25
            )
        except ConnectFailed as exc:
            return _fail(ExitCode.CONNECT, exc.sentence)
        elapsed = time.perf_counter() - started
        self.link = Link(transport, Decoder())
        sock = transport.socket
        if not isinstance(sock, ssl.SSLSocket):
            return _ok(f"{url} ({source}); plain ws, no TLS", elapsed)
        details, worrying = tls_details(sock)
        detail = f"{url} ({source}); wss {details}"
        return _warn(detail, elapsed) if worrying else _ok(detail, elapsed)

    def check_subscribe(self) -> Outcome:
        if self.link is None:
            return _skip("needs the websocket")
        if self.token is None or self.token_unusable:
            return _skip("needs a valid token")
        self.account_ids = account_ids(self.config, self.token)
        binding = self.config.bindings[0] if self.config.bindings else DEFAULT_BINDING
        try:
            round_ = self._subscribe([binding])
        except AuthError:
            self.token_unusable = True
            raise
        self.token = self.provider.current()
        if round_.rejected:
            first = round_.rejected[0]
            return _fail(
                ExitCode.SUBSCRIBE,
                f"blackhole rejected {binding} for account {first.subscription.account_id}: "
                f"{first.error}",
            )
        renewed = "; the token was rejected once and renewed" if round_.renewed else ""
        accounts = ", ".join(self.account_ids)
        return _ok(f"{binding} accepted for account {accounts}{renewed}")

    def _subscribe(self, bindings: list[str]) -> SubscribeRound:
        """Subscribe each binding for each account, pipelined as a tail does, and collect
        every verdict instead of stopping at the first refusal."""
        assert self.link is not None
        subscriptions = [Subscription(a, b) for b in bindings for a in self.account_ids]
        steps = self.link.subscribe(
            subscriptions,
            self.provider,
            reply_timeout=self.timeout,
            stop_on_rejection=False,
            rate_limit_retries=RATE_LIMIT_RETRIES,
        )
        return run_to_end(steps).round

    def check_ping(self) -> Outcome:
        if self.link is None:
            return _skip("needs the websocket")
        round_trip = self.link.ping_round_trip(self.timeout)
        return _ok(f"websocket pong; {self._app_ping()}", round_trip)

    def _app_ping(self) -> str:
        """Blackhole's own {"action":"ping"}: informative only (bh_ping is not autoloaded)."""
        assert self.link is not None
        if self.token is None or self.token_unusable:
            return "app ping not tried (no token that blackhole accepts)"
        request_id = uuid.uuid4().hex
        message = {"action": "ping", "auth_token": self.token.token, "request_id": request_id}
        started = time.perf_counter()
        reply = self.link.request(
            request_id=request_id,
            message=json.dumps(message),
            timeout=self.timeout,
            what="app ping",
        )
        elapsed = _elapsed(time.perf_counter() - started)
        if not reply.ok:
            return f"app ping refused: {reply.errors[0]}"
        if isinstance(reply.data, dict) and reply.data.get("response") == "pong":
            return f"app ping answered in {elapsed} (bh_ping loaded)"
        return f"app ping answered without pong in {elapsed} (bh_ping not loaded; harmless)"

    def check_bindings(self) -> Outcome:
        if self.link is None:
            return _skip("needs the websocket")
        if self.token is None or self.token_unusable or not self.account_ids:
            return _skip("needs a token that blackhole accepts")
        given = list(dict.fromkeys(self.config.bindings))
        checked = list(dict.fromkeys([*FAMILIES, *given]))
        round_ = self._subscribe(checked)
        # (account, reason) -> the bindings refused for it, so that each reason is said once.
        refused: dict[tuple[str, str], list[str]] = {}
        for rejection in round_.rejected:
            key = (rejection.subscription.account_id, rejection.error)
            refused.setdefault(key, []).append(rejection.subscription.binding)
        refused_bindings = {r.subscription.binding for r in round_.rejected}
        usable = [binding for binding in checked if binding not in refused_bindings]
        detail = f"usable: {', '.join(usable) or 'none'}"
        if refused:
            detail += "; rejected: " + "; ".join(
                self._refusal(account_id, reason, bindings)
                for (account_id, reason), bindings in refused.items()
            )
        if refused_bindings & set(given) or not usable:
            return _fail(ExitCode.SUBSCRIBE, detail)
        return _ok(detail)

    def _refusal(self, account_id: str, reason: str, bindings: list[str]) -> str:
        where = f" for account {account_id}" if len(self.account_ids) > 1 else ""
        return f"{', '.join(bindings)}{where} ({reason})"


# -- helpers for the checks -------------------------------------------------------------------


def _account_label(token: CachedToken) -> str:
    if token.account_name:
        return f"account {token.account_name} ({token.account_id})"
    return f"account {token.account_id or 'unknown'}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 2 * 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} days"


def run_doctor(
    config: ConnectionConfig, provider: TokenProvider, out: IO[str], *, timeout: float
) -> ExitCode:
    """Run every check, each allowed ``timeout`` seconds to answer; the exit code of the first
    that failed."""
    return Doctor(config, provider, out, timeout=timeout).run()
