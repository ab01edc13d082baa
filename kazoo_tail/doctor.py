"""kazoo-tail doctor and sockets (to be written)."""

from __future__ import annotations

from typing import IO

from kazoo_tail.errors import ExitCode
from kazoo_tail.tail import TailRequest


def run_doctor(request: TailRequest, out: IO[str]) -> ExitCode:
    raise NotImplementedError


def list_sockets(request: TailRequest, out: IO[str]) -> ExitCode:
    raise NotImplementedError
