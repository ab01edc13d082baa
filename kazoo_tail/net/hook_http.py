"""One webhook request, sent as Kazoo's webhooks app sends it, and nothing more.

The rules, and where they come from (Kazoo 4.3: ``webhooks_util.erl`` calls ``kz_http``, which
calls Erlang's ``httpc``; Kazoo 4.3 runs on Erlang/OTP 19):

* Connect timeout 10 s (webhooks' ``connect_timeout_ms``). Kazoo defines a 10 s
  ``request_timeout_ms`` too but never passes it, so httpc waits for an answer forever; we wait
  ``read_timeout`` (10 s unless the caller says otherwise, ``None`` for Kazoo's forever) so that
  a silent endpoint cannot hold the queue for good. requests applies it to each read of the
  socket; the bounded body read below also stops once the whole read has taken that long.
* Redirects: httpc's ``autoredirect`` (on by default) follows 301/302/303/307/308 for GET (and
  HEAD); for POST and PUT OTP 19 answers the 3xx itself (later OTPs turn a POST into a GET on
  301/302/303, dropping the body, which no webhook receiver wants). So we follow a redirect only
  for GET and HEAD, at most 5 hops (httpc's limit), and only when the target has the same
  scheme, host and port as the request: a redirect elsewhere is never followed (httpc would;
  a forwarder on a developer's machine should not send account events wherever an endpoint
  points it) and the attempt fails with an error naming that host. A redirect not followed
  is a non-200 answer: a failure Kazoo does not retry.
* Nothing but the method, the URL, the caller's headers and the body: the session does not read
  the environment (``trust_env=False``), so no ``~/.netrc`` credentials are added, no proxy
  from ``HTTP(S)_PROXY`` is used and ``REQUESTS_CA_BUNDLE`` does not replace ``verify``.
  requests' own headers are kept but for Accept-Encoding (httpc sends none and we do not
  decode the answer), and the User-Agent is ``user_agent`` (the app passes
  ``kazoo-tail/<version>``: this layer may not import the package's top, which reaches every
  layer).
* The answer's body is read (so the connection can be used again) but at most 64 KiB of it:
  a hostile endpoint cannot fill memory.

Error sentences never show a URL's userinfo (``http://user:pw@host/`` is shown without it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from kazoo_tail.net.urls import text_without_userinfo

BODY_LIMIT = 64 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
FOLLOWING_METHODS = frozenset({"GET", "HEAD"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to."""

    status: int | None  # the HTTP status, None when no answer came
    seconds: float  # how long the attempt took
    # One clear sentence when it failed at transport level or was refused by policy.
    error: str | None
    location: str | None = None  # a redirect's Location (userinfo removed), when not followed
    # The request was sent and no answer came within the read timeout: the endpoint may well
    # have it (Kazoo, which waits for ever, would never send it twice).
    unanswered: bool = False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _difference(origin: tuple[str, str, int | None], target: tuple[str, str, int | None]) -> str:
    if origin[1] != target[1]:
        return "host"
    return "scheme" if origin[0] != target[0] else "port"


def _host_of(url: str) -> str:
    """The URL's scheme, host and port, without its userinfo."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, "", "", "")) + "/"


class HookSender:
    """Sends webhook requests; ``send`` may be called from several threads at once (each thread
    has its own requests.Session, requests not promising that one is thread-safe)."""

    def __init__(
        self,
        *,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 10.0,
        user_agent: str = "kazoo-tail",
    ) -> None:
        self.verify = verify
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers = CaseInsensitiveDict(
                {
                    "User-Agent": self.user_agent,
                    "Accept": "*/*",
                    "Connection": "keep-alive",
                }
            )
            session.verify = self.verify
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        """Close every thread's session (and so the idle connections they keep); a thread
        sending later opens a new one."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Attempt:
        """One attempt (with same-origin redirects followed for GET); never raises for network
        trouble: an error is an Attempt with ``error`` set."""
        started = time.monotonic()
        method = method.upper()
        origin = _origin(url)
        current = url
        hops = 0
        while True:
            try:
                status, location = self._one(method, current, headers, body)
            except requests.RequestException as exc:
                error = _describe(exc, self)
                unanswered = error == _no_answer(self)
                return Attempt(None, time.monotonic() - started, error, unanswered=unanswered)
            except (ValueError, OSError, urllib3.exceptions.HTTPError) as exc:
                # An odd URL, or socket trouble that requests let by.
                error = text_without_userinfo(f"request failed: {type(exc).__name__}: {exc}")
                return Attempt(None, time.monotonic() - started, error)
            if status not in REDIRECT_STATUSES or location is None:
                return Attempt(status, time.monotonic() - started, None)
            target = urljoin(current, location)
            shown = text_without_userinfo(target)
            seconds = time.monotonic() - started
            if _origin(target) != origin:
                other = _difference(origin, _origin(target))
                error = f"redirected to another {other} ({_host_of(target)}): not followed"
                return Attempt(status, seconds, error, shown)
            if method not in FOLLOWING_METHODS:
                error = f"redirected ({status}) to {shown}: not followed for {method}"
                return Attempt(status, seconds, error, shown)
            if hops >= MAX_REDIRECTS:
                error = f"more than {MAX_REDIRECTS} redirects: {shown} not followed"
                return Attempt(status, seconds, error, shown)
            hops += 1
            current = target

    def _one(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str | None]:
        session = self._session()
        response = session.request(
            method,
            url,
            headers=dict(headers),
            data=body or None,
            allow_redirects=False,
            stream=True,
            timeout=(self.connect_timeout, self.read_timeout),
        )
        complete = False
        try:
            complete = self._drain(response)
        finally:
            if complete:  # the connection may serve the next request (keep-alive)
                response.raw.release_conn()
            else:
                response.close()
        return response.status_code, response.headers.get("Location")

    def _drain(self, response: requests.Response) -> bool:
        """Read the answer's body, at most BODY_LIMIT bytes and for at most ``read_timeout``
        seconds in all; True if it was read whole. What is left is not read (closing the
        response then drops the connection)."""
        raw: Any = response.raw
        deadline = None if self.read_timeout is None else time.monotonic() + self.read_timeout
        taken = 0
        while taken < BODY_LIMIT:
            if deadline is not None and time.monotonic() > deadline:
                return False
            try:
                chunk = raw.read(min(8192, BODY_LIMIT - taken), decode_content=False)
            except (OSError, urllib3.exceptions.HTTPError):
                return False  # the answer (its status) came; its body did not: not needed
            if not chunk:
                return True
            taken += len(chunk)
        return False


def _describe(exc: requests.RequestException, sender: HookSender) -> str:
    """One sentence for a failed attempt, without the URL's userinfo."""
    text = text_without_userinfo(str(exc))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {_seconds(sender.connect_timeout)}"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _no_answer(sender)
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return "TLS certificate not trusted"
        if "match" in text and "hostname" in text.lower():
            return "TLS certificate is for another host name"
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if _caused_by(exc, ConnectionRefusedError) or "refused" in text.lower():
            return "connection refused"
        if _caused_by(exc, TimeoutError) or "timed out" in text:
            return _no_answer(sender)
        lowered = text.lower()
        if (
            "name or service not known" in lowered
            or "nodename nor servname" in lowered
            or ("failed to resolve" in lowered or "getaddrinfo failed" in lowered)
        ):
            return "host name not found"
        if _caused_by(exc, ConnectionResetError) or "reset" in lowered:
            return "the connection was reset"
        if "remotedisconnected" in lowered or "aborted" in lowered or "closed" in lowered:
            return "the endpoint closed the connection without answering"
        return "connection failed"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "not a usable URL"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "not an http or https URL"
    return f"request failed: {type(exc).__name__}"


def _no_answer(sender: HookSender) -> str:
    return f"no answer within {_seconds(sender.read_timeout)}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        for nested in (current.__cause__, current.__context__, *current.args):
            if isinstance(nested, BaseException):
                stack.append(nested)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def _seconds(value: float | None) -> str:
    if value is None:
        return "the time allowed"
    return f"{value:g} s"
