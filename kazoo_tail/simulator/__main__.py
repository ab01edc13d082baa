"""``python -m kazoo_tail.simulator``: a standalone fake Kazoo for demos and manual testing."""

from __future__ import annotations

from kazoo_tail.cli.help import SectionedCommand, main_standalone

from .command import build

PROG_NAME = "python -m kazoo_tail.simulator"


def main(argv: list[str] | None = None) -> None:
    # The client's help formatter, so that both ways in show the same page and errors.
    main_standalone(build(advertise_ws_url=False, command_class=SectionedCommand), PROG_NAME, argv)


if __name__ == "__main__":
    main()
