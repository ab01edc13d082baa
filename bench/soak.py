"""The accounting soak: every event published is printed exactly once, or it falls inside a gap
kazoo-tail announced.

    .venv/bin/python bench/soak.py --seconds 300     # the long run whose figures go in RESULTS.md

The simulator (Kazoo 4.3's defaults: shedding past 50 queued frames, the 5 s send timeout, the
block bucket) publishes a known stream of call events, each with its own ``msg_id``, while
faults are injected at random: dropped sockets, close 1011, a node restart, a stalled node,
shed subscribe replies, and stdout left unread for seconds at a time. The run ends quietly
(faults off, one last event seen on stdout), then the books are balanced:

* printed more than once: a duplicate (must be 0);
* never printed: accounted for only if it was published after the last printed event that
  preceded an announced gap and no later than that gap's end ("events from A to B may have
  been missed": nothing was heard after A's frame until B), or it is among the events the tool
  said it dropped itself; anything else is unaccounted for (must be 0).

The test suite runs a short version of it (tests/test_soak.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig  # noqa: E402

KAZOO_TAIL = str(Path(sys.executable).parent / "kazoo-tail")
FAULTS = ("drop", "close-1011", "restart", "stall", "shed-replies", "pause-stdout")
_STAMP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
GAP = re.compile(rf"events from {_STAMP} to {_STAMP} \(")
DROPPED = re.compile(r"dropped ([\d,]+) events?")


@dataclass
class SoakConfig:
    seconds: float = 10.0
    rate: float = 200.0  # events per second
    mean_fault_interval: float = 1.5
    seed: int = 1
    ping_interval: float = 0.5
    ping_timeout: float = 1.5


@dataclass
class SoakReport:
    published: int = 0
    printed: int = 0
    duplicates: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    in_gaps: int = 0
    dropped_announced: int = 0
    unaccounted: list[str] = field(default_factory=list)
    stderr: str = ""
    returncode: int | None = None
    # (epoch, fault) as injected, and the unaccounted events' publish times: for a post-mortem.
    timeline: list[tuple[float, str]] = field(default_factory=list)
    unaccounted_at: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.faults.items()))
        return [
            f"events published: {self.published:,}; printed: {self.printed:,}; "
            f"printed twice: {self.duplicates}",
            f"faults injected: {sum(self.faults.values())} ({faults})",
            f"gaps announced: {self.gaps}, covering {self.in_gaps:,} events not printed; "
            f"events the tool said it dropped: {self.dropped_announced:,}",
            f"events unaccounted for: {len(self.unaccounted)}",
        ]

    def post_mortem(self) -> list[str]:
        """When faults struck and which unaccounted events they fall near, in UTC."""

        def stamp(epoch: float) -> str:
            return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S.%f")[:-3]

        lines = [f"{stamp(at)} fault {fault}" for at, fault in self.timeline]
        if self.unaccounted_at:
            first, last = min(self.unaccounted_at), max(self.unaccounted_at)
            lines.append(f"unaccounted: published {stamp(first)} .. {stamp(last)}")
        return lines


class _Reader(threading.Thread):
    """Reads the tail's stdout like a pager would: all of it, except while paused."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.data = bytearray()
        self.paused = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            while self.paused.is_set():
                time.sleep(0.02)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                break
            self.data += chunk
        self.done.set()

    def has(self, needle: bytes) -> bool:
        return needle in self.data


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def run_soak(config: SoakConfig, config_dir: Path) -> SoakReport:
    rng = random.Random(config.seed)
    report = SoakReport()
    published: dict[str, float] = {}
    simulator_config = SimulatorConfig(event_rate=0, early_events=False, advertise_ws_url=True)
    with Simulator(simulator_config) as sim:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env.update(
            KAZOO_PASSWORD=DEMO.password,
            KAZOO_TAIL_CONFIG_DIR=str(config_dir),
            KAZOO_TAIL_BACKOFF_INITIAL="0.1",
            KAZOO_TAIL_BACKOFF_CAP="0.5",
        )
        process = subprocess.Popen(
            [
                KAZOO_TAIL,
                "--url",
                sim.crossbar_url,
                "--account-name",
                "demo",
                "--username",
                "demo",
                "-b",
                "call.CHANNEL_CREATE.*",
                "-o",
                "json",
                "--ping-interval",
                str(config.ping_interval),
                "--ping-timeout",
                str(config.ping_timeout),
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.close(write_fd)
        reader = _Reader(read_fd)
        reader.start()
        stderr_lines: list[str] = []
        assert process.stderr is not None
        stderr_pipe = process.stderr
        stderr_thread = threading.Thread(
            target=lambda: stderr_lines.extend(stderr_pipe), daemon=True
        )
        stderr_thread.start()
        try:
            _wait(lambda: any("subscribed to" in line for line in stderr_lines), 30, stderr_lines)
            publishing = threading.Event()
            publishing.set()

            def publish(msg_id: str) -> None:
                published[msg_id] = time.time()
                sim.publish(
                    f"call.{DEMO.account_id}.CHANNEL_CREATE.{msg_id}",
                    "CHANNEL_CREATE",
                    {"call_id": msg_id, "msg_id": msg_id, "account_id": DEMO.account_id},
                )

            def publisher() -> None:
                started = time.monotonic()
                sequence = 0
                while publishing.is_set():
                    publish(f"soak-{sequence}")
                    sequence += 1
                    time.sleep(max(0.0, started + sequence / config.rate - time.monotonic()))

            thread = threading.Thread(target=publisher, daemon=True)
            thread.start()
            ends = time.monotonic() + config.seconds
            # Every kind of fault comes up in each round of len(FAULTS), in a random order, and
            # a round begun is finished: on a slow machine, faults that take long (a stall, a
            # paused stdout) must not crowd the others out of a short run.
            schedule: list[str] = []
            while time.monotonic() < ends or schedule:
                time.sleep(rng.expovariate(1 / config.mean_fault_interval))
                if not schedule:
                    schedule = list(FAULTS)
                    rng.shuffle(schedule)
                fault = schedule.pop()
                report.faults[fault] += 1
                report.timeline.append((time.time(), fault))
                _inject(fault, sim, reader, rng, lambda: _losses(stderr_lines))
            publishing.clear()
            thread.join()
            # Quiet now: wait until the tail is subscribed again, then see one last event out.
            reader.paused.clear()
            sim.set_stalled(False)
            _wait(lambda: _settled(stderr_lines), 90, stderr_lines)
            deadline = time.monotonic() + 60
            while not reader.has(b'"msg_id":"soak-end'):
                if time.monotonic() > deadline:
                    raise AssertionError("the last event never came out: " + "".join(stderr_lines))
                publish(f"soak-end-{len(published)}")
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            report.returncode = process.wait(30)
            stderr_thread.join(10)
            stderr_pipe.close()
            reader.done.wait(10)
            os.close(read_fd)
    report.stderr = "".join(stderr_lines)
    _balance(report, published, bytes(reader.data))
    return report


def _inject(
    fault: str, sim: Simulator, reader: _Reader, rng: random.Random, losses: Callable[[], int]
) -> None:
    if fault == "drop":
        sim.drop_connections()
    elif fault == "close-1011":
        sim.close_connections(1011)
    elif fault == "restart":
        sim.reject_upgrades(503, rng.randint(1, 3))
        sim.close_connections(1001)
    elif fault == "stall":
        # A hung node, until the tail has noticed (its pings go unanswered) and dropped it. A
        # shorter stall is a node that recovered: 4.3 then sheds silently what its mailbox
        # could not hold, which no client can see, so it is not a fault to account for here.
        before = losses()
        sim.set_stalled(True)
        deadline = time.monotonic() + 30
        while losses() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.set_stalled(False)
    elif fault == "shed-replies":
        # The next subscribe replies are lost, as on a busy 4.3 socket; a reconnect makes some.
        sim.shed_replies(rng.randint(1, 2))
        sim.drop_connections()
    elif fault == "pause-stdout":
        reader.paused.set()
        time.sleep(rng.uniform(1.0, 4.0))
        reader.paused.clear()


def _is_loss(line: str) -> bool:
    """A connection lost, or a try to come back that failed (a link lost while it was
    subscribing again is told as the latter)."""
    return " lost (" in line or ": still reconnecting (" in line


def _losses(stderr: list[str]) -> int:
    return sum(1 for line in list(stderr) if _is_loss(line))


def _settled(stderr: list[str]) -> bool:
    """Whether the last outage is over: no loss since the last "reconnected" notice (so the
    gap it opened has been announced)."""
    lines = list(stderr)
    lost = [n for n, line in enumerate(lines) if _is_loss(line)]
    back = [n for n, line in enumerate(lines) if "reconnected to" in line]
    return not lost or (bool(back) and back[-1] > lost[-1])


def _wait(condition: Callable[[], object], timeout: float, stderr: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s; stderr: {''.join(stderr)}")
        time.sleep(0.02)


def _balance(report: SoakReport, published: dict[str, float], stdout: bytes) -> None:
    printed: Counter[str] = Counter()
    for line in stdout.splitlines():
        msg_id = json.loads(line)["data"]["msg_id"]
        printed[msg_id] += 1
    report.published = len(published)
    report.printed = sum(1 for msg_id in printed if msg_id in published)
    report.duplicates = sum(1 for count in printed.values() if count > 1)
    gaps = [(_epoch(a), _epoch(b)) for a, b in GAP.findall(report.stderr)]
    report.gaps = len(gaps)
    report.dropped_announced = sum(int(n.replace(",", "")) for n in DROPPED.findall(report.stderr))
    printed_times = sorted(published[msg_id] for msg_id in printed if msg_id in published)
    windows = []
    for start, end in gaps:
        before = [t for t in printed_times if t <= start]
        windows.append((before[-1] if before else float("-inf"), end))
    missing = sorted((at, msg_id) for msg_id, at in published.items() if msg_id not in printed)
    unexplained = [
        msg_id for at, msg_id in missing if not any(after < at <= end for after, end in windows)
    ]
    report.in_gaps = len(missing) - len(unexplained)
    # Events the tool itself dropped (its buffer full) are told by count, not by name.
    report.unaccounted = unexplained[report.dropped_announced :]
    report.unaccounted_at = [published[msg_id] for msg_id in report.unaccounted]


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = SoakConfig(seconds=args.seconds, rate=args.rate, seed=args.seed)
    with tempfile.TemporaryDirectory() as config_dir:
        report = run_soak(config, Path(config_dir))
    print(f"accounting soak: {config.seconds:.0f}s at {config.rate:.0f} ev/s, seed {config.seed}")
    for line in report.lines():
        print(f"  {line}")
    if report.unaccounted:
        print(f"  first unaccounted: {report.unaccounted[:10]}")
    return 1 if report.unaccounted or report.duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
