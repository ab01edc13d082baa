"""The blackhole websocket: upgrade rules, per-socket sessions, the request pipeline, events.

Behaviour follows docs/protocol.md §0-§4 (Kazoo 4.3 on cowboy):
rate -> authenticate -> validate -> authorize -> command, one reply per text frame,
context changes kept only when the whole message succeeds.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import platform
import queue
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, cast

from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING, OPEN
from websockets.protocol import Event as ProtocolEvent
from websockets.sync.server import Server, ServerConnection, serve

from .accounts import Directory, TokenAuthority, TokenStatus
from .bindings import keys_match, subscriptions_for, validate_binding
from .traffic import GREGORIAN_OFFSET, Event, TrafficFactory

log = logging.getLogger("kazoo_tail.simulator.blackhole")

_CLOSE_TIMEOUT = 2.0
# websockets 17 closes the open connections itself on shutdown, with the code it is given;
# before that, shutdown only stops listening and the simulator closes them (see stop()).
_SHUTDOWN_CLOSES = "code" in inspect.signature(Server.shutdown).parameters


class _Crash(Exception):
    """Input that makes the real socket process crash: close 1011, no reply."""


def ne_binary(payload: dict[str, Any], key: str) -> str | None:
    """kz_json:get_ne_binary_value/2: absent or empty -> None, other JSON made into text."""
    if key not in payload:
        return None
    value = payload[key]
    text: str | None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        # jiffy decodes null to the atom null, which to_binary turns into "null".
        text = "null"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        # iolist_to_binary/1 concatenates a list of strings.
        text = "".join(value)
    else:
        text = None
    return text or None


def encode_frame(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def event_frame(subscribed_key: str, subscription_key: str, event: Event) -> str:
    message: dict[str, Any] = {
        "action": "event",
        "subscribed_key": subscribed_key,
        "subscription_key": subscription_key,
    }
    if event.name is not None:
        message["name"] = event.name
    message["routing_key"] = event.routing_key
    message["data"] = event.data
    return encode_frame(message)


class TokenBucket:
    """kz_buckets as blackhole starts it (FillAsBlock): full at ``capacity``, then ``block``
    tokens at once every ``period`` seconds, counted from the first frame that used it."""

    def __init__(
        self,
        capacity: float = 100.0,
        block: float = 10.0,
        period: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.block = block
        self.period = period
        self.tokens = capacity
        self.clock = clock
        self.made_at: float | None = None
        self._blocks = 0

    def take(self) -> bool:
        now = self.clock()
        if self.made_at is None:
            self.made_at = now
        blocks = int((now - self.made_at) // self.period)
        if blocks > self._blocks:
            added = (blocks - self._blocks) * self.block
            self.tokens = min(self.capacity, self.tokens + added)
            self._blocks = blocks
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Gate:
    """Simulator-wide "hung node" switch shared by every socket."""

    def __init__(self) -> None:
        self.stalled = False


class WatchedSocket:
    """Socket wrapper: notes when client bytes arrive and stops reading while stalled.

    Reading in the wrapper (not in websockets' frame handling) is what makes a stalled
    node leave client pings unanswered, exactly like a hung peer.
    """

    def __init__(self, sock: socket.socket, gate: Gate) -> None:
        self._sock = sock
        self._gate = gate
        self._closed = threading.Event()
        self.last_rx = time.monotonic()

    def recv(self, bufsize: int) -> bytes:
        while self._gate.stalled and not self._closed.is_set():
            self._closed.wait(0.02)
        data = self._sock.recv(bufsize)
        # websockets before 17 waits for bytes in this very recv, so a stall can begin while it
        # blocks: what arrives then is held back until the stall ends, as if unread.
        while data and self._gate.stalled and not self._closed.is_set():
            self._closed.wait(0.02)
        if data:
            self.last_rx = time.monotonic()
        return data

    def close(self) -> None:
        self._closed.set()
        self._sock.close()

    def abort(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Connection(ServerConnection):
    gate: ClassVar[Gate]
    on_ping: ClassVar[Callable[[], None]]
    registry: ClassVar[weakref.WeakSet[_Connection]]

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        self.watched = WatchedSocket(sock, self.gate)
        super().__init__(cast(socket.socket, self.watched), *args, **kwargs)
        self.registry.add(self)

    def process_event(self, event: ProtocolEvent) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            type(self).on_ping()
        super().process_event(event)


@dataclass
class Context:
    """What bh_context keeps between frames (only replaced when a frame fully succeeds)."""

    auth_account_id: str | None = None
    auth_token: str | None = None
    resp_data: dict[str, Any] = field(default_factory=dict)
    bindings: tuple[tuple[str, str], ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Out:
    kind: str  # "send", "close" or "stop"
    payload: str | bytes = ""
    code: int = 1000
    reason: str = ""


class Session:
    """One websocket: its context, rate bucket and an ordered outbound queue."""

    def __init__(self, hub: BlackholeServer, conn: _Connection) -> None:
        self.hub = hub
        self.conn = conn
        host, port = conn.remote_address[0], conn.remote_address[1]
        self.source = str(host)
        self.id = f"{host}:{port}"
        self.connected_at = time.time()
        self.ctx = Context()
        self.bucket = TokenBucket()
        self.started = False
        self._out: queue.Queue[_Out] = queue.Queue()
        self._alive = True
        self._send_started: float | None = None
        # (client binding, key) -> when it starts matching events (master binds after replying)
        self.live_from: dict[tuple[str, str], float] = {}
        self._writer = threading.Thread(target=self._write_loop, daemon=True, name=self.id)

    # -- outbound ------------------------------------------------------------------

    def start_writer(self) -> None:
        self._writer.start()

    def enqueue(self, payload: str | bytes) -> bool:
        if not self._alive:
            return False
        limit = self.hub.max_queued_messages
        if limit is not None and self._out.qsize() > limit:
            self.hub.count("frames_shed")  # 4.3: silently, replies as well as events
            return False
        self._out.put(_Out("send", payload))
        return True

    def send_overdue(self, now: float) -> bool:
        """Whether one send has been blocked (the client not reading) past the send timeout."""
        started, limit = self._send_started, self.hub.send_timeout
        return started is not None and limit is not None and now - started > limit

    def enqueue_close(self, code: int, reason: str = "") -> None:
        if self._alive:
            self._out.put(_Out("close", code=code, reason=reason))

    def _write_loop(self) -> None:
        while True:
            item = self._out.get()
            if item.kind == "stop":
                break
            if item.kind == "close":
                self._alive = False
                self.conn.close(item.code, item.reason)
                break
            if self.hub.gate.stalled:
                continue  # a hung node sends nothing; what it had queued is lost
            self._send_started = time.monotonic()
            try:
                self.conn.send(item.payload)
            except (ConnectionClosed, OSError):
                break
            finally:
                self._send_started = None
        self._alive = False

    def wait_writer(self, timeout: float) -> None:
        if self._writer.is_alive():
            self._writer.join(timeout)

    def stop_writer(self) -> None:
        self._out.put(_Out("stop"))
        self.wait_writer(_CLOSE_TIMEOUT)
        self._alive = False

    # -- inbound -------------------------------------------------------------------

    def run(self) -> None:
        idle = self.hub.idle_timeout
        while True:
            if self.send_overdue(time.monotonic()):
                # The socket process dies: the connection goes without a close frame.
                self.hub.count("send_timeouts")
                self._alive = False
                self.conn.watched.abort()
                self.conn.close_socket()
                return
            remaining = idle - (time.monotonic() - self.conn.watched.last_rx)
            if remaining <= 0:
                if not self.hub.gate.stalled:
                    self.enqueue_close(1000)
                    return
                remaining = 0.2
            try:
                message = self.conn.recv(timeout=min(remaining, 0.5))
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            if isinstance(message, bytes):
                continue  # binary frames are logged and ignored by blackhole
            try:
                self.handle_text(message)
            except _Crash:
                self.enqueue_close(1011)
                return

    def handle_text(self, text: str) -> None:
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise _Crash from exc
        if not isinstance(payload, dict):
            raise _Crash
        action = ne_binary(payload, "action") or "noop"
        payload.pop("action", None)
        self.hub.count_action(action)
        ctx = replace(self.ctx)
        ctx.auth_token = ne_binary(payload, "auth_token")
        request_id = ne_binary(payload, "request_id") or os.urandom(16).hex()
        ctx.extras = {key: payload[key] for key in ("name", "metadata") if key in payload}
        early: list[str] = []
        error = self._pipeline(ctx, action, payload, early)
        if error is not None:
            self.reply(request_id, "error", {"errors": [error]})
            return
        self.ctx = ctx
        for frame in early:
            self.enqueue(frame)
        self.reply(request_id, "success", ctx.resp_data)

    def reply(self, request_id: str, status: str, data: dict[str, Any]) -> None:
        if self.hub.take_shed_reply():
            self.hub.count("replies_shed")
            return
        message = {"action": "reply", "request_id": request_id, "status": status, "data": data}
        self.enqueue(encode_frame(message))

    def _pipeline(
        self, ctx: Context, action: str, payload: dict[str, Any], early: list[str]
    ) -> str | None:
        if not self.bucket.take():
            self.hub.count("rate_limited")
            return f"rate limiting threshold hit for {self.id}!"
        if ctx.auth_account_id is None:
            if ctx.auth_token is None:
                return "authentication token required"
            check = self.hub.tokens.check(ctx.auth_token)
            if check.status is TokenStatus.MALFORMED:
                raise _Crash
            account_id = check.claims.get("account_id")
            if check.status is not TokenStatus.VALID or not isinstance(account_id, str):
                return f"failed to authenticate token {ctx.auth_token}"
            ctx.auth_account_id = account_id
        if action not in ("subscribe", "unsubscribe"):
            if action == "ping" and self.hub.ping_module:
                ctx.resp_data = {"response": "pong"}
            return None
        data = payload.get("data")
        if not isinstance(data, dict) or not data:
            return "missing required keys in data object"
        missing = [key for key in ("account_id", "binding") if key not in data]
        if missing:
            return "missing required keys : " + ", ".join(missing)
        binding = data["binding"]
        if not isinstance(binding, str):
            raise _Crash
        invalid = validate_binding(binding)
        if invalid is not None:
            return invalid
        account_id = data["account_id"]
        if action == "subscribe":
            return self._subscribe(ctx, binding, account_id, early)
        return self._unsubscribe(ctx, binding, account_id)

    def _subscribe(
        self, ctx: Context, binding: str, account_id: Any, early: list[str]
    ) -> str | None:
        if account_id == "*":
            return "unauthorized wildcard account id"
        assert ctx.auth_account_id is not None
        if not self.hub.directory.is_in_hierarchy(ctx.auth_account_id, account_id):
            return "unauthorized account id"
        pairs = subscriptions_for(binding, account_id)
        if not pairs:
            return "no available subscriptions to requested binding"
        added: list[tuple[str, str]] = []
        for pair in pairs:
            if pair not in ctx.bindings and pair not in added:
                added.append(pair)
        ctx.bindings = ctx.bindings + tuple(added)
        if self.hub.bind_delay:
            # master binds with a cast: the reply goes out before events match.
            live = time.monotonic() + self.hub.bind_delay
            self.live_from.update({pair: live for pair in added})
        ctx.resp_data = {"subscribed": [client for client, _ in ctx.bindings]}
        if self.hub.early_events:
            frame = self.hub.early_frame(added)
            if frame is not None:
                early.append(frame)
        return None

    def _unsubscribe(self, ctx: Context, binding: str, account_id: Any) -> str | None:
        if not isinstance(account_id, str):
            # The module crashes building its keys; bh_events reports that as no subscriptions.
            return "no available subscriptions to requested binding"
        pairs = subscriptions_for(binding, account_id)
        if not pairs:
            return "no available subscriptions to requested binding"
        removed = set(pairs)
        ctx.bindings = tuple(pair for pair in ctx.bindings if pair not in removed)
        requested: list[str] = []
        for client, _ in pairs:
            if client not in requested:
                requested.append(client)
        ctx.resp_data = {
            "unsubscribed": list(reversed(requested)),
            "subscribed": [client for client, _ in ctx.bindings],
        }
        return None

    # -- events and listing --------------------------------------------------------

    def deliver(self, event: Event) -> int:
        sent = 0
        now = time.monotonic() if self.live_from else 0.0
        for client, key in self.ctx.bindings:
            if self.live_from and self.live_from.get((client, key), 0.0) > now:
                continue
            if keys_match(key, event.routing_key):
                if self.enqueue(event_frame(client, key, event)):
                    sent += 1
        return sent

    def describe(self) -> dict[str, Any]:
        ctx = self.ctx
        info: dict[str, Any] = {
            "bindings": [client for client, _ in ctx.bindings],
            "websocket_session_id": self.id,
            "timestamp": int(self.connected_at) + GREGORIAN_OFFSET,
            "destination": self.hub.node_name,
            "source": self.source,
        }
        info.update(ctx.extras)
        return info


class BlackholeServer:
    """Websocket listener plus the registry of live sessions."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        tokens: TokenAuthority,
        directory: Directory,
        traffic: TrafficFactory,
        count: Callable[[str], None],
        idle_timeout: float,
        early_events: bool,
        ping_module: bool,
        rate_limit: bool,
        max_connections_per_ip: int | None,
        max_queued_messages: int | None = None,
        send_timeout: float | None = None,
        bind_delay: float = 0.0,
        node_name: str | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.ssl_context = ssl_context
        self.tokens = tokens
        self.directory = directory
        self.traffic = traffic
        self.count = count
        self.idle_timeout = idle_timeout
        self.early_events = early_events
        self.ping_module = ping_module
        self.rate_limit = rate_limit
        self.max_connections_per_ip = max_connections_per_ip
        self.max_queued_messages = max_queued_messages
        self.send_timeout = send_timeout
        self.bind_delay = bind_delay
        self._replies_to_shed = 0
        self.node_name = node_name or platform.node() or "blackhole"
        self.gate = Gate()
        self._lock = threading.Lock()
        self._sessions: dict[_Connection, Session] = {}
        self._rejections: list[int] = []
        # Close codes the clients sent, in order: tests check that a tail says goodbye (1000).
        self.client_close_codes: list[int] = []
        self._server: Server | None = None
        self._connection_class: type[_Connection] = _Connection
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        gate = self.gate

        count = self.count

        class Connection(_Connection):
            pass

        def on_ping() -> None:
            count("ws_pings")

        Connection.gate = gate
        Connection.on_ping = on_ping
        Connection.registry = weakref.WeakSet()
        self._connection_class = Connection
        self._server = serve(
            self._handle,
            self.host,
            self.requested_port,
            ssl=self.ssl_context,
            compression=None,
            process_request=self._process_request,
            process_response=self._process_response,
            server_header="Cowboy",
            ping_interval=None,
            ping_timeout=None,
            open_timeout=5.0,
            close_timeout=_CLOSE_TIMEOUT,
            max_size=None,
            logger=log,
            create_connection=Connection,
        )
        # Every test starts and stops a simulator; the default 0.1 s poll dominates teardown.
        self._server.SHUTDOWN_POLLING_INTERVAL = 0.005
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kazoo-sim-blackhole", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port  # where it listened last (0 before its first start)
        return int(self._server.socket.getsockname()[1])

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self, close_code: int | None = 1001) -> None:
        """Stop listening and end every socket: with a close frame of ``close_code``, or with
        none (None), as when the node's VM dies. A later start() listens on the same port."""
        if self._server is None:
            return
        # A restart must come back where clients were told the node is.
        self.requested_port = self.port
        self.gate.stalled = False
        if close_code is None:
            self.drop_connections()
        # Half-open sockets (TCP up, no upgrade yet) would hold shutdown for open_timeout.
        for conn in list(self._connection_class.registry):
            if conn.protocol.state is CONNECTING:
                conn.close_socket()
        if _SHUTDOWN_CLOSES:
            self._server.shutdown(code=close_code or 1001)
        else:
            self._close_all(close_code or 1001)
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=_CLOSE_TIMEOUT)
        self._server = None

    # -- handshake -----------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        assert isinstance(conn, _Connection)
        with self._lock:
            forced = self._rejections.pop(0) if self._rejections else None
        if forced is not None:
            return conn.respond(forced, "")
        if "Sec-WebSocket-Protocol" in request.headers:
            return conn.respond(400, "")
        ip = str(conn.remote_address[0])
        with self._lock:
            limit = self.max_connections_per_ip
            # Unauthenticated and half-open sockets count too, like blackhole_tracking.
            if limit is not None:
                live = sum(1 for s in self._sessions.values() if s.source == ip)
                if live >= limit:
                    return conn.respond(429, "")
            self._sessions[conn] = Session(self, conn)
        return None

    def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        if response.status_code != 101:
            self.count("rejected_upgrades")
            with self._lock:
                self._sessions.pop(cast(_Connection, conn), None)
        return None

    def reject_upgrades(self, status: int, count: int) -> None:
        with self._lock:
            self._rejections.extend([status] * count)

    # -- per connection ------------------------------------------------------------

    def _handle(self, conn: ServerConnection) -> None:
        assert isinstance(conn, _Connection)
        with self._lock:
            session = self._sessions.get(conn)
        if session is None:
            return
        if not self.rate_limit:
            session.bucket = TokenBucket(float("inf"), 0.0)
        self.count("connections")
        session.start_writer()
        session.started = True
        try:
            session.run()
        finally:
            session.stop_writer()
            received = conn.protocol.close_rcvd
            with self._lock:
                self._sessions.pop(conn, None)
                if received is not None:
                    self.client_close_codes.append(received.code)

    def count_action(self, action: str) -> None:
        names = {"subscribe": "subscribes", "unsubscribe": "unsubscribes", "ping": "pings"}
        if action in names:
            self.count(names[action])

    def early_frame(self, added: list[tuple[str, str]]) -> str | None:
        for client, key in added:
            event = self.traffic.example_for(key)
            if event is not None and keys_match(key, event.routing_key):
                return event_frame(client, key, event)
        return None

    # -- fan-out and fault injection -----------------------------------------------

    def _live(self) -> list[Session]:
        with self._lock:
            return [session for session in self._sessions.values() if session.started]

    def publish(self, event: Event) -> int:
        if self.gate.stalled:
            return 0
        return sum(session.deliver(event) for session in self._live())

    def send_raw(self, payload: str | bytes) -> int:
        return sum(1 for session in self._live() if session.enqueue(payload))

    def close_connections(self, code: int, reason: str) -> None:
        sessions = self._live()
        for session in sessions:
            session.enqueue_close(code, reason)
        for session in sessions:
            session.wait_writer(_CLOSE_TIMEOUT + 1.0)

    def _close_all(self, code: int) -> None:
        """What websockets 17's shutdown does, for older ones: a close frame on every open
        socket, a session's through its writer, so it goes out after what is queued."""
        self.close_connections(code, "")
        for conn in list(self._connection_class.registry):
            if conn.protocol.state is OPEN:
                conn.close(code)

    def drop_connections(self) -> None:
        for session in self._live():
            session.conn.watched.abort()
            session.conn.close_socket()

    def shed_replies(self, count: int) -> None:
        """Lose the next ``count`` replies, as 4.3 does on a busy socket."""
        with self._lock:
            self._replies_to_shed += count

    def take_shed_reply(self) -> bool:
        with self._lock:
            if self._replies_to_shed <= 0:
                return False
            self._replies_to_shed -= 1
            return True

    def set_stalled(self, stalled: bool) -> None:
        self.gate.stalled = stalled
        if not stalled:
            # Bytes queued in the kernel meanwhile are read now; don't count the stall as idle.
            for session in self._live():
                session.conn.watched.last_rx = time.monotonic()

    def sockets(self, account_ids: set[str] | None = None) -> list[dict[str, Any]]:
        found = []
        for session in self._live():
            auth = session.ctx.auth_account_id
            if auth is None:
                continue
            if account_ids is None or auth in account_ids:
                found.append(session.describe())
        return found

    def socket_by_id(self, session_id: str) -> dict[str, Any] | None:
        for session in self._live():
            if session.id == session_id and session.ctx.auth_account_id is not None:
                return session.describe()
        return None
