"""The tail program: resolve where to connect, run a blackhole session, render what it yields.

Usable without click: build a ``TailRequest`` and call ``run_tail``. It raises
``KazooTailError`` subclasses for the CLI boundary to report and returns the exit code of a
normal ending (count or duration reached, or the reader of stdout went away).
"""

from __future__ import annotations

import io
import os
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

from kazoo_tail.auth import TokenProvider
from kazoo_tail.errors import ExitCode, UsageError
from kazoo_tail.events import Event, Notice, NoticeKind
from kazoo_tail.protocol import check_binding, default_ws_url
from kazoo_tail.terminal import ReaderWatch, StatusWriter

OutputMode = Literal["pretty", "json"]
ColourMode = Literal["auto", "always", "never"]
# How often a running tail checks whether its token needs renewing before it expires.
TOKEN_CHECK_INTERVAL = 30.0


class Renderer(Protocol):
    def render(self, event: Event) -> None: ...
    def flush(self) -> None: ...


@dataclass
class TailRequest:
    provider: TokenProvider
    bindings: list[str]
    crossbar_url: str | None = None
    ws_url: str | None = None
    account_ids: list[str] = field(default_factory=list)
    output: OutputMode = "json"
    colour: ColourMode = "auto"
    count: int | None = None
    duration: float | None = None
    verify: bool | str = True
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    reconnect: bool = True
    max_reconnect_time: float | None = None
    dedupe: bool = True
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0


def run_tail(
    request: TailRequest,
    status: StatusWriter,
    stdout: IO[bytes] | None = None,
) -> ExitCode:
    from kazoo_tail.blackhole import BlackholeSession, SessionSettings, Subscription

    if not request.bindings:
        raise UsageError("no binding given: pass at least one --binding, e.g. -b 'call.*.*'")
    for binding in request.bindings:
        check_binding(binding)
    if request.count is not None and request.count < 1:
        raise UsageError("--count must be at least 1")
    out = stdout if stdout is not None else sys.stdout.buffer

    token = request.provider.current()
    account_ids = request.account_ids or ([token.account_id] if token.account_id else [])
    if not account_ids:
        raise UsageError("the token does not name its account: pass --account-id")
    ws_url = request.ws_url or token.ws_url
    if ws_url is None:
        if request.crossbar_url is None:
            raise UsageError("no blackhole URL: pass --ws-url or --url")
        ws_url = default_ws_url(request.crossbar_url)
    if request.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")

    settings = SessionSettings(
        url=ws_url,
        subscriptions=[Subscription(a, b) for a in account_ids for b in request.bindings],
        sslopt=websocket_sslopt(request.verify),
        ping_interval=request.ping_interval,
        ping_timeout=request.ping_timeout,
        reconnect=request.reconnect,
        max_reconnect_time=request.max_reconnect_time,
        dedupe=request.dedupe,
        backoff_initial=request.backoff_initial,
        backoff_cap=request.backoff_cap,
    )
    session = BlackholeSession(settings, request.provider)
    renderer = make_renderer(request.output, request.colour, out)
    watch = ReaderWatch(out)
    deadline = time.monotonic() + request.duration if request.duration is not None else None
    next_token_check = time.monotonic() + TOKEN_CHECK_INTERVAL
    printed = 0
    try:
        for item in session.events():
            if isinstance(item, Event):
                renderer.render(item)
                printed += 1
                if request.count is not None and printed >= request.count:
                    break
                # A flush per event costs a syscall; when the next frame is already here,
                # the next render's flush will carry this one out just as promptly.
                if not session.data_waiting():
                    renderer.flush()
            elif isinstance(item, Notice):
                _report(status, item)
            else:
                renderer.flush()
                if watch.reader_gone():
                    return _reader_gone(session)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_token_check:
                next_token_check = now + TOKEN_CHECK_INTERVAL
                request.provider.keep_fresh()
        renderer.flush()
    except BrokenPipeError:
        return _reader_gone(session)
    finally:
        session.close()
    return ExitCode.OK


def make_renderer(output: OutputMode, colour: ColourMode, out: IO[bytes]) -> Renderer:
    if output == "json":
        from kazoo_tail.render import JsonLinesRenderer

        return JsonLinesRenderer(out)
    from rich.console import Console

    from kazoo_tail.render import PrettyRenderer

    options: dict[str, Any] = {}
    if colour == "always":
        options.update(force_terminal=True, no_color=False)
    elif colour == "never":
        options.update(color_system=None, no_color=True)
    text_out: IO[str] = sys.stdout
    if out is not sys.stdout.buffer:
        text_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    console = Console(
        file=text_out, highlight=False, markup=False, emoji=False, soft_wrap=True, **options
    )
    return PrettyRenderer(console)


def websocket_sslopt(verify: bool | str) -> dict[str, Any]:
    """The same trust for the websocket as requests uses for Crossbar."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if isinstance(verify, str):
        return {"ca_certs": verify}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return {"ca_certs": bundle} if bundle else {}


def _report(status: StatusWriter, notice: Notice) -> None:
    if notice.kind in (NoticeKind.CONNECTED, NoticeKind.SUBSCRIBED):
        status.info(notice.message)
    else:
        status.warning(notice.message)


def _reader_gone(session: Any) -> ExitCode:
    """The reader of stdout left (``| head``): end quietly, and keep Python's exit-time flush
    of the dead pipe from printing an error."""
    session.close()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return ExitCode.OK
