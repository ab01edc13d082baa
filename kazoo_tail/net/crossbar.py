"""Crossbar (Kazoo's REST API): log in, refresh a token, and simple authenticated GETs.

Every failure becomes an ``AuthError`` (the server said no to these credentials) or a
``ConnectError`` (we could not get a usable answer), each with one sentence for the user.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3
from requests.exceptions import ContentDecodingError
from urllib3.connection import HTTPConnection, HTTPSConnection

from kazoo_tail.errors import AuthError, ConnectError, redact, register_secret
from kazoo_tail.kazoo.json_text import compact_json, standard_json
from kazoo_tail.net.tls import scheme_mismatch
from kazoo_tail.net.urls import check_url, shown_url, why_not_follow
from kazoo_tail.net.watchdog import Watchdog

# How much of a server's error message is shown: enough for any real reason, not a flood.
DETAIL_LIMIT = 300
# Seconds a whole call may take, however the server paces its bytes.
DEADLINE = 30.0
# The most of a body read: a page of descendants is about 12 KB, all of them (paginate=false)
# about 250 bytes an account.
MAX_BODY = 8 * 2**20
# Same-server redirects followed (e.g. http to https) before giving up.
MAX_REDIRECTS = 5


@dataclass
class LoginResult:
    token: str
    account_id: str
    owner_id: str | None
    account_name: str | None
    ws_url: str | None


class ChannelsRefused(AuthError):
    """Crossbar said no to listing an account's channels: the token may not (HTTP 403), or
    is no longer valid (401)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def credentials_hash(username: str, password: str, method: str = "md5") -> str:
    """Kazoo's user_auth credentials: md5 (or sha1) hex of ``lowercase(username):password``."""
    material = f"{username.lower()}:{password}".encode()
    digest = hashlib.md5(material) if method == "md5" else hashlib.sha1(material)
    return digest.hexdigest()


class Crossbar:
    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        timeout: float = 10.0,
        deadline: float = DEADLINE,
    ) -> None:
        """``timeout`` bounds each connect and read, ``deadline`` a whole call, redirects and
        all (a server sending a byte at a time passes every read's timeout)."""
        check_url(base_url, ("http", "https"), "the Crossbar URL")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v2"):
            self.base_url = self.base_url[: -len("/v2")]
        self.timeout = timeout
        self.deadline = deadline
        self.verify = verify
        if verify is False:
            # The user asked for it and was warned once; urllib3 would repeat it every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.http = requests.Session()
        adapter = _WatchedAdapter()
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.http.headers["User-Agent"] = "kazoo-tail"

    # -- logins -----------------------------------------------------------------------------

    def user_auth(
        self,
        username: str,
        password: str,
        *,
        account_name: str | None = None,
        realm: str | None = None,
        phone_number: str | None = None,
    ) -> LoginResult:
        register_secret(password)
        credentials = credentials_hash(username, password)
        # What is sent is what a validation error can echo back.
        register_secret(credentials, machine_made=True)
        data: dict[str, Any] = {"credentials": credentials, "method": "md5"}
        if phone_number:
            data["phone_number"] = phone_number
        elif realm:
            data["account_realm"] = realm
        elif account_name:
            data["account_name"] = account_name
        else:
            raise AuthError(
                "cannot log in without an account: pass --account-name, --realm or --phone-number"
            )
        who = f"user {username!r} of account {phone_number or realm or account_name!r}"
        return self._login("user_auth", {"data": data}, who=who)

    def api_auth(self, api_key: str) -> LoginResult:
        # Machine-made: hidden whatever its length, a mistyped one too, and in part.
        register_secret(api_key, machine_made=True)
        return self._login("api_auth", {"data": {"api_key": api_key}}, who="the API key")

    def refresh(self, token: str) -> LoginResult:
        body = {"action": "refresh_token", "data": {}}
        return self._login("auth", body, who="the cached token", token=token)

    def _login(
        self, path: str, body: dict[str, Any], *, who: str, token: str | None = None
    ) -> LoginResult:
        status, envelope = self._request("PUT", path, body=body, token=token)
        if status in (401, 403, 404):
            detail = _error_detail(envelope)
            raise AuthError(f"Crossbar refused to log in {who}: {detail}")
        if status == 400:
            raise AuthError(f"Crossbar rejected the login request: {_error_detail(envelope)}")
        self._raise_for_status(status, envelope, path)
        new_token = envelope.get("auth_token")
        data = envelope.get("data")
        if not isinstance(new_token, str) or not new_token or not isinstance(data, dict):
            raise ConnectError(f"{self.base_url} answered the login without an auth token")
        register_secret(new_token)
        account_id = data.get("account_id")
        if not isinstance(account_id, str):
            raise ConnectError(f"{self.base_url} answered the login without an account id")
        return LoginResult(
            token=new_token,
            account_id=account_id,
            owner_id=_str_or_none(data.get("owner_id")),
            account_name=_str_or_none(data.get("account_name")),
            ws_url=advertised_ws_url_in(data),
        )

    def advertised_ws_url(self, token: str) -> str | None:
        """The websocket URL Crossbar advertises to the holder of ``token``, or None.

        GET /v2/token_auth answers with the same auth extras as a login, ``ui_config`` among
        them (``cb_token_auth:validate/2`` → ``crossbar_util:response_auth/1``): a token given
        without a login can learn blackhole's address too (docs/protocol.md §5)."""
        data = self.get("token_auth", token=token)
        return advertised_ws_url_in(data) if isinstance(data, dict) else None

    # -- other resources --------------------------------------------------------------------

    def get(self, path: str, *, token: str | None = None) -> Any:
        """GET /v2/<path> and return the envelope's ``data``."""
        return self.get_envelope(path, token=token).get("data")

    def get_envelope(
        self, path: str, *, token: str | None = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """GET /v2/<path> and return the whole envelope (``version``, ``node``, ``data``...)."""
        status, envelope = self._request("GET", path, token=token, params=params)
        if status in (401, 403):
            raise AuthError(f"Crossbar refused GET /v2/{path}: {_error_detail(envelope)}")
        self._raise_for_status(status, envelope, path)
        return envelope

    def channels(self, account_id: str, *, token: str) -> list[dict[str, Any]]:
        """GET /v2/accounts/{ACCOUNT_ID}/channels: the account's live legs, one item each,
        all at once (there is no paging; docs/calls.md §1). Items that are not objects are
        left out; what they hold is the server's, untrusted. A refusal (401, 403) raises
        ``ChannelsRefused``, any other failure ``ConnectError``."""
        path = f"accounts/{quote(account_id, safe='')}/channels"
        status, envelope = self._request("GET", path, token=token)
        if status in (401, 403):
            raise ChannelsRefused(
                status,
                f"Crossbar refused the channel list of account {account_id} "
                f"(HTTP {status}: {_error_detail(envelope)})",
            )
        self._raise_for_status(status, envelope, path)
        data = envelope.get("data")
        if not isinstance(data, list):
            raise ConnectError(
                f"Crossbar's channel list of account {account_id} is not a list: "
                f"{bounded(_shown_json(data), 80)}"
            )
        return [item for item in data if isinstance(item, dict)]

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        url = f"{self.base_url}/v2/{path}"
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        response, content = self._exchange_within_deadline(method, url, body, headers, params)
        envelope = _parsed(content)
        if not isinstance(envelope, dict):
            if _is_websocket_refusal(response.status_code, response.headers.get("Upgrade")):
                raise ConnectError(blackhole_not_crossbar(self.base_url))
            kind = bounded(
                response.headers.get("Content-Type", "unknown content").split(";")[0], 60
            )
            if response.status_code == 429:
                raise ConnectError(f"Crossbar at {self.base_url} is rate limiting us (HTTP 429)")
            raise ConnectError(
                f"{shown_url(response.url)} does not look like Crossbar: "
                f"HTTP {response.status_code} with {kind}, not a JSON envelope (check --url)"
            )
        return response.status_code, envelope

    def _exchange_within_deadline(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        params: dict[str, str] | None,
    ) -> tuple[requests.Response, bytes]:
        watchdog = Watchdog(self.deadline)
        _calls.watchdog = watchdog
        try:
            with watchdog:
                answer = self._exchange(method, url, body, headers, params)
        except Exception:
            if not watchdog.fired:
                raise
            # Otherwise, whatever broke, it broke because the watchdog cut it short.
        else:
            # A socket the watchdog shut down reads as an orderly end: of the headers, when
            # http.client then returns an empty 200, or of a body without a length. Such an
            # answer is a cut-off one, not the server's.
            if not watchdog.fired:
                return answer
        finally:
            _calls.watchdog = None
        raise ConnectError(f"Crossbar at {self.base_url} did not answer within {self.deadline:g}s")

    def _exchange(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        params: dict[str, str] | None,
    ) -> tuple[requests.Response, bytes]:
        """The answer and its body, following redirects only where the credentials in the
        request (a body with the API key or the password's hash, X-Auth-Token) may go.

        requests would follow any: a 307 re-sends the body to another host, and only
        Authorization, not X-Auth-Token, is dropped on the way.
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, body, headers, params)
            if not response.is_redirect:
                return response, self._body(response, url)
            response.close()
            target = urljoin(url, response.headers["location"])
            why = why_not_follow(url, target)
            if why is not None:
                raise ConnectError(
                    f"Crossbar at {self.base_url} redirected {urlsplit(url).path} to "
                    f"{shown_url(target)}, {why}; not following it, so no credentials go there "
                    "(pass --url with that address if that server is yours)"
                )
            url, params = target, None  # the target names its own query
        raise ConnectError(
            f"Crossbar at {self.base_url} redirected more than {MAX_REDIRECTS} times"
        )

    def _send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        params: dict[str, str] | None,
    ) -> requests.Response:
        try:
            # verify is passed per request: on the session, REQUESTS_CA_BUNDLE or
            # CURL_CA_BUNDLE in the environment would silently override --ca-bundle.
            return self.http.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
                stream=True,  # the body is read here, within the deadline and the size limit
            )
        except requests.exceptions.RequestException as exc:
            raise self._failure(exc, url) from None

    def _body(self, response: requests.Response, url: str) -> bytes:
        """The whole body, up to MAX_BODY: a server sending without end is an error, not a
        MemoryError."""
        too_big = ConnectError(
            f"Crossbar at {self.base_url} sent more than {MAX_BODY // 2**20} MB in answer to "
            f"{urlsplit(url).path}; no Kazoo answer is that big (check --url)"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            response.close()
            raise too_big
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY:
                    response.close()
                    raise too_big
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise self._failure(exc, url) from None
        return b"".join(chunks)

    def _failure(self, exc: requests.exceptions.RequestException, url: str) -> ConnectError:
        if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            # Before the TLS advice: --ca-bundle or --insecure cannot cure a wrong scheme.
            mismatch = scheme_mismatch(self.base_url, exc)
            if mismatch is not None:
                return ConnectError(mismatch)
            # A websocket server (blackhole) hangs up on a request it cannot parse, a PUT.
            if _connection_reason(exc) in ("connection failed", "connection reset"):
                if answers_like_blackhole(self.base_url):
                    return ConnectError(blackhole_not_crossbar(self.base_url))
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectError(
                f"TLS verification failed for {self.base_url} ({_ssl_reason(exc)}); "
                "pass --ca-bundle with the server's CA, or --insecure"
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return ConnectError(f"Crossbar at {self.base_url} did not answer in time")
        if isinstance(exc, (requests.exceptions.ChunkedEncodingError, ContentDecodingError)):
            return ConnectError(f"Crossbar at {self.base_url} sent a truncated response")
        if isinstance(exc, requests.exceptions.ConnectionError):
            return ConnectError(
                f"cannot connect to Crossbar at {self.base_url}: {_connection_reason(exc)}"
            )
        return ConnectError(f"request to {shown_url(url)} failed: {type(exc).__name__}")

    def _raise_for_status(self, status: int, envelope: dict[str, Any], path: str) -> None:
        if status == 429:
            raise ConnectError(f"Crossbar at {self.base_url} is rate limiting us (HTTP 429)")
        if status >= 400:
            raise ConnectError(
                f"Crossbar answered HTTP {status} to /v2/{path}: {_error_detail(envelope)}"
            )


# -- the watchdog's hold on urllib3's connections ---------------------------------------------

# The watchdog of the call this thread is making, for the connections it uses to register with.
_calls = threading.local()


def _watch(source: Callable[[], socket.socket | None]) -> None:
    watchdog: Watchdog | None = getattr(_calls, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(source)


class _Watched(HTTPConnection):
    """A connection whose sockets the call's watchdog can shut down: the one being connected
    and sent on (read when the deadline passes: it is made after the request starts), and the
    one the answer comes on, which http.client lets go of before the body is read when the
    server will close the connection."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(lambda: self.sock)
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> urllib3.HTTPResponse:  # type: ignore[override]
        answering = self.sock
        _watch(lambda: answering)
        return super().getresponse(*args, **kwargs)


class _WatchedConnection(_Watched):
    pass


class _WatchedTLSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedTLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTLSConnection


_POOLS = {"http": _WatchedPool, "https": _WatchedTLSPool}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections a call's watchdog can shut down (also through an
    HTTP proxy; a SOCKS proxy keeps its own, bounded by each read's timeout only)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:
            manager.pool_classes_by_scheme = _POOLS
        return manager


# -- reading Crossbar's answers --------------------------------------------------------------


def _error_detail(envelope: dict[str, Any]) -> str:
    """The server's reason, without what it echoes of our request, secrets hidden, on one line
    of bounded length."""
    message = envelope.get("message")
    data = _without_echoes(envelope.get("data"))
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = str(data["message"])
    elif isinstance(data, dict) and data:
        text = f"{message}: {_shown_json(data)}"
    elif isinstance(message, str) and message:
        text = message.replace("_", " ")
    else:
        return "no reason given"
    return bounded(redact(text))


def _shown_json(value: Any) -> str:
    """JSON as people read it (spaced), or compact when nested too deep for json.dumps."""
    try:
        return json.dumps(value, sort_keys=True)
    except RecursionError:
        return compact_json(value, sort_keys=True)


def _without_echoes(value: Any) -> Any:
    """Kazoo's validation errors repeat the offending value (an API key one character short,
    say) under "value": the user knows what they sent, and it may be a secret.

    Copied with a stack of its own, not by recursion: a server may nest its data as deep as
    the parser allows."""
    copy = _empty_like(value)
    pending = [(value, copy)]
    while pending:
        original, copied = pending.pop()
        if isinstance(original, dict):
            for key, item in original.items():
                if key != "value":
                    copied[key] = _empty_like(item)
                    pending.append((item, copied[key]))
        elif isinstance(original, list):
            for item in original:
                copied.append(_empty_like(item))
                pending.append((item, copied[-1]))
    return copy


def _empty_like(value: Any) -> Any:
    """An empty container of the same kind, to fill in; anything else as it is."""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return value


def bounded(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Server text as one line of at most ``limit`` characters: control characters and runs of
    white space become one space first, so the cut counts what is shown."""
    text = re.sub(r"[\s\x00-\x1f\x7f-\x9f]+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parsed(content: bytes) -> Any:
    """A body's JSON made standard (no NaN, no lone surrogate: see json_text.py), or None
    when it is not JSON, or nested deeper than the parser goes."""
    try:
        text = content.decode(json.detect_encoding(content))
        return json.loads(standard_json(text))
    except (ValueError, RecursionError):  # ValueError: also a UnicodeDecodeError
        return None


def advertised_ws_url_in(data: dict[str, Any]) -> str | None:
    url: Any = data
    for key in ("ui_config", "api", "kazoo_websocket", "url"):
        url = url.get(key) if isinstance(url, dict) else None
    return url if isinstance(url, str) and url else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Where Kazoo listens out of the box: Crossbar on 8000 (8443 with TLS), blackhole on 5555
# (7777 with TLS).
CROSSBAR_PORTS = {"http": 8000, "https": 8443}
BLACKHOLE_PORTS = {"http": 5555, "https": 7777}
PROBE_TIMEOUT = 3.0


def blackhole_not_crossbar(base_url: str) -> str:
    """One sentence for a --url that is blackhole's websocket port, the classic mix-up."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    shown_host = f"[{host}]" if ":" in host else host
    port = CROSSBAR_PORTS.get(parts.scheme, 8000)
    blackhole = BLACKHOLE_PORTS.get(parts.scheme, 5555)
    return (
        f"{base_url} answers as a websocket server, as blackhole does (its port is usually "
        f"{blackhole}), not as Crossbar: pass --url with Crossbar's port, usually "
        f"{parts.scheme}://{shown_host}:{port}"
    )


def _is_websocket_refusal(status: int, upgrade: str | None) -> bool:
    """426 Upgrade Required, or any answer asking for a websocket upgrade: what cowboy (and
    so blackhole) says to a plain HTTP request."""
    return status == 426 or (upgrade or "").strip().lower() == "websocket"


def answers_like_blackhole(base_url: str) -> bool:
    """Whether the server at this URL answers a plain GET as a websocket server does. Asked
    only after a request was cut off unanswered; sends nothing but the GET, and trusts any
    certificate, since it reads one status line and sends no credentials."""
    import http.client
    import ssl

    parts = urlsplit(base_url)
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return False
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=PROBE_TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        return _is_websocket_refusal(response.status, response.getheader("Upgrade"))
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _ssl_reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        marker = "certificate verify failed:"
        if marker in text:
            return text.split(marker, 1)[1].split("(")[0].strip(" )'\"")
        return "certificate verify failed"
    return "TLS handshake failed"


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if "Temporary failure in name resolution" in text or "NameResolutionError" in text:
        return "host name could not be resolved"
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text:
        return "connection timed out"
    if "Connection reset" in text:
        return "connection reset"
    return "connection failed"
