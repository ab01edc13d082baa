"""Filter, render and count events: the part a live tail and a replay have in common."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from kazoo_tail.errors import UsageError, raise_stdout_failure
from kazoo_tail.features.filters import EventFilter, UnseenPathAdvice
from kazoo_tail.features.summary import Summary
from kazoo_tail.kazoo.events import Event, Notice, NoticeKind
from kazoo_tail.output.notices import describe
from kazoo_tail.output.registry import FORMATS, ColourMode, RenderOptions, make_renderer
from kazoo_tail.output.terminal import StatusWriter


@dataclass
class OutputOptions:
    """How events are chosen and shown; shared by live tails and replays."""

    output: str = "json"  # a name in output.registry.FORMATS
    colour: ColourMode = "auto"
    count: int | None = None
    duration: float | None = None
    matches: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    grep: str | None = None
    call_ids: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    calls: bool = False
    summary: bool = False
    # JSON: name the node that delivered each event (links to several nodes).
    show_node: bool = False
    # JSON: add when each event was received (a replay: when it was recorded).
    received_at: bool = False
    # Live tails only: the buffer between the websocket and stdout (output/spool.py); the
    # defaults of --buffer-size and --spill-size.
    buffer_size: int = 8 << 20
    spill_size: int = 1 << 30


def check_show(show: OutputOptions) -> None:
    """The usage errors of these output options, raised before anything is started (a demo
    server, a connection), and with advice that works where it is given."""
    if show.output not in FORMATS:
        raise UsageError(f"unknown output {show.output!r}: choose {', '.join(FORMATS)}")
    if show.count is not None and show.count < 1:
        raise UsageError("--count must be at least 1")
    if show.calls and show.fields:
        raise UsageError("--calls draws whole call timelines and does not go with --fields")
    if show.calls and show.output != "pretty":
        raise UsageError("--calls draws call timelines in pretty output: add -o pretty")
    EventFilter.from_options(show.matches, show.excludes, show.grep, show.call_ids)


class Pipeline:
    def __init__(
        self,
        show: OutputOptions,
        status: StatusWriter,
        out: IO[bytes],
        text_out: IO[str],
        *,
        commit: Callable[[], None] | None = None,
    ) -> None:
        """``commit``, when given, is called after each event is rendered: the bytes written
        since are one whole event (see output/spool.py)."""
        check_show(show)
        self.show = show
        self.status = status
        self.filter = EventFilter.from_options(
            show.matches, show.excludes, show.grep, show.call_ids
        )
        self.filtering = self.filter.active  # decided once, not on every event
        advice = UnseenPathAdvice.for_options(show.matches, show.excludes, show.fields)
        self.path_advice: UnseenPathAdvice | None = None if advice.done else advice
        options = RenderOptions(
            colour=show.colour,
            fields=show.fields,
            calls=show.calls,
            show_node=show.show_node,
            received_at=show.received_at,
        )
        self.renderer = make_renderer(show.output, out, text_out, options)
        self.summary = Summary() if show.summary else None
        self.printed = 0
        self.commit = commit

    def handle(self, event: Event) -> bool:
        """Show the event if it passes the filters; True once --count is reached."""
        if self.path_advice is not None:
            self._advise_on_paths(event)
        if self.filtering and not self.filter.accepts(event):
            return False
        try:
            self.renderer.render(event)
        except OSError as exc:  # a replay writes straight to stdout
            raise_stdout_failure(exc)
        if self.commit is not None:
            self.commit()
        self.printed += 1
        if self.summary is not None:
            self.summary.count(event)
        return self.show.count is not None and self.printed >= self.show.count

    def _advise_on_paths(self, event: Event) -> None:
        assert self.path_advice is not None
        for advice in self.path_advice.observe(event.envelope):
            self.status.warning(advice)
        if self.path_advice.done:
            self.path_advice = None  # the check costs nothing from then on

    def notice(self, notice: Notice) -> None:
        report_notice(notice, self.status, self.summary)

    def flush(self) -> None:
        try:
            self.renderer.flush()
        except OSError as exc:
            raise_stdout_failure(exc)

    def finish(self) -> None:
        """Always runs, errors included, so that nothing already rendered is lost."""
        try:
            self.renderer.flush()
        except (OSError, ValueError):
            pass  # the reader left, or the error that ended the run is being reported
        if self.summary is not None:
            for line in self.summary.lines():
                self.status.report(line)


def report_notice(notice: Notice, status: StatusWriter, summary: Summary | None) -> None:
    """A notice of the session (a gap, a reconnect...) on stderr, and in --summary."""
    if notice.is_warning:
        status.warning(describe(notice))
    else:
        status.info(describe(notice))
    if summary is None:
        return
    summary.link_notice(notice)
    # With links to several nodes, only a loss that leaves none subscribed opens a gap.
    if notice.kind is NoticeKind.DISCONNECTED and notice.cluster_down:
        summary.disconnected()
    if notice.gap_seconds is not None:
        summary.gap(notice.gap_seconds)
