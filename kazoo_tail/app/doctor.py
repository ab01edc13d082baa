"""``kazoo-tail doctor`` and ``kazoo-tail sockets``.

``run_doctor`` follows the path an event takes to the user, one check at a time, and prints one
line per check as soon as it is done: Crossbar reachable, login, token time left, blackhole
reachable, a subscribe round trip, a ping round trip, and which bindings the account can use.
A check whose prerequisite failed is printed as ``skip``; the exit code is the one of the first
failed check (0 when none failed).

``list_sockets`` lists the account's live blackhole sockets (GET /v2/accounts/{id}/websockets).

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
from datetime import UTC, datetime
from typing import IO, Any, Literal
from urllib.parse import quote

import websocket

from kazoo_tail.app.tail import TailRequest, websocket_sslopt
from kazoo_tail.auth.store import CachedToken
from kazoo_tail.errors import AuthError, ConnectError, ExitCode, KazooTailError, UsageError, redact
from kazoo_tail.kazoo.events import Event
from kazoo_tail.kazoo.tokens import token_claims, token_expiry
from kazoo_tail.kazoo.wire import BadFrame, Reply, parse_frame, subscribe_message
from kazoo_tail.net.crossbar import Crossbar
from kazoo_tail.net.urls import default_ws_url
from kazoo_tail.output.terminal import StatusWriter, sanitize
from kazoo_tail.session.session import (
    RATE_LIMIT_ERROR,
    TOKEN_ERRORS,
    connect_failure,
    describe_close,
    describe_error,
)

Status = Literal["ok", "warn", "FAIL", "skip"]

# The binding families every account normally has; the user's own --binding values are added.
FAMILIES = ("call.*.*", "object.*.*", "fax.status.*", "fax.object.*")
DEFAULT_BINDING = "call.*.*"
TOKEN_WARN_SECONDS = 300.0
CERT_WARN_DAYS = 14
RATE_LIMIT_RETRIES = 3
# Kazoo timestamps are Gregorian seconds (since year 0); this many before the Unix epoch.
GREGORIAN_OFFSET = 62167219200
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


def format_line(result: CheckResult) -> str:
    outcome = result.outcome
    elapsed = "-" if outcome.status == "skip" else _elapsed(outcome.seconds)
    detail = sanitize(redact(outcome.detail))
    return f"{outcome.status:<5} {result.name:<{NAME_WIDTH}} {elapsed:>8}  {detail}"


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    millis = seconds * 1000
    if millis < 10:
        return f"{millis:.1f} ms"
    if millis < 10_000:
        return f"{millis:.0f} ms"
    return f"{seconds:.1f} s"


# -- the doctor's websocket -------------------------------------------------------------------


class LinkError(Exception):
    """The websocket failed or went silent during a check; the message is one sentence."""


class Link:
    """A websocket-client connection driven one request at a time: send, then read until the
    matching reply (or pong), counting the events that arrive in between."""

    def __init__(self, ws: Any, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self.events_seen = 0

    def ask(self, request_id: str, message: str, what: str) -> Reply:
        """Send one message and return the reply with its request_id."""
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            opcode, payload = self._next_frame(deadline, f"reply to {what}")
            reply = self._text(payload) if opcode == websocket.ABNF.OPCODE_TEXT else None
            if reply is not None and reply.request_id == request_id:
                return reply

    def ping(self) -> float:
        """Seconds from a websocket ping frame to its pong."""
        payload = uuid.uuid4().hex[:16].encode()
        started = time.perf_counter()
        try:
            self.ws.ping(payload)
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkError(f"cannot send a ping: {describe_error(exc)}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            opcode, data = self._next_frame(deadline, "pong to a websocket ping")
            if opcode == websocket.ABNF.OPCODE_PONG and data == payload:
                return time.perf_counter() - started
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self._text(data)

    def close(self) -> None:
        """Close with 1000, waiting briefly for blackhole's answering close frame."""
        try:
            self.ws.close(status=websocket.STATUS_NORMAL, timeout=1.0)
        except Exception:  # noqa: BLE001 - best effort: the link may already be gone
            self.ws.shutdown()

    def drop(self) -> None:
        self.ws.shutdown()

    def _text(self, payload: bytes) -> Reply | None:
        """A reply, or None for an event (counted) or anything else (ignored)."""
        try:
            item = parse_frame(payload, time.time())
        except BadFrame:
            return None
        if isinstance(item, Event):
            self.events_seen += 1
        return item if isinstance(item, Reply) else None

    def _send(self, message: str) -> None:
        try:
            self.ws.send(message)
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkError(f"cannot send to blackhole: {describe_error(exc)}") from None

    def _next_frame(self, deadline: float, waiting_for: str) -> tuple[int, bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LinkError(f"no {waiting_for} within {self.timeout:g} s: blackhole seems hung")
        self.ws.settimeout(remaining)
        try:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
        except (TimeoutError, websocket.WebSocketTimeoutException):
            raise LinkError(
                f"no {waiting_for} within {self.timeout:g} s: blackhole seems hung"
            ) from None
        except websocket.WebSocketConnectionClosedException:
            raise LinkError(f"blackhole dropped the connection before the {waiting_for}") from None
        except (OSError, websocket.WebSocketException) as exc:
            raise LinkError(f"the connection failed: {describe_error(exc)}") from None
        data = bytes(frame.data or b"")
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise LinkError(f"blackhole closed the connection{describe_close(data)}")
        return opcode, data


# -- the checks -------------------------------------------------------------------------------


class Doctor:
    def __init__(self, request: TailRequest, out: IO[str]) -> None:
        self.request = request
        self.out = out
        self.timeout = request.ping_timeout
        self.crossbar: Crossbar | None = None
        self.token: CachedToken | None = None
        self.token_unusable = False
        self.link: Link | None = None
        self.account_ids: list[str] = []
        self.events_seen = 0
        self.results: list[CheckResult] = []

    def run(self) -> ExitCode:
        checks: list[tuple[str, Callable[[], Outcome]]] = [
            ("crossbar reachable", self.check_crossbar),
            ("login", self.check_login),
            ("token time left", self.check_token_time),
            ("blackhole reachable", self.check_blackhole),
            ("subscribe round trip", self.check_subscribe),
            ("ping round trip", self.check_ping),
            ("bindings", self.check_bindings),
        ]
        try:
            for name, check in checks:
                result = CheckResult(name, self._run_check(check))
                self.results.append(result)
                self._print(format_line(result))
        finally:
            if self.link is not None:
                self.events_seen += self.link.events_seen
                self.link.close()
                self.link = None
        self._print(self._summary())
        failures = [r.outcome.exit_code for r in self.results if r.outcome.status == "FAIL"]
        return failures[0] if failures else ExitCode.OK

    def _run_check(self, check: Callable[[], Outcome]) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = check()
        except LinkError as exc:
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
            self.link.drop()
            self.link = None

    # -- Crossbar ---------------------------------------------------------------------------

    def check_crossbar(self) -> Outcome:
        url = self.request.provider.credentials.url
        if not url:
            return _skip("no Crossbar URL given (only --token and --ws-url)")
        crossbar = Crossbar(url, verify=self.request.verify)
        envelope = crossbar.get_envelope("websockets")
        self.crossbar = crossbar
        detail = crossbar.base_url
        version = envelope.get("version")
        if isinstance(version, str) and version:
            detail += f" (Kazoo {version})"
        modules = envelope.get("data")
        if isinstance(modules, dict) and modules:
            detail += f"; blackhole modules: {', '.join(sorted(str(m) for m in modules))}"
        if self.request.verify is False:
            return _warn(detail + "; TLS certificates not verified (--insecure)")
        return _ok(detail)

    def check_login(self) -> Outcome:
        provider = self.request.provider
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
            reason = "Crossbar unreachable" if self.request.provider.credentials.url else "no URL"
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
        return _ok(f"{_account_label(self.token)}; the token given with --token is valid")

    def _cached_token(self) -> CachedToken | None:
        provider = self.request.provider
        key = provider.credentials.cache_key()
        if provider.store is None or key is None:
            return None
        return provider.store.token(key)

    def _login_method(self, before: CachedToken | None, token: CachedToken) -> str:
        if before is not None and before.token == token.token:
            return "cached token reused"
        method = token_claims(token.token).get("method")
        username = self.request.provider.credentials.username
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
        url, source = self._ws_url(self.token)
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(
                url,
                timeout=self.timeout,
                sslopt=websocket_sslopt(self.request.verify),
                skip_utf8_validation=True,
                enable_multithread=False,
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
            return _fail(ExitCode.CONNECT, connect_failure(url, exc)[0])
        elapsed = time.perf_counter() - started
        self.link = Link(ws, self.timeout)
        sock = ws.sock
        if not isinstance(sock, ssl.SSLSocket):
            return _ok(f"{url} ({source}); plain ws, no TLS", elapsed)
        details, worrying = _tls_details(sock)
        detail = f"{url} ({source}); wss {details}"
        return _warn(detail, elapsed) if worrying else _ok(detail, elapsed)

    def _ws_url(self, token: CachedToken) -> tuple[str, str]:
        if self.request.ws_url:
            return self.request.ws_url, "as configured"
        if token.ws_url:
            return token.ws_url, "advertised by Crossbar"
        if self.request.crossbar_url:
            return default_ws_url(self.request.crossbar_url), "the default for the Crossbar host"
        raise UsageError("no blackhole URL: pass --ws-url or --url")

    def check_subscribe(self) -> Outcome:
        if self.link is None:
            return _skip("needs the websocket")
        if self.token is None or self.token_unusable:
            return _skip("needs a valid token")
        self.account_ids = self.request.account_ids or (
            [self.token.account_id] if self.token.account_id else []
        )
        if not self.account_ids:
            raise UsageError("the token does not name its account: pass --account-id")
        binding = self.request.bindings[0] if self.request.bindings else DEFAULT_BINDING
        renewed = ""
        for account_id in self.account_ids:
            reply = self._subscribe(account_id, binding)
            if _token_refused(reply) and not self.request.provider.credentials.token:
                # Like a tail: a cached token may have been revoked; renew it once.
                self.token = self.request.provider.current(refresh=True)
                renewed = "; the token was rejected once and renewed"
                reply = self._subscribe(account_id, binding)
            if _token_refused(reply):
                self.token_unusable = True
                return _fail(ExitCode.AUTH, f"blackhole rejected the token: {reply.errors[0]}")
            if not reply.ok:
                return _fail(
                    ExitCode.SUBSCRIBE,
                    f"blackhole rejected {binding} for account {account_id}: {reply.errors[0]}",
                )
        accounts = ", ".join(self.account_ids)
        return _ok(f"{binding} accepted for account {accounts}{renewed}")

    def _subscribe(self, account_id: str, binding: str) -> Reply:
        """One subscribe and its reply; a rate-limited one is tried again a second later."""
        assert self.link is not None and self.token is not None
        attempt = 0
        while True:
            attempt += 1
            request_id = uuid.uuid4().hex
            message = subscribe_message(request_id, self.token.token, account_id, binding)
            reply = self.link.ask(request_id, message, f"subscribe {binding}")
            busy = not reply.ok and reply.errors[0].startswith(RATE_LIMIT_ERROR)
            if not busy or attempt >= RATE_LIMIT_RETRIES:
                return reply
            time.sleep(1.0)

    def check_ping(self) -> Outcome:
        if self.link is None:
            return _skip("needs the websocket")
        round_trip = self.link.ping()
        return _ok(f"websocket pong; {self._app_ping()}", round_trip)

    def _app_ping(self) -> str:
        """Blackhole's own {"action":"ping"}: informative only (bh_ping is not autoloaded)."""
        assert self.link is not None
        if self.token is None or self.token_unusable:
            return "app ping not tried (no token that blackhole accepts)"
        request_id = uuid.uuid4().hex
        message = {"action": "ping", "auth_token": self.token.token, "request_id": request_id}
        started = time.perf_counter()
        reply = self.link.ask(request_id, json.dumps(message), "app ping")
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
        given = list(dict.fromkeys(self.request.bindings))
        usable: list[str] = []
        # (account, reason) -> the bindings refused for it, so that each reason is said once.
        refused: dict[tuple[str, str], list[str]] = {}
        refused_given: list[str] = []
        for binding in dict.fromkeys([*FAMILIES, *given]):
            accepted = True
            for account_id in self.account_ids:
                reply = self._subscribe(account_id, binding)
                if reply.ok:
                    continue
                accepted = False
                refused.setdefault((account_id, reply.errors[0]), []).append(binding)
                if binding in given and binding not in refused_given:
                    refused_given.append(binding)
            if accepted:
                usable.append(binding)
        detail = f"usable: {', '.join(usable) or 'none'}"
        if refused:
            detail += "; rejected: " + "; ".join(
                self._refusal(account_id, reason, bindings)
                for (account_id, reason), bindings in refused.items()
            )
        if refused_given or not usable:
            return _fail(ExitCode.SUBSCRIBE, detail)
        return _ok(detail)

    def _refusal(self, account_id: str, reason: str, bindings: list[str]) -> str:
        where = f" for account {account_id}" if len(self.account_ids) > 1 else ""
        return f"{', '.join(bindings)}{where} ({reason})"


# -- helpers for the checks -------------------------------------------------------------------


def _token_refused(reply: Reply) -> bool:
    return not reply.ok and reply.errors[0].startswith(TOKEN_ERRORS)


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


def _tls_details(sock: ssl.SSLSocket) -> tuple[str, bool]:
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


def run_doctor(request: TailRequest, out: IO[str]) -> ExitCode:
    return Doctor(request, out).run()


# -- kazoo-tail sockets -----------------------------------------------------------------------


def list_sockets(request: TailRequest, out: IO[str]) -> ExitCode:
    if request.verify is False:
        StatusWriter().warning("TLS certificates are not verified (--insecure)")
    if not request.crossbar_url:
        raise UsageError("listing sockets needs Crossbar: pass --url (or set KAZOO_URL)")
    token = request.provider.current()
    account_ids = request.account_ids or ([token.account_id] if token.account_id else [])
    if not account_ids:
        raise UsageError("the token does not name its account: pass --account-id")
    crossbar = Crossbar(request.crossbar_url, verify=request.verify)
    found: dict[str, dict[str, Any]] = {}
    for account_id in account_ids:
        for item in _account_sockets(crossbar, request, account_id):
            key = str(item.get("websocket_session_id") or f"#{len(found)}")
            found.setdefault(key, item)
    if not found:
        StatusWriter().info(f"no live blackhole sockets for account {', '.join(account_ids)}")
        return ExitCode.OK
    as_json = request.show.output == "json"
    for item in found.values():
        line = json.dumps(item, separators=(",", ":")) if as_json else socket_line(item)
        out.write(line + "\n")
    out.flush()
    return ExitCode.OK


def _account_sockets(
    crossbar: Crossbar, request: TailRequest, account_id: str
) -> list[dict[str, Any]]:
    path = f"accounts/{quote(account_id, safe='')}/websockets"
    provider = request.provider
    try:
        data = crossbar.get(path, token=provider.current().token)
    except AuthError:
        if provider.credentials.token:
            raise
        # The cached token may have been revoked (a password change): renew it once.
        data = crossbar.get(path, token=provider.current(refresh=True).token)
    if not isinstance(data, list):
        raise ConnectError(f"Crossbar answered GET /v2/{path} without a list of sockets")
    return [item for item in data if isinstance(item, dict)]


def socket_line(item: dict[str, Any]) -> str:
    """One readable line per socket: id, source, node, connect time, bindings with counts."""
    parts = [str(item.get("websocket_session_id", "?"))]
    source = item.get("source")
    if source is not None:
        parts.append(f"from {source}")
    destination = item.get("destination")
    if destination is not None:
        parts.append(f"on {destination}")
    parts.append(f"since {_gregorian_local(item.get('timestamp'))}")
    bindings = item.get("bindings")
    counts = Counter(str(b) for b in bindings) if isinstance(bindings, list) else Counter()
    listed = [f"{binding} x{n}" if n > 1 else binding for binding, n in counts.items()]
    parts.append(", ".join(listed) if listed else "no bindings")
    if "name" in item:
        parts.append(f"name {json.dumps(item['name'])}")
    return sanitize("  ".join(parts))


def _gregorian_local(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "an unknown time"
    try:
        moment = datetime.fromtimestamp(value - GREGORIAN_OFFSET)
    except (OverflowError, OSError, ValueError):
        return "an unknown time"
    return moment.strftime("%Y-%m-%d %H:%M:%S")
