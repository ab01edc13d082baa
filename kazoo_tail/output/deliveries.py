"""What ``forward`` prints on stdout: one line per delivery, as ``stripe listen`` shows them.

A line for each attempt that will be tried again, and one for each event's outcome:
delivered, failed (an answer other than success, or every attempt failed), dropped (the queue
waiting for the endpoint was full) or unsent (the tool stopped first). Pretty on a terminal,
JSON lines for programs. Everything taken from an event is untrusted and escaped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol

from kazoo_tail.kazoo import fast_json
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.output.jsonl import escape_json_text
from kazoo_tail.output.terminal import sanitize

if TYPE_CHECKING:
    from kazoo_tail.features.forwarding import Delivery
    from kazoo_tail.net.hook_http import Attempt
    from kazoo_tail.output.registry import ColourMode

# The outcome of each event, by Forwarder's name, as a line shows it.
DELIVERED, FAILED, DROPPED, UNSENT = "delivered", "failed", "dropped", "unsent"
RETRYING = "retrying"  # an attempt that will be tried again: not an outcome yet


class HookLabel(NamedTuple):
    """What a delivery line says of its event, worked out once when it is queued."""

    hook_event: str  # channel_create, object... (the event's name under --format event)
    event_id: str | None  # the event's msg_id: what a failure is reported and recorded with
    subject_key: str  # "call_id" or "id": what the subject is
    subject: str  # the call's or the document's id
    # What is sent, for --print-body: the query string of a GET, else the body.
    method: str
    query: str
    body: bytes


class Report(NamedTuple):
    """One line to print: an attempt to be tried again (``outcome`` RETRYING), or an
    event's outcome."""

    delivery: Delivery
    outcome: str
    attempt: Attempt | None  # the attempt the line is about (the last one for an outcome)
    number: int  # that attempt's number, from 1 (0: none was made)
    at: float  # when it was known (unix time)

    @property
    def label(self) -> HookLabel:
        label: HookLabel = self.delivery.job.label
        return label


class DeliveryLines(Protocol):
    def show(self, report: Report) -> None: ...

    def flush(self) -> None: ...


def make_delivery_lines(
    output: str,
    out: IO[bytes],
    text_out: IO[str],
    *,
    colour: ColourMode,
    print_body: bool,
    attempts_allowed: int,
    pause: float,
    commit: Callable[[], None] | None = None,
) -> DeliveryLines:
    """``commit`` is called after each line (see output/spool.py)."""
    if output == "json":
        return JsonDeliveryLines(out, print_body, attempts_allowed, pause, commit)
    return PrettyDeliveryLines(text_out, colour, print_body, attempts_allowed, pause, commit)


def body_text(label: HookLabel) -> str:
    """What was sent, as text: the query string of a GET, else the body."""
    if label.method == "GET":
        return label.query
    return label.body.decode("utf-8", "replace")


class JsonDeliveryLines:
    def __init__(
        self,
        out: IO[bytes],
        print_body: bool,
        attempts_allowed: int,
        pause: float,
        commit: Callable[[], None] | None,
    ) -> None:
        self.out = out
        self.print_body = print_body
        self.attempts_allowed = attempts_allowed
        self.pause = pause
        self.commit = commit

    def show(self, report: Report) -> None:
        label = report.label
        entry: dict[str, Any] = {
            "time": utc_stamp(report.at),
            "outcome": report.outcome,
            "hook_event": label.hook_event,
            "event_id": label.event_id,
            label.subject_key: label.subject,
        }
        attempt = report.attempt
        if attempt is not None:
            entry.update(
                status=attempt.status,
                seconds=round(attempt.seconds, 3),
                attempt=report.number,
                attempts_allowed=self.attempts_allowed,
            )
            if attempt.error is not None:
                entry["error"] = attempt.error
        if report.outcome == RETRYING:
            entry["retry_in"] = self.pause
        elif self.print_body and report.number:
            entry["sent"] = {"method": label.method, "body": body_text(label)}
        # In printable ASCII, as the tail's JSON lines: ids and errors come from outside.
        self.out.write(escape_json_text(fast_json.dumps(entry).decode()).encode() + b"\n")
        if self.commit is not None:
            self.commit()

    def flush(self) -> None:
        self.out.flush()


_STYLES = {
    DELIVERED: "green",
    RETRYING: "yellow",
    FAILED: "bold red",
    DROPPED: "bold red",
    UNSENT: "yellow",
}
_CLOCK = 12  # HH:MM:SS.mmm
_HOOK = 15  # channel_destroy
_ANSWER = 12  # "200  1234 ms"
_SUBJECT = 32  # a Kazoo document id; call ids vary, longer ones are cut in the middle
_SUBJECT_AT_LEAST = 12
_GAP = "  "


class PrettyDeliveryLines:
    """``06:30:01.123  channel_create   3f2a9c1d...  200  12 ms``; a retry or a failure says
    what went wrong, which attempt it was, and the event's id. The call or document id is
    whole wherever the terminal has room (into a pipe, always)."""

    def __init__(
        self,
        text_out: IO[str],
        colour: ColourMode,
        print_body: bool,
        attempts_allowed: int,
        pause: float,
        commit: Callable[[], None] | None,
    ) -> None:
        from kazoo_tail.output.console import console_for, fitting_width
        from kazoo_tail.output.pretty import Painter, elide_middle, pad

        console = console_for(text_out, colour)
        self.out = text_out
        self.paint = Painter(console).paint
        self.elide_middle = elide_middle
        self.pad = pad
        width = fitting_width(text_out, console)
        # What is left of the line for the id once the other columns have theirs.
        room = None if width is None else width - _CLOCK - _HOOK - _ANSWER - 3 * len(_GAP)
        self.subject_width = None if room is None else max(_SUBJECT_AT_LEAST, room)
        self.print_body = print_body
        self.attempts_allowed = attempts_allowed
        self.pause = pause
        self.commit = commit

    def _write(self, text: str) -> None:
        self.out.write(text)
        if self.commit is not None:
            self.commit()

    def show(self, report: Report) -> None:
        label, outcome, attempt, number = (
            report.label,
            report.outcome,
            report.attempt,
            report.number,
        )
        clock = time.strftime("%H:%M:%S", time.localtime(report.at))
        clock += f".{int(report.at * 1000) % 1000:03d}"
        subject = sanitize(label.subject)
        if self.subject_width is not None:
            subject = self.elide_middle(subject, self.subject_width)
        pieces = [
            self.paint(clock, "dim"),
            self.pad(sanitize(label.hook_event), _HOOK),
            self.pad(subject, min(_SUBJECT, self.subject_width or _SUBJECT)),
        ]
        if attempt is not None and attempt.status is not None:
            status = self.paint(str(attempt.status), _STYLES[outcome])
            pieces.append(f"{status}  {_milliseconds(attempt.seconds)}")
            if attempt.error is not None:  # an answer not taken: a redirect not followed
                pieces.append(self.paint(sanitize(attempt.error), _STYLES[outcome]))
        elif attempt is not None:
            pieces.append(self.paint(sanitize(attempt.error or "no answer"), _STYLES[outcome]))
        if outcome == RETRYING:
            again = f"attempt {number} of {self.attempts_allowed}, again in {self.pause:g} s"
            pieces.append(self.paint(again, "yellow"))
        elif outcome == FAILED:
            why = f"FAILED after {number} attempts" if number > 1 else "FAILED"
            pieces.append(self.paint(why, "bold red") + _event_id(label))
        elif outcome == DROPPED:
            pieces.append(self.paint("DROPPED: the queue is full", "bold red") + _event_id(label))
        elif outcome == UNSENT:
            pieces.append(self.paint("not sent: stopped first", "yellow") + _event_id(label))
        self._write(_GAP.join(pieces) + "\n")
        if self.print_body and outcome != RETRYING and number:
            text = sanitize(body_text(label)) if label.method == "GET" else _indented(label)
            self._write(self.paint(text, "dim") + "\n")

    def flush(self) -> None:
        self.out.flush()


def _event_id(label: HookLabel) -> str:
    return f"  event {sanitize(label.event_id)}" if label.event_id else ""


def _indented(label: HookLabel) -> str:
    """The body, each line indented under its delivery line, control characters escaped."""
    lines = body_text(label).splitlines() or [""]
    return "\n".join("    " + sanitize(line) for line in lines)


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
