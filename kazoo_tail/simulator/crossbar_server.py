"""Crossbar REST endpoints the client needs (auth, tokens, websockets listing), 4.3 envelope."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

from .accounts import Directory, TokenAuthority
from .bindings import catalogue

log = logging.getLogger("kazoo_tail.simulator.crossbar")

VERSION = "4.3.142"
NODE = base64.urlsafe_b64encode(hashlib.md5(b"crossbar@sim.kazoo.test").digest()).decode()[:22]
_REALM_PATTERN = r"^[.\w_-]+$"


class SocketTracking(Protocol):
    """What blackhole_tracking answers Crossbar: the live sockets of every blackhole node."""

    def sockets(self, account_ids: set[str] | None = None) -> list[dict[str, Any]]: ...

    def socket_by_id(self, session_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Request:
    method: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass(frozen=True)
class Paged:
    """One page of a listing; ``extra`` goes into the envelope (page_size, next_start_key...)."""

    items: list[Any]
    extra: dict[str, Any]


# Crossbar v2 pages listings by this many results (crossbar_view / cb_context).
PAGE_SIZE = 50


class _Problem(Exception):
    """An error envelope to send instead of the normal answer."""

    def __init__(self, status: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data: Any = {} if data is None else data


def _invalid_credentials() -> _Problem:
    return _Problem(401, "invalid_credentials", {"message": "invalid credentials"})


def _field_error(field: str, rule: str, message: str, **extra: Any) -> _Problem:
    return _Problem(400, "validation error", {field: {rule: {"message": message, **extra}}})


def _check_string(
    data: dict[str, Any], field: str, low: int, high: int, pattern: str | None = None
) -> None:
    """A subset of kz_json_schema checks, producing Crossbar-shaped validation errors."""
    if field not in data:
        return
    value = data[field]
    if not isinstance(value, str):
        raise _field_error(
            field, "type", "Value did not match type(s): string", target=["string"], value=value
        )
    if len(value) < low:
        raise _field_error(
            field, "minLength", f"String must be at least {low} characters", target=low, value=value
        )
    if len(value) > high:
        raise _field_error(
            field,
            "maxLength",
            f"String must not be more than {high} characters",
            target=high,
            value=value,
        )
    if pattern is not None and not re.match(pattern, value):
        raise _field_error(
            field, "pattern", f"Failed to match pattern '{pattern}'", target=pattern, value=value
        )


class CrossbarApp:
    """Routing and business rules; transport-free so it stays easy to reason about."""

    def __init__(
        self,
        tokens: TokenAuthority,
        directory: Directory,
        tracking: SocketTracking,
        count: Callable[[str], None],
        websocket_url: Callable[[], str | None],
        api_url: Callable[[], str],
        honour_paginate_false: bool = False,
        channels: Callable[[str], list[dict[str, Any]]] = lambda account_id: [],
        refuse_channels: Callable[[], int | None] = lambda: None,
        channels_gate: threading.Event | None = None,
    ) -> None:
        self.honour_paginate_false = honour_paginate_false
        self.channels = channels
        self.refuse_channels = refuse_channels
        # Cleared: listings wait (for at most a minute) until it is set, as a slow ecallmgr.
        self.channels_gate = channels_gate
        self.tokens = tokens
        self.directory = directory
        self.tracking = tracking
        self.count = count
        self.websocket_url = websocket_url
        self.api_url = api_url

    # -- envelope ------------------------------------------------------------------

    @staticmethod
    def _now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def success(
        self, request_id: str, data: Any, auth_token: str | None, revision: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "auth_token": auth_token or "undefined",
            "status": "success",
            "request_id": request_id,
            "node": NODE,
            "version": VERSION,
            "timestamp": self._now(),
        }
        if revision is not None:
            body["revision"] = revision
        if isinstance(data, Paged):
            body.update(data.extra)
            data = data.items
        body["data"] = data
        return body

    def error(self, request_id: str, problem: _Problem, auth_token: str | None) -> dict[str, Any]:
        return {
            # 4.3 quirk: kz_term:to_binary('undefined') when the request had no token.
            "auth_token": auth_token or "undefined",
            "request_id": request_id,
            "node": NODE,
            "version": VERSION,
            "timestamp": self._now(),
            "status": "error",
            "message": problem.message,
            "error": str(problem.status),
            "data": problem.data,
        }

    # -- dispatch ------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        request_id = request.headers.get("x-request-id") or os.urandom(16).hex()
        token = request.headers.get("x-auth-token") or (request.query.get("auth_token") or [""])[0]
        try:
            status, data, answer_token, revision = self._route(request, token or None)
        except _Problem as problem:
            return Reply(problem.status, self.error(request_id, problem, token or None), request_id)
        return Reply(status, self.success(request_id, data, answer_token, revision), request_id)

    def _route(
        self, request: Request, token: str | None
    ) -> tuple[int, Any, str | None, str | None]:
        seg = request.segments
        if not seg or seg[0] != "v2":
            raise _Problem(404, "not found", {"message": "bad version or unknown path"})
        rest = seg[1:]
        method = request.method
        routes: dict[tuple[str, ...], dict[str, Callable[[], tuple[int, Any, str | None]]]] = {
            ("user_auth",): {"PUT": lambda: self.user_auth(request)},
            ("api_auth",): {"PUT": lambda: self.api_auth(request)},
            ("auth",): {"PUT": lambda: self.refresh(request, token)},
            ("token_auth",): {
                "GET": lambda: self.token_auth(token),
                "DELETE": lambda: self.token_delete(token),
            },
            ("websockets",): {"GET": lambda: (200, catalogue(), None)},
        }
        key = tuple(rest)
        if key in routes:
            handlers = routes[key]
        elif len(rest) >= 2 and rest[0] == "accounts":
            handlers = self._account_routes(rest[1], rest[2:], token, request.query)
        else:
            raise _Problem(404, "not found", {"message": "unknown endpoint"})
        if method not in handlers:
            raise _Problem(405, "method not allowed", {"allowed": sorted(handlers)})
        if key == ("websockets",):
            self.count("websockets_catalog")
        status, data, answer_token = handlers[method]()
        revision = "automatic" if key in (("user_auth",), ("api_auth",), ("auth",)) else None
        return status, data, answer_token, revision

    def _account_routes(
        self, account_id: str, rest: list[str], token: str | None, query: dict[str, list[str]]
    ) -> dict[str, Callable[[], tuple[int, Any, str | None]]]:
        if rest == []:
            return {"GET": lambda: self.account_doc(account_id, token)}
        if rest == ["descendants"]:
            return {"GET": lambda: self.descendants(account_id, token, query)}
        if rest == ["websockets"]:
            return {"GET": lambda: self.account_sockets(account_id, token)}
        if rest == ["channels"]:
            return {"GET": lambda: self.account_channels(account_id, token)}
        if len(rest) == 2 and rest[0] == "websockets":
            return {"GET": lambda: self.account_socket(account_id, rest[1], token)}
        raise _Problem(404, "not found", {"message": "unknown endpoint"})

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Problem(
                400,
                "validation error",
                {"json": {"invalid": {"message": f"invalid JSON: {exc}", "target": "body"}}},
            ) from exc
        if not isinstance(body, dict):
            raise _Problem(
                400,
                "validation error",
                {"json": {"invalid": {"message": "body is not an object", "target": "body"}}},
            )
        return body

    @staticmethod
    def _data(body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data", {})
        return data if isinstance(data, dict) else {}

    def _claims(self, token: str | None) -> dict[str, Any]:
        if token is None:
            raise _invalid_credentials()
        claims = self.tokens.validate(token)
        if claims is None:
            raise _invalid_credentials()
        return claims

    def _authorized(self, account_id: str, token: str | None) -> dict[str, Any]:
        claims = self._claims(token)
        if not self.directory.is_in_hierarchy(str(claims["account_id"]), account_id):
            raise _Problem(403, "forbidden", {"message": "unauthorized access to account"})
        return claims

    def _auth_data(self, account_id: str, owner_id: str | None) -> dict[str, Any]:
        account = self.directory.accounts[account_id]
        data: dict[str, Any] = {"account_id": account_id}
        if owner_id is not None:
            data["owner_id"] = owner_id
        data.update(
            {
                "account_name": account.name,
                "apps": [
                    {
                        "api_url": self.api_url() + "/v2/",
                        "id": "0306d5162bad2c7a951b6842483f73cd",
                        "label": "Smart PBX",
                        "name": "voip",
                    }
                ],
                "capabilities": {
                    "voicemail": {"transcription": {"available": False, "default": False}}
                },
                "is_master_account": False,
                "is_reseller": False,
                "language": "en-us",
                "reseller_id": "6b71cb72c876b5b1396a335f8f8a2594",
            }
        )
        url = self.websocket_url()
        if url is not None:
            data["ui_config"] = {"api": {"kazoo_websocket": {"url": url}}}
        return data

    # -- endpoints -----------------------------------------------------------------

    def user_auth(self, request: Request) -> tuple[int, Any, str | None]:
        self.count("user_auth")
        data = self._data(self._json_body(request))
        if "credentials" not in data:
            raise _field_error(
                "credentials", "required", "Field is required but missing", value="credentials"
            )
        _check_string(data, "credentials", 1, 64)
        method = data.get("method", "md5")
        if method not in ("md5", "sha"):
            raise _field_error(
                "method",
                "enum",
                "Value not found in enumerated list of values",
                target=["md5", "sha"],
                value=method,
            )
        _check_string(data, "account_name", 1, 128)
        for realm_key in ("account_realm", "realm"):
            _check_string(data, realm_key, 4, 253, _REALM_PATTERN)
        _check_string(data, "phone_number", 1, 64)
        candidates = self.directory.find_accounts(
            data.get("phone_number"),
            data.get("account_realm") or data.get("realm"),
            data.get("account_name"),
        )
        for account in candidates:
            user = self.directory.check_credentials(account.id, data["credentials"], method)
            if user is not None:
                token = self.tokens.mint(account.id, user.id, "cb_user_auth")
                return 200, self._auth_data(account.id, user.id), token
        raise _invalid_credentials()

    def api_auth(self, request: Request) -> tuple[int, Any, str | None]:
        self.count("api_auth")
        data = self._data(self._json_body(request))
        api_key = data.get("api_key")
        if api_key is None or api_key == "":
            raise _invalid_credentials()
        _check_string(data, "api_key", 64, 64)
        extra = sorted(set(data) - {"api_key"})
        if extra:
            raise _field_error(
                extra[0], "additionalProperties", "Not allowed as an additional property"
            )
        account_id = self.directory.api_keys.get(api_key)
        if account_id is None:
            raise _Problem(404, "bad identifier", [api_key])
        token = self.tokens.mint(account_id, None, "cb_api_auth")
        return 200, self._auth_data(account_id, None), token

    def refresh(self, request: Request, token: str | None) -> tuple[int, Any, str | None]:
        self.count("refresh")
        claims = self._claims(token)
        body = self._json_body(request)
        if body.get("action") != "refresh_token":
            raise _field_error(
                "action",
                "enum",
                "Value not found in enumerated list of values",
                target=["refresh_token"],
                value=body.get("action"),
            )
        account_id = str(claims["account_id"])
        owner = claims.get("owner_id")
        owner_id = owner if isinstance(owner, str) else None
        new_token = self.tokens.mint(account_id, owner_id, "cb_auth")
        if account_id not in self.directory.accounts:
            return 200, {"account_id": account_id, "owner_id": owner_id}, new_token
        return 200, self._auth_data(account_id, owner_id), new_token

    def token_auth(self, token: str | None) -> tuple[int, Any, str | None]:
        self.count("token_auth")
        # Like cb_token_auth's GET: the claims plus the login extras, ui_config included.
        claims = self._claims(token)
        data = dict(claims)
        account_id = str(claims["account_id"])
        if account_id in self.directory.accounts:
            owner = claims.get("owner_id")
            data.update(self._auth_data(account_id, owner if isinstance(owner, str) else None))
        return 200, data, token

    def token_delete(self, token: str | None) -> tuple[int, Any, str | None]:
        # JWTs are not stored, so Kazoo "deletes" nothing and the token stays valid.
        self._claims(token)
        return 200, {}, token

    def account_doc(self, account_id: str, token: str | None) -> tuple[int, Any, str | None]:
        self._authorized(account_id, token)
        account = self.directory.accounts[account_id]
        doc: dict[str, Any] = {"id": account.id, "name": account.name, "realm": account.realm}
        if account.parent_id is not None:
            doc["parent_id"] = account.parent_id
        return 200, doc, token

    def descendants(
        self, account_id: str, token: str | None, query: dict[str, list[str]]
    ) -> tuple[int, Any, str | None]:
        """Paged by 50 in id order, from ``start_key``; the envelope's ``next_start_key`` names
        the next page's first id. ``paginate=false`` is honoured only when configured to be."""
        self._authorized(account_id, token)
        self.count("descendants_pages")
        listing: list[dict[str, Any]] = [
            {"id": a.id, "name": a.name, "realm": a.realm, "tree": self._tree(a.id)}
            for a in sorted(self.directory.descendants(account_id), key=lambda a: a.id)
        ]
        if self.honour_paginate_false and (query.get("paginate") or [""])[0] == "false":
            return 200, listing, token
        start = (query.get("start_key") or [""])[0]
        if start:
            listing = [item for item in listing if str(item["id"]) >= start]
        page, rest = listing[:PAGE_SIZE], listing[PAGE_SIZE:]
        extra: dict[str, Any] = {"page_size": len(page)}
        if start:
            extra["start_key"] = start
        if rest:
            extra["next_start_key"] = rest[0]["id"]
        return 200, Paged(page, extra), token

    def _tree(self, account_id: str) -> list[str]:
        parents: list[str] = []
        current = self.directory.accounts[account_id].parent_id
        while current is not None:
            parents.insert(0, current)
            current = self.directory.accounts[current].parent_id
        return parents

    def account_sockets(self, account_id: str, token: str | None) -> tuple[int, Any, str | None]:
        claims = self._authorized(account_id, token)
        # blackhole_tracking answers for the path account and the caller's own account.
        wanted = {account_id, str(claims["account_id"])}
        return 200, self.tracking.sockets(wanted), token

    def account_channels(self, account_id: str, token: str | None) -> tuple[int, Any, str | None]:
        """cb_channels' listing: the account's own live legs, one item each, no paging, in no
        order; its authorization is Crossbar's generic one (docs/calls.md §1.5)."""
        self._authorized(account_id, token)
        self.count("channel_listings")
        if self.channels_gate is not None:
            self.channels_gate.wait(60.0)
        refused = self.refuse_channels()
        if refused == 401:
            raise _invalid_credentials()
        if refused == 500:
            raise _Problem(500, "could not reach ecallmgr channels", {})
        if refused is not None:
            raise _Problem(
                refused,
                "forbidden",
                {"message": "forbidden", "cause": "access denied by token restrictions"},
            )
        return 200, self.channels(account_id), token

    def account_socket(
        self, account_id: str, socket_id: str, token: str | None
    ) -> tuple[int, Any, str | None]:
        self._authorized(account_id, token)
        found = self.tracking.socket_by_id(socket_id)
        if found is None:
            raise _Problem(500, "could not reach websockets tracking", {})
        return 200, found, token


class _Handler(BaseHTTPRequestHandler):
    app: ClassVar[CrossbarApp]
    tls: ClassVar[ssl.SSLContext | None]
    protocol_version = "HTTP/1.1"
    server_version = "Cowboy"
    sys_version = ""
    # Idle keep-alive connections are dropped after this long so threads end.
    timeout = 30

    def setup(self) -> None:
        if self.tls is not None:
            self.request.settimeout(5)
            wrapped = self.tls.wrap_socket(
                self.request, server_side=True, do_handshake_on_connect=False
            )
            self.request = wrapped
            try:
                wrapped.do_handshake()
            except (OSError, ValueError):
                wrapped.close()
                raise
        server = self.server
        assert isinstance(server, _HTTPServer)
        server.track(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            server = self.server
            assert isinstance(server, _HTTPServer)
            server.untrack(self.request)
            if self.tls is not None:
                # The TLS wrapper owns the descriptor now; the server only knows the raw one.
                self.request.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            segments=[s for s in parts.path.split("/") if s],
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply = self.app.handle(request)
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-ID", reply.request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, sock: socket.socket) -> None:
        with self.sockets_lock:
            self.open_sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-request or failed TLS handshakes are routine here.
        log.debug("crossbar request from %s failed", client_address, exc_info=True)


class CrossbarServer:
    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None, app: CrossbarApp):
        handler = type("Handler", (_Handler,), {"app": app, "tls": ssl_context})
        self._httpd = _HTTPServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="kazoo-sim-crossbar",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._httpd.sockets_lock:
            leftovers = list(self._httpd.open_sockets)
        for sock in leftovers:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2.0)
