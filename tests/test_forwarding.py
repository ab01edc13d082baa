"""The delivery queue with the real sender and a real local endpoint: order, per-key
parallelism, Kazoo's retries, the bound, finish and abandon. Nothing waits on a clock: tests
wait on conditions (the receiver's, or the forwarder's callbacks')."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kazoo_tail.features.forwarding import STOPPED, Delivery, Forwarder, Job
from kazoo_tail.net.hook_http import Attempt, HookSender

from .hook_receiver import Behaviour, HookReceiver, refused_url

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def success(attempt: Attempt) -> bool:
    return attempt.status == 200 and attempt.error is None


def transport_error(attempt: Attempt) -> bool:
    return attempt.status is None


@dataclass
class Run:
    """A forwarder to ``url`` and what it reported, with the conditions tests wait on."""

    url: str
    sender: HookSender
    forwarder: Forwarder = field(init=False)
    attempts: list[tuple[int, Attempt, bool, float]] = field(default_factory=list)
    done: list[Delivery] = field(default_factory=list)
    # (seq, key, start, end) of every send; and keys on the wire, to catch a key sent twice
    sends: list[tuple[int, str, float, float]] = field(default_factory=list)
    flying: list[str] = field(default_factory=list)
    most_flying: int = 0
    overlaps: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def send(self, job: Job) -> Attempt:
        with self.changed:
            if job.key in self.flying:
                self.overlaps.append(job.key)
            self.flying.append(job.key)
            self.most_flying = max(self.most_flying, len(self.flying))
        start = time.monotonic()
        attempt = self.sender.send("POST", self.url, FORM, job.request)
        with self.changed:
            self.flying.remove(job.key)
            self.sends.append((job.seq, job.key, start, time.monotonic()))
        return attempt

    def on_attempt(self, delivery: Delivery, attempt: Attempt, again: bool) -> None:
        with self.changed:
            self.attempts.append((delivery.job.seq, attempt, again, time.monotonic()))
            self.changed.notify_all()

    def on_done(self, delivery: Delivery) -> None:
        with self.changed:
            self.done.append(delivery)
            self.changed.notify_all()

    def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "the condition never came"

    def outcomes(self) -> dict[int, str]:
        return {delivery.job.seq: delivery.outcome for delivery in self.done}


@pytest.fixture
def sender() -> Iterator[HookSender]:
    hooks = HookSender(read_timeout=20.0)
    yield hooks
    hooks.close()


def start(url: str, sender: HookSender, **options: Any) -> Run:
    run = Run(url, sender)
    settings: dict[str, Any] = {"retries": 3, "pause": 0.01, "max_bytes": 1_000_000}
    settings.update(options)
    run.forwarder = Forwarder(
        run.send,
        success=success,
        retry=transport_error,
        on_attempt=run.on_attempt,
        on_done=run.on_done,
        **settings,
    )
    return run


def body(n: int) -> bytes:
    return f"n={n}".encode()


def test_one_at_a_time_in_submit_order_under_a_slow_endpoint(sender: HookSender) -> None:
    with HookReceiver(Behaviour(delay=0.02)) as receiver:
        run = start(receiver.url, sender)
        for n in range(8):
            assert run.forwarder.submit(f"call-{n % 3}", 3, body(n), n)
        assert run.forwarder.finish(30)
        got = receiver.wait_for(8)
    assert [request.body for request in got] == [body(n) for n in range(8)]
    assert run.most_flying == 1
    # Each request was sent only once the one before had its answer.
    ends = sorted(run.sends, key=lambda send: send[0])
    assert all(later[2] >= earlier[3] for earlier, later in zip(ends, ends[1:]))
    assert [delivery.outcome for delivery in run.done] == ["delivered"] * 8
    assert [delivery.job.seq for delivery in run.done] == list(range(1, 9))
    assert run.forwarder.counts["delivered"] == 8 and run.forwarder.queued_bytes == 0


def test_four_keys_at_once_each_key_in_order(sender: HookSender) -> None:
    keys = ["a", "a", "a", "b", "c", "a", "d", "b", "e", "c", "d", "e"]
    with HookReceiver() as receiver:
        receiver.hold()
        run = start(receiver.url, sender, concurrency=4)
        for n, key in enumerate(keys):
            assert run.forwarder.submit(key, 3, f"{key}={n}".encode(), n)
        # "a" being busy holds no other key up: a, b, c and d are all on the wire.
        first = receiver.wait_for(4)
        assert sorted(request.body.split(b"=")[0] for request in first) == [b"a", b"b", b"c", b"d"]
        receiver.release()
        assert run.forwarder.finish(30)
        got = receiver.wait_for(len(keys))
    assert run.overlaps == [] and run.most_flying == 4
    for key in set(keys):
        sent = [int(r.body.split(b"=")[1]) for r in got if r.body.startswith(key.encode())]
        assert sent == [n for n, k in enumerate(keys) if k == key]
    assert run.forwarder.counts["delivered"] == len(keys)


def test_refused_is_tried_exactly_retries_times_with_a_pause(sender: HookSender) -> None:
    run = start(refused_url(), sender, retries=3, pause=0.05)
    assert run.forwarder.submit("k", 3, body(1), 1)
    assert run.forwarder.finish(30)
    (delivery,) = run.done
    assert delivery.outcome == "failed"
    assert [attempt.error for attempt in delivery.attempts] == ["connection refused"] * 3
    assert [again for _, _, again, _ in run.attempts] == [True, True, False]
    starts = [send[2] for send in run.sends]
    ends = [send[3] for send in run.sends]
    assert all(start - end >= 0.05 for end, start in zip(ends, starts[1:]))
    assert run.forwarder.counts == {
        "delivered": 0,
        "failed": 1,
        "dropped": 0,
        "unsent": 0,
        "retried": 2,
    }


def test_a_single_attempt_when_retries_is_one(sender: HookSender) -> None:
    run = start(refused_url(), sender, retries=1)
    run.forwarder.submit("k", 3, body(1), 1)
    assert run.forwarder.finish(30)
    assert [len(delivery.attempts) for delivery in run.done] == [1]


def test_an_answer_other_than_200_is_not_retried(sender: HookSender) -> None:
    with HookReceiver(Behaviour(status=500)) as receiver:
        run = start(receiver.url, sender, retries=5)
        run.forwarder.submit("k", 3, body(1), 1)
        assert run.forwarder.finish(30)
        assert len(receiver.received) == 1
    (delivery,) = run.done
    assert (delivery.outcome, [a.status for a in delivery.attempts]) == ("failed", [500])


def test_an_endpoint_that_comes_back_gets_the_event(sender: HookSender) -> None:
    with HookReceiver() as receiver:
        receiver.stop()
        run = start(receiver.url, sender, retries=1000, pause=0.01)
        run.forwarder.submit("k", 3, body(1), 1)
        run.wait(lambda: run.attempts)
        receiver.start()
        assert run.forwarder.finish(30)
        (got,) = receiver.wait_for(1)
    (delivery,) = run.done
    assert delivery.outcome == "delivered" and got.body == body(1)
    assert len(delivery.attempts) >= 2
    assert delivery.attempts[0].error == "connection refused"
    assert delivery.attempts[-1].status == 200


def test_the_bound_drops_the_newest_and_is_never_passed(sender: HookSender) -> None:
    with HookReceiver() as receiver:
        receiver.hold()
        run = start(receiver.url, sender, max_bytes=1000)
        accepted = 0
        while run.forwarder.submit("k", 100, body(accepted), accepted):
            accepted += 1
            assert run.forwarder.queued_bytes <= 1000
        assert accepted == 10  # the one on the wire counts too
        assert [(d.job.seq, d.outcome) for d in run.done] == [(11, "dropped")]
        assert run.forwarder.high_water_bytes == 1000
        receiver.release()
        assert run.forwarder.finish(30)
        got = receiver.wait_for(accepted)
    assert [request.body for request in got] == [body(n) for n in range(accepted)]
    assert run.forwarder.counts["dropped"] == 1 and run.forwarder.counts["delivered"] == 10
    assert run.forwarder.queued_bytes == 0


def test_submit_never_blocks_and_abandon_does_not_wait(sender: HookSender) -> None:
    with HookReceiver() as receiver:
        receiver.hold()
        run = start(receiver.url, sender, max_bytes=10_000_000)
        returned = [run.forwarder.submit(f"k{n % 7}", 10, body(n), n) for n in range(1000)]
        assert all(returned)
        receiver.wait_for(1)
        # All 1000 returned while the first request still waits for its answer.
        assert receiver.answered == 0
        reported = run.forwarder.abandon()
        assert receiver.answered == 0
        assert [d.job.seq for d in reported] == list(range(1, 1001))
        first = reported[0]
        assert first.outcome == "failed" and first.attempts[-1].error == STOPPED
        assert {d.outcome for d in reported[1:]} == {"unsent"}
        assert run.done == reported
        assert run.forwarder.counts["unsent"] == 999 and run.forwarder.queued_bytes == 0
        # The cut request's answer, when it comes, is not reported a second time.
        receiver.release()
        receiver.wait_answered(1)
        for worker in run.forwarder._workers:
            worker.join(10)
        assert len(run.done) == 1000
        assert not run.forwarder.submit("k", 10, body(0), 0)


def test_abandon_cuts_a_retry_pause(sender: HookSender) -> None:
    run = start(refused_url(), sender, retries=5, pause=60.0)
    run.forwarder.submit("k", 3, body(1), 1)
    run.wait(lambda: run.attempts)
    (delivery,) = run.forwarder.abandon()
    assert (delivery.outcome, len(delivery.attempts)) == ("failed", 1)
    for worker in run.forwarder._workers:
        worker.join(10)
        assert not worker.is_alive()
    assert run.done == [delivery]


def test_finish_waits_for_every_retry(sender: HookSender) -> None:
    with HookReceiver(Behaviour(hang_up=True)) as receiver:
        run = start(receiver.url, sender, retries=2, concurrency=2)
        for n in range(4):
            run.forwarder.submit(f"k{n}", 3, body(n), n)
        assert run.forwarder.finish(30)
        assert len(receiver.received) == 8
    assert sorted(run.outcomes().items()) == [(n, "failed") for n in range(1, 5)]
    assert run.forwarder.counts["retried"] == 4


def test_abandon_lets_a_retry_being_reported_finish_first(sender: HookSender) -> None:
    """A worker reporting an attempt to be tried again when abandon() comes: its line is
    given before abandon's own, so no event's lines end with a retry after its failure."""
    told: list[str] = []
    in_callback, release = threading.Event(), threading.Event()

    def on_attempt(delivery: Delivery, attempt: Attempt, again: bool) -> None:
        if again:
            in_callback.set()
            release.wait(10)
            told.append("retrying")

    forwarder = Forwarder(
        lambda job: sender.send("POST", refused_url(), FORM, b"x=1"),
        retries=2,
        pause=30.0,
        max_bytes=1 << 20,
        success=success,
        retry=transport_error,
        on_attempt=on_attempt,
        on_done=lambda delivery: told.append(delivery.outcome),
    )
    forwarder.submit("k", 10, b"", None)
    assert in_callback.wait(10)
    stopping = threading.Thread(target=forwarder.abandon)
    stopping.start()
    release.set()
    stopping.join(10)
    assert told == ["retrying", "failed"]
