"""The delivery queue of ``kazoo-tail forward``: bounded, ordered, concurrent, with Kazoo's retries.

The thread reading the websocket calls :meth:`Forwarder.submit`, which never blocks: the job
is queued (or dropped when the queue's bytes would pass ``max_bytes``) and daemon worker
threads deliver it, so a slow or dead endpoint never holds up the reading.

Ordering. Kazoo's webhooks app handles each event in a process of its own (``gen_listener``
spawns one per AMQP message), where ``webhooks_util:fire_hooks`` fires the event's hooks one
after the other, each with its retries (a 2 s ``timer:sleep`` between attempts). Across events
it so gives no order at all: a retried CHANNEL_CREATE can land after the CHANNEL_DESTROY of
the same call, and even unretried events race each other. We keep order because
the point of forwarding is to develop and debug a receiver against a live cluster, and a
receiver seeing events in the order the cluster emitted them (with retries in place) is the
reproducible case; an endpoint that must cope with Kazoo's reordering can still be tested by
running with more concurrency (jobs of different keys then overtake each other). So:

* concurrency 1 (the default): one request in flight at a time, in submit order; a job being
  retried keeps its place, and nothing else is sent during its pause;
* concurrency N: at most N in flight; jobs with the same ``key`` (the call or document id)
  one at a time and in submit order; a job whose key is busy does not hold up other keys.

Retries follow Kazoo (``webhooks_util:retry_hook``): ``retries`` is the total number of
attempts; an attempt for which ``retry(attempt)`` holds (a transport error: refused, reset,
timeout) is tried again after ``pause`` seconds while attempts remain; any other failure (an
answer other than 200) is final.

The bound counts the bytes of jobs queued and in flight; when a new job would pass it, that
job (the newest) is dropped, so what is delivered keeps its order.

Callbacks (``on_attempt``, ``on_done``) run on a worker thread, or on the thread calling
``submit`` (a drop) or ``abandon``, never under the queue's lock; ``on_done`` is called
exactly once per job.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo_tail.net.hook_http import Attempt

OUTCOMES = ("delivered", "failed", "dropped", "unsent")
STOPPED = "stopped before an answer came"
# How long abandon() waits, at most, for callbacks already under way to return.
REPORTING_WAIT = 1.0


@dataclass
class Job:
    """One event to deliver."""

    seq: int  # arrival order, set by the Forwarder
    key: str  # jobs with the same key are delivered one at a time, in seq order
    size: int  # bytes it holds (body + query), counted against the bound
    request: Any  # opaque: handed to ``send``
    label: Any  # opaque: the app's own, for display


@dataclass
class Delivery:
    job: Job
    attempts: list[Attempt] = field(default_factory=list)
    # "delivered" | "failed" (non-200, or retries exhausted, or cut by abandon() while in
    # flight) | "dropped" (queue full) | "unsent" (stopped before it was sent);
    # "sending" while it is not decided yet.
    outcome: str = "sending"


class Forwarder:
    """Delivers jobs with ``send`` on ``concurrency`` daemon threads; see the module's doc."""

    def __init__(
        self,
        send: Callable[[Job], Attempt],
        *,
        retries: int,
        pause: float = 2.0,
        concurrency: int = 1,
        max_bytes: int,
        success: Callable[[Attempt], bool],
        retry: Callable[[Attempt], bool],
        on_attempt: Callable[[Delivery, Attempt, bool], None],
        on_done: Callable[[Delivery], None],
    ) -> None:
        self._send = send
        self.retries = max(1, retries)
        self.pause = pause
        self.concurrency = max(1, concurrency)
        self.max_bytes = max_bytes
        self._success = success
        self._retry = retry
        self._on_attempt = on_attempt
        self._on_done = on_done
        self.queued_bytes = 0
        self.high_water_bytes = 0
        self.counts: dict[str, int] = {name: 0 for name in (*OUTCOMES, "retried")}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[Job] = deque()
        self._busy: set[str] = set()
        # In flight: its delivery, and when the attempt on the wire began (None in a pause).
        self._flying: dict[int, tuple[Delivery, float | None]] = {}
        self._done: set[int] = set()  # seqs reported by abandon() while in flight
        self._seq = 0
        self._reporting = 0  # jobs decided whose callbacks have not returned yet
        self._closed = False  # finish() or abandon(): no more jobs taken
        self._stop = threading.Event()  # abandon(): stop now
        self._workers = [
            threading.Thread(target=self._work, name=f"kazoo-tail-forward-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for worker in self._workers:
            worker.start()

    # -- the reading thread's side ----------------------------------------------------------

    def submit(self, key: str, size: int, request: Any, label: Any) -> bool:
        """Queue one job; never blocks. False (and ``on_done`` with "dropped") when the bound
        would be passed (a job bigger than ``max_bytes`` never fits) or after finish() or
        abandon()."""
        with self._lock:
            self._seq += 1
            job = Job(self._seq, key, size, request, label)
            if self._closed or self.queued_bytes + size > self.max_bytes:
                self.counts["dropped"] += 1
                dropped = Delivery(job, [], "dropped")
            else:
                self._pending.append(job)
                self.queued_bytes += size
                self.high_water_bytes = max(self.high_water_bytes, self.queued_bytes)
                self._changed.notify_all()
                return True
        self._call(self._on_done, dropped)
        return False

    def finish(self, timeout: float | None = None) -> bool:
        """Take no more jobs and wait until every queued one is delivered or failed (at most
        ``timeout`` seconds); True if all are done. The workers then end."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            done = self._changed.wait_for(
                lambda: not (self._pending or self._flying or self._reporting), timeout=timeout
            )
        if done:
            for worker in self._workers:
                worker.join(timeout)
        return done

    def abandon(self) -> list[Delivery]:
        """Stop now (Ctrl-C): queued jobs are reported "unsent", jobs in flight "failed" (with
        a last attempt saying it was stopped when one was on the wire); nothing waits for an
        answer or a pause. Returns those deliveries, each also given to ``on_done``."""
        reported: list[Delivery] = []
        with self._changed:
            self._closed = True
            self._stop.set()
            # A worker between deciding and reporting finishes reporting first, so that no
            # line comes after the ones abandon() gives (callbacks never block for long).
            self._changed.wait_for(lambda: not self._reporting, timeout=REPORTING_WAIT)
            now = time.monotonic()
            while self._pending:
                job = self._pending.popleft()
                self.queued_bytes -= job.size
                self.counts["unsent"] += 1
                reported.append(Delivery(job, [], "unsent"))
            for seq, (delivery, since) in sorted(self._flying.items()):
                if since is not None:
                    delivery.attempts.append(Attempt(None, now - since, STOPPED))
                delivery.outcome = "failed"
                self.counts["failed"] += 1
                self.queued_bytes -= delivery.job.size
                self._busy.discard(delivery.job.key)
                self._done.add(seq)
                reported.append(delivery)
            self._flying.clear()
            self._changed.notify_all()
        reported.sort(key=lambda delivery: delivery.job.seq)
        for delivery in reported:
            self._call(self._on_done, delivery)
        return reported

    # -- the workers ------------------------------------------------------------------------

    def _next(self) -> Job | None:
        """The first queued job whose key is free (under the lock), or None to end."""
        while True:
            if self._stop.is_set():
                return None
            for index, job in enumerate(self._pending):
                if job.key not in self._busy:
                    del self._pending[index]
                    self._busy.add(job.key)
                    return job
            if self._closed and not self._pending:
                return None
            self._changed.wait()

    def _work(self) -> None:
        while True:
            with self._changed:
                job = self._next()
                if job is None:
                    return
                delivery = Delivery(job)
                self._flying[job.seq] = (delivery, time.monotonic())
            self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> None:
        job = delivery.job
        while True:
            try:
                attempt = self._send(job)
            except Exception as exc:  # a bug in send: the job fails, the worker lives on
                attempt = Attempt(None, 0.0, f"could not send: {type(exc).__name__}: {exc}")
            with self._changed:
                if job.seq in self._done:  # abandon() reported it meanwhile
                    return
                delivery.attempts.append(attempt)
                ok = self._success(attempt)
                again = not ok and len(delivery.attempts) < self.retries and self._retry(attempt)
                if again:
                    self.counts["retried"] += 1
                    self._flying[job.seq] = (delivery, None)
                    self._reporting += 1  # until on_attempt has returned
                else:
                    # Decided: accounted for at once, so abandon() cannot report it too.
                    delivery.outcome = "delivered" if ok else "failed"
                    del self._flying[job.seq]
                    self._busy.discard(job.key)
                    self.queued_bytes -= job.size
                    self.counts[delivery.outcome] += 1
                    self._reporting += 1
                    self._changed.notify_all()
            self._call(self._on_attempt, delivery, attempt, again)
            if not again:
                break
            with self._changed:
                self._reporting -= 1
                self._changed.notify_all()
            if self._stop.wait(self.pause):
                return  # abandon() reported it
            with self._lock:
                if job.seq in self._done:
                    return
                self._flying[job.seq] = (delivery, time.monotonic())
        self._call(self._on_done, delivery)
        with self._changed:
            self._reporting -= 1
            self._changed.notify_all()

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        """A callback's exception is the caller's bug: shown by threading's excepthook (as an
        uncaught exception in a thread is), without stopping the queue's accounting."""
        try:
            callback(*args)
        except Exception:
            exc_type, exc, trace = sys.exc_info()
            assert exc_type is not None
            threading.excepthook(
                threading.ExceptHookArgs((exc_type, exc, trace, threading.current_thread()))
            )
