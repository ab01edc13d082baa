"""Function calls per event of the real process in steady state (issue 21 item 4): kazoo-tail
under cProfile reading the paced fast server at 1,000 events/s, a long run less a short one,
so that start-up and the end are left out. Deterministic where CPU time is not.

    .venv/bin/python bench/loopcalls.py                       # JSON, calls workload
    .venv/bin/python bench/loopcalls.py --workload create-calls --top 25
    PYTHONPATH=<an export of another tree> .venv/bin/python bench/loopcalls.py
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from bench.fastserver import FastServer  # noqa: E402
from bench.run import CPU_WORKLOADS, TOKEN  # noqa: E402


def profiled(events: int, workload: str, extra: list[str], out: Path) -> pstats.Stats:
    binding = next(b for w, b, _label in CPU_WORKLOADS if w == workload)
    server = FastServer(events, rate=1000, workload=workload).start()
    try:
        argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "kazoo_tail"]
        argv += ["--ws-url", server.url, "--token", TOKEN, "-b", binding]
        argv += ["--count", str(events), *extra]
        # Onto a pipe, as in the CPU table: the spool writes a pipe itself, else its thread does.
        # Run from elsewhere: ``-m`` puts the working directory first on the path, ahead of a
        # PYTHONPATH that chooses the tree to measure (this one's, unless one is given).
        env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
        subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
            env=env,
            cwd=out.parent,
        )
    finally:
        server.stop()
    return pstats.Stats(str(out))


def counts(stats: pstats.Stats) -> dict[str, int]:
    table: dict[str, int] = {}
    for (path, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        table[f"{Path(path).name}:{line}({name})"] = row[1]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="calls")
    parser.add_argument("--long", type=int, default=2500)
    parser.add_argument("--short", type=int, default=500)
    parser.add_argument("--top", type=int, default=0, help="show the busiest functions")
    parser.add_argument("extra", nargs="*", default=["--json"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        long = counts(profiled(args.long, args.workload, args.extra, Path(tmp) / "long"))
        short = counts(profiled(args.short, args.workload, args.extra, Path(tmp) / "short"))
    events = args.long - args.short
    per = {name: (n - short.get(name, 0)) / events for name, n in long.items()}
    print(f"{args.workload} {' '.join(args.extra)}: {sum(per.values()):.1f} calls per event")
    for name, value in sorted(per.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {value:6.2f}  {name}")


if __name__ == "__main__":
    main()
