"""Kazoo's clock: timestamps are Gregorian seconds, counted from year 0 rather than 1970."""

from __future__ import annotations

from typing import Any

GREGORIAN_TO_UNIX = 62167219200


def unix_from_gregorian(value: Any) -> float | None:
    """Unix seconds for plausible Gregorian seconds (years 1902 to 2990), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 6e10 < value < 9.4e10:
        return float(value) - GREGORIAN_TO_UNIX
    return None
