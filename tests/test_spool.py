"""The spool between the renderers and stdout (output/spool.py), over real pipes and files: a
test holds the read end and decides when stdout is read."""

from __future__ import annotations

import array
import fcntl
import gc
import io
import os
import signal
import tempfile
import termios
import threading
from collections.abc import Iterator

import click
import pytest

from kazoo_tail.app.pipeline import OutputOptions
from kazoo_tail.cli.options import ByteSize
from kazoo_tail.errors import OutputError
from kazoo_tail.kazoo.time import utc_stamp
from kazoo_tail.output.spool import StdoutSpool, format_size

from .conftest import wait_until

# fcntl names it from 3.10; Linux's number for it is older than that.
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
EVENT = 1000  # bytes of each test event, its newline included


def pipe_bytes(fd: int) -> int:
    waiting = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, waiting)
    return waiting[0]


def event(number: int, size: int = EVENT) -> bytes:
    head = f'{{"n":{number},"pad":"'.encode()
    return head + b"x" * (size - len(head) - 3) + b'"}\n'


class Pipe:
    """An os.pipe whose write end goes to a spool; nothing reads it until ``read_all``."""

    def __init__(self, capacity: int = 4096) -> None:
        self.read_fd, write_fd = os.pipe()
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, capacity)  # a page: fills at once
        self.out = os.fdopen(write_fd, "wb")
        self.data = bytearray()
        self._reader: threading.Thread | None = None

    def read_all(self) -> None:
        """Read from now on, in a thread, until the write end is closed."""

        def read() -> None:
            while chunk := os.read(self.read_fd, 1 << 16):
                self.data += chunk

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def close_writer(self) -> bytes:
        self.out.close()
        if self._reader is None:
            self.read_all()
        assert self._reader is not None
        self._reader.join(10)
        return bytes(self.data)

    def numbers(self) -> list[int]:
        import json

        return [json.loads(line)["n"] for line in self.data.splitlines()]


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    p = Pipe()
    yield p
    try:
        os.close(p.read_fd)  # a writer thread blocked on the pipe gets EPIPE and ends
    except OSError:
        pass
    # The write end is closed only once the spools' writers have ended: a writer between two
    # writes would otherwise write to the descriptor number after it was closed, and so into
    # whatever the next test opened under that number.
    for spool in gc.get_objects():
        # type(), not isinstance(): isinstance() on a dead weakref.proxy (websockets leaves
        # some behind) raises ReferenceError.
        if type(spool) is StdoutSpool and spool._out is p.out:
            spool.abandon()
            spool._writer.join(10)
    try:
        p.out.close()
    except OSError:
        pass


def spool_on(out: io.IOBase | object, memory: int, spill: int = 0, **kw: object) -> StdoutSpool:
    warnings: list[str] = []
    spool = StdoutSpool(out, memory=memory, spill=spill, warn=warnings.append, **kw)  # type: ignore[arg-type]
    spool.warnings = warnings  # type: ignore[attr-defined]
    return spool


def write_events(spool: StdoutSpool, numbers: range, size: int = EVENT) -> None:
    for number in numbers:
        spool.write(event(number, size))
        spool.commit()
        if number % 10 == 0:
            spool.flush()
    spool.flush()


def test_order_is_kept_from_memory_to_the_spill_file_and_back(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=20 * EVENT, spill=1 << 20)
    write_events(spool, range(500))  # stdout unread: 4 KiB in the pipe, 20 in memory, the rest
    assert spool.spilling and spool.dropped == 0
    assert spool.warnings == [  # type: ignore[attr-defined]
        "stdout is not keeping up: events beyond the 19.53 KiB buffer go to a temporary file "
        "(up to 1 MiB)"
    ]
    pipe.read_all()
    wait_until(lambda: len(pipe.data) == 500 * EVENT, what="the first 500 events read")

    def back_in_memory() -> bool:
        spool.flush()  # the handover notices that the writer emptied the file
        return not spool.spilling

    wait_until(back_in_memory, what="the spool back in memory")
    write_events(spool, range(500, 515))  # they fit in memory
    assert not spool.spilling
    spool.drain()
    spool.finish()
    pipe.close_writer()
    assert pipe.numbers() == list(range(515))
    assert len(spool.warnings) == 1  # type: ignore[attr-defined]


def test_the_spill_file_is_unlinked_and_private(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=4 * EVENT, spill=1 << 20)
    write_events(spool, range(50))
    assert spool.spilling
    info = os.fstat(spool._file.fileno())  # type: ignore[union-attr]
    assert info.st_nlink == 0 and info.st_mode & 0o777 == 0o600
    spool.abandon()
    spool.finish()


def test_overflow_drops_whole_events_and_counts_them_exactly(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=10 * EVENT, spill=0)
    write_events(spool, range(300))
    dropped = spool.dropped
    assert dropped > 0 and not spool.spilling
    pipe.read_all()
    spool.drain()
    spool.finish()
    pipe.close_writer()
    numbers = pipe.numbers()  # every line whole JSON
    assert len(numbers) + dropped == 300
    assert numbers == sorted(numbers) and numbers[0] == 0
    (warning,) = spool.warnings  # type: ignore[attr-defined]
    assert f"dropped {dropped:,} events " in warning
    assert warning.endswith(
        "because the 9.766 KiB buffer was full and spilling to disk is off (--spill-size 0)"
    )


def test_the_drop_report_says_how_many_when_and_why(pipe: Pipe) -> None:
    first, last = 1_700_000_000.0, 1_700_000_008.0
    now = [first]
    spool = spool_on(pipe.out, memory=64 * 1024, spill=0, clock=lambda: now[0])
    write_events(spool, range(100))  # 64 in memory, 4 in the pipe: the rest dropped
    dropped = spool.dropped
    now[0] = last
    write_events(spool, range(100, 200))  # all dropped: stdout is still not read
    assert spool.dropped == dropped + 100
    assert spool.warnings == []  # type: ignore[attr-defined]  # still dropping
    pipe.read_all()

    def reported() -> bool:
        spool.flush()  # the episode is over once the buffer is half empty again
        return bool(spool.warnings)  # type: ignore[attr-defined]

    wait_until(reported, what="the drop report")
    window = [utc_stamp(first), utc_stamp(last, round_up=True)]
    assert spool.warnings == [  # type: ignore[attr-defined]
        f"stdout did not keep up: dropped {spool.dropped} events from {window[0]} to {window[1]}, "
        "because the 64 KiB buffer was full and spilling to disk is off (--spill-size 0)"
    ]
    spool.drain()
    spool.finish()  # nothing more to say at the end
    assert len(spool.warnings) == 1  # type: ignore[attr-defined]
    pipe.close_writer()
    assert len(pipe.numbers()) + spool.dropped == 200


def test_drops_not_yet_reported_are_reported_at_the_end(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=8 * EVENT, spill=0)
    write_events(spool, range(100))
    dropped = spool.dropped
    spool.abandon()  # as on Ctrl-C: stdout never read
    spool.finish()
    (warning,) = spool.warnings  # type: ignore[attr-defined]
    assert f"dropped {dropped} events" in warning


def test_no_spill_file_to_be_had_means_drops_that_say_so(
    pipe: Pipe, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/kazoo-tail-test")
    spool = spool_on(pipe.out, memory=8 * EVENT, spill=1 << 20)
    write_events(spool, range(100))
    assert spool.dropped > 0 and not spool.spilling
    spool.abandon()
    spool.finish()
    (warning,) = spool.warnings  # type: ignore[attr-defined]
    assert warning.endswith(
        "because the 7.812 KiB buffer was full and no spill file could be made "
        "(No such file or directory)"
    )


def test_a_reader_gone_is_a_broken_pipe_on_the_main_thread(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=1 << 20)
    os.close(pipe.read_fd)
    with pytest.raises(BrokenPipeError):  # at a flush (written at once) or at the drain
        write_events(spool, range(20))
        spool.drain()
    with pytest.raises(BrokenPipeError):
        spool.flush()
    spool.finish()


def test_other_write_errors_are_one_sentence() -> None:
    with open("/dev/full", "wb") as full:
        spool = spool_on(full, memory=1 << 20)
        write_events(spool, range(5))
        with pytest.raises(OutputError) as raised:
            spool.drain()
    assert str(raised.value) == "cannot write to stdout: No space left on device"
    spool.finish()


def test_abandon_does_not_wait_for_a_blocked_stdout(pipe: Pipe) -> None:
    spool = spool_on(pipe.out, memory=1 << 20)
    write_events(spool, range(100))  # more than the pipe holds: the writer is blocked
    wait_until(lambda: pipe_bytes(pipe.read_fd) > 0, what="a first write")  # no more fits
    spool.abandon()
    spool.finish()  # returns although stdout is never read
    assert spool.dropped == 0


def test_a_stream_without_a_descriptor_is_written_by_the_thread() -> None:
    out = io.BytesIO()
    spool = spool_on(out, memory=1 << 20)
    assert not spool.isatty()
    with pytest.raises(io.UnsupportedOperation):
        spool.fileno()
    text = spool.text()
    text.write("caf\u00e9\n")
    spool.commit()
    write_events(spool, range(3))
    spool.drain()
    spool.finish()
    assert out.getvalue().split(b"\n")[0] == "caf\u00e9".encode()
    assert len(out.getvalue().splitlines()) == 4


def test_sizes_on_the_command_line() -> None:
    size = ByteSize()
    assert [size.convert(v, None, None) for v in ("0", "512K", "64M", "1G", "1.5M", "64MiB")] == [
        0,
        512 << 10,
        64 << 20,
        1 << 30,
        3 << 19,
        64 << 20,
    ]
    for bad in ("", "-1K", "12Q", "M", "inf"):
        with pytest.raises(click.BadParameter):
            size.convert(bad, None, None)
    # The options' defaults are the pipeline's.
    from kazoo_tail.cli.commands import tail_command

    defaults = {p.name: p.default for p in tail_command.params}
    assert size.convert(defaults["buffer_size"], None, None) == OutputOptions().buffer_size
    assert size.convert(defaults["spill_size"], None, None) == OutputOptions().spill_size
    assert [format_size(n) for n in (64 << 20, 1 << 30, 100, 1536)] == [
        "64 MiB",
        "1 GiB",
        "100 bytes",
        "1.5 KiB",
    ]


def test_a_reader_gone_is_noticed_in_a_flood_with_no_flush_between_events(pipe: Pipe) -> None:
    """A tail skips the flush while frames keep coming; the writer's error must still come
    out, rather than the events filling the buffer and the disk for nothing."""
    spool = spool_on(pipe.out, memory=1 << 20, spill=1 << 30)
    os.close(pipe.read_fd)
    number = 0

    def flood() -> None:
        nonlocal number
        while True:  # commits only, as Pipeline.handle does
            spool.write(event(number))
            spool.commit()
            number += 1

    with pytest.raises(BrokenPipeError):
        flood()  # without the check it never ends: the spill file takes a gigabyte first
    spool.abandon()
    spool.finish()


def test_a_ctrl_c_during_the_drop_report_does_not_report_the_drops_twice(pipe: Pipe) -> None:
    """The signal comes while the sentence is being written, as when a user presses Ctrl-C on
    seeing it: it is held until the report is done, so finish() has nothing more to say."""
    warnings: list[str] = []

    def warn_and_be_interrupted(sentence: str) -> None:
        warnings.append(sentence)
        if len(warnings) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    spool = StdoutSpool(pipe.out, memory=8 * EVENT, spill=0, warn=warn_and_be_interrupted)
    write_events(spool, range(100))
    dropped = spool.dropped
    spool.abandon()
    with pytest.raises(KeyboardInterrupt):
        spool.finish()
    spool.finish()
    assert len(warnings) == 1 and f"dropped {dropped} events" in warnings[0]
    assert spool.dropped == dropped


def test_a_pipe_with_room_is_written_at_once_and_a_full_one_by_the_writer_in_order(
    pipe: Pipe,
) -> None:
    """The direct write to a pipe (without waking the writer) must never block the main
    thread: with room it is in the pipe before flush returns; once the pipe is full, events
    queue for the writer and reach the reader in order."""
    spool = spool_on(pipe.out, memory=1 << 20)
    spool.write(event(0, 300))
    spool.flush()
    assert pipe_bytes(pipe.read_fd) == 300  # written on the main thread, at once
    for number in range(1, 40):  # the page-sized pipe fills; flush never waits
        spool.write(event(number, 300))
        spool.flush()
    assert pipe_bytes(pipe.read_fd) <= 4096
    pipe.read_all()
    spool.drain()
    pipe.close_writer()
    assert pipe.numbers() == list(range(40))
