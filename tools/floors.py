"""Print the lowest versions pyproject.toml allows, as ``name==version`` lines, for this Python.

CI installs these exactly and runs the smoke tier with them, so each lower bound in
pyproject.toml is tested rather than hoped for, and pyproject.toml stays the one place the
floors are written. Requirements whose marker rules out this Python (click 8.1 on 3.10 and
later, say) are left out. ``--extra test`` adds that extra's floors.

Run it with the interpreter whose floors are wanted: it needs ``packaging`` and, before 3.11,
``tomli``, which pytest already brings into a test environment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.9 and 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def floors(requirements: list[str]) -> list[str]:
    pins = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        lows = [s.version for s in requirement.specifier if s.operator in (">=", "==", "~=")]
        if len(lows) != 1:
            # A floor is what this script is for: a requirement without one is a mistake.
            raise SystemExit(f"{text!r} in pyproject.toml has no single lower bound")
        pins.append(f"{requirement.name}=={lows[0]}")
    return pins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="also an extra's floors")
    args = parser.parse_args()
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in args.extra:
        requirements += project["optional-dependencies"][extra]
    print("\n".join(floors(requirements)))


if __name__ == "__main__":
    main()
