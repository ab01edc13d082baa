"""Run a simulator in the foreground until Ctrl-C or SIGTERM (used by ``python -m``)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from .accounts import DEMO
from .core import Simulator, SimulatorConfig


def blackhole_lines(sim: Simulator) -> list[str]:
    urls = sim.blackhole_urls
    if len(urls) == 1:
        return [f"  blackhole: {urls[0]}"]
    return [
        f"  {'blackhole:' if number == 1 else '':<10} {url} (node {number} of {len(urls)})"
        for number, url in enumerate(urls, start=1)
    ]


def banner(sim: Simulator) -> str:
    d = DEMO
    return "\n".join(
        [
            "Kazoo simulator running (Ctrl-C to stop)",
            f"  crossbar:  {sim.crossbar_url}/v2",
            *blackhole_lines(sim),
            f"  account:   {d.account_name} ({d.account_id}), realm {d.realm}",
            f"  login:     username {d.username!r} password {d.password!r}",
            f"  also:      username {d.admin_username!r} password {d.admin_password!r}",
            f"  api key:   {d.api_key}",
            f"  events:    {sim.config.event_rate:g}/s",
        ]
    )


def serve_forever(config: SimulatorConfig, out: TextIO | None = None) -> None:
    """Start a simulator, describe it on ``out`` (stderr), block until interrupted."""
    stream = out if out is not None else sys.stderr
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    sim: Simulator | None = None
    try:
        sim = Simulator(config).start()
        print(banner(sim), file=stream, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if sim is not None:
            sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
