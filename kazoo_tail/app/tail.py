"""The tail program: resolve the target, run a session, render what it yields.

It raises ``KazooTailError`` subclasses for the CLI boundary to report and returns the exit
code of a normal ending (count or duration reached, or the reader of stdout went away).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions, Pipeline
from kazoo_tail.errors import ExitCode, KazooTailError, OutputError, UsageError
from kazoo_tail.features.record import Recorder
from kazoo_tail.kazoo.catalog import check_binding
from kazoo_tail.kazoo.events import Event, Notice
from kazoo_tail.output.spool import StdoutSpool
from kazoo_tail.output.terminal import ReaderWatch, StatusWriter
from kazoo_tail.session.resolve import ConnectionConfig, Target, resolve, session_for

if TYPE_CHECKING:
    from kazoo_tail.auth.provider import TokenProvider
    from kazoo_tail.session.session import Session


def run_tail(
    config: ConnectionConfig,
    provider: TokenProvider,
    show: OutputOptions,
    env: Environment,
    status: StatusWriter,
    *,
    record: Path | None = None,
) -> ExitCode:
    check_bindings(config)
    # Between the socket and stdout: the websocket is read however slowly stdout is.
    spool = StdoutSpool(
        env.stdout, memory=show.buffer_size, spill=show.spill_size, warn=status.warning
    )
    try:
        encoding, errors = env.stdout_encoding()
        text = spool.text(encoding, errors)
        pipeline = Pipeline(show, status, cast(IO[bytes], spool), text, commit=spool.commit)
        target, recorder = connect_parts(config, provider, status, record)
    except BaseException:
        spool.abandon()
        raise
    session = session_for(config, target, provider, on_frame=recorder.frame if recorder else None)
    left = False
    try:
        try:
            left = _follow(session, pipeline, recorder, ReaderWatch(env.stdout), show.duration)
        finally:
            session.close()  # before waiting on stdout: nothing more is read
            if recorder is not None:
                recorder.close()
    except KazooTailError as exc:
        if not isinstance(exc, OutputError):
            try:
                deliver_stdout(pipeline, spool)  # what was received is still shown
            except OutputError:
                pass  # the error that ended the tail is the one to report
        raise
    else:
        # A normal end waits for stdout to take everything (Ctrl-C still ends it).
        left = left or deliver_stdout(pipeline, spool)
    finally:
        spool.abandon()  # Ctrl-C or SIGTERM: end now, whatever stdout holds
        spool.finish()  # drops not yet reported
        pipeline.finish()
    return reader_gone(env) if left else ExitCode.OK


def connect_parts(
    config: ConnectionConfig, provider: TokenProvider, status: StatusWriter, record: Path | None
) -> tuple[Target, Recorder | None]:
    """Where a live program connects and what it subscribes (said once when TLS is not
    verified), and its --record file opened."""
    target = resolve(config, provider)
    warn_if_unverified(config, status)
    return target, Recorder(record) if record is not None else None


def warn_if_unverified(config: ConnectionConfig, status: StatusWriter) -> None:
    if config.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")


def check_bindings(config: ConnectionConfig) -> None:
    if not config.bindings:
        raise UsageError("no binding given: pass at least one --binding, e.g. -b 'call.*.*'")
    for binding in config.bindings:
        check_binding(binding)


def _follow(
    session: Session,
    pipeline: Pipeline,
    recorder: Recorder | None,
    watch: ReaderWatch,
    duration: float | None,
) -> bool:
    """Render what the session yields until --count or --duration, or the session's end;
    True if the reader of stdout went away."""
    deadline = time.monotonic() + duration if duration is not None else None
    try:
        # Typed loosely: the class test narrows as isinstance would, without a call per event.
        items: Iterator[Any] = session.events()
        for item in items:
            if item.__class__ is Event:
                if pipeline.handle(item):
                    break
                # A flush per event costs a lock; when the next frame is already here, the
                # next render's flush will hand this one over just as promptly.
                if not session.data_waiting():
                    pipeline.flush()
            elif isinstance(item, Notice):
                pipeline.notice(item)
            else:
                pipeline.flush()
                if recorder is not None:
                    recorder.flush()
                if watch.reader_gone():
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                break
        pipeline.flush()
    except BrokenPipeError:
        return True
    return False


class Flushable(Protocol):
    def flush(self) -> None: ...


def deliver_stdout(output: Flushable, spool: StdoutSpool) -> bool:
    """Wait until stdout has taken everything written; True if its reader went away
    meanwhile."""
    try:
        output.flush()
        spool.drain()
    except BrokenPipeError:
        return True
    return False


def reader_gone(env: Environment) -> ExitCode:
    """The reader of stdout left (``| head``): end quietly, and keep Python's exit-time flush
    of the dead pipe from printing an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, env.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return ExitCode.OK
