"""The tail program: resolve the target, run a session, render what it yields.

It raises ``KazooTailError`` subclasses for the CLI boundary to report and returns the exit
code of a normal ending (count or duration reached, or the reader of stdout went away).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions, Pipeline
from kazoo_tail.errors import ExitCode, UsageError
from kazoo_tail.features.record import Recorder
from kazoo_tail.kazoo.catalog import check_binding
from kazoo_tail.kazoo.events import Event, Notice
from kazoo_tail.output.terminal import ReaderWatch, StatusWriter
from kazoo_tail.session.resolve import ConnectionConfig, resolve, session_settings

if TYPE_CHECKING:
    from kazoo_tail.auth.provider import TokenProvider


def run_tail(
    config: ConnectionConfig,
    provider: TokenProvider,
    show: OutputOptions,
    env: Environment,
    status: StatusWriter,
    *,
    record: Path | None = None,
) -> ExitCode:
    from kazoo_tail.session.session import Session

    if not config.bindings:
        raise UsageError("no binding given: pass at least one --binding, e.g. -b 'call.*.*'")
    for binding in config.bindings:
        check_binding(binding)
    pipeline = Pipeline(show, status, env.stdout, env.text_stdout())
    target = resolve(config, provider)
    if config.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")
    recorder = Recorder(record) if record is not None else None
    session = Session(
        session_settings(config, target),
        provider,
        on_frame=recorder.frame if recorder else None,
        keep_fresh=provider.keep_fresh,
    )
    watch = ReaderWatch(env.stdout)
    deadline = time.monotonic() + show.duration if show.duration is not None else None
    try:
        for item in session.events():
            if isinstance(item, Event):
                if pipeline.handle(item):
                    break
                # A flush per event costs a syscall; when the next frame is already here,
                # the next render's flush will carry this one out just as promptly.
                if not session.data_waiting():
                    pipeline.flush()
            elif isinstance(item, Notice):
                pipeline.notice(item)
            else:
                pipeline.flush()
                if recorder is not None:
                    recorder.flush()
                if watch.reader_gone():
                    return reader_gone(env)
            if deadline is not None and time.monotonic() >= deadline:
                break
        pipeline.flush()
    except BrokenPipeError:
        return reader_gone(env)
    finally:
        session.close()
        if recorder is not None:
            recorder.close()
        pipeline.finish()
    return ExitCode.OK


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
