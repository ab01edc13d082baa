"""What a busy 4.3 cluster does to a tail, measured against the simulator's 4.3 defaults:

* subscribe pacing: N subscribes on one socket against blackhole's bucket (100 at once, then a
  block of 10 each second), as a ratio of the bucket's own floor, ``ceil((N - 100) / 10)`` s;
* a stalled reader: stdout left unread for a while at a steady event rate, then read; every
  event must come out (4.3 sheds frames past 50 queued and kills a socket whose send blocks 5 s,
  so a tail that stopped reading its socket would lose them).

Run by bench/run.py; ``python bench/cluster.py`` runs these two alone.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig  # noqa: E402
from kazoo_tail.simulator.accounts import Account  # noqa: E402

KAZOO_TAIL = str(Path(sys.executable).parent / "kazoo-tail")
BINDINGS = ("call.CHANNEL_CREATE.*", "call.CHANNEL_DESTROY.*", "object.doc_created.user")


def _env(config_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KAZOO_PASSWORD=DEMO.password, KAZOO_TAIL_CONFIG_DIR=config_dir)
    return env


def _login(sim: Simulator) -> list[str]:
    return ["--url", sim.crossbar_url, "--account-name", "demo", "--username", "demo"]


def pacing(accounts: int) -> float:
    """Seconds from the first subscribe to the last reply, over the bucket's floor."""
    config = SimulatorConfig(event_rate=0, early_events=False, advertise_ws_url=True)
    with Simulator(config) as sim, tempfile.TemporaryDirectory() as config_dir:
        for n in range(accounts - 1 - len(DEMO.sub_account_ids)):
            sim.directory.add_account(
                Account(f"{n:032x}", f"customer-{n}", f"c{n}.example.com", DEMO.account_id)
            )
        count = accounts * len(BINDINGS)
        argv = [KAZOO_TAIL, *_login(sim), "--descendants", "--duration", "100000"]
        for binding in BINDINGS:
            argv += ["-b", binding]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(config_dir),
        )
        assert process.stderr is not None
        first = None
        while first is None:
            if sim.stats.subscribes:
                first = time.monotonic()
            time.sleep(0.005)
        for line in process.stderr:
            if "subscribed to" in line:
                break
        took = time.monotonic() - first
        sent = sim.stats.subscribes
        process.terminate()
        process.wait()
    floor = max(1, math.ceil((count - 100) / 10))
    print(
        f"  {count:,} subscribes on one socket: {took:.1f}s against the bucket's floor of "
        f"{floor}s: {took / floor:.2f}x (target <= 1.2x); frames sent {sent:,}",
        flush=True,
    )
    return took / floor


def stalled_reader(seconds: float, rate: float) -> int:
    """Events lost when stdout is not read for ``seconds`` at ``rate`` events a second."""
    config = SimulatorConfig(
        event_rate=0, early_events=False, advertise_ws_url=True, max_queued_messages=50
    )
    with Simulator(config) as sim, tempfile.TemporaryDirectory() as config_dir:
        read_fd, write_fd = os.pipe()
        process = subprocess.Popen(
            [KAZOO_TAIL, *_login(sim), "-b", "call.CHANNEL_CREATE.*", "-o", "json"],
            stdout=write_fd,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(config_dir),
        )
        os.close(write_fd)
        assert process.stderr is not None
        stderr: list[str] = []
        for line in process.stderr:
            stderr.append(line)
            if "subscribed to" in line:
                break
        drain = threading.Thread(target=lambda: stderr.extend(process.stderr or ()), daemon=True)
        drain.start()
        total = int(seconds * rate)
        started = time.monotonic()
        for n in range(total):
            call_id = f"stall-{n}"
            sim.publish(
                f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
                "CHANNEL_CREATE",
                {"call_id": call_id, "msg_id": call_id, "account_id": DEMO.account_id},
            )
            time.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
        data = bytearray()
        last = b'"stall-%d"' % (total - 1)
        # Read until the last event is out, or nothing more came for 15 s (it was lost).
        while last not in data and select.select([read_fd], [], [], 15)[0]:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            data += chunk
        process.terminate()
        process.wait()
        os.close(read_fd)
        drain.join(5)
    printed = len({line for line in bytes(data).splitlines() if line})
    lost = total - printed
    warnings = [line.strip() for line in stderr if "warning" in line]
    print(
        f"  stdout unread for {seconds:.0f}s at {rate:,.0f} events/s: published {total:,}, "
        f"printed {printed:,}, lost {lost:,} (target 0); warnings: {warnings or 'none'}",
        flush=True,
    )
    return lost


def main(quick: bool = False) -> None:
    print("\nSubscribe pacing against blackhole's bucket", flush=True)
    pacing(41)
    if not quick:
        pacing(501)
    print("\nA stalled reader on a 4.3-like server", flush=True)
    stalled_reader(5 if quick else 60, 1000)


if __name__ == "__main__":
    main()
