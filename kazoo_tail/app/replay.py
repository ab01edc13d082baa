"""Replay a recording made with --record through the same filters and output as a live tail."""

from __future__ import annotations

import time
from pathlib import Path

from kazoo_tail.app.environment import Environment
from kazoo_tail.app.pipeline import OutputOptions, Pipeline
from kazoo_tail.app.tail import reader_gone
from kazoo_tail.errors import ExitCode
from kazoo_tail.features.record import read_recording
from kazoo_tail.kazoo.events import Deduplicator, Event
from kazoo_tail.kazoo.wire import BadFrame, parse_frame
from kazoo_tail.net.frames import OP_TEXT
from kazoo_tail.output.terminal import StatusWriter


def run_replay(
    path: Path,
    show: OutputOptions,
    env: Environment,
    status: StatusWriter,
    *,
    realtime: bool = False,
    dedupe: bool = True,
) -> ExitCode:
    pipeline = Pipeline(show, status, env.stdout, env.text_stdout())
    deduplicator = Deduplicator() if dedupe else None
    first_at: float | None = None
    started = time.monotonic()
    bad = 0
    try:
        for received_at, opcode, payload in read_recording(path, status.warning):
            if realtime:
                first_at = received_at if first_at is None else first_at
                delay = (received_at - first_at) - (time.monotonic() - started)
                if delay > 0:
                    pipeline.flush()
                    time.sleep(delay)
            if opcode != OP_TEXT:
                bad += 1
                continue
            try:
                item = parse_frame(payload, received_at)
            except BadFrame:
                bad += 1
                continue
            if not isinstance(item, Event):
                continue
            if deduplicator is not None and deduplicator.is_duplicate(item):
                continue
            if pipeline.handle(item):
                break
        pipeline.flush()
    except BrokenPipeError:
        return reader_gone(env)
    finally:
        pipeline.finish()
    if bad:
        status.warning(f"skipped {bad} frame{'s' if bad != 1 else ''} that were not events")
    return ExitCode.OK
