"""Issue 10, the network items: what a hostile server or a careless URL did to the tool. Each
test fails on the code before its fix; the misbehaving servers are raw sockets on 127.0.0.1
(and 127.0.0.2, a host the user did not name), or the simulator where it can misbehave so."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kazoo_tail.simulator import Simulator

from .inprocess import run

API_KEY_63 = "0123456789abcdef" * 3 + "0123456789abcde"
# No run this long of a secret may reach the screen.
FRAGMENT = 8


@dataclass
class Request:
    head: str
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split("\r\n", 1)[0]


Handler = Callable[[socket.socket, Request, "RawServer"], None]


@dataclass
class RawServer:
    """An HTTP-ish server that reads each request and lets ``handler`` write whatever bytes it
    likes back (or nothing, slowly, or forever); every request that reached it is kept."""

    handler: Handler
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            text = head.decode("latin-1")
            length = 0
            for line in text.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            request = Request(text, body)
            self.requests.append(request)
            try:
                self.handler(conn, request, self)
            except OSError:
                pass  # the client gave up on us: that is what several tests want

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(handler: Handler, host: str = "127.0.0.1") -> RawServer:
        server = RawServer(handler, host)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def json_reply(status: int, envelope: object, extra_headers: str = "") -> bytes:
    body = json.dumps(envelope).encode()
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra_headers}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


# -- item 3: a mistyped API key is printed ----------------------------------------------------


@pytest.mark.parametrize("command", [["-b", "call.*.*"], ["login"], ["-b", "call.*.*", "--debug"]])
def test_a_mistyped_api_key_echoed_by_crossbar_is_never_printed(
    sim: Simulator, raw_server: Callable[..., RawServer], command: list[str]
) -> None:
    # The simulator's Crossbar, like Kazoo's, repeats the 63 characters in its validation error.
    result = run(*command, "--url", sim.crossbar_url, KAZOO_API_KEY=API_KEY_63)
    assert result.returncode == 3, result.stderr
    assert "must be at least 64 characters" in result.stderr
    assert API_KEY_63[:FRAGMENT] not in result.stderr

    # A Crossbar that echoes a part of the key, or its JSON-escaped form, in its own words.
    def echo_a_part(conn: socket.socket, request: Request, server: RawServer) -> None:
        reason = f"no such key {API_KEY_63[5:30]}..., did you mean {API_KEY_63[:40]!r}?"
        conn.sendall(json_reply(401, {"message": "invalid", "data": {"message": reason}}))

    server = raw_server(echo_a_part)
    result = run(*command, "--url", server.url(), KAZOO_API_KEY=API_KEY_63)
    assert result.returncode == 3, result.stderr
    assert "no such key" in result.stderr
    for start in range(len(API_KEY_63) - FRAGMENT + 1):
        assert API_KEY_63[start : start + FRAGMENT] not in result.stderr, result.stderr


# -- item 5: credentials in a URL leak --------------------------------------------------------


def test_a_url_carrying_a_password_is_refused_before_it_is_used_shown_or_saved(
    sim: Simulator, isolated_env: Path
) -> None:
    password = "Sekr1t-in-the-url"
    crossbar = sim.crossbar_url.replace("http://", f"http://ops:{password}@")
    blackhole = sim.blackhole_url.replace("ws://", f"ws://ops:{password}@")
    login = ["--account-name", "demo", "--username", "demo"]
    attempts = [
        ["login", "--url", crossbar, *login],
        ["-b", "call.*.*", "--url", crossbar, *login],
        ["-b", "call.*.*", "--token", "t" * 40, "--ws-url", blackhole],
        ["bindings", "--url", crossbar],
    ]
    for args in attempts:
        result = run(*args, KAZOO_PASSWORD="demo")
        assert result.returncode == 2, (args, result.stderr)
        assert "must not carry a user name or password" in result.stderr
        assert password not in result.stderr + result.stdout
    assert not isolated_env.exists() or all(
        password not in path.read_text() for path in isolated_env.iterdir()
    )

    # A profile saved before this was refused is refused too, without echoing it.
    isolated_env.mkdir(parents=True, exist_ok=True)
    profile = {"url": crossbar, "account_name": "demo", "username": "demo"}
    (isolated_env / "profiles.json").write_text(json.dumps({"default": profile}))
    result = run("-b", "call.*.*", KAZOO_PASSWORD="demo")
    assert result.returncode == 2, result.stderr
    assert "must not carry a user name or password" in result.stderr
    assert password not in result.stderr


# -- item 4: secrets follow redirects to another host ----------------------------------------

GOOD_LOGIN = {"auth_token": "tok-" + "x" * 40, "data": {"account_id": "acc1"}}


def redirect_to(location: str, status: int) -> Handler:
    def handler(conn: socket.socket, request: Request, server: RawServer) -> None:
        if request.request_line.startswith(("PUT /moved/", "GET /moved/")):
            conn.sendall(json_reply(201, GOOD_LOGIN))
            return
        headers = f"Location: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        conn.sendall(f"HTTP/1.1 {status} Moved\r\n{headers}".encode())

    return handler


def test_no_secret_follows_a_redirect_to_a_host_the_user_did_not_name(
    raw_server: Callable[..., RawServer],
) -> None:
    answer = json_reply(201, GOOD_LOGIN)
    same_host_other_port = raw_server(lambda conn, request, server: conn.sendall(answer))
    other_host_server = raw_server(lambda conn, request, server: conn.sendall(answer), "127.0.0.2")
    strangers = (same_host_other_port, other_host_server)
    other_port, other_host = same_host_other_port.url(), other_host_server.url()
    token = ["--token", "t" * 40, "--account-id", "acc1"]
    cases = [
        # A 307 would re-send the body: the API key, or the password's md5 hash.
        (307, other_host, ["login"], {"KAZOO_API_KEY": "k" * 64}),
        (
            307,
            other_port,
            ["login", "--account-name", "demo", "--username", "demo"],
            {"KAZOO_PASSWORD": "demo-password"},
        ),
        # A 302 would re-send X-Auth-Token (requests drops only Authorization).
        (302, other_host, ["-b", "call.*.*", *token, "--descendants", "--ws-url", "ws://x:1"], {}),
    ]
    for status, target, args, env in cases:
        crossbar = raw_server(redirect_to(f"{target}/v2/api_auth", status))
        result = run(*args, "--url", crossbar.url(), **env)
        assert result.returncode == 4, result.stderr
        assert f"Crossbar at {crossbar.url()} redirected" in result.stderr
        assert f"to {target}/v2/api_auth" in result.stderr and "not following it" in result.stderr
        assert len(crossbar.requests) == 1
    assert [stranger.connections for stranger in strangers] == [0, 0]

    # The blackhole upgrade: websocket-client would follow a 301 to any host, token and all.
    blackhole = raw_server(redirect_to(f"ws://127.0.0.2:{other_host_server.port}/", 301))
    result = run("-b", "call.*.*", *token, "--ws-url", blackhole.url("ws"))
    assert result.returncode == 4, result.stderr
    assert f"blackhole at {blackhole.url('ws')} redirected the websocket upgrade" in result.stderr
    assert f"to ws://127.0.0.2:{other_host_server.port}/, another host" in result.stderr
    assert other_host_server.connections == 0

    # The same server, elsewhere on it, is followed, body and all.
    crossbar = raw_server(redirect_to("/moved/v2/api_auth", 308))
    result = run("login", "--url", crossbar.url(), KAZOO_API_KEY="k" * 64)
    assert result.returncode == 0, result.stderr
    assert [r.request_line for r in crossbar.requests] == [
        "PUT /v2/api_auth HTTP/1.1",
        "PUT /moved/v2/api_auth HTTP/1.1",
    ]
    assert json.loads(crossbar.requests[1].body) == {"data": {"api_key": "k" * 64}}


# -- item 9: a never-finished upgrade hangs forever --------------------------------------------

# How long the dribbling servers go on when nobody stops them: far past every deadline here,
# yet finite, so that the code before the fixes fails these tests instead of hanging them.
DRIBBLES = 100
DRIBBLE_EVERY = 0.05


def dribble(pieces: Iterator[bytes]) -> Handler:
    def handler(conn: socket.socket, request: Request, server: RawServer) -> None:
        for piece in pieces:
            if server.stopped.wait(DRIBBLE_EVERY):
                return
            conn.sendall(piece)

    return handler


def test_an_upgrade_that_never_finishes_ends_at_the_connect_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    from kazoo_tail.net.transport import ConnectFailed, Transport

    lines = (f"X-Header-{n}: still coming\r\n".encode() for n in range(DRIBBLES))
    server = raw_server(dribble(iter([b"HTTP/1.1 101 Switching Protocols\r\n", *lines])))
    url = server.url("ws")
    with pytest.raises(ConnectFailed) as failed:
        Transport.open(url, sslopt={}, timeout=0.5, tick=0.25)
    assert failed.value.sentence == (
        f"cannot connect to blackhole at {url}: timed out while connecting "
        "(the websocket upgrade did not finish within 0.5s)"
    )
    assert failed.value.retryable


# -- item 11: a dribbling Crossbar hangs login forever -----------------------------------------


def test_a_crossbar_sending_a_byte_at_a_time_is_given_up_at_the_call_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    from kazoo_tail.errors import ConnectError
    from kazoo_tail.net.crossbar import Crossbar

    reply = json_reply(201, {**GOOD_LOGIN, "padding": "p" * DRIBBLES})
    head, _, body = reply.partition(b"\r\n\r\n")
    dribbled_head = raw_server(dribble(iter([reply[i : i + 1] for i in range(len(reply))])))
    dribbled_body = raw_server(
        dribble(iter([head + b"\r\n\r\n", *(body[i : i + 1] for i in range(len(body)))]))
    )
    for server in (dribbled_head, dribbled_body):
        crossbar = Crossbar(server.url(), deadline=0.5)
        with pytest.raises(ConnectError) as failed:
            crossbar.api_auth("k" * 64)
        assert str(failed.value) == f"Crossbar at {server.url()} did not answer within 0.5s"


# -- also seen: a flood of an error message, an endless body ----------------------------------


def test_crossbar_floods_are_bounded_a_long_reason_and_an_endless_body(
    raw_server: Callable[..., RawServer],
) -> None:
    from kazoo_tail.errors import ConnectError
    from kazoo_tail.net.crossbar import MAX_BODY, Crossbar

    reason = "\x1b[31mdisk full " + "and more " * 25_000  # 200 KB, a colour code first
    flood = raw_server(
        lambda conn, request, server: conn.sendall(
            json_reply(500, {"message": "x", "data": {"message": reason}})
        )
    )
    result = run("-b", "call.*.*", "--url", flood.url(), KAZOO_API_KEY="k" * 64)
    assert result.returncode == 4, result.stderr[:500]
    (line,) = result.stderr.splitlines()
    assert "HTTP 500 to /v2/api_auth: [31mdisk full and more" in line
    assert line.endswith("…") and len(line) < 400

    def endless(conn: socket.socket, request: Request, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
        for _ in range(3 * MAX_BODY // (64 * 1024)):  # finite only for the code before the fix
            conn.sendall(chunk)
        conn.sendall(b"0\r\n\r\n")

    server = raw_server(endless)
    with pytest.raises(ConnectError) as failed:
        Crossbar(server.url()).get("websockets")
    assert str(failed.value) == (
        f"Crossbar at {server.url()} sent more than 8 MB in answer to /v2/websockets; "
        "no Kazoo answer is that big (check --url)"
    )


# -- issue 10, second review: a token or a reply nested too deep, values JSON cannot carry,
# -- an answer cut off at the deadline ----------------------------------------------------------

# Far deeper than Python's json parses: it recurses once per level, to about 1000 levels
# before 3.12; 3.12 and later bound it by the C stack instead, which takes thousands more.
TOO_DEEP = 100_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def answering(replies: dict[str, bytes]) -> Handler:
    """Each request answered with the reply of the first route its request line contains."""

    def handler(conn: socket.socket, request: Request, server: RawServer) -> None:
        for route, reply in replies.items():
            if route in request.request_line:
                conn.sendall(reply)
                return

    return handler


def raw_json_reply(status: int, body: str) -> bytes:
    """A reply with a body json.dumps could not have written (too deep, NaN...)."""
    data = body.encode()
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data


def test_a_token_whose_claims_nest_too_deep_is_a_token_without_claims(
    raw_server: Callable[..., RawServer],
) -> None:
    payload = base64.urlsafe_b64encode(nested(TOO_DEEP).encode()).rstrip(b"=").decode()
    token = f"eyJhbGciOiJub25lIn0.{payload}.sig"
    crossbar = raw_server(
        answering(
            {"/v2/api_auth": json_reply(201, {"auth_token": token, "data": GOOD_LOGIN["data"]})}
        )
    )
    blackhole = raw_server(lambda conn, request, server: None)  # hangs up on the upgrade
    api_key = {"KAZOO_API_KEY": "k" * 64}
    result = run("login", "--url", crossbar.url(), **api_key)
    assert result.returncode == 0, result.stderr

    # The next command reads the cached token's expiry, then goes on to the blackhole.
    result = run("-b", "call.*.*", "--ws-url", blackhole.url("ws"), **api_key)
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith(
        f"kazoo-tail: error: cannot connect to blackhole at {blackhole.url('ws')}"
    )

    # The same token given by hand names no account, like any token without claims.
    result = run("-b", "call.*.*", "--ws-url", blackhole.url("ws"), KAZOO_AUTH_TOKEN=token)
    assert result.returncode == 2, result.stderr
    assert "the token does not name its account: pass --account-id" in result.stderr


def test_a_crossbar_reply_nested_too_deep_is_not_crossbar_and_an_error_nested_deep_is_shown(
    raw_server: Callable[..., RawServer],
) -> None:
    deep_data = raw_json_reply(200, f'{{"data":{nested(TOO_DEEP)}}}')
    socket_with_deep_data = (
        f'{{"websocket_session_id":"s1","bindings":["call.*.*"],"d":{nested(TOO_DEEP)}}}'
    )
    crossbar = raw_server(
        answering(
            {
                "/v2/api_auth": raw_json_reply(200, nested(100_000)),
                "/v2/websockets": deep_data,
                "/websockets": raw_json_reply(200, f'{{"data":[{socket_with_deep_data}]}}'),
            }
        )
    )
    url = crossbar.url()
    token = ["--token", "t" * 40, "--account-id", "acc1"]
    for args in (
        ["login", "--url", url],
        ["sockets", "-o", "json", "--url", url, *token],
        ["sockets", "-o", "pretty", "--url", url, *token],
        ["bindings", "--url", url],
    ):
        result = run(*args, KAZOO_API_KEY="k" * 64)
        assert result.returncode == 4, (args, result.stderr)
        assert "does not look like Crossbar: HTTP 200 with application/json" in result.stderr
        assert "RecursionError" not in result.stderr
    result = run("doctor", "--url", url, KAZOO_API_KEY="k" * 64)
    assert result.returncode == 4, result.stderr
    assert "does not look like Crossbar" in result.stdout and "RecursionError" not in result.stdout

    # Deep enough for the parser, too deep for a copy made by recursion: an error's details.
    depth = 700
    details = '{"key":' * depth + '{"value":"k-echoed"}' + "}" * depth
    refusing = raw_server(
        answering(
            {"/v2/api_auth": raw_json_reply(400, f'{{"message":"invalid","data":{details}}}')}
        )
    )
    result = run("login", "--url", refusing.url(), KAZOO_API_KEY="k" * 64)
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.splitlines()
    assert 'Crossbar rejected the login request: invalid: {"key": {"key": ' in line
    assert line.endswith("…") and len(line) < 400


def strict_json(line: str) -> object:
    """What jq would accept: no NaN or Infinity, and text that can be written as UTF-8."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    line.encode("utf-8")  # a lone surrogate cannot be
    return json.loads(line, parse_constant=refuse)


def test_sockets_as_json_are_strict_json_whatever_crossbar_sent(
    raw_server: Callable[..., RawServer],
) -> None:
    item = (
        '{"websocket_session_id":"s1","bindings":["call.*.*"],'
        r'"n":NaN,"i":-Infinity,"big":1e400,"s":"\ud800 \ud83d\ude00 \u00e9"}'
    )
    crossbar = raw_server(
        answering({"/v2/accounts/acc1/websockets": raw_json_reply(200, f'{{"data":[{item}]}}')})
    )
    result = run(
        "sockets",
        "-o",
        "json",
        "--url",
        crossbar.url(),
        "--token",
        "t" * 40,
        "--account-id",
        "acc1",
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert strict_json(line) == {
        "websocket_session_id": "s1",
        "bindings": ["call.*.*"],
        "n": None,
        "i": None,
        "big": None,
        # The lone surrogate spelt out, as the tail's --json does; the valid pair kept.
        "s": "\\ud800 \U0001f600 \u00e9",
    }

    # A page key sent back as Crossbar's next_start_key is strict JSON too.
    first_page = raw_json_reply(200, '{"data":[{"id":"child1"}],"next_start_key":[1e400,"b"]}')
    crossbar = raw_server(
        answering(
            {
                "/descendants?start_key=": json_reply(200, {"data": []}),
                "/descendants": first_page,
            }
        )
    )
    blackhole = raw_server(lambda conn, request, server: None)
    token = ["--token", "t" * 40, "--account-id", "acc1"]
    tail = ["-b", "call.*.*", "--descendants", *token, "--ws-url", blackhole.url("ws")]
    result = run(*tail, "--url", crossbar.url())
    assert result.returncode == 4, result.stderr
    assert [request.request_line.split("?")[-1] for request in crossbar.requests] == [
        "paginate=false HTTP/1.1",
        "start_key=%5Bnull%2C%22b%22%5D HTTP/1.1",
    ]


def test_a_crossbar_cut_off_at_the_deadline_mid_answer_did_not_answer_in_time(
    raw_server: Callable[..., RawServer],
) -> None:
    from kazoo_tail.errors import ConnectError
    from kazoo_tail.net.crossbar import Crossbar

    header_lines = (f"X-Header-{n}: still coming\r\n".encode() for n in range(DRIBBLES))
    body_bytes = (b" " for _ in range(DRIBBLES))
    # Cut off between two header lines, http.client takes the end for the end of the headers;
    # cut off in a body without a length, for the end of the body.
    slow_headers = raw_server(dribble(iter([b"HTTP/1.1 200 OK\r\n", *header_lines])))
    slow_body = raw_server(
        dribble(iter([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{", *body_bytes]))
    )
    for server in (slow_headers, slow_body):
        with pytest.raises(ConnectError) as failed:
            Crossbar(server.url(), deadline=0.5).get("websockets")
        assert str(failed.value) == f"Crossbar at {server.url()} did not answer within 0.5s"
