"""A bounded buffer between the renderers and stdout, drained by a writer thread, so that the
websocket is read however slowly stdout is (``| less``, a slow ``jq``, a slow terminal).

Kazoo 4.3's blackhole drops every frame for a socket whose queue holds more than 50 and kills
the socket when one send blocks for 5 s, so a tail that stopped reading while stdout was full
would lose events at the server, silently. Here the main thread (the websocket loop, which
also gets the signals) only ever appends bytes to lists; the writer thread is the only one that
blocks on stdout. Events beyond the memory cap go to an anonymous temporary file (unlinked,
mode 0600) up to the spill cap; beyond both, whole events are dropped, counted, and reported
on stderr.

Order is kept: once events go to the file, the following ones go there too until the writer
has emptied it, and only then to memory again. The pipeline calls ``commit()`` after each
event, so a drop is always a whole event, never part of a line.
"""

from __future__ import annotations

import errno
import io
import os
import select
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from kazoo_tail.errors import OutputError, raise_stdout_failure
from kazoo_tail.kazoo.time import utc_stamp

CHUNK = 1 << 16  # staged bytes handed to the writer at once, whether or not a flush came
READ_CHUNK = 1 << 20  # bytes read back from the spill file at once
REPORT_EVERY = 60.0  # while drops go on, say so at least this often
# pwritev2's flag for a write that fails rather than blocks (Linux; absent elsewhere).
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "pwritev") else None
# What a kernel that cannot write a pipe with RWF_NOWAIT answers.
_NOWAIT_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ESPIPE, errno.ENOSYS)


def format_size(size: int) -> str:
    """64 MiB, 1 GiB, 512 KiB, 1.5 MiB, 100 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} byte{'s' if size != 1 else ''}"


_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}


@contextmanager
def _signals_held() -> Iterator[None]:
    """Delay Ctrl-C and the terminating signals until the block ends, then deliver them to
    the handlers they would have met.

    Masking them would not do: a signal sent to the process goes to any thread that does not
    mask it (the writer's), and Python runs its handler on the main thread all the same."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous: dict[int, Any] = {}
    for number in _HELD_SIGNALS:
        handler = signal.getsignal(number)
        if handler is not None:  # None: installed outside Python, left alone
            previous[number] = signal.signal(number, lambda got, _frame: arrived.append(got))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(arrived):
            signal.raise_signal(number)


class _Drops:
    """Dropped events not yet reported: how many, when, and why."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.reasons: list[str] = []

    def add(self, when: float, reason: str, count: int = 1) -> None:
        if not self.count:
            self.first = when
        self.count += count
        self.last = when
        if reason not in self.reasons:
            self.reasons.append(reason)

    def sentence(self) -> str:
        events = f"{self.count:,} event{'s' if self.count != 1 else ''}"
        first, last = utc_stamp(self.first), utc_stamp(self.last, round_up=True)
        when = f"at {first}" if self.first == self.last else f"from {first} to {last}"
        return f"stdout did not keep up: dropped {events} {when}, because " + "; and ".join(
            self.reasons
        )


class StdoutSpool(io.RawIOBase):
    """A writable binary stream whose bytes reach ``out`` through a writer thread.

    ``out`` is written through its file descriptor when it has one (never through the
    buffered object, whose lock a writer blocked at exit would hold), else by its own
    ``write`` and ``flush`` (an in-process run's BytesIO). ``fileno()`` and ``isatty()`` are
    those of ``out``, so rich still sees the terminal.

    Main thread: ``write`` and ``commit`` cost a list append and a few additions;
    ``flush`` hands what is staged to the writer and never waits; ``drain`` waits for
    everything to be written; ``abandon`` lets the writer go without waiting.
    A writer's error is raised on the main thread by the next ``flush`` or ``drain``:
    ``BrokenPipeError`` when the reader went away, ``OutputError`` otherwise.
    """

    def __init__(
        self,
        out: IO[bytes],
        *,
        memory: int,
        spill: int,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._out = out
        try:
            out.flush()  # whatever the stream holds goes first
        except (OSError, ValueError):
            pass
        self._fd: int | None
        try:
            self._fd = out.fileno()
        except (OSError, ValueError, AttributeError):
            self._fd = None
        # Whether a write now cannot block: always for a file, after a poll for a pipe, never
        # known for the rest (a terminal, a socket: the writer thread takes everything).
        self._to_regular_file = False
        self._pipe_poll: select.poll | None = None
        # Linux writes to a pipe with RWF_NOWAIT: a write that would block fails instead, so
        # a write with room costs no poll before it (one system call per event less).
        self._pipe_nowait = False
        if self._fd is not None:
            try:
                mode = os.fstat(self._fd).st_mode
            except OSError:
                mode = 0
            self._to_regular_file = stat.S_ISREG(mode)
            if stat.S_ISFIFO(mode):
                self._pipe_poll = select.poll()
                self._pipe_poll.register(self._fd, select.POLLOUT)
                self._pipe_nowait = _NOWAIT is not None
        self.memory_cap = memory
        self.spill_cap = spill
        self._warn = warn
        self._clock = clock
        # -- the main thread's -------------------------------------------------------------
        self._staged: list[bytes] = []
        self._staged_size = 0
        self._committed = 0  # parts of _staged that make whole events
        self._committed_size = 0
        self._events = 0  # whole events in _staged
        self._room = memory  # staged bytes the target takes, as of the last handoff
        self._to_file = False  # staged events are bound for the spill file
        self._spill_warned = False
        self._spill_trouble: str | None = None  # why the file cannot take more, until drained
        self._drops = _Drops()
        self._dropped_total = 0
        self._finished = False
        # -- shared with the writer, under _cond ---------------------------------------------
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._in_memory = 0  # bytes in _chunks and in the writer's hands
        self._file: IO[bytes] | None = None
        self._file_end = 0  # bytes written to the spill file
        self._file_read = 0  # of which the writer has taken this many
        self._closing = False
        self._abandoned = False
        self._error: OSError | None = None
        self._writer_done = False
        self._writer = threading.Thread(target=self._run, name="kazoo-tail stdout", daemon=True)
        self._writer.start()

    # -- the stream ---------------------------------------------------------------------------

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd

    def isatty(self) -> bool:
        try:
            return bool(self._out.isatty())
        except (AttributeError, ValueError):
            return False

    def write(self, data: Any) -> int:
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a bytearray or memoryview
        size = len(data)
        self._staged.append(data)
        self._staged_size += size
        return size

    def commit(self) -> None:
        """The bytes written since the last commit are one whole event: keep it or drop it."""
        size = self._staged_size
        if size == self._committed_size:
            return
        if size <= self._room:
            self._committed = len(self._staged)
            self._committed_size = size
            self._events += 1
            if size >= CHUNK:
                self._handoff()
            return
        self._admit()

    def flush(self) -> None:
        """Hand what is staged to the writer (it does not wait for stdout)."""
        if self._abandoned:
            return
        if self._error is not None:
            self._raise_error()
        if self._staged_size != self._committed_size:  # commit's own first test, inline
            self.commit()
        self._handoff()
        if self._drops.count and self._should_report():
            self._report()

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> IO[str]:
        """A text stream over this one, written through at once (for rich)."""
        return _Text(cast(Any, self), encoding=encoding, errors=errors, write_through=True)

    @property
    def spilling(self) -> bool:
        """Whether events go to the spill file now (until the writer has emptied it)."""
        return self._to_file

    @property
    def dropped(self) -> int:
        """Events dropped so far, reported or not."""
        return self._dropped_total + self._drops.count

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the writer has written everything (Ctrl-C still interrupts), or for
        ``timeout`` seconds at most; True once everything is written."""
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._writer.is_alive():
            left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if left <= 0:
                return False
            self._writer.join(left)
        if self._error is not None:
            self._raise_error()
        return True

    def abandon(self) -> None:
        """Let the writer go without waiting for stdout; what it still holds is lost."""
        with self._cond:
            self._closing = self._abandoned = True
            self._cond.notify_all()

    def finish(self) -> None:
        """Report the drops not yet reported, and let go of the spill file. Idempotent."""
        if self._finished:
            return
        if self._drops.count:
            self._report()
        with self._cond:
            self._finished = True
            if self._writer_done:
                self._close_file()  # else the writer does, when it ends

    def close(self) -> None:
        # io.IOBase calls this when collected: never wait for stdout there.
        if not self.closed:
            self.abandon()
        super().close()

    # -- admission and handing over (main thread) --------------------------------------------

    def _admit(self) -> None:
        """The event just written does not fit the room last seen: hand the staged events
        over (the writer may have made room meanwhile), then keep the event in memory, in the
        spill file, or drop it."""
        event = self._staged[self._committed :]
        size = self._staged_size - self._committed_size
        del self._staged[self._committed :]
        self._staged_size = self._committed_size
        room = self._handoff()
        if size > room and not self._to_file and self._can_spill():
            self._to_file = True
            room = self._file_room()
            if not self._spill_warned:
                self._spill_warned = True
                self._warn(
                    "stdout is not keeping up: events beyond the "
                    f"{format_size(self.memory_cap)} buffer go to a temporary file "
                    f"(up to {format_size(self.spill_cap)})"
                )
        if size <= room:
            self._staged = event
            self._staged_size = self._committed_size = size
            self._committed = len(event)
            self._events = 1
            self._room = room
            return
        self._drop(self._full_reason())

    def _drop(self, reason: str, events: int = 1) -> None:
        self._drops.add(self._clock(), reason, events)

    def _can_spill(self) -> bool:
        if self.spill_cap <= 0 or self._spill_trouble is not None:
            return False
        if self._file is None:
            import tempfile

            try:
                # Already unlinked, created 0600: no one else on the machine can read it.
                self._file = tempfile.TemporaryFile(prefix="kazoo-tail-", buffering=0)
            except OSError as exc:
                self._spill_trouble = f"no spill file could be made ({exc.strerror or exc})"
                return False
        return True

    def _file_room(self) -> int:
        if self._spill_trouble is not None:
            return 0
        return self.spill_cap - (self._file_end - self._file_read)

    def _full_reason(self) -> str:
        memory = f"the {format_size(self.memory_cap)} buffer was full"
        if self._spill_trouble is not None:
            return f"{memory} and {self._spill_trouble}"
        if self.spill_cap <= 0:
            return f"{memory} and spilling to disk is off (--spill-size 0)"
        return f"the {format_size(self.memory_cap)} buffer and the " + (
            f"{format_size(self.spill_cap)} spill file were full"
        )

    def _handoff(self) -> int:
        """Give the staged (whole) events to the writer, and see how much room is left."""
        if self._error is not None and not self._abandoned:
            self._raise_error()  # also in a flood, when no flush comes between events
        staged, size, events = self._staged, self._staged_size, self._events
        if staged:
            self._staged = []
            self._staged_size = self._committed = self._committed_size = self._events = 0
        # What a write at once left for the writer.
        left: bytes | None = None
        if staged and not self._in_memory and not self._to_file:
            # Nothing queued: the writer is idle, and only this thread gives it work, so a
            # write at once needs no lock (at a modest rate this is every event's path).
            left = self._write_now(b"".join(staged))
            if left is None:
                self._room = room = self.memory_cap
                return room
            staged = []
        with self._cond:
            if self._to_file and self._file_end == 0:
                # The writer emptied the file (and everything queued before it): back to memory.
                # Unless the staged events do not fit there: they stay bound for the file.
                self._to_file = size > self.memory_cap - self._in_memory
                self._spill_trouble = None  # the disk may have room again, too
            if staged:
                if self._to_file:
                    self._spill(staged, events)
                    self._cond.notify()
                elif (data := self._write_now(b"".join(staged))) is not None:
                    self._chunks.append(data)
                    self._in_memory += len(data)
                    self._cond.notify()
            elif left is not None:
                self._chunks.append(left)
                self._in_memory += len(left)
                self._cond.notify()
                # Written at once: the writer has nothing to do, and waking it would cost
                # two thread switches and the GIL's round trip for every event.
            if self._to_file:
                room = self._file_room()
            else:
                room = self.memory_cap - self._in_memory
        self._room = room
        return room

    def _write_now(self, data: bytes) -> bytes | None:
        """With nothing queued, write a small handoff at once when that cannot block: a pipe
        with room takes up to PIPE_BUF bytes whole, and a file always does. It saves the
        writer thread's wake-up, which is most of the latency at a modest rate. Returns what
        is left for the writer (with nothing queued, the writer has nothing in hand: the lock
        is not needed)."""
        if self._fd is None or self._in_memory or self._error is not None:
            return data
        if len(data) > select.PIPE_BUF:
            return data
        try:
            if self._pipe_nowait:
                assert _NOWAIT is not None
                # Written whole or not at all: a pipe takes up to PIPE_BUF bytes at once.
                written = os.pwritev(self._fd, [data], -1, _NOWAIT)
            else:
                if not self._to_regular_file and (
                    self._pipe_poll is None or not self._pipe_poll.poll(0)
                ):
                    return data
                written = os.write(self._fd, data)
        except BlockingIOError:
            return data
        except OSError as exc:
            if self._pipe_nowait and exc.errno in _NOWAIT_UNSUPPORTED:
                # The kernel cannot write a pipe that way (an older one): polled first from
                # now on.
                self._pipe_nowait = False
                return data
            self._error = exc  # raised on the main thread by the next flush
            return None
        return data[written:] or None

    def _spill(self, staged: list[bytes], events: int) -> None:
        """Append to the spill file (the lock held, so the writer cannot reset it meanwhile)."""
        assert self._file is not None
        data = memoryview(b"".join(staged))
        fd = self._file.fileno()
        end = self._file_end
        try:
            while data:
                written = os.pwrite(fd, data, end)
                data = data[written:]
                end += written
        except OSError as exc:
            try:
                os.ftruncate(fd, self._file_end)  # no part of an event stays behind
            except OSError:
                pass
            self._spill_trouble = f"the spill file could not grow ({exc.strerror or exc})"
            self._drop(self._full_reason(), events)
            return
        self._file_end = end

    # -- reporting (main thread) -------------------------------------------------------------

    def _should_report(self) -> bool:
        """The drop episode is over once the buffer is half empty again; while it goes on,
        it is reported every REPORT_EVERY seconds."""
        if self._clock() - self._drops.first >= REPORT_EVERY:
            return True
        if self._to_file:
            unread = self._file_end - self._file_read
            return self._spill_trouble is None and unread <= self.spill_cap // 2
        return self._in_memory + self._staged_size <= self.memory_cap // 2

    def _report(self) -> None:
        # A Ctrl-C between the sentence and the reset would have finish() say it again, with
        # the count doubled; held off, the signal arrives once both are done.
        with _signals_held():
            self._warn(self._drops.sentence())
            self._dropped_total += self._drops.count
            self._drops = _Drops()

    def _raise_error(self) -> None:
        error = self._error
        assert error is not None
        # A fresh one each time: the writer's own, raised on every call, would grow its
        # traceback with each.
        raise_stdout_failure(type(error)(*error.args))

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._write_all()
        finally:
            with self._cond:
                self._writer_done = True
                if self._finished:
                    self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()

    def _write_all(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and self._file_read == self._file_end and not self._closing:
                    self._cond.wait()
                if self._abandoned:
                    return
                offset = size = 0
                if self._chunks:
                    chunk: bytes | None = self._chunks.popleft()
                elif self._file_read < self._file_end:
                    chunk, offset = None, self._file_read
                    size = min(READ_CHUNK, self._file_end - offset)
                else:
                    return  # closing, and everything is written
            try:
                if chunk is None:
                    assert self._file is not None
                    chunk = os.pread(self._file.fileno(), size, offset)
                    if len(chunk) != size:
                        raise OSError(f"the spill file gave {len(chunk)} bytes, not {size}")
                    from_file = True
                else:
                    from_file = False
                self._write_out(chunk)
            except OSError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                if from_file:
                    assert self._file is not None
                    self._file_read += len(chunk)
                    if self._file_read == self._file_end:
                        os.ftruncate(self._file.fileno(), 0)
                        self._file_read = self._file_end = 0
                else:
                    self._in_memory -= len(chunk)

    def _write_out(self, chunk: bytes) -> None:
        if self._fd is None:
            self._out.write(chunk)
            self._out.flush()
            return
        data = memoryview(chunk)
        while data:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:  # someone made the descriptor non-blocking
                select.select([], [self._fd], [])
                continue
            data = data[written:]


class _Text(io.TextIOWrapper):
    """Text over the spool that never closes it when collected."""

    def close(self) -> None:
        if not self.closed:
            try:
                self.detach()  # flushes, which may raise the writer's error
            except (ValueError, OSError, OutputError):
                pass
