"""The forward program: each event that passes the filters becomes the request Kazoo's
webhooks app would send for it (kazoo/webhooks.py), delivered to the user's endpoint.

Deliveries run on the Forwarder's own threads (features/forwarding.py): the thread reading
the websocket only queues them, so a slow or dead endpoint never stops the socket being
drained. Their outcomes come back here and are printed, one line each, from this thread.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from kazoo_tail import __version__
from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions, check_show, report_notice
from kazoo_tail.app.tail import check_bindings, connect_parts, deliver_stdout, reader_gone
from kazoo_tail.errors import ExitCode, KazooTailError, OutputError, UsageError, register_secret
from kazoo_tail.features.filters import EventFilter, UnseenPathAdvice
from kazoo_tail.features.forwarding import Delivery, Forwarder, Job
from kazoo_tail.features.record import Recorder
from kazoo_tail.features.summary import Summary
from kazoo_tail.kazoo import webhook_rules as rules
from kazoo_tail.kazoo import webhooks
from kazoo_tail.kazoo.events import Event, Notice
from kazoo_tail.net.hook_http import Attempt, HookSender
from kazoo_tail.net.urls import check_url, shown_url
from kazoo_tail.output.deliveries import (
    DELIVERED,
    DROPPED,
    FAILED,
    RETRYING,
    UNSENT,
    DeliveryLines,
    HookLabel,
    Report,
    make_delivery_lines,
)
from kazoo_tail.output.spool import StdoutSpool
from kazoo_tail.output.terminal import ReaderWatch, StatusWriter
from kazoo_tail.session.resolve import ConnectionConfig, session_for

if TYPE_CHECKING:
    from kazoo_tail.auth.provider import TokenProvider
    from kazoo_tail.session.session import Session


@dataclass
class ForwardSettings:
    """Where and how events are forwarded: forward's own options."""

    to: str
    hook: webhooks.HookOptions = field(default_factory=webhooks.HookOptions)
    retries: int = rules.DEFAULT_RETRIES
    concurrency: int = 1
    # The queue waiting for the endpoint, in bytes of requests (--queue-size).
    queue_size: int = 8 << 20
    print_body: bool = False

    @property
    def attempts(self) -> int:
        return rules.attempts(self.retries)

    @property
    def shown_to(self) -> str:
        """--to as it may be shown: no user:password, no query values."""
        return shown_url(self.to, hide_query_values=True)


# --concurrency's bound: one thread each; more than a developer's endpoint wants.
MAX_CONCURRENCY = 64
# --queue-size's floor: room for the largest requests a call event makes, several times over.
MIN_QUEUE_SIZE = 64 << 10


def check_forward(settings: ForwardSettings) -> None:
    """The usage errors of forward's own options, raised before anything is started."""
    check_url(settings.to, ("http", "https"), "--to", endpoint=True)
    register_secret(urlsplit(settings.to).password)  # a user:password in --to is never shown
    if not rules.MIN_RETRIES <= settings.retries <= rules.MAX_RETRIES:
        raise UsageError(
            f"--retries must be {rules.MIN_RETRIES} to {rules.MAX_RETRIES}, as a webhook's may be"
        )
    if not 1 <= settings.concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be 1 to {MAX_CONCURRENCY}")
    if settings.queue_size < MIN_QUEUE_SIZE:
        raise UsageError(f"--queue-size must be at least {MIN_QUEUE_SIZE >> 10}K")
    hook = settings.hook
    if hook.format == "event" and (hook.custom_data or not hook.include_internal_legs):
        raise UsageError(
            "--format event sends every event as received: --custom-data and "
            "--exclude-internal-legs apply to Kazoo's payloads (json or form-data)"
        )
    if any(char in hook.hook_id for char in "\r\n\0") or hook.hook_id != hook.hook_id.strip():
        raise UsageError("--hook-id is a header's value: no line breaks or outer spaces")


@dataclass(frozen=True)
class Outbound:
    """One request as the endpoint gets it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Forwarding:
    """Events in, requests queued; outcomes back, printed from the caller's thread."""

    def __init__(
        self,
        settings: ForwardSettings,
        account_ids: list[str],
        lines: DeliveryLines,
        status: StatusWriter,
        *,
        verify: bool | str,
        recorder: Recorder | None = None,
        summary: Summary | None = None,
    ) -> None:
        self.settings = settings
        self.account_ids = account_ids
        self.lines = lines
        self.status = status
        self.recorder = recorder
        self.summary = summary
        self.sender = HookSender(
            verify=verify,
            connect_timeout=rules.CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            user_agent=f"kazoo-tail/{__version__}",
        )
        method = settings.hook.method
        self.forwarder = Forwarder(
            self._send,
            retries=settings.attempts,
            pause=rules.RETRY_PAUSE,
            concurrency=settings.concurrency,
            max_bytes=settings.queue_size,
            success=lambda attempt: (
                attempt.error is None
                and attempt.status is not None
                and webhooks.success(method, attempt.status)
            ),
            # An answer awaited in vain is not asked for again: the endpoint may have the
            # request (Kazoo waits for ever, and so never sends one twice).
            retry=lambda attempt: webhooks.retried(attempt.status) and not attempt.unanswered,
            on_attempt=self._attempted,
            on_done=self._done,
        )
        # Lines to print, from the forwarder's threads (a deque: appends are thread-safe).
        self._reports: collections.deque[Report] = collections.deque()
        self.skipped: collections.Counter[str] = collections.Counter()
        self._told: set[tuple[str, str]] = set()
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.offered = 0  # events queued or dropped
        self.retried = 0  # events tried more than once
        self._dropping = False

    # -- the websocket's thread ----------------------------------------------------------------

    def offer(self, event: Event) -> bool:
        """Queue the event's request; False if it has no request to send (skipped)."""
        built = webhooks.build_request(event, self.settings.hook)
        if isinstance(built, webhooks.Skip):
            self._skip(event, built)
            return False
        data = event.data
        # Only what is sent is kept (the parsed payload goes now): the bound counts it.
        label = HookLabel(
            hook_event=built.hook_event,
            event_id=_text(data.get("msg_id")),
            subject_key="call_id" if event.kind == "call" else "id",
            subject=_text(data.get("call_id") if event.kind == "call" else data.get("id")) or "",
            method=built.method,
            query=built.query,
            body=built.body,
        )
        outbound = Outbound(
            method=built.method,
            url=webhooks.url_with_query(self.settings.to, built.query)
            if built.query
            else self.settings.to,
            headers=self._headers(built),
            body=built.body,
        )
        key = label.subject or (event.name or "")
        # The body is held once (label and request share it); the URL, the query and the
        # rest of both (headers, ids, bookkeeping) are counted too.
        size = len(outbound.body) + 2 * len(outbound.url) + JOB_OVERHEAD
        self.offered += 1
        if self.forwarder.submit(key, size, outbound, label):
            if self._dropping and self.forwarder.queued_bytes < self.settings.queue_size // 2:
                self._dropping = False  # drained: the next overflow is told again
        elif not self._dropping:
            self._dropping = True
            self.status.warning(
                "the endpoint is not keeping up: the queue waiting for it is full "
                f"(--queue-size {self.settings.queue_size >> 10} KiB); events are dropped, "
                "each one reported, until it drains"
            )
        return True

    def _headers(self, built: webhooks.HookRequest) -> dict[str, str]:
        """The request's headers. X-Account-ID names the hook's account: the event's when it
        is one of the accounts tailed, else the first (a hook on a parent account that
        includes its descendants)."""
        headers = dict(built.headers)
        account = headers.get("X-Account-ID")
        if self.account_ids and account not in self.account_ids:
            headers["X-Account-ID"] = self.account_ids[0]
        return headers

    def _skip(self, event: Event, skip: webhooks.Skip) -> None:
        name = event.name or "?"
        self.skipped[name] += 1
        if (name, skip.reason) not in self._told:
            self._told.add((name, skip.reason))
            self.status.info(f"{name}: {skip.reason}; not forwarded")

    # -- the forwarder's threads ---------------------------------------------------------------

    def _send(self, job: Job) -> Attempt:
        outbound: Outbound = job.request
        return self.sender.send(outbound.method, outbound.url, outbound.headers, outbound.body)

    def _attempted(self, delivery: Delivery, attempt: Attempt, will_retry: bool) -> None:
        if will_retry:
            number = len(delivery.attempts)
            self._reports.append(Report(delivery, RETRYING, attempt, number, time.time()))

    def _done(self, delivery: Delivery) -> None:
        attempts = delivery.attempts
        last = attempts[-1] if attempts else None
        self._reports.append(Report(delivery, delivery.outcome, last, len(attempts), time.time()))

    # -- back on the websocket's thread --------------------------------------------------------

    def show_results(self) -> None:
        """Print the lines that came back since last asked."""
        reports = self._reports
        while reports:
            report = reports.popleft()
            self.lines.show(report)
            if report.outcome == RETRYING:
                continue
            self.outcomes[report.outcome] += 1
            self.retried += report.number > 1
            if report.outcome != DELIVERED and self.recorder is not None:
                self._record(report.delivery)

    def _record(self, delivery: Delivery) -> None:
        assert self.recorder is not None
        label: HookLabel = delivery.job.label
        last = delivery.attempts[-1] if delivery.attempts else None
        details: dict[str, Any] = {
            "outcome": delivery.outcome,
            "hook_event": label.hook_event,
            "event_id": label.event_id,
            label.subject_key: label.subject,
            "attempts": len(delivery.attempts),
        }
        if last is not None:
            details.update(status=last.status, error=last.error)
        self.recorder.note("undelivered", details, time.time())

    def finish(self, give_up: Callable[[], bool]) -> None:
        """Wait until every queued request is delivered or failed, printing outcomes as they
        come; ``give_up`` is asked between waits (the reader of stdout went away)."""
        self.show_results()
        waiting = self.offered - sum(self.outcomes.values())
        if waiting:
            self.status.info(
                f"waiting for {waiting} queued deliver{'ies' if waiting != 1 else 'y'} "
                "(Ctrl-C stops: what is not sent is reported)"
            )
        while not self.forwarder.finish(timeout=0.25):
            self.show_results()
            self.lines.flush()
            if give_up():
                self.abandon()
                return
        self.show_results()

    def abandon(self) -> None:
        """Stop now: what is still queued is reported as not sent."""
        self.forwarder.abandon()
        self.show_results()

    def close(self) -> None:
        self.sender.close()

    def summary_lines(self) -> list[str]:
        counts = self.outcomes
        skipped = sum(self.skipped.values())
        line = (
            f"forwarded: {counts[DELIVERED]} delivered, {self.retried} retried, "
            f"{counts[FAILED]} failed, {skipped} skipped"
        )
        if counts[DROPPED] or counts[UNSENT]:
            line += f", {counts[DROPPED]} dropped (queue full), {counts[UNSENT]} not sent"
        queue = (
            f"  queue: at most {self.forwarder.high_water_bytes >> 10} KiB of "
            f"{self.settings.queue_size >> 10} KiB waiting for the endpoint"
        )
        return [line, queue]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def run_forward(
    config: ConnectionConfig,
    provider: TokenProvider,
    show: OutputOptions,
    settings: ForwardSettings,
    env: Environment,
    status: StatusWriter,
    *,
    record: Path | None = None,
) -> ExitCode:
    check_bindings(config)
    check_show(show)
    check_forward(settings)
    event_filter = EventFilter.from_options(show.matches, show.excludes, show.grep, show.call_ids)
    spool = StdoutSpool(
        env.stdout, memory=show.buffer_size, spill=show.spill_size, warn=status.warning
    )
    try:
        encoding, errors = env.stdout_encoding()
        lines = make_delivery_lines(
            show.output,
            cast(IO[bytes], spool),
            spool.text(encoding, errors),
            colour=show.colour,
            print_body=settings.print_body,
            attempts_allowed=settings.attempts,
            pause=rules.RETRY_PAUSE,
            commit=spool.commit,
        )
        target, recorder = connect_parts(config, provider, status, record)
    except BaseException:
        spool.abandon()
        raise
    summary = Summary() if show.summary else None
    forwarding = Forwarding(
        settings,
        target.account_ids,
        lines,
        status,
        verify=config.verify,
        recorder=recorder,
        summary=summary,
    )
    hook = settings.hook
    status.info(
        f"forwarding to {settings.shown_to}: {hook.method.upper()} {hook.format}, "
        f"up to {settings.attempts} attempt{'s' if settings.attempts != 1 else ''} each"
    )
    session = session_for(config, target, provider, on_frame=recorder.frame if recorder else None)
    watch = ReaderWatch(env.stdout)
    left = False
    finished = False
    try:
        try:
            ending = _follow(session, forwarding, event_filter, show, status, summary, watch)
            session.close()  # nothing more is read
            left = ending is Ending.READER_GONE
            if ending is Ending.DURATION or left:
                # The time asked for is up, or nobody reads the lines: what is queued is not
                # sent, and counted (--summary) and noted (--record) as such.
                forwarding.abandon()
            else:
                forwarding.finish(watch.reader_gone)  # --count, or the stream's end
                left = watch.reader_gone()
            finished = True
        finally:
            session.close()
            if not finished:
                forwarding.abandon()  # Ctrl-C, SIGTERM or an error: stop now
                _show_briefly(forwarding.lines, spool)
            forwarding.close()
            if recorder is not None:
                recorder.close()
    except KazooTailError as exc:
        if not isinstance(exc, OutputError):
            try:
                deliver_stdout(lines, spool)
            except OutputError:
                pass  # the error that ended the run is the one to report
        raise
    else:
        left = left or deliver_stdout(lines, spool)
    finally:
        spool.abandon()
        spool.finish()
        if summary is not None:
            for line in [*summary.lines(), *forwarding.summary_lines()]:
                status.report(line)
    return reader_gone(env) if left else ExitCode.OK


# How long, at most, an interrupted forward waits for stdout to take the lines of what was not
# sent: Ctrl-C ends it at once, but a reader still reading should learn what was lost.
INTERRUPTED_OUTPUT_WAIT = 1.0


def _show_briefly(lines: DeliveryLines, spool: StdoutSpool) -> None:
    try:
        lines.flush()
        spool.drain(timeout=INTERRUPTED_OUTPUT_WAIT)
    except (OSError, KazooTailError):
        pass  # the reason the run is ending is the one to report


# What a queued request holds beside its body and URL: headers, ids, the job's bookkeeping.
JOB_OVERHEAD = 1024

# How long an answer may take. Kazoo 4.3 waits for ever (docs/webhooks.md); a forward waits
# as long as Kazoo waits to connect, so that one silent endpoint cannot hold the queue for ever.
READ_TIMEOUT = rules.CONNECT_TIMEOUT


class Ending(enum.Enum):
    """Why the events stopped being read: what is queued is delivered after a --count or
    the stream's end, not after --duration (a time is up) or the reader of stdout leaving."""

    COUNT = "count"
    DURATION = "duration"
    STREAM = "stream"
    READER_GONE = "reader gone"


def _follow(
    session: Session,
    forwarding: Forwarding,
    event_filter: EventFilter,
    show: OutputOptions,
    status: StatusWriter,
    summary: Summary | None,
    watch: ReaderWatch,
) -> Ending:
    """Queue what the session yields until --count or --duration, or the session's end."""
    deadline = time.monotonic() + show.duration if show.duration is not None else None
    filtering = event_filter.active
    paths = UnseenPathAdvice.for_options(show.matches, show.excludes, [])
    advice = None if paths.done else paths
    forwarded = 0
    try:
        for item in session.events():
            if isinstance(item, Event):
                if advice is not None:
                    for line in advice.observe(item.envelope):
                        status.warning(line)
                    if advice.done:
                        advice = None
                if not filtering or event_filter.accepts(item):
                    if summary is not None:
                        summary.count(item)
                    if forwarding.offer(item):
                        forwarded += 1
                        if show.count is not None and forwarded >= show.count:
                            return _shown(forwarding, Ending.COUNT)
                forwarding.show_results()
                # As the tail does: when the next frame is already here, the next line's
                # flush hands this one over just as promptly.
                if not session.data_waiting():
                    forwarding.lines.flush()
            else:
                if isinstance(item, Notice):
                    report_notice(item, status, summary)
                forwarding.show_results()
                forwarding.lines.flush()
                if watch.reader_gone():
                    return Ending.READER_GONE
            if deadline is not None and time.monotonic() >= deadline:
                return _shown(forwarding, Ending.DURATION)
        return _shown(forwarding, Ending.STREAM)
    except BrokenPipeError:
        return Ending.READER_GONE


def _shown(forwarding: Forwarding, ending: Ending) -> Ending:
    forwarding.show_results()
    forwarding.lines.flush()
    return ending
