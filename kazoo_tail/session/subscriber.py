"""Subscribing, sans I/O: which subscribe messages to send now, and what each reply means.

Blackhole takes one binding per subscribe and matches replies by ``request_id`` only
(docs/protocol.md §3). A round keeps a window of subscribes in flight, resends those refused
for a token that has since been renewed, asks for a fresh token once when blackhole refuses
ours, and pauses when the per-socket rate bucket is empty (it refills by a block of 10 tokens
each second, §1 and §8.2). Whoever drives it owns the socket and the clock, so the tail, doctor and
tests drive the same rules.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kazoo_tail.kazoo.wire import Reply, subscribe_message

# How many subscribes may await their reply at once: blackhole's per-socket bucket holds 100.
SUBSCRIBE_WINDOW = 20
# Server error texts that mean "your token", not "your binding" (docs/protocol.md §3).
TOKEN_ERRORS = ("failed to authenticate token", "authentication token required")
RATE_LIMIT_ERROR = "rate limiting threshold hit"
# The bucket gains its next block of tokens within a second.
RATE_LIMIT_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class Subscription:
    account_id: str
    binding: str


@dataclass(frozen=True, slots=True)
class Rejection:
    subscription: Subscription
    error: str


def is_token_error(error: str) -> bool:
    return error.startswith(TOKEN_ERRORS)


class SubscribeRound:
    """One pass over a set of subscriptions on one connection.

    Drive it with ``to_send(now)`` (messages to write), ``on_reply(reply, now)`` for every
    reply read, ``use_token(token)`` whenever ``wants_token`` is set, and ``timed_out(now)``
    on quiet ticks, until ``done``. The verdicts are ``accepted``, ``rejected`` and
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
        new_request_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.token = token
        self.reply_timeout = reply_timeout
        self.window = window
        # None: keep trying while the bucket refills (a tail); a number: then count it refused.
        self.rate_limit_retries = rate_limit_retries
        self.accepted: list[Subscription] = []
        self.rejected: list[Rejection] = []
        self.token_refused: str | None = None
        self.wants_token = False
        self.rate_limited = 0
        # The server's words when it last refused our token (kept for the error, if any).
        self.token_error: str | None = None
        self._limited: dict[Subscription, int] = {}
        self._new_request_id = new_request_id
        self._queue: deque[Subscription] = deque(subscriptions)
        # Subscribes to send again go first, in the order they were sent.
        self._again: deque[Subscription] = deque()
        self._pending: dict[str, tuple[Subscription, str]] = {}
        self._renewed = False
        self._paused_until = float("-inf")
        self._deadline = now + reply_timeout

    @property
    def done(self) -> bool:
        return self.token_refused is not None or not (self._queue or self._again or self._pending)

    @property
    def renewed(self) -> bool:
        """Whether blackhole refused the first token, so that a fresh one was asked for."""
        return self._renewed

    def to_send(self, now: float) -> list[str]:
        if self.wants_token or self.token_refused is not None or now < self._paused_until:
            return []
        messages = []
        if not self._pending:
            self._deadline = now + self.reply_timeout
        while (self._again or self._queue) and len(self._pending) < self.window:
            subscription = (self._again or self._queue).popleft()
            request_id = self._new_request_id()
            self._pending[request_id] = (subscription, self.token)
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
        subscription, sent_with = sent
        self._deadline = now + self.reply_timeout
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
            tries = self._limited[subscription] = self._limited.get(subscription, 0) + 1
            if self.rate_limit_retries is not None and tries > self.rate_limit_retries:
                self.rejected.append(Rejection(subscription, error))
            else:
                self._again.append(subscription)
                self._paused_until = now + RATE_LIMIT_PAUSE
        else:
            self.rejected.append(Rejection(subscription, error))
        return True

    def use_token(self, token: str) -> None:
        self.token = token
        self.wants_token = False

    def timed_out(self, now: float) -> bool:
        """Whether a reply is overdue: nothing heard for ``reply_timeout`` while waiting."""
        return bool(self._pending) and now > self._deadline
