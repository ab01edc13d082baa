"""--summary: what a tail saw, told on stderr when it ends."""

from __future__ import annotations

import time
from collections import Counter

from kazoo_tail.kazoo.events import Event


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Summary:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.gaps: list[float] = []
        self.down_since: float | None = None

    def count(self, event: Event) -> None:
        self.counts[(event.name or "?", event.subscribed_key or "?")] += 1

    def disconnected(self) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()

    def gap(self, seconds: float) -> None:
        """A gap that ended with a reconnect."""
        self.gaps.append(seconds)
        self.down_since = None

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        now = time.monotonic()
        elapsed = now - self.started
        if self.down_since is not None:  # still disconnected at the end: that gap counts too
            self.gaps.append(now - self.down_since)
            self.down_since = None
        lost = sum(self.gaps)
        gaps = f", {len(self.gaps)} gap{'s' if len(self.gaps) != 1 else ''}"
        gaps += f" ({', '.join(f'{g:.1f}s' for g in self.gaps[:10])})" if self.gaps else ""
        head = (
            f"summary: {total} event{'s' if total != 1 else ''} in {duration(elapsed)}, "
            f"connected {duration(elapsed - lost)}{gaps}"
        )
        if not self.counts:
            return [head]
        width = max(len(name) for name, _ in self.counts)
        rows = [f"  {'events':>8}  {'name':<{width}}  binding"]
        for (name, binding), n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(f"  {n:>8}  {name:<{width}}  {binding}")
        return [head, *rows]
