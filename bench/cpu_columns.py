"""Some columns (and workloads) of bench/run.py's CPU table, e.g. while working on one mode:

    .venv/bin/python bench/cpu_columns.py --modes JSON,--calls
    .venv/bin/python bench/cpu_columns.py --modes=--calls --workloads create-calls

The table, its runs and its baseline are bench/run.py's own; only the columns are chosen.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = [mode for mode, _extra, _target in run.CPU_MODES]
    workloads = [workload for workload, _binding, _label in run.CPU_WORKLOADS]
    parser.add_argument("--modes", default=",".join(modes), help=f"of: {', '.join(modes)}")
    parser.add_argument(
        "--workloads", default=",".join(workloads), help=f"of: {', '.join(workloads)}"
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    chosen, picked = args.modes.split(","), args.workloads.split(",")
    unknown = (set(chosen) - set(modes)) | (set(picked) - set(workloads))
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    # The table's own loops read these: narrowing them chooses the columns and rows.
    # (Typed as the whole tables, which a selection is not: hence the casts.)
    run.CPU_MODES = cast(Any, tuple(mode for mode in run.CPU_MODES if mode[0] in chosen))
    run.CPU_WORKLOADS = cast(Any, tuple(row for row in run.CPU_WORKLOADS if row[0] in picked))
    run.cpu_per_event(args.events, args.warmup, args.rounds)


if __name__ == "__main__":
    main()
