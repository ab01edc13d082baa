"""What a program reads from the process it runs in, passed in rather than looked up, so that
the CLI can be driven in-process (click's CliRunner) as well as end to end."""

from __future__ import annotations

import errno
import io
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from kazoo_tail.errors import raise_stdout_failure

if TYPE_CHECKING:
    from pathlib import Path


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


class Environment:
    """The streams, their isatty flags, the environment, the config dir and the clock.

    ``environ`` holds the variables the program reads itself (KAZOO_PASSWORD, the tuning
    knobs); click reads its options' variables from the process as usual.
    """

    def __init__(
        self,
        stdin: IO[str],
        stdout: IO[bytes],  # events are written as bytes; text goes through text_stdout()
        stderr: IO[str],
        *,
        stdin_isatty: bool = False,
        stdout_isatty: bool = False,
        stderr_isatty: bool = False,
        environ: Mapping[str, str] | None = None,
        config_dir: Path | None = None,  # None: the platform's usual place
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_isatty = stdin_isatty
        self.stdout_isatty = stdout_isatty
        self.stderr_isatty = stderr_isatty
        self.environ: Mapping[str, str] = environ if environ is not None else {}
        self.config_dir = config_dir
        self.clock = clock
        self._text: IO[str] | None = None

    @classmethod
    def from_process(cls) -> Environment:
        """The real streams and environment, as they are at the time of the call (CliRunner
        swaps sys.stdout and friends while it runs a command)."""
        stdout = sys.stdout
        buffer: IO[bytes]
        if stdout is None:  # started with stdout closed (>&-)
            buffer = _ClosedStdout()  # type: ignore[assignment]
        else:
            buffer = getattr(stdout, "buffer", None) or _BytesToText(stdout)  # type: ignore[assignment]
        return cls(
            stdin=sys.stdin if sys.stdin is not None else open(os.devnull),  # noqa: SIM115
            stdout=buffer,
            # Started with stderr closed: status has nowhere to go, and must not fail for that.
            stderr=sys.stderr if sys.stderr is not None else open(os.devnull, "w"),  # noqa: SIM115
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(stdout),
            stderr_isatty=_isatty(sys.stderr),
            environ=os.environ,
        )

    def text_stdout(self) -> IO[str]:
        """stdout for text (doctor's report, listings), written through at once; a failed
        write is ``OutputError`` (or ``BrokenPipeError``, the reader leaving), and text the
        encoding cannot carry is escaped rather than fatal."""
        if self._text is None:
            encoding, _ = self.stdout_encoding()
            self._text = _TextOut(
                self.stdout, encoding=encoding, errors="backslashreplace", write_through=True
            )
        return self._text

    def stdout_encoding(self) -> tuple[str, str]:
        """The encoding and error handler text on stdout gets: the process's own stdout's
        (its locale), else UTF-8."""
        if self.stdout is getattr(sys.stdout, "buffer", None):
            return sys.stdout.encoding or "utf-8", sys.stdout.errors or "strict"
        return "utf-8", "strict"


class _TextOut(io.TextIOWrapper):
    """Text over the caller's byte stream that never closes it: a collected TextIOWrapper
    closes what it wraps, and the stream is the caller's."""

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as exc:
            raise_stdout_failure(exc)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise_stdout_failure(exc)

    def close(self) -> None:
        if not self.closed:
            try:
                self.detach()  # flushes, then lets go of the stream
            except ValueError:
                pass


def closed_stdout() -> IO[str]:
    """A stand-in for a stdout the process was started without: every write fails, saying
    so, where Python's own stand-in (None) would make click's output vanish silently."""
    buffer: Any = _ClosedStdout()
    return io.TextIOWrapper(buffer, write_through=True)


class _ClosedStdout(io.BufferedIOBase):
    """stdout when the process was started without one: every write fails, and says so.
    Buffered itself, with nothing kept: a BufferedWriter in front would hold the failed bytes,
    which Python 3.13 tried to write again as it closed it at exit ("Exception ignored")."""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise OSError(errno.EBADF, "it was closed when kazoo-tail started (>&-)")


class _BytesToText(io.RawIOBase):
    """A bytes view of a text-only stream (e.g. one a test put in place of sys.stdout)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()

    def fileno(self) -> int:
        return self._text.fileno()
