"""The gap ledger, sans I/O: from when each link heard everything and when the tool itself did
not run, the windows in which events may have been missed.

A link *covers* a stretch of time when it was subscribed to everything and read what the
server sent meanwhile. Events are missed only where no link covers, or where the tool did not
run at all (a stall: SIGSTOP, Ctrl-Z, a suspended machine), since then the server may have
shed what it could not send. Nothing counts before the first link subscribed.
"""

from __future__ import annotations

from dataclasses import dataclass

# The outages remembered per link: enough for any window still to be told.
KEPT_OUTAGES = 32


@dataclass(frozen=True)
class Window:
    """A stretch (epoch seconds) when events may have been missed, and how much of it the tool
    itself did not run."""

    start: float
    end: float
    stalled: float = 0.0


class GapLedger:
    def __init__(self, links: int) -> None:
        # Per link, [from, to] outages since the first subscribe; ``to`` None while it lasts.
        self._outages: list[list[list[float | None]]] = [[] for _ in range(links)]
        self._stalls: list[tuple[float, float]] = []
        self._first_up: float | None = None
        # The windows told (the latest ones): no stretch is told twice, and one revealed
        # late, before a window already told, is still told.
        self._told: list[tuple[float, float]] = []
        # Before this, everything counts as told (the oldest windows told are forgotten).
        self._told_floor = float("-inf")

    @property
    def started(self) -> bool:
        """Whether any link has subscribed yet."""
        return self._first_up is not None

    def up(self, link: int, at: float) -> None:
        """``link`` covers from ``at`` on (it subscribed, or proved alive after a stall)."""
        if self._first_up is None:
            self._first_up = at
            for other, outages in enumerate(self._outages):
                if other != link:  # the others cover nothing until they subscribe
                    outages.append([at, None])
            return
        outages = self._outages[link]
        if outages and outages[-1][1] is None:
            outages[-1][1] = max(at, _start(outages[-1]))

    def down(self, link: int, since: float) -> None:
        """``link`` stopped covering at ``since`` (which may lie in the past: a link found
        dead late stopped hearing everything at its last frame)."""
        if self._first_up is None:
            return
        since = max(since, self._first_up)
        outages = self._outages[link]
        if outages and outages[-1][1] is None:
            outages[-1][0] = min(_start(outages[-1]), since)
        else:
            outages.append([since, None])
            del outages[:-KEPT_OUTAGES]

    def covering(self, link: int) -> bool:
        outages = self._outages[link]
        return self._first_up is not None and not (outages and outages[-1][1] is None)

    def stall(self, start: float, end: float) -> None:
        """The tool did not run from ``start`` to ``end``."""
        if self._first_up is None or end <= start:
            return
        self._stalls.append((max(start, self._first_up), end))
        del self._stalls[:-KEPT_OUTAGES]

    def open_since(self, now: float) -> float | None:
        """Since when no link has covered, if none covers now."""
        if self._first_up is None or any(self.covering(i) for i in range(len(self._outages))):
            return None
        stretches = self._uncovered(now)
        return stretches[-1][0] if stretches else now

    def new_windows(self, now: float) -> list[Window]:
        """The windows that have ended and were not told yet, oldest first."""
        windows = []
        covered_now = any(self.covering(i) for i in range(len(self._outages)))
        for start, end in self._uncovered(now):
            if end >= now and not covered_now:
                break  # still open
            self._told.append((start, end))
            if len(self._told) > KEPT_OUTAGES:
                self._told_floor = max(self._told_floor, self._told.pop(0)[1])
            stalled = sum(max(0.0, min(end, b) - max(start, a)) for a, b in self._stalls)
            windows.append(Window(start, end, stalled))
        return windows

    def _uncovered(self, now: float) -> list[tuple[float, float]]:
        """The stretches since the first subscribe when no link covered or the tool did not
        run, and not told yet, merged where they touch."""
        if self._first_up is None:
            return []
        since = max(self._first_up, self._told_floor)
        points = {since, now}
        for outages in self._outages:
            for start, end in outages:
                points.update(p for p in (start, end if end is not None else now) if p is not None)
        for start, end in (*self._stalls, *self._told):
            points.update((start, end))
        ordered = sorted(p for p in points if since <= p <= now)
        stretches: list[tuple[float, float]] = []
        for before, after in zip(ordered, ordered[1:]):
            middle = (before + after) / 2
            if any(a <= middle < b for a, b in self._told):
                continue
            if self._stalled_at(middle) or all(_down_at(o, middle) for o in self._outages):
                if stretches and stretches[-1][1] == before:
                    stretches[-1] = (stretches[-1][0], after)
                else:
                    stretches.append((before, after))
        return stretches

    def _stalled_at(self, moment: float) -> bool:
        return any(start <= moment < end for start, end in self._stalls)


def _start(outage: list[float | None]) -> float:
    start = outage[0]
    assert start is not None
    return start


def _down_at(outages: list[list[float | None]], moment: float) -> bool:
    return any(
        start is not None and start <= moment and (end is None or moment < end)
        for start, end in outages
    )
