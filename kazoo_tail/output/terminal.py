"""Talking to the user's terminal safely: escaping server text, status lines on stderr,
and noticing that the reader of stdout has gone away.

Stdlib only, so that JSON mode never pays for importing rich.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import weakref
from collections.abc import Callable
from typing import IO

from kazoo_tail.output.nonblocking import LineQueue

DEFAULT_WIDTH = 80

# C0 controls, DEL, C1 controls, and the Unicode line separators, zero-width characters and
# bidi marks, embeddings, overrides and isolates that can reorder or hide text on a terminal.
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_UNSAFE += [0x061C, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x206A)]
_UNSAFE += [0xFEFF]
# Lone surrogates (a parsed "\ud800" escape) cannot be encoded to print at all.
_UNSAFE += range(0xD800, 0xE000)
_ESCAPES = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _UNSAFE}


def sanitize(text: str) -> str:
    """Show control and invisible characters as visible escapes, e.g. ESC as ``\\x1b``."""
    return text.translate(_ESCAPES)


def terminal_width(stream: IO[bytes] | IO[str]) -> Callable[[], int]:
    """How wide the terminal is, each time it is asked (so a resize is followed): COLUMNS
    when set, as shutil and rich read it, else the terminal's own size, else 80."""

    def width() -> int:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
        except (OSError, ValueError, AttributeError):
            return DEFAULT_WIDTH

    return width


class StatusWriter:
    """``kazoo-tail: ...`` lines on stderr, dimmed or coloured when stderr is a terminal.

    A call never waits for stderr: on a pipe or a terminal the line goes to a ``LineQueue``
    (shared by every writer on the same stream, so lines keep their order), written by its
    own thread; a stderr that stays blocked loses the oldest waiting lines past the queue's
    bound, and one line says how many once it flows again. A stream without a descriptor
    (a test's StringIO) or a regular file cannot block, and is written at once. ``drain()``,
    or ``drain_status_lines()`` for every stream, waits for the queued lines at the end.
    """

    _STYLES = {"info": "\x1b[2m", "warning": "\x1b[33m", "error": "\x1b[1;31m"}

    def __init__(self, stream: IO[str] | None = None, *, colour: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if colour is None:
            colour = _isatty(self.stream) and "NO_COLOR" not in os.environ
        self.colour = colour
        self._queue = _queue_for(self.stream, self._dropped_line)

    def info(self, message: str) -> None:
        self._write("info", message)

    def report(self, message: str) -> None:
        """What the user asked for (e.g. --summary), as opposed to status."""
        self._write("info", message)

    def warning(self, message: str) -> None:
        self._write("warning", f"warning: {message}")

    def error(self, message: str) -> None:
        self._write("error", f"error: {message}")

    def drain(self) -> None:
        """Wait until the lines queued for this stream are written (or it failed); Ctrl-C
        interrupts the wait."""
        if self._queue is not None:
            self._queue.drain()

    close = drain

    def _line(self, level: str, message: str) -> str:
        text = f"kazoo-tail: {sanitize(message)}"
        if self.colour:
            text = f"{self._STYLES[level]}{text}\x1b[0m"
        return text + "\n"

    def _dropped_line(self, count: int) -> bytes:
        lines = f"{count:,} status line{'s were' if count != 1 else ' was'}"
        text = self._line("warning", f"warning: {lines} not written while stderr was blocked")
        return _encode(self.stream, text)

    def _write(self, level: str, message: str) -> None:
        text = self._line(level, message)
        if self._queue is not None:
            self._queue.put(_encode(self.stream, text))
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone too; nothing sensible left to do


# The queue of each stream that has a descriptor a write could block on, by descriptor and
# the file it refers to (a closed descriptor's number may be given to another file).
_queues: weakref.WeakValueDictionary[tuple[int, int, int], LineQueue] = (
    weakref.WeakValueDictionary()
)
_queues_lock = threading.Lock()


def _queue_for(stream: IO[str], dropped_line: Callable[[int], bytes]) -> LineQueue | None:
    try:
        fd = stream.fileno()
        mode = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return None  # no descriptor (StringIO), or a closed one: written at once, as before
    if stat.S_ISREG(mode.st_mode):
        return None  # a file never blocks
    key = (fd, mode.st_dev, mode.st_ino)
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None or queue.failed:
            queue = _queues[key] = LineQueue(fd, dropped_line)
        return queue


def drain_status_lines() -> None:
    """Wait until every queued status line is written, or its stream failed: the end of the
    program (Ctrl-C, or a terminating signal raised as an exception, interrupts the wait)."""
    with _queues_lock:
        queues = list(_queues.values())
    for queue in queues:
        queue.drain()


def _encode(stream: IO[str], text: str) -> bytes:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "backslashreplace")
    except LookupError:
        return text.encode("utf-8", "backslashreplace")


class ReaderWatch:
    """Tells whether the reader of a pipe has gone away, without writing to it.

    Linux reports POLLERR on a pipe's write end once its read end is closed, so a tail with
    no events flowing still ends promptly when ``| head`` has had enough.
    """

    def __init__(self, stream: IO[str] | IO[bytes]) -> None:
        import select

        self._poll: select.poll | None = None
        self._hang_up = select.POLLERR | select.POLLHUP
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError):
            return
        self._poll = select.poll()
        self._poll.register(fd, 0)

    def reader_gone(self) -> bool:
        if self._poll is None:
            return False
        return any(mask & self._hang_up for _, mask in self._poll.poll(0))


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
