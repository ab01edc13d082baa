"""In-process cost per event, without a socket or a clock in the way (issue 21 item 4).

Frames of a fast-server workload are parsed, de-duplicated and rendered as the tail does, to
/dev/null; prints µs per event (best of the rounds) and function calls per event (counted
with ``sys.setprofile``, which is deterministic where the wall clock on a shared machine is
not). ``--write`` keeps the output, to compare two trees' bytes.

    .venv/bin/python bench/inprocess.py                     # every mode and workload
    .venv/bin/python bench/inprocess.py --modes json,calls --workloads create-calls
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.fastserver import FastServer  # noqa: E402
from kazoo_tail.app.pipeline import OutputOptions, Pipeline  # noqa: E402
from kazoo_tail.kazoo.events import Deduplicator, Event  # noqa: E402
from kazoo_tail.kazoo.wire import parse_frame  # noqa: E402
from kazoo_tail.output.console import make_pretty  # noqa: E402
from kazoo_tail.output.registry import RenderOptions  # noqa: E402
from kazoo_tail.output.terminal import StatusWriter  # noqa: E402

MODES = ("json", "pretty", "calls")
WORKLOADS = ("create-calls", "calls", "objects", "never-hangup")


def payloads(workload: str, count: int) -> list[bytes]:
    """The frames' payloads (the server's frames are unmasked, with a short header)."""
    server = FastServer(count, workload=workload)
    out = []
    for n in range(count):
        frame = server.frame_bytes(n)
        length = frame[1] & 0x7F
        start = 2 if length < 126 else 4 if length == 126 else 10
        out.append(frame[start:])
    return out


def make_handler(mode: str, out: IO[bytes], text_out: IO[str]) -> Callable[[Event], Any]:
    if mode == "json":
        pipeline = Pipeline(OutputOptions(), StatusWriter(io.StringIO()), out, text_out)
        return pipeline.handle
    options = RenderOptions(colour="always", calls=mode == "calls")
    renderer = make_pretty(text_out, options, width=160)
    return renderer.render


def run_once(mode: str, frames: list[bytes], text_out: IO[str], out: IO[bytes]) -> None:
    handle = make_handler(mode, out, text_out)
    dedupe = Deduplicator()
    now = time.time()
    for payload in frames:
        item = parse_frame(payload, now)
        assert isinstance(item, Event)
        if not dedupe.is_duplicate(item):
            handle(item)


def calls_per_event(mode: str, frames: list[bytes]) -> float:
    counted = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal counted
        if event in ("call", "c_call"):
            counted += 1

    with open("/dev/null", "w") as text_out, open("/dev/null", "wb") as out:
        sys.setprofile(count)
        try:
            run_once(mode, frames, text_out, out)
        finally:
            sys.setprofile(None)
    return counted / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write", metavar="DIR", help="keep each mode's output in DIR")
    args = parser.parse_args()
    print(f"{'mode':<8} {'workload':<14} {'µs/event':>9} {'calls/event':>12}")
    for workload in args.workloads.split(","):
        frames = payloads(workload, args.events)
        for mode in args.modes.split(","):
            best = float("inf")
            for _ in range(args.rounds):
                with open("/dev/null", "w") as text_out, open("/dev/null", "wb") as out:
                    start = time.perf_counter()
                    run_once(mode, frames, text_out, out)
                    best = min(best, time.perf_counter() - start)
            if args.write:
                name = Path(args.write) / f"{mode}-{workload}"
                with open(f"{name}.txt", "w") as text_out, open(f"{name}.jsonl", "wb") as out:
                    run_once(mode, frames, text_out, out)
            calls = calls_per_event(mode, frames)
            print(f"{mode:<8} {workload:<14} {best / len(frames) * 1e6:>9.1f} {calls:>12.1f}")


if __name__ == "__main__":
    main()
