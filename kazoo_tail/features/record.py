"""--record and replay: every frame received, with its receive time, as JSON lines.

A recording is what a bug report attaches and what the project's rendering tests replay.
Lines look like ``{"received_at": 1764291600.123456, "text": "<the frame>"}``; a binary frame,
or text that is not valid UTF-8, is kept as base64 under ``"bytes"`` with its ``"opcode"``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from kazoo_tail.errors import KazooTailError, UsageError, redact
from kazoo_tail.kazoo import fast_json
from kazoo_tail.net.frames import OP_TEXT

# The most of one line replay holds in memory, so that an endless one (`replay /dev/zero`)
# cannot exhaust it; far above any frame Kazoo sends (CouchDB refuses documents over 8 MB, and
# an event carries at most one).
MAX_LINE = 64 << 20
NOT_A_LINE = "not a recording line"
# Beyond this many, bad lines are counted at the end instead of named one by one.
BAD_LINES_NAMED = 5

# The kinds of line Recorder.note writes.
NOTES = frozenset({"undelivered"})

# What a reply whose text cannot be put back together after redaction is recorded as.
UNREDACTABLE_REPLY = '{"action":"reply","note":"left out: too deeply nested to redact"}'


class RecordError(KazooTailError):
    """The --record file cannot be opened or written (a full disk, a symbolic link, a file
    others can open): exit code 1, like any tool whose output failed."""


class Recorder:
    """Appends each frame as one line, handed to the operating system before the session
    decodes it, so before its event can be printed: a tail killed at any moment (SIGKILL, the
    OOM killer) leaves in the file every event it showed. A failed write (a full disk, the
    file size limit) cuts the file back to its last whole line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = False
        self.frames = 0  # recorded by this run
        self.fd = _open_privately(path)
        info = os.fstat(self.fd)
        # Only a regular file can be cut back; a FIFO or a device keeps what it was given.
        self.regular = stat.S_ISREG(info.st_mode)
        # Where the last whole line ends: what the file held when opened (a run before ours,
        # and the newline that started us on a fresh line) is never cut.
        self.end = info.st_size if self.regular else 0

    def frame(self, opcode: int, payload: bytes, received_at: float) -> None:
        entry: dict[str, object] = {"received_at": round(received_at, 6)}
        try:
            text = payload.decode("utf-8") if opcode == OP_TEXT else None
        except UnicodeDecodeError:
            text = None
        if text is not None:
            # Replies may echo our token ("failed to authenticate token ..."); events cannot.
            entry["text"] = redacted_reply(text) if could_be_a_reply(text) else text
        else:
            entry["opcode"] = opcode
            entry["bytes"] = base64.b64encode(payload).decode()
        self._write(fast_json.dumps(entry) + b"\n")

    def note(self, kind: str, details: dict[str, Any], at: float) -> None:
        """A line that is not a frame, e.g. ``{"received_at": ..., "undelivered": {...}}``
        for an event ``forward`` could not deliver (its frame is in the file too); replay
        passes over such lines."""
        self._write(fast_json.dumps({"received_at": round(at, 6), kind: details}) + b"\n")

    def flush(self) -> None:
        """Nothing to do: every line is written as its frame arrives. Kept for the callers
        that flush on idle ticks."""

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            os.close(fd)
        except OSError as exc:
            # Network file systems may report a failed write only now.
            if not self.failed:
                self.failed = True
                raise self._error(exc, "") from None

    def _write(self, line: bytes) -> None:
        try:
            written = os.write(self.fd, line)
        except OSError as exc:
            raise self._failure(exc, 0) from None
        if written != len(line):
            self._write_rest(line, written)
        self.frames += 1
        self.end += len(line)

    def _write_rest(self, line: bytes, written: int) -> None:
        """After a short write (a disk filling up, a signal on a pipe): the rest, or the file
        cut back to its last whole line if it cannot be written."""
        try:
            while written < len(line):
                written += os.write(self.fd, line[written:])
        except OSError as exc:
            raise self._failure(exc, written) from None
        except BaseException:  # Ctrl-C between two parts: no half line left behind
            with contextlib.suppress(OSError):
                self._cut_back()
            raise

    def _failure(self, exc: OSError, written: int) -> RecordError:
        """Gives up on the file, cut back to its last whole line if ``written`` bytes of the
        line it failed on (or anything else past that line) were written, and says so in one
        sentence."""
        self.failed = True
        if not self.regular:
            ending = "; half its last line may have been sent" if written else ""
        else:
            try:
                self._cut_back()
            except OSError as cut:
                return self._error(
                    exc, f", and cannot be cut back to its last whole line: {cut.strerror or cut}"
                )
            ending = "; it ends with its last whole line"
        return self._error(exc, ending)

    def _cut_back(self) -> None:
        """Truncates the file to the end of its last whole line, never below what it held when
        opened, and never growing it (someone else may have truncated it meanwhile)."""
        if self.regular and self.fd >= 0 and os.fstat(self.fd).st_size > self.end:
            os.ftruncate(self.fd, self.end)

    def _error(self, exc: OSError, ending: str) -> RecordError:
        frames = f"{self.frames} frame{'' if self.frames == 1 else 's'}"
        return RecordError(
            f"cannot write the recording {self.path}: {exc.strerror or exc}{ending} "
            f"(this run recorded {frames})"
        )


def _open_privately(path: Path) -> int:
    """An append descriptor on the recording, private to us, starting on a fresh line."""
    # Events carry phone numbers and names: the file is private, like the token cache. A
    # symbolic link is not followed: in a shared directory it may point anywhere.
    flags = os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        # Read access, to see how the last line ends; a FIFO is opened for writing only, as
        # opening it for both would make us a reader of our own pipe.
        fifo = stat.S_ISFIFO(os.lstat(path).st_mode)
    except OSError:
        fifo = False
    try:
        fd = os.open(path, flags | (os.O_WRONLY if fifo else os.O_RDWR), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise RecordError(
                f"cannot write the recording {path}: it is a symbolic link, "
                f"which is not followed (give the file it points to)"
            ) from None
        raise RecordError(f"cannot write the recording {path}: {exc.strerror}") from None
    try:
        _make_private(fd, path)
        _start_on_a_fresh_line(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_private(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    # Devices and pipes (/dev/null, a FIFO to gzip) are not ours to change.
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o077:
        return
    if info.st_uid != os.geteuid():
        raise RecordError(
            f"cannot write the recording {path}: others can open it and it belongs to "
            f"someone else, so it is not ours to make private (record to a file of your own)"
        )
    try:
        os.fchmod(fd, 0o600)
    except OSError as exc:
        raise RecordError(f"cannot make the recording {path} private: {exc.strerror}") from None


def _start_on_a_fresh_line(fd: int, path: Path) -> None:
    """A session that ended mid-line (a full disk, a power cut) leaves half a line; the next
    one starts below it rather than gluing its first frame onto it."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return
    try:
        if os.pread(fd, 1, info.st_size - 1) != b"\n":
            os.write(fd, b"\n")
    except OSError as exc:
        raise RecordError(f"cannot write the recording {path}: {exc.strerror}") from None


# -- keeping the token out of recordings -----------------------------------------------------


def could_be_a_reply(text: str) -> bool:
    """False only for frames that cannot be replies: whatever the spelling, a reply says
    "reply" as its action, plainly or with a letter escaped as \\uXXXX. Events, the frames
    that matter for speed, seldom contain either, so they are not parsed twice."""
    return '"reply"' in text or "\\u" in text


def redacted_reply(text: str) -> str:
    """The frame with every secret taken out if it is a reply (its top-level action is
    "reply", as kazoo.wire reads it), else unchanged. Its strings are compared once their JSON
    escapes are undone, so a token written as ``\\u0065yJ...`` or with ``\\/`` is found."""
    try:
        envelope: Any = fast_json.loads(text)
    except fast_json.DECODE_ERRORS:
        envelope = _parse_leniently(text)
        if envelope is None:
            return redact(text)  # not JSON, so not a reply, but it costs little to be sure
    if not isinstance(envelope, dict) or envelope.get("action") != "reply":
        return text
    canonical = _unescaped(envelope)
    if canonical is None:
        return UNREDACTABLE_REPLY
    cleaned = redact(canonical)
    # Unchanged, the frame is kept as received, byte for byte.
    return cleaned if cleaned != canonical else text


def _parse_leniently(text: str) -> Any:
    """What the json module makes of a frame orjson refuses (huge integers, NaN), as
    kazoo.wire does; None if it is not JSON."""
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _unescaped(envelope: dict[str, Any]) -> str | None:
    """The reply as JSON text whose strings carry no escapes but ``\\"``, ``\\\\`` and control
    characters, none of which a token or API key contains; None if it cannot be written."""
    try:
        return fast_json.dumps(envelope).decode()
    except fast_json.ENCODE_ERRORS:  # integers past 64 bits, or nesting past orjson's limit
        pass
    import json

    try:
        # ASCII, so that a lone surrogate the json module accepted cannot reach the file; the
        # secrets are ASCII too, so they are still found.
        return json.dumps(envelope)
    except (ValueError, RecursionError):
        return None


# -- reading a recording back ----------------------------------------------------------------


def read_recording(path: Path, warn: Callable[[str], None]) -> Iterator[tuple[float, int, bytes]]:
    """(received_at, opcode, payload) for every line.

    A bad line (the half line a crash or a full disk leaves) is skipped with a warning, the
    first few named by number, the rest counted at the end. A file that does not start like a
    recording (its first two lines bad, or a first line too long to be a torn one) is a
    one-sentence error naming the line.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read the recording {path}: {exc.strerror}") from None
    bad: list[tuple[int, str]] = []
    recording = False  # a good line has been read
    with handle:
        for number, line in _numbered_lines(handle):
            if line is not None and not line.strip():
                continue
            parsed = _parse_line(line)
            if parsed is None:  # a note, not a frame
                recording = True
                continue
            if isinstance(parsed, tuple):
                if not recording:
                    recording = True
                    for earlier, why in bad:  # held back until the file proved a recording
                        _warn_bad_line(warn, path, earlier, why)
                yield parsed
                continue
            bad.append((number, parsed))
            # A torn line is the start of a good one, so it is never too long; an endless
            # one (/dev/zero) must not be read past.
            if not recording and (len(bad) >= 2 or line is None):
                break
            if recording and len(bad) <= BAD_LINES_NAMED:
                _warn_bad_line(warn, path, number, parsed)
    if not recording and bad:
        first, why = bad[0]
        raise UsageError(f"{path} is not a kazoo-tail recording: line {first} is {why}")
    if len(bad) > BAD_LINES_NAMED:
        warn(f"{path}: skipped {len(bad)} lines in all that were not recording lines")


def _warn_bad_line(warn: Callable[[str], None], path: Path, number: int, why: str) -> None:
    likely = " (cut short by a crash or a full disk?)" if why == NOT_A_LINE else ""
    warn(f"{path} line {number} is {why}{likely}: skipped")


def _numbered_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """Each line with its number; None for a line longer than MAX_LINE, which is then read
    past in bounded pieces rather than held whole."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) <= MAX_LINE or line.endswith(b"\n"):
            yield number, line
            continue
        yield number, None
        while line and not line.endswith(b"\n"):
            line = handle.readline(1 << 20)


def _parse_line(line: bytes | None) -> tuple[float, int, bytes] | str | None:
    """The frame a line holds, why it holds none, or None for a note (``Recorder.note``)."""
    if line is None:
        return f"longer than {MAX_LINE >> 20} MiB"
    try:
        entry = fast_json.loads(line)
        received_at = float(entry["received_at"])
        if not 0 <= received_at < 1e11:  # also refuses NaN: a file can say anything
            raise ValueError("not a plausible time")
        if "text" in entry:
            return received_at, OP_TEXT, str(entry["text"]).encode()
        if NOTES.intersection(entry):
            return None
        return received_at, int(entry["opcode"]), base64.b64decode(entry["bytes"])
    # Both parsers' refusals are ValueErrors.
    except (KeyError, TypeError, ValueError):
        return NOT_A_LINE
