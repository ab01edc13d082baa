"""A full-screen display (the calls board) that never waits for the terminal.

rich's Live renders into memory; a ``LatestWriter`` thread writes to the terminal. A terminal
that stops taking output (Ctrl-S, a stuck ssh) holds up only that thread: each redraw is a
whole screen (the alternate screen, redrawn from its top-left corner), so one not yet written
is replaced by the next, and nothing piles up. What is not a redraw (entering and leaving the
alternate screen, the cursor) is written in order, never replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, cast

from kazoo_tail.output.nonblocking import LatestWriter

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


class _ScreenText:
    """The text stream rich writes to, handed to the writer at each flush; inside
    ``picture()``, all of it at the end, as one picture that a later one may replace."""

    def __init__(self, writer: LatestWriter, encoding: str) -> None:
        self._writer = writer
        self.encoding = encoding
        self._parts: list[str] = []
        self._in_picture = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._writer.fd

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        if not self._in_picture:
            self._hand_over(latest=False)

    def _hand_over(self, *, latest: bool) -> None:
        if self._parts:
            text, self._parts = "".join(self._parts), []
            self._writer.put(text.encode(self.encoding, "backslashreplace"), latest=latest)

    @contextmanager
    def picture(self) -> Iterator[None]:
        self.flush()
        self._in_picture = True
        try:
            yield
        finally:
            self._in_picture = False
            self._hand_over(latest=True)


class LiveScreen:
    """rich's Live on the alternate screen, cursor hidden, with the part of Live's interface
    the board uses (``console``, ``update``, ``start``, ``stop``); ``close`` leaves the
    alternate screen and waits until the terminal has it all (Ctrl-C interrupts the wait).

    ``out`` without a descriptor (nothing to block on) is written at once through
    ``text_out``, as rich does on its own."""

    def __init__(self, out: IO[bytes], text_out: IO[str], *, encoding: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self._writer: LatestWriter | None = None
        self._text: _ScreenText | None = None
        file: IO[str] = text_out
        try:
            fd = out.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        if fd is not None:
            try:
                out.flush()  # what the stream holds goes first
            except (OSError, ValueError):
                pass
            self._writer = LatestWriter(fd)
            self._text = _ScreenText(self._writer, encoding)
            file = cast(IO[str], self._text)
        self.console: Console = Console(file=file, force_terminal=True)
        self._live = Live(console=self.console, screen=True, auto_refresh=False, transient=True)

    @contextmanager
    def _picture(self) -> Iterator[None]:
        if self._text is None:
            yield
            return
        with self._text.picture():
            yield

    def start(self, refresh: bool = False) -> None:
        self._live.start()
        if refresh:
            with self._picture():
                self._live.refresh()

    def update(self, renderable: RenderableType, *, refresh: bool = False) -> None:
        with self._picture():
            self._live.update(renderable, refresh=refresh)

    def stop(self) -> None:
        """Leave the alternate screen, and wait until the terminal shows it (a question may
        follow, on the normal screen)."""
        self._live.stop()
        self._written()

    def close(self) -> None:
        try:
            self._live.stop()
        finally:
            self.console.show_cursor(True)
            self.console.file.flush()
            self._written()

    def _written(self) -> None:
        self.console.file.flush()
        if self._writer is not None:
            self._writer.drain()

    @property
    def replaced(self) -> int:
        """Pictures never written: a newer one came before the terminal took them."""
        return self._writer.replaced if self._writer is not None else 0
