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
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from kazoo_tail.auth.provider import TokenProvider
from kazoo_tail.errors import ExitCode, UsageError
from kazoo_tail.features.filters import EventFilter
from kazoo_tail.features.record import Recorder
from kazoo_tail.features.summary import Summary
from kazoo_tail.kazoo.catalog import check_binding
from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
from kazoo_tail.net.urls import check_url, default_ws_url
from kazoo_tail.output.terminal import ReaderWatch, StatusWriter

OutputMode = Literal["pretty", "json"]
ColourMode = Literal["auto", "always", "never"]
# How often a running tail checks whether its token needs renewing before it expires.
TOKEN_CHECK_INTERVAL = 30.0


class Renderer(Protocol):
    def render(self, event: Event) -> None: ...
    def flush(self) -> None: ...


@dataclass
class OutputOptions:
    """How events are chosen and shown; shared by live tails and replays."""

    output: OutputMode = "json"
    colour: ColourMode = "auto"
    count: int | None = None
    duration: float | None = None
    dedupe: bool = True
    matches: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    grep: str | None = None
    call_ids: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    calls: bool = False
    summary: bool = False


@dataclass
class TailRequest:
    provider: TokenProvider
    bindings: list[str]
    crossbar_url: str | None = None
    ws_url: str | None = None
    account_ids: list[str] = field(default_factory=list)
    descendants: bool = False
    verify: bool | str = True
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    reconnect: bool = True
    max_reconnect_time: float | None = None
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    record: Path | None = None
    show: OutputOptions = field(default_factory=OutputOptions)


class Pipeline:
    """Filter, render and count events: the part a live tail and a replay have in common."""

    def __init__(self, show: OutputOptions, status: StatusWriter, out: IO[bytes]) -> None:
        if show.count is not None and show.count < 1:
            raise UsageError("--count must be at least 1")
        if show.calls and (show.output != "pretty" or show.fields):
            raise UsageError("--calls draws call timelines in pretty output (-o pretty)")
        self.show = show
        self.status = status
        self.filter = EventFilter.from_options(
            show.matches, show.excludes, show.grep, show.call_ids
        )
        self.filtering = self.filter.active  # decided once, not on every event
        self.renderer = make_renderer(show, out)
        self.summary = Summary() if show.summary else None
        self.printed = 0

    def handle(self, event: Event) -> bool:
        """Show the event if it passes the filters; True once --count is reached."""
        if self.filtering and not self.filter.accepts(event):
            return False
        self.renderer.render(event)
        self.printed += 1
        if self.summary is not None:
            self.summary.count(event)
        return self.show.count is not None and self.printed >= self.show.count

    def notice(self, notice: Notice) -> None:
        if notice.kind in (NoticeKind.CONNECTED, NoticeKind.SUBSCRIBED):
            self.status.info(notice.message)
        else:
            self.status.warning(notice.message)
        if self.summary is not None and notice.kind is NoticeKind.DISCONNECTED:
            self.summary.disconnected()
        if self.summary is not None and notice.gap_seconds is not None:
            self.summary.gap(notice.gap_seconds)

    def flush(self) -> None:
        self.renderer.flush()

    def finish(self) -> None:
        """Always runs, errors included, so that nothing already rendered is lost."""
        try:
            self.renderer.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader left; there is no one to lose anything for
        if self.summary is not None:
            for line in self.summary.lines():
                self.status.report(line)


def run_tail(
    request: TailRequest,
    status: StatusWriter,
    stdout: IO[bytes] | None = None,
) -> ExitCode:
    from kazoo_tail.session.session import BlackholeSession, SessionSettings, Subscription

    if not request.bindings:
        raise UsageError("no binding given: pass at least one --binding, e.g. -b 'call.*.*'")
    for binding in request.bindings:
        check_binding(binding)
    out = stdout if stdout is not None else sys.stdout.buffer
    pipeline = Pipeline(request.show, status, out)

    token = request.provider.current()
    account_ids = request.account_ids or ([token.account_id] if token.account_id else [])
    if not account_ids:
        raise UsageError("the token does not name its account: pass --account-id")
    if request.descendants:
        account_ids = _with_descendants(request.provider, account_ids)
    ws_url = request.ws_url or token.ws_url
    if ws_url is None:
        if request.crossbar_url is None:
            raise UsageError("no blackhole URL: pass --ws-url or --url")
        ws_url = default_ws_url(request.crossbar_url)
    check_url(ws_url, ("ws", "wss"), "the blackhole URL")
    if request.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")
    recorder = Recorder(request.record) if request.record is not None else None

    settings = SessionSettings(
        url=ws_url,
        subscriptions=[Subscription(a, b) for a in account_ids for b in request.bindings],
        sslopt=websocket_sslopt(request.verify),
        ping_interval=request.ping_interval,
        ping_timeout=request.ping_timeout,
        reconnect=request.reconnect,
        max_reconnect_time=request.max_reconnect_time,
        dedupe=request.show.dedupe,
        backoff_initial=request.backoff_initial,
        backoff_cap=request.backoff_cap,
    )
    session = BlackholeSession(settings, request.provider, recorder.frame if recorder else None)
    watch = ReaderWatch(out)
    duration = request.show.duration
    deadline = time.monotonic() + duration if duration is not None else None
    next_token_check = time.monotonic() + TOKEN_CHECK_INTERVAL
    try:
        for item in session.events():
            if isinstance(item, Event):
                if pipeline.handle(item):
                    break
                # A flush per event costs a syscall; when the next frame is already here,
                # the next render's flush will carry this one out just as promptly.
                if not session.data_waiting():
                    pipeline.flush()
            elif isinstance(item, Notice):
                pipeline.notice(item)
            else:
                pipeline.flush()
                if recorder is not None:
                    recorder.flush()
                if watch.reader_gone():
                    return _reader_gone(session)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_token_check:
                next_token_check = now + TOKEN_CHECK_INTERVAL
                request.provider.keep_fresh()
        pipeline.flush()
    except BrokenPipeError:
        return _reader_gone(session)
    finally:
        session.close()
        if recorder is not None:
            recorder.close()
        pipeline.finish()
    return ExitCode.OK


def run_replay(
    path: Path,
    show: OutputOptions,
    status: StatusWriter,
    *,
    realtime: bool = False,
    stdout: IO[bytes] | None = None,
) -> ExitCode:
    """Feed a recording through the same filters and output as a live tail."""
    from kazoo_tail.features.record import read_recording
    from kazoo_tail.kazoo.events import Deduplicator
    from kazoo_tail.kazoo.wire import BadFrame, parse_frame
    from kazoo_tail.net.frames import OP_TEXT

    out = stdout if stdout is not None else sys.stdout.buffer
    pipeline = Pipeline(show, status, out)
    dedupe = Deduplicator() if show.dedupe else None
    first_at: float | None = None
    started = time.monotonic()
    bad = 0
    try:
        for received_at, opcode, payload in read_recording(path):
            if realtime:
                first_at = received_at if first_at is None else first_at
                delay = (received_at - first_at) - (time.monotonic() - started)
                if delay > 0:
                    pipeline.flush()
                    time.sleep(delay)
            if opcode != OP_TEXT:
                bad += 1
                continue
            try:
                item = parse_frame(payload, received_at)
            except BadFrame:
                bad += 1
                continue
            if not isinstance(item, Event) or (dedupe and dedupe.is_duplicate(item)):
                continue
            if pipeline.handle(item):
                break
        pipeline.flush()
    except BrokenPipeError:
        return _reader_gone(None)
    finally:
        pipeline.finish()
    if bad:
        status.warning(f"skipped {bad} frame{'s' if bad != 1 else ''} that were not events")
    return ExitCode.OK


def make_renderer(show: OutputOptions, out: IO[bytes]) -> Renderer:
    if show.fields:
        from kazoo_tail.output.jsonl import FieldsJsonRenderer, FieldsTsvRenderer

        if show.output == "json":
            return FieldsJsonRenderer(out, show.fields)
        return FieldsTsvRenderer(out, show.fields)
    if show.output == "json":
        from kazoo_tail.output.jsonl import JsonLinesRenderer

        return JsonLinesRenderer(out)
    from rich.console import Console

    from kazoo_tail.output.pretty import PrettyRenderer, TimelineRenderer

    options: dict[str, Any] = {}
    if show.colour == "always":
        options.update(force_terminal=True, no_color=False)
    elif show.colour == "never":
        options.update(color_system=None, no_color=True)
    text_out: IO[str] = sys.stdout
    if out is not sys.stdout.buffer:
        text_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    console = Console(
        file=text_out, highlight=False, markup=False, emoji=False, soft_wrap=True, **options
    )
    pretty = PrettyRenderer(console)
    return TimelineRenderer(pretty) if show.calls else pretty


def _with_descendants(provider: TokenProvider, account_ids: list[str]) -> list[str]:
    """Every descendant of the selected accounts, on the same socket (GET .../descendants)."""
    token = provider.current().token
    crossbar = provider.crossbar()
    found = list(account_ids)
    for account_id in account_ids:
        children = crossbar.get(f"accounts/{account_id}/descendants", token=token)
        for child in children if isinstance(children, list) else []:
            child_id = child.get("id") if isinstance(child, dict) else None
            if isinstance(child_id, str) and child_id not in found:
                found.append(child_id)
    return found


def websocket_sslopt(verify: bool | str) -> dict[str, Any]:
    """The same trust for the websocket as requests uses for Crossbar."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if isinstance(verify, str):
        return {"ca_certs": verify}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return {"ca_certs": bundle} if bundle else {}


def _reader_gone(session: Any) -> ExitCode:
    """The reader of stdout left (``| head``): end quietly, and keep Python's exit-time flush
    of the dead pipe from printing an error."""
    if session is not None:
        session.close()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return ExitCode.OK
