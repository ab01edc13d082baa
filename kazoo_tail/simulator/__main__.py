"""``python -m kazoo_tail.simulator``: a standalone fake Kazoo for demos and manual testing."""

from __future__ import annotations

from .command import build


def main(argv: list[str] | None = None) -> None:
    build(advertise_ws_url=False).main(args=argv, prog_name="python -m kazoo_tail.simulator")


if __name__ == "__main__":
    main()
