"""--summary: what a tail saw, told on stderr when it ends."""

from __future__ import annotations

import time
from collections import Counter

from kazoo_tail.kazoo.events import Event, Notice, NoticeKind


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class LinkSummary:
    """One node's link, when the tail holds several: how long it was subscribed, how often it
    was lost, and how many of the events shown it delivered first."""

    def __init__(self) -> None:
        self.up_for = 0.0
        self.up_since: float | None = None
        self.losses = 0
        self.first = 0

    def uptime(self, now: float) -> float:
        return self.up_for + (now - self.up_since if self.up_since is not None else 0.0)


class Summary:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.gaps: list[float] = []
        self.down_since: float | None = None
        self.links: dict[str, LinkSummary] = {}

    def count(self, event: Event) -> None:
        self.counts[(event.name or "?", event.subscribed_key or "?")] += 1
        if event.via is not None:
            self._link(event.via).first += 1

    def link_notice(self, notice: Notice) -> None:
        """A notice about one of several links (``notice.link``)."""
        if notice.link is None:
            return
        link = self._link(notice.link)
        now = time.monotonic()
        if notice.kind is NoticeKind.SUBSCRIBED:
            if link.up_since is None:
                link.up_since = now
        elif (
            notice.kind in (NoticeKind.DISCONNECTED, NoticeKind.LINK_ENDED)
            and link.up_since is not None
        ):
            link.up_for += now - link.up_since
            link.up_since = None
            link.losses += 1

    def _link(self, label: str) -> LinkSummary:
        return self.links.setdefault(label, LinkSummary())

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
        links = [
            f"  link {label}: subscribed {duration(link.uptime(now))}, lost {link.losses} "
            f"time{'s' if link.losses != 1 else ''}, first with {link.first} "
            f"event{'s' if link.first != 1 else ''}"
            for label, link in self.links.items()
        ]
        if not self.counts:
            return [head, *links]
        width = max(len(name) for name, _ in self.counts)
        rows = [f"  {'events':>8}  {'name':<{width}}  binding"]
        for (name, binding), n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(f"  {n:>8}  {name:<{width}}  {binding}")
        return [head, *links, *rows]
