"""kazoo-tail's benchmarks: every figure is measured beside its baseline in the same run.

    .venv/bin/python bench/run.py            # all of them, about seven minutes
    .venv/bin/python bench/run.py --quick    # fewer events and rounds, for a smoke test
    .venv/bin/python bench/run.py --only cpu,pretty    # some sections only

Each line prints min / median / max over the rounds and the ratio of the medians to the
baseline. The producers run as separate processes writing to a pipe that this process drains,
the way jq would; the server is bench/fastserver.py, which out-runs every client (checked
first, and printed).
"""

from __future__ import annotations

import argparse
import base64
import compileall
import fcntl
import json
import os
import platform
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench import cluster  # noqa: E402
from bench.fastserver import FastCluster, FastServer  # noqa: E402

BIN = Path(sys.executable).parent
KAZOO_TAIL = str(BIN / "kazoo-tail")
PYTHON = sys.executable
BASELINE = str(Path(__file__).parent / "baseline.py")
ACCOUNT = "4b8c6fec4b2597882c0390202d195419"


def fake_token(exp: float) -> str:
    """A JWT-shaped token; the fast server never checks it, kazoo-tail only reads its claims."""

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"account_id": ACCOUNT, "exp": int(exp), "iss": "kazoo"}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.sig"


TOKEN = fake_token(time.time() + 86400)


def kazoo_tail_cmd(url: str, count: int, *extra: str, binding: str = "call.*.*") -> list[str]:
    return [
        KAZOO_TAIL,
        "--ws-url",
        url,
        "--token",
        TOKEN,
        "-b",
        binding,
        "--count",
        str(count),
        *extra,
    ]


# -- measuring a producer ---------------------------------------------------------------------


# "── 2026-12-03 ──", coloured or not.
DATE_LINE = re.compile(rb"\xe2\x94\x80\xe2\x94\x80 (?:\x1b\[[0-9;]*m)*\d{4}-\d\d-\d\d")


class Drain:
    """Start a producer with stdout on a pipe; read it to the end, timing each line's arrival."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.pid = 0
        self.argv = argv
        self.env = {**os.environ, **(env or {})}

    def run(
        self, keep_times: bool = False, on_line: Callable[[int], None] | None = None
    ) -> tuple[int, float, list[float]]:
        process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env
        )
        self.pid = process.pid
        assert process.stdout is not None
        fd = process.stdout.fileno()
        lines, first = 0, 0.0
        times: list[float] = []
        partial = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            now = time.time()
            if not chunk:
                break
            if not first:
                first = now
            new = chunk.count(b"\n")
            if keep_times:
                # Pretty output's date lines are no events: timing them would pair each
                # event's arrival with the next one's send.
                *complete, partial = (partial + chunk).split(b"\n")
                times.extend(now for line in complete if not DATE_LINE.search(line))
            lines += new
            if on_line is not None:
                on_line(lines)
        end = time.time()
        process.wait()
        process.stdout.close()
        return lines, end - first, times


def rate(argv: list[str], count: int) -> float:
    lines, elapsed, _ = Drain(argv).run()
    assert lines >= count, f"{argv[0]} printed {lines} of {count} lines"
    return count / elapsed


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def report(
    label: str,
    values: list[float],
    unit: str,
    baseline: list[float] | None = None,
    higher_is_better: bool = True,
) -> float | None:
    low, mid, high = summary(values)
    line = f"  {label:<52} min {low:>10,.1f}  median {mid:>10,.1f}  max {high:>10,.1f} {unit}"
    ratio = None
    if baseline is not None:
        ratio = mid / statistics.median(baseline)
        line += f"   {ratio:.2f}x baseline"
    print(line, flush=True)
    return ratio


# -- the benchmarks ---------------------------------------------------------------------------


def server_speed(count: int) -> None:
    """The server must out-run every client: measure it with a reader that only counts bytes."""
    import socket

    values = []
    for _ in range(3):
        server = FastServer(count).start()
        sock = socket.create_connection(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        subscribe = json.dumps(
            {
                "action": "subscribe",
                "request_id": "r",
                "auth_token": "t",
                "data": {"account_id": "a", "binding": "call.*.*"},
            }
        ).encode()
        header = bytes([0x81, 0x80 | 126]) + len(subscribe).to_bytes(2, "big") + b"\0\0\0\0"
        sock.sendall(header + subscribe)
        received, started = 0, time.perf_counter()
        expected = count * 1800
        while received < expected:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        values.append(count / (time.perf_counter() - started))
        sock.close()
        server.stop()
    report("fast server alone (events/s it can send)", values, "ev/s")


def json_throughput(count: int, rounds: int) -> None:
    print(f"\nJSON mode throughput ({count:,} events of ~1.8 KB to a drained pipe)", flush=True)
    baseline: list[float] = []
    ours: list[float] = []
    piped: list[float] = []
    for _ in range(rounds):
        server = FastServer(count).start()
        baseline.append(rate([PYTHON, BASELINE, "raw", server.url, str(count)], count))
        server.stop()
        server = FastServer(count).start()
        ours.append(rate(kazoo_tail_cmd(server.url, count, "--json"), count))
        server.stop()
        if shutil.which("jq"):
            server = FastServer(count).start()
            jq_cmd = (
                f"{PYTHON} {BASELINE} raw {server.url} {count} | jq -c 'select(.action==\"event\")'"
            )
            piped.append(rate(["bash", "-c", jq_cmd], count))
            server.stop()
    report("baseline: bare websocket-client loop, frames unparsed", baseline, "ev/s")
    report("kazoo-tail --json (parsed, de-duplicated)", ours, "ev/s", baseline)
    if piped:
        report("raw websocket loop | jq -c 'select(...)'", piped, "ev/s", baseline)
        print(
            f"  kazoo-tail vs the jq pipeline: "
            f"{statistics.median(ours) / statistics.median(piped):.2f}x"
        )


def two_links_throughput(count: int, rounds: int) -> None:
    """Issue 11's figure: links to two nodes, each delivering every event (the same msg_ids,
    about together, as federated nodes do), merged and de-duplicated, against one link, in
    the same run."""
    print(f"\nTwo links vs one ({count:,} events, each sent by both nodes)", flush=True)
    one: list[float] = []
    two: list[float] = []
    for _ in range(rounds):
        server = FastServer(count).start()
        one.append(rate(kazoo_tail_cmd(server.url, count, "--json"), count))
        server.stop()
        cluster = FastCluster(count, nodes=2).start()
        first, second = cluster.urls
        two.append(rate(kazoo_tail_cmd(first, count, "--json", "--ws-url", second), count))
        cluster.stop()
    report("kazoo-tail --json, one link", one, "ev/s")
    report("kazoo-tail --json, two links (every event twice)", two, "ev/s", one)


def pretty_throughput(count: int, rounds: int, workload: str = "calls") -> None:
    """Pretty output against one rich Text per line. The stream is distinct calls (CREATE,
    ANSWER, DESTROY, ten in flight), or with ``create-calls`` a CREATE of a new call every
    event that never hangs up, which keeps the call tracker full (2,048 live)."""
    print(
        f"\nPretty mode throughput ({count:,} events of the {workload!r} workload, colours "
        "forced on, to a file)",
        flush=True,
    )
    baseline: list[float] = []
    ours: list[float] = []
    env = {"TERM": "xterm-256color", "COLUMNS": "160"}
    for _ in range(rounds):
        for argv, values in (
            ([PYTHON, BASELINE, "rich"], baseline),
            ([KAZOO_TAIL, "-o", "pretty", "--color", "always"], ours),
        ):
            server = FastServer(count, workload=workload).start()
            if argv[0] == KAZOO_TAIL:
                cmd = kazoo_tail_cmd(server.url, count, *argv[1:])
            else:
                cmd = [*argv, server.url, str(count)]
            with tempfile.TemporaryFile() as out:
                started = time.perf_counter()
                subprocess.run(
                    cmd,
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                    check=True,
                    env={**os.environ, **env},
                )
                elapsed = time.perf_counter() - started
                out.seek(0)
                lines = out.read().count(b"\n")
            assert lines >= count, f"{cmd[0]} printed {lines} of {count}"
            values.append(count / elapsed)
            server.stop()
    report("baseline: websocket-client + rich Text per line", baseline, "ev/s")
    report("kazoo-tail -o pretty --color always", ours, "ev/s", baseline)


# The README's own examples, and the binding each is tailed with.
CPU_WORKLOADS = (
    ("create-calls", "call.CHANNEL_CREATE.*", "CREATE only, each a new call"),
    ("calls", "call.*.*", "calls: CREATE, ANSWER, DESTROY"),
    ("objects", "object.*.*", "object docs"),
    ("never-hangup", "call.*.*", "calls that never hang up"),
)
CPU_MODES = (
    ("JSON", ("--json",), 2.0),
    ("pretty", ("-o", "pretty", "--color", "always"), 4.0),
    ("--calls", ("-o", "pretty", "--color", "always", "--calls"), 4.0),
    ("board", ("calls",), 4.0),
)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, every thread (clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_run(argv: list[str], server: FastServer, warmup: int, env: dict[str, str]) -> float:
    """µs of CPU per event of a client reading the paced server: user + system time after
    the first ``warmup`` events (start-up left out), to the process's end (``wait4``), over
    the events sent after that mark. Its output is drained through a pipe."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **env}
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    mark: tuple[float, int] | None = None
    while os.read(fd, 1 << 20):
        if mark is None and len(server.sent_at) >= warmup:
            mark = (process_cpu(process.pid), len(server.sent_at))
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    assert process.returncode == 0, f"{argv} exited {process.returncode}"
    assert mark is not None, "the client ended before the warm-up"
    cpu, sent = mark
    return (usage.ru_utime + usage.ru_stime - cpu) / (server.total - sent) * 1e6


def board_cpu_run(argv: list[str], server: FastServer, warmup: int, env: dict[str, str]) -> float:
    """µs of CPU per event of the calls board (``kazoo-tail calls``) reading the paced server,
    on a pseudo-terminal this process drains. The board has no --count: CPU is read from
    ``/proc`` once ``warmup`` events were sent and again once all were (before the server's
    close, which the board would answer by reconnecting), then ``q`` ends it."""
    primary, secondary = pty.openpty()
    # The board asks the terminal its size; a pty's starts at 0 x 0.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(
        argv,
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )
    os.close(secondary)
    mark: tuple[float, int] | None = None
    end: float | None = None
    try:
        while end is None:
            # Not only on output: the board draws at most 4 times a second, and the end is
            # marked on the server's last send, not up to a redraw later.
            if select.select([primary], [], [], 0.01)[0]:
                try:
                    os.read(primary, 1 << 20)
                except OSError:  # the board closed the terminal early
                    break
            sent = len(server.sent_at)
            if mark is None and sent >= warmup:
                mark = (process_cpu(process.pid), sent)
            if sent >= server.total:
                end = process_cpu(process.pid)
        os.write(primary, b"q")
        while True:  # the board puts the terminal back as it leaves
            try:
                if not os.read(primary, 1 << 20):
                    break
            except OSError:
                break
    finally:
        process.wait()
        os.close(primary)
    assert process.returncode == 0, f"{argv} exited {process.returncode}"
    assert mark is not None and end is not None, "the board ended before all events were sent"
    cpu, sent = mark
    return (end - cpu) / (server.total - sent) * 1e6


def cpu_per_event(events: int, warmup: int, rounds: int) -> dict[tuple[str, str], float]:
    """Issue 21: CPU per event at a paced 1,000 events/s, for each workload and output mode,
    against a bare websocket-client loop writing each frame and flushing (median of the
    rounds; the baseline runs beside each in turn)."""
    print(
        f"\nCPU per event at 1,000 events/s ({events:,} events, the first {warmup:,} left out; "
        f"user + sys of the client; median of {rounds})",
        flush=True,
    )
    env = {"TERM": "xterm-256color", "COLUMNS": "160"}
    # BENCH_CPU_MODES=board: only those columns (beside the bare loop), for work on one mode
    # without the whole table's eight minutes.
    chosen = set(filter(None, os.environ.get("BENCH_CPU_MODES", "").split(",")))
    modes = tuple(mode for mode in CPU_MODES if not chosen or mode[0] in chosen)
    figures: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for workload, binding, _label in CPU_WORKLOADS:
            for mode, extra, _target in (("baseline", (), 0.0), *modes):
                server = FastServer(events, rate=1000, workload=workload).start()
                run = cpu_run
                if mode == "baseline":
                    argv = [PYTHON, BASELINE, "raw-flush", server.url, str(events)]
                elif mode == "board":
                    run = board_cpu_run
                    argv = [KAZOO_TAIL, *extra, "--ws-url", server.url, "--token", TOKEN]
                    argv += ["-b", binding]
                else:
                    argv = kazoo_tail_cmd(server.url, events, *extra, binding=binding)
                figures.setdefault((workload, mode), []).append(run(argv, server, warmup, env))
                server.stop()
    medians = {key: statistics.median(values) for key, values in figures.items()}
    header = f"  {'workload':<32} {'bare loop':>10}"
    for mode, _extra, target in modes:
        header += f" {mode:>10} {'x (max ' + format(target, 'g') + ')':>12}"
    print(header)
    for workload, binding, label in CPU_WORKLOADS:
        base = medians[(workload, "baseline")]
        line = f"  {label:<32} {base:>7.1f} µs"
        for mode, _extra, target in modes:
            ours = medians[(workload, mode)]
            ratio = ours / base
            line += f" {ours:>7.1f} µs {ratio:>6.2f}x {'ok' if ratio <= target else 'OVER':<4}"
        print(f"{line}   (-b {binding})", flush=True)
    return medians


def forward_cpu(events: int, warmup: int, rounds: int) -> None:
    """Issue 23: CPU per event of ``forward`` (each event one HTTP request to a local endpoint
    answering 200, form-data as Kazoo's default), beside the JSON tail of the same stream, at
    a paced 1,000 events/s (median of the rounds)."""
    from kazoo_tail.simulator.hook_endpoint import HookEndpoint

    print(
        f"\nforward: CPU per event at 1,000 events/s ({events:,} events, the first {warmup:,} "
        f"left out; user + sys of the client; median of {rounds})",
        flush=True,
    )
    modes = (("tail --json", ("--json",)), ("forward", ("forward-to",)))
    figures: dict[tuple[str, str], list[float]] = {}
    with HookEndpoint() as endpoint:
        for _ in range(rounds):
            for workload, binding, _label in CPU_WORKLOADS:
                for mode, extra in modes:
                    server = FastServer(events, rate=1000, workload=workload).start()
                    argv = kazoo_tail_cmd(server.url, events, "--json", binding=binding)
                    if extra == ("forward-to",):
                        argv = [KAZOO_TAIL, "forward", "--to", endpoint.url, *argv[1:]]
                    figures.setdefault((workload, mode), []).append(
                        cpu_run(argv, server, warmup, {})
                    )
                    server.stop()
    print(f"  {'workload':<32} {'tail --json':>12} {'forward':>12} {'ratio':>7}")
    for workload, binding, label in CPU_WORKLOADS:
        tail = statistics.median(figures[(workload, "tail --json")])
        ours = statistics.median(figures[(workload, "forward")])
        print(
            f"  {label:<32} {tail:>9.1f} µs {ours:>9.1f} µs {ours / tail:>6.2f}x   (-b {binding})",
            flush=True,
        )


def latency(events: int, rounds: int) -> None:
    print(
        f"\nLatency at 100 events/s ({events} events; arrival in a reader process minus the "
        "server's send time)",
        flush=True,
    )
    results: dict[str, list[float]] = {"bare": [], "json": [], "pretty": []}
    for _ in range(rounds):
        for name in results:
            server = FastServer(events, rate=100).start()
            if name == "bare":
                argv = [PYTHON, BASELINE, "raw-flush", server.url, str(events)]
            elif name == "json":
                argv = kazoo_tail_cmd(server.url, events, "--json")
            else:
                argv = kazoo_tail_cmd(server.url, events, "-o", "pretty", "--color", "always")
            _, _, arrivals = Drain(argv).run(keep_times=True)
            server.stop()
            delays = sorted((a - s) * 1000 for a, s in zip(arrivals, server.sent_at))
            results[name].append(delays[int(len(delays) * 0.99) - 1])
    report(
        "baseline: bare loop flushing every event, p99",
        results["bare"],
        "ms",
        higher_is_better=False,
    )
    bare = statistics.median(results["bare"])
    for name, target in (("json", 2.0), ("pretty", 5.0)):
        report(f"kazoo-tail {name} mode, p99", results[name], "ms", results["bare"])
        above = statistics.median(results[name]) - bare
        print(f"    p99 above the baseline: {above:+.2f} ms (target < {target:.0f} ms)")


def wall_ms(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return (time.perf_counter() - started) * 1000


def timed_pair(
    baseline: list[str], ours: list[str], env: dict[str, str] | None = None, runs: int = 10
) -> tuple[list[float], list[float]]:
    """Wall times of two commands, run alternately so that machine noise hits both alike."""
    base, mine = [], []
    for _ in range(runs):
        base.append(wall_ms(baseline))
        mine.append(wall_ms(ours, env))
    return base, mine


def first_subscribe_ms(config: Path) -> float:
    """From spawning kazoo-tail (cached token) to its subscribe frame reaching the server."""
    server = FastServer(1).start()
    started = time.time()
    subprocess.run(
        [KAZOO_TAIL, "--ws-url", server.url, "-b", "call.*.*", "--count", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env={**os.environ, "KAZOO_TAIL_CONFIG_DIR": str(config)},
    )
    server.stop()
    assert server.subscribed_at, "no subscribe frame arrived"
    return (server.subscribed_at[0] - started) * 1000


def startup(runs: int) -> None:
    print(f"\nStart-up ({runs} runs each, alternating with the baseline; wall time)", flush=True)
    import_click = [PYTHON, "-c", "import click"]
    base, ours = timed_pair(import_click, [KAZOO_TAIL, "--help"], runs=runs)
    report("baseline: python -c 'import click'", base, "ms")
    report("kazoo-tail --help", ours, "ms", base)
    base, ours = timed_pair(import_click, [KAZOO_TAIL, "--bogus"], runs=runs)
    report("baseline: python -c 'import click'", base, "ms")
    report("a usage error (kazoo-tail --bogus)", ours, "ms", base)
    complete_env = {
        "_KAZOO_TAIL_COMPLETE": "bash_complete",
        "COMP_WORDS": "kazoo-tail --bi",
        "COMP_CWORD": "1",
    }
    base, ours = timed_pair(import_click, [KAZOO_TAIL], complete_env, runs=runs)
    report("baseline: python -c 'import click'", base, "ms")
    report("a completion request (kazoo-tail --bi<TAB>)", ours, "ms", base)

    config = Path(tempfile.mkdtemp())
    (config / "profiles.json").write_text(
        json.dumps(
            {"default": {"url": "http://127.0.0.1:9", "account_name": "demo", "username": "demo"}}
        )
    )
    tokens = config / "tokens.json"
    tokens.write_text(
        json.dumps({"http://127.0.0.1:9 demo demo": {"token": TOKEN, "account_id": ACCOUNT}})
    )
    tokens.chmod(0o600)
    config.chmod(0o700)
    with_ws, values = [], []
    for _ in range(runs):
        with_ws += timed_pair(
            [PYTHON, "-c", "import click, websocket"], [PYTHON, "-c", ""], runs=1
        )[0]
        values.append(first_subscribe_ms(config))
    report("baseline: python -c 'import click, websocket'", with_ws, "ms")
    report("kazoo-tail with a cached token: start to first subscribe", values, "ms", with_ws)


def memory(count: int) -> None:
    print(f"\nMemory (kazoo-tail --json over {count:,} events)", flush=True)
    server = FastServer(count).start()
    samples: dict[str, int] = {}
    drain = Drain(kazoo_tail_cmd(server.url, count, "--json"))

    def rss(field: str) -> int:
        with open(f"/proc/{drain.pid}/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
        return 0

    marks = {count // 10: "at 10%", count - count // 100: "at 99%"}

    def on_line(lines: int) -> None:
        for mark, label in list(marks.items()):
            if lines >= mark:
                samples[label] = rss("VmRSS:")
                samples["peak"] = rss("VmHWM:")
                del marks[mark]

    drain.run(on_line=on_line)
    server.stop()
    mb = {k: v / 1024 for k, v in samples.items()}
    print(
        f"  RSS at {count // 10:,} events: {mb['at 10%']:.1f} MB; at "
        f"{count - count // 100:,}: {mb['at 99%']:.1f} MB "
        f"(growth {mb['at 99%'] - mb['at 10%']:+.1f} MB); peak {mb['peak']:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds")
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        help=f"comma-separated, of: {', '.join(SECTIONS)}",
    )
    args = parser.parse_args()
    quick = args.quick
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    # An installed wheel ships compiled bytecode; an editable checkout may not have it (and
    # PYTHONDONTWRITEBYTECODE keeps Python from caching it), which would time the compiler.
    compileall.compile_dir(str(Path(__file__).parent.parent / "kazoo_tail"), quiet=1)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    if "server" in only:
        server_speed(20_000 if quick else 200_000)
    if "json" in only:
        json_throughput(20_000 if quick else 200_000, 1 if quick else 3)
    if "links" in only:
        two_links_throughput(20_000 if quick else 200_000, 1 if quick else 3)
    if "pretty" in only:
        pretty_throughput(5_000 if quick else 50_000, 1 if quick else 3)
        pretty_throughput(5_000 if quick else 50_000, 1 if quick else 3, "create-calls")
    if "cpu" in only:
        cpu_per_event(1_500 if quick else 10_000, 300 if quick else 1_000, 1 if quick else 2)
    if "forward" in only:
        forward_cpu(1_500 if quick else 5_000, 300 if quick else 1_000, 1 if quick else 2)
    if "latency" in only:
        latency(100 if quick else 500, 1 if quick else 3)
    if "startup" in only:
        startup(3 if quick else 15)
    if "memory" in only:
        memory(100_000 if quick else 1_000_000)
    if "cluster" in only:
        cluster.main(quick)


SECTIONS = (
    "server",
    "json",
    "links",
    "pretty",
    "cpu",
    "forward",
    "latency",
    "startup",
    "memory",
    "cluster",
)


if __name__ == "__main__":
    main()
