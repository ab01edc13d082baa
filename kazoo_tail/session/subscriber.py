"""Subscribing, sans I/O: which subscribe messages to send now, and what each reply means.

Blackhole takes one binding per subscribe and matches replies by ``request_id`` only
(docs/protocol.md §3). A round keeps a window of subscribes in flight, resends those refused
for a token that has since been renewed, asks for a fresh token once when blackhole refuses
ours, sends again a subscribe whose reply never came (4.3 sheds replies on a busy socket, §8.3),
and paces itself to the per-socket rate bucket (100 tokens, then a block of 10 each second,
§1 and §8.2) so that it goes as fast as the bucket admits and no faster. Whoever drives it owns
the socket and the clock, so the tail, doctor and tests drive the same rules.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kazoo_tail.kazoo.wire import Reply, subscribe_message

# How many subscribes may await their reply at once: few enough that their replies and the
# events around them stay well under the 50 queued frames past which 4.3 sheds (§1).
SUBSCRIBE_WINDOW = 20
# Server error texts that mean "your token", not "your binding" (docs/protocol.md §3).
TOKEN_ERRORS = ("failed to authenticate token", "authentication token required")
RATE_LIMIT_ERROR = "rate limiting threshold hit"
# Blackhole's per-socket bucket: full at first, then one block each period.
BUCKET_CAPACITY = 100
BUCKET_BLOCK = 10
BUCKET_PERIOD = 1.0
# Frames wait this long past the expected refill, for jitter in the link's delay: the refill
# clock starts when the first frame arrives, so a steady delay shifts both alike.
REFILL_MARGIN = 0.05
# A subscribe whose reply is overdue is sent this many times more before the link is given up.
REPLY_RETRIES = 1


class BucketModel:
    """Our estimate of the server's rate bucket for one socket.

    Sending only what it admits costs nothing when the estimate is right; when it is wrong
    (another client of the bucket, a different server setting) the server refuses a frame and
    ``refused`` starts the count again from empty.
    """

    def __init__(
        self,
        capacity: int = BUCKET_CAPACITY,
        block: int = BUCKET_BLOCK,
        period: float = BUCKET_PERIOD,
    ) -> None:
        self.capacity = capacity
        self.block = block
        self.period = period
        self._tokens = capacity
        self._first_sent: float | None = None
        self._blocks = 0

    def available(self, now: float) -> int:
        self._refill(now)
        return self._tokens

    def take(self, now: float) -> None:
        if self._first_sent is None:
            self._first_sent = now
        self._refill(now)
        self._tokens -= 1

    def refused(self, now: float) -> None:
        self._refill(now)
        self._tokens = 0

    def seconds_for(self, frames: int, now: float) -> float:
        """How long until ``frames`` more frames would all be admitted."""
        short = frames - self.available(now)
        if short <= 0:
            return 0.0
        blocks = math.ceil(short / self.block)
        if self._first_sent is None:
            return blocks * self.period
        next_block = self._first_sent + REFILL_MARGIN + (self._blocks + 1) * self.period
        return max(0.0, next_block - now) + (blocks - 1) * self.period

    def _refill(self, now: float) -> None:
        if self._first_sent is None:
            return
        blocks = int((now - self._first_sent - REFILL_MARGIN) // self.period)
        if blocks > self._blocks:
            added = (blocks - self._blocks) * self.block
            self._tokens = min(self.capacity, self._tokens + added)
            self._blocks = blocks


@dataclass(frozen=True)
class Subscription:
    account_id: str
    binding: str


@dataclass(frozen=True)
class Rejection:
    subscription: Subscription
    error: str


def is_token_error(error: str) -> bool:
    return error.startswith(TOKEN_ERRORS)


class SubscribeRound:
    """One pass over a set of subscriptions on one connection.

    Drive it with ``to_send(now)`` (messages to write), ``on_reply(reply, now)`` for every
    reply read, ``use_token(token)`` whenever ``wants_token`` is set, and ``timed_out(now)``
    as often as you like, until ``done``. The verdicts are ``accepted``, ``rejected`` and
    ``token_refused`` (blackhole refused even a renewed token).
    """

    def __init__(
        self,
        subscriptions: Iterable[Subscription],
        token: str,
        *,
        now: float,
        reply_timeout: float = 10.0,
        window: int = SUBSCRIBE_WINDOW,
        rate_limit_retries: int | None = None,
        reply_retries: int = REPLY_RETRIES,
        bucket: BucketModel | None = None,
        new_request_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.token = token
        self.reply_timeout = reply_timeout
        self.window = window
        # None: keep trying while the bucket refills (a tail); a number: then count it refused.
        self.rate_limit_retries = rate_limit_retries
        self.reply_retries = reply_retries
        self.bucket = bucket if bucket is not None else BucketModel()
        self.started_at = now
        self.accepted: list[Subscription] = []
        self.rejected: list[Rejection] = []
        self.token_refused: str | None = None
        self.wants_token = False
        self.rate_limited = 0
        # Subscribes sent again because their reply did not come in time.
        self.resent = 0
        # The server's words when it last refused our token (kept for the error, if any).
        self.token_error: str | None = None
        self._limited: dict[Subscription, int] = {}
        self._overdue: dict[Subscription, int] = {}
        self._new_request_id = new_request_id
        self._queue: deque[Subscription] = deque(subscriptions)
        self.total = len(self._queue)
        # Subscribes to send again go first, in the order they were sent.
        self._again: deque[Subscription] = deque()
        # request_id -> (subscription, the token it was sent with, when it was sent)
        self._pending: dict[str, tuple[Subscription, str, float]] = {}
        self._renewed = False

    @property
    def done(self) -> bool:
        return self.token_refused is not None or not (self._queue or self._again or self._pending)

    @property
    def renewed(self) -> bool:
        """Whether blackhole refused the first token, so that a fresh one was asked for."""
        return self._renewed

    @property
    def answered(self) -> int:
        return len(self.accepted) + len(self.rejected)

    def to_send(self, now: float) -> list[str]:
        if self.wants_token or self.token_refused is not None:
            return []
        room = min(self.window - len(self._pending), self.bucket.available(now))
        messages = []
        while (self._again or self._queue) and room > 0:
            subscription = (self._again or self._queue).popleft()
            request_id = self._new_request_id()
            self._pending[request_id] = (subscription, self.token, now)
            self.bucket.take(now)
            room -= 1
            messages.append(
                subscribe_message(
                    request_id, self.token, subscription.account_id, subscription.binding
                )
            )
        return messages

    def on_reply(self, reply: Reply, now: float) -> bool:
        """Take a reply; False when it answers none of this round's subscribes."""
        sent = self._pending.pop(reply.request_id, None)
        if sent is None:
            return False
        subscription, sent_with, _ = sent
        if reply.ok:
            self.accepted.append(subscription)
            return True
        error = reply.errors[0]
        if is_token_error(error):
            self.token_error = error
            if sent_with != self.token:
                self._again.append(subscription)  # sent before the renewal; try again
            elif not self._renewed:
                self._renewed = True
                self.wants_token = True
                self._again.append(subscription)
            else:
                self.token_refused = error
        elif error.startswith(RATE_LIMIT_ERROR):
            self.rate_limited += 1
            self.bucket.refused(now)
            tries = self._limited[subscription] = self._limited.get(subscription, 0) + 1
            if self.rate_limit_retries is not None and tries > self.rate_limit_retries:
                self.rejected.append(Rejection(subscription, error))
            else:
                self._again.append(subscription)
        else:
            self.rejected.append(Rejection(subscription, error))
        return True

    def use_token(self, token: str) -> None:
        self.token = token
        self.wants_token = False

    def timed_out(self, now: float) -> bool:
        """Whether to give the link up: a reply is overdue although its subscribe was already
        sent again ``reply_retries`` times. Overdue subscribes with tries left are queued to be
        sent again (a repeat is harmless: blackhole answers success and binds nothing twice);
        a late reply to the first copy is then ignored."""
        overdue = [
            (request_id, subscription)
            for request_id, (subscription, _, sent_at) in self._pending.items()
            if now - sent_at > self.reply_timeout
        ]
        for request_id, subscription in overdue:
            tries = self._overdue.get(subscription, 0)
            if tries >= self.reply_retries:
                return True
            self._overdue[subscription] = tries + 1
            del self._pending[request_id]
            self._again.append(subscription)
            self.resent += 1
        return False

    def seconds_left(self, now: float) -> float:
        """A floor for the time the rest of the round takes, set by the rate bucket."""
        waiting = len(self._queue) + len(self._again)
        return self.bucket.seconds_for(waiting, now)
