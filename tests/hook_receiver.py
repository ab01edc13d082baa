"""A real HTTP endpoint on 127.0.0.1 for the forward tests: it records every request it is sent
and answers as the test sets it (a status, a sequence of statuses, a redirect, a held answer).

Nothing here mocks requests: the forwarder talks to it over a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # without the query string
    query: str  # the raw query string, "" when none
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() when the request was read whole

    @property
    def form(self) -> list[tuple[str, str]]:
        """The body as application/x-www-form-urlencoded pairs, in order."""
        return parse_qsl(self.body.decode(), keep_blank_values=True)

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass
class Behaviour:
    """How the receiver answers; a test may change it while the receiver runs."""

    status: int = 200
    # Statuses answered first, one per request, before ``status`` applies.
    statuses: list[int] = field(default_factory=list)
    # Answer with 302 and this Location (absolute or relative).
    redirect_to: str | None = None
    # Redirect only this many requests (then answer as usual); None: every request.
    redirects: int | None = None
    # Seconds to wait before answering each request (a slow endpoint).
    delay: float = 0.0
    # Answer nothing and close the connection (a crashing endpoint).
    hang_up: bool = False


class HookReceiver:
    """``with HookReceiver() as receiver: ... receiver.url ... receiver.wait_for(4)``"""

    def __init__(self, behaviour: Behaviour | None = None, *, port: int = 0) -> None:
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.answered = 0
        self._changed = threading.Condition()
        # Set by hold(): requests wait for release() before being answered.
        self._gate = threading.Event()
        self._gate.set()
        self._closing = threading.Event()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hook"

    def start(self) -> None:
        """Listen (again, on the same port after stop(): an endpoint that comes back)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle and the client's
            # delayed ACK add 40 ms to every answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                receiver._handle(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until start()."""
        server, self._server = self._server, None
        if server is None:
            return
        self._gate.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        self._closing.set()
        self.stop()

    def __enter__(self) -> HookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hold(self) -> None:
        """Read requests but answer none until release()."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first ``count`` requests, once that many have been read; AssertionError if they
        do not come within ``timeout`` (a bound on a failing test, not a pace)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"the receiver got {len(self.received)} requests, not {count}, in {timeout} s"
                )
            return list(self.received[:count])

    def wait_answered(self, count: int, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.answered >= count, timeout):
                raise AssertionError(f"the receiver answered {self.answered}, not {count}")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = Received(
            method=handler.command,
            path=parts.path,
            query=parts.query,
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        with self._changed:
            self.received.append(request)
            self._changed.notify_all()
            behaviour = self.behaviour
            status = behaviour.statuses.pop(0) if behaviour.statuses else behaviour.status
            redirect_to = behaviour.redirect_to
            if redirect_to is not None and behaviour.redirects is not None:
                if behaviour.redirects > 0:
                    behaviour.redirects -= 1
                else:
                    redirect_to = None
        self._gate.wait()
        if behaviour.delay:
            self._closing.wait(behaviour.delay)
        if behaviour.hang_up:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        else:
            if redirect_to is not None:
                status = 302
            text = f"{status}\n".encode()
            handler.send_response(status)
            if redirect_to is not None:
                handler.send_header("Location", redirect_to)
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            handler.wfile.write(text)
        with self._changed:
            self.answered += 1
            self._changed.notify_all()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
