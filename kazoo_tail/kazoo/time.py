"""Kazoo's clock: timestamps are Gregorian seconds, counted from year 0 rather than 1970."""

from __future__ import annotations

import math
import time
from typing import Any

GREGORIAN_TO_UNIX = 62167219200


def unix_from_gregorian(value: Any) -> float | None:
    """Unix seconds for plausible Gregorian seconds (years 1902 to 2990), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 6e10 < value < 9.4e10:
        return float(value) - GREGORIAN_TO_UNIX
    return None


def utc_stamp(epoch: float, *, round_up: bool = False) -> str:
    """ISO 8601 in UTC to the millisecond, e.g. 2026-12-01T21:30:01.234Z: what a user greps
    logs for, whatever their zone. The end of a window is rounded up and its start down, so
    the window shown never leaves anything out."""
    millis = math.ceil(epoch * 1000) if round_up else math.floor(epoch * 1000)
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
    return f"{whole}.{millis % 1000:03d}Z"
