"""The session core: the sans-I/O subscribe round, and a Link driven over real sockets against
raw blackhole-shaped servers that misbehave in ways the simulator does not (a flood before
any reply, replies that never come, a rate-limited burst), and background token renewal."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from kazoo_tail.errors import AuthError
from kazoo_tail.kazoo.events import Event, Idle
from kazoo_tail.kazoo.wire import Reply
from kazoo_tail.net.transport import LinkLost, Transport
from kazoo_tail.session.decoder import Decoder
from kazoo_tail.session.link import EARLY_EVENTS_HELD, Link
from kazoo_tail.session.subscriber import (
    BUCKET_PERIOD,
    REFILL_MARGIN,
    SUBSCRIBE_WINDOW,
    BucketModel,
    SubscribeRound,
    Subscription,
)
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

ACCOUNT = DEMO.account_id
TOKEN_ERROR = "failed to authenticate token"
RATE_LIMITED = "rate limiting threshold hit for 127.0.0.1:4242!"


def subs(count: int) -> list[Subscription]:
    return [Subscription(ACCOUNT, f"object.doc_created.type{n}") for n in range(count)]


def sent(messages: list[str]) -> list[dict[str, Any]]:
    return [json.loads(message) for message in messages]


def reply(message: dict[str, Any], error: str | None = None) -> Reply:
    if error is None:
        return Reply(message["request_id"], "success", {"subscribed": []})
    return Reply(message["request_id"], "error", {"errors": [error]})


# -- the round, sans I/O -----------------------------------------------------------------------


def test_a_window_of_subscribes_in_flight() -> None:
    round_ = SubscribeRound(subs(45), "A", now=0.0)
    first = sent(round_.to_send(0.0))
    assert len(first) == SUBSCRIBE_WINDOW
    assert round_.to_send(0.0) == []  # the window is full
    for message in first[:5]:
        assert round_.on_reply(reply(message), 0.1)
    assert len(round_.to_send(0.1)) == 5
    assert {m["data"]["binding"] for m in first} == {
        f"object.doc_created.type{n}" for n in range(20)
    }
    assert all(m["auth_token"] == "A" and m["action"] == "subscribe" for m in first)
    assert len({m["request_id"] for m in first}) == SUBSCRIBE_WINDOW


def test_a_token_refused_mid_window_is_renewed_once_and_the_window_resent() -> None:
    round_ = SubscribeRound(subs(20), "A", now=0.0)
    window = sent(round_.to_send(0.0))
    round_.on_reply(reply(window[0], TOKEN_ERROR), 0.1)
    assert round_.wants_token and round_.to_send(0.1) == []
    round_.use_token("B")
    # The rest of the window was sent with the old token: refused too, but not a second refusal.
    for message in window[1:]:
        round_.on_reply(reply(message, TOKEN_ERROR), 0.2)
    assert round_.token_refused is None and not round_.wants_token
    again = sent(round_.to_send(0.2))
    assert len(again) == 20 and {m["auth_token"] for m in again} == {"B"}
    for message in again:
        round_.on_reply(reply(message), 0.3)
    assert round_.done and round_.renewed and len(round_.accepted) == 20


def test_a_renewed_token_refused_again_is_the_verdict() -> None:
    round_ = SubscribeRound(subs(1), "A", now=0.0)
    round_.on_reply(reply(sent(round_.to_send(0.0))[0], TOKEN_ERROR), 0.1)
    round_.use_token("B")
    round_.on_reply(reply(sent(round_.to_send(0.1))[0], TOKEN_ERROR), 0.2)
    assert round_.done and round_.token_refused == TOKEN_ERROR


def test_rate_limited_subscribes_wait_for_the_next_block() -> None:
    round_ = SubscribeRound(subs(3), "A", now=0.0)
    window = sent(round_.to_send(0.0))
    round_.on_reply(reply(window[0]), 0.1)
    round_.on_reply(reply(window[1], RATE_LIMITED), 0.1)
    round_.on_reply(reply(window[2], RATE_LIMITED), 0.1)
    assert round_.rate_limited == 2
    assert round_.to_send(0.5) == []  # our estimate of the bucket is empty now
    assert not round_.timed_out(100.0)  # nothing is awaited meanwhile
    retry = sent(round_.to_send(BUCKET_PERIOD + REFILL_MARGIN))
    assert [m["data"]["binding"] for m in retry] == [w["data"]["binding"] for w in window[1:]]


def test_the_bucket_model_admits_a_burst_then_blocks_of_ten() -> None:
    bucket = BucketModel()
    assert bucket.available(0.0) == 100
    for _ in range(100):
        bucket.take(0.0)
    assert bucket.available(0.99) == 0
    assert bucket.seconds_for(23, 0.5) == pytest.approx(2.55)
    assert bucket.available(1.1) == 10
    assert bucket.available(30.0) == 100  # never more than a full bucket
    bucket.refused(30.2)  # the server knows better: start again from empty
    assert bucket.available(30.9) == 0 and bucket.available(31.1) == 10


class KazooBucket:
    """The server's side, as kz_buckets does it: full at 100, then a block of 10 each second
    counted from when the bucket was made (here ``made_at``, on or before the first frame)."""

    def __init__(self, made_at: float, capacity: int = 100, block: int = 10) -> None:
        self.made_at = made_at
        self.capacity = capacity
        self.block = block
        self.tokens = capacity
        self.blocks = 0

    def take(self, now: float) -> bool:
        blocks = int(now - self.made_at)
        if blocks > self.blocks:
            self.tokens = min(self.capacity, self.tokens + (blocks - self.blocks) * self.block)
            self.blocks = blocks
        if self.tokens:
            self.tokens -= 1
            return True
        return False


def drive(count: int, server: KazooBucket, start: float = 0.0) -> tuple[float, SubscribeRound]:
    """Run a round against the server's bucket on a simulated clock; replies come at once."""
    round_ = SubscribeRound(subs(count), "A", now=start)
    now = start
    while not round_.done:
        for message in sent(round_.to_send(now)):
            refused = not server.take(now)
            round_.on_reply(reply(message, RATE_LIMITED if refused else None), now)
        now += 0.01
    return now - start, round_


@pytest.mark.parametrize(("count", "floor"), [(123, 3.0), (1503, 141.0)])
def test_a_round_paces_itself_to_the_bucket_within_a_fifth_of_its_floor(
    count: int, floor: float
) -> None:
    took, round_ = drive(count, KazooBucket(made_at=0.0))
    assert floor <= took <= 1.2 * floor
    assert len(round_.accepted) == count and round_.rate_limited == 0  # nothing wasted


def test_pacing_copes_with_a_bucket_smaller_than_expected() -> None:
    took, round_ = drive(200, KazooBucket(made_at=0.0, capacity=30, block=5))
    assert len(round_.accepted) == 200 and round_.rate_limited > 0
    assert took <= 1.5 * (200 - 30) / 5


def test_an_overdue_reply_is_asked_again_once_then_the_link_is_given_up() -> None:
    round_ = SubscribeRound(subs(2), "A", now=0.0, reply_timeout=10.0)
    window = sent(round_.to_send(0.0))
    round_.on_reply(reply(window[0]), 9.0)
    assert not round_.timed_out(9.5)
    assert not round_.timed_out(10.5) and round_.resent == 1  # sent again, not given up
    again = sent(round_.to_send(10.5))
    assert [m["data"]["binding"] for m in again] == [window[1]["data"]["binding"]]
    assert again[0]["request_id"] != window[1]["request_id"]
    assert not round_.on_reply(reply(window[1]), 11.0)  # the first copy's late reply: ignored
    assert not round_.timed_out(20.0) and round_.timed_out(20.6)


def test_rejections_and_strangers() -> None:
    round_ = SubscribeRound(subs(2), "A", now=0.0)
    window = sent(round_.to_send(0.0))
    assert not round_.on_reply(Reply("someone-else", "success", {}), 0.1)
    round_.on_reply(reply(window[0], "event FOO not supported"), 0.1)
    round_.on_reply(reply(window[1]), 0.1)
    assert round_.done and [r.error for r in round_.rejected] == ["event FOO not supported"]
    assert round_.accepted == [Subscription(ACCOUNT, "object.doc_created.type1")]


# -- a Link over real sockets ------------------------------------------------------------------


def event_frame(n: int) -> str:
    return json.dumps(
        {
            "action": "event",
            "subscribed_key": "call.*.*",
            "name": "CHANNEL_CREATE",
            "routing_key": f"call.{ACCOUNT}.CHANNEL_CREATE.c{n}",
            "data": {"call_id": f"c{n}", "msg_id": str(n)},
        }
    )


def reply_frame(request_id: str, status: str, data: dict[str, Any]) -> str:
    return json.dumps({"action": "reply", "request_id": request_id, "status": status, "data": data})


def link_to(url: str) -> Link:
    return Link(Transport.open(url, sslopt={}, timeout=5, tick=0.05), Decoder())


def run_subscribe(
    link: Link, subscriptions: list[Subscription], **kw: Any
) -> tuple[list[Any], Any]:
    steps = link.subscribe(subscriptions, lambda refresh=False: "T", **kw)
    yielded = []
    while True:
        try:
            yielded.append(next(steps))
        except StopIteration as done:
            return yielded, done.value


def test_a_flood_before_the_replies_is_shown_not_held_without_bound(scripted: Any) -> None:
    flood = EARLY_EVENTS_HELD + 500

    def script(ws: ServerConnection) -> None:
        request = json.loads(ws.recv())
        for n in range(flood):
            ws.send(event_frame(n))
        ws.send(reply_frame(request["request_id"], "success", {"subscribed": ["call.*.*"]}))
        ws.recv()

    link = link_to(scripted(script))
    yielded, outcome = run_subscribe(link, [Subscription(ACCOUNT, "call.*.*")], reply_timeout=10)
    shown = [item for item in yielded if isinstance(item, Event)]
    assert len(shown) == EARLY_EVENTS_HELD
    assert len(outcome.held) == flood - EARLY_EVENTS_HELD
    assert outcome.round.done and len(outcome.round.accepted) == 1
    link.transport.close()


def test_a_reply_that_never_comes_loses_the_link(scripted: Any) -> None:
    def script(ws: ServerConnection) -> None:
        for _ in ws:
            pass  # read and never answer

    link = link_to(scripted(script))
    with pytest.raises(LinkLost, match="no reply to a subscribe within 0.3s, even after"):
        run_subscribe(link, [Subscription(ACCOUNT, "call.*.*")], reply_timeout=0.3)
    link.transport.drop()


def test_a_shed_reply_is_asked_again_on_the_same_socket(scripted: Any) -> None:
    """4.3 sheds replies on a busy socket although the binding was made (§8.3)."""
    subscribes: list[str] = []

    def script(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            subscribes.append(request["data"]["binding"])
            ws.send(event_frame(len(subscribes)))  # the binding works: events flow
            if len(subscribes) == 1:
                continue  # this reply was shed
            ws.send(reply_frame(request["request_id"], "success", {"subscribed": ["call.*.*"]}))

    link = link_to(scripted(script))
    _, outcome = run_subscribe(link, [Subscription(ACCOUNT, "call.*.*")], reply_timeout=0.3)
    assert subscribes == ["call.*.*", "call.*.*"] and outcome.round.resent == 1
    assert [e.data["call_id"] for e in outcome.held if isinstance(e, Event)] == ["c1", "c2"]
    link.transport.close()


def test_a_rate_limited_burst_keeps_reading_while_it_waits(scripted: Any) -> None:
    arrivals: list[float] = []

    def script(ws: ServerConnection) -> None:
        for number, message in enumerate(ws):
            request = json.loads(message)
            arrivals.append(time.monotonic())
            limited = number == 0
            status = "error" if limited else "success"
            data = {"errors": [RATE_LIMITED]} if limited else {"subscribed": ["call.*.*"]}
            ws.send(reply_frame(request["request_id"], status, data))
            if limited:
                ws.send(event_frame(1))  # arrives during the pause: read, held, not lost

    link = link_to(scripted(script))
    yielded, outcome = run_subscribe(link, [Subscription(ACCOUNT, "call.*.*")], reply_timeout=10)
    assert outcome.round.rate_limited == 1 and len(outcome.round.accepted) == 1
    assert any(isinstance(item, Idle) for item in yielded)  # ticks went on while paused
    assert [e.data["call_id"] for e in outcome.held if isinstance(e, Event)] == ["c1"]
    # The refused subscribe waits for the bucket's next block, about a second on.
    assert arrivals[1] - arrivals[0] >= BUCKET_PERIOD * 0.9
    link.transport.close()


def test_a_renewed_token_refused_again_is_an_auth_error(scripted: Any) -> None:
    def script(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            ws.send(reply_frame(request["request_id"], "error", {"errors": [TOKEN_ERROR]}))

    link = link_to(scripted(script))
    asked: list[bool] = []

    def tokens(refresh: bool = False) -> str:
        asked.append(refresh)
        return "fresh" if refresh else "old"

    steps = link.subscribe([Subscription(ACCOUNT, "call.*.*")], tokens, reply_timeout=10)
    with pytest.raises(AuthError, match="rejected a fresh token"):
        for _ in steps:
            pass
    assert asked == [False, True]
    link.transport.drop()


# -- background renewal ------------------------------------------------------------------------


def test_keep_fresh_renews_in_the_background_before_expiry() -> None:
    from kazoo_tail.auth.provider import RENEW_MARGIN_SECONDS, Credentials, TokenProvider

    config = SimulatorConfig(event_rate=0, token_ttl=RENEW_MARGIN_SECONDS + 60)
    with Simulator(config) as sim:
        credentials = Credentials(
            url=sim.crossbar_url, username="demo", account_name="demo", password=lambda: "demo"
        )
        clock = [time.time()]
        provider = TokenProvider(credentials, store=None, clock=lambda: clock[0])
        first = provider.current()
        provider.keep_fresh()
        assert sim.stats.refresh == 0  # still fresh: nothing to do
        clock[0] += 61  # now within the renewal margin
        provider.keep_fresh()
        deadline = time.monotonic() + 20
        while sim.stats.refresh == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.stats.refresh == 1
        assert provider.current().token != first.token
        assert sim.stats.user_auth == 1  # renewed, not logged in again


def test_the_token_is_kept_fresh_during_an_outage_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconnect after a long outage must not find the token expired with no password at
    hand: renewal goes on while the session is down and backing off."""
    from kazoo_tail.auth.provider import Credentials, TokenProvider
    from kazoo_tail.kazoo.events import Notice, NoticeKind
    from kazoo_tail.session import session as session_module
    from kazoo_tail.session.resolve import ConnectionConfig
    from kazoo_tail.session.session import Session

    monkeypatch.setattr(session_module, "TOKEN_CHECK_INTERVAL", 0.05)

    ttl = 3600.0
    with Simulator(SimulatorConfig(event_rate=0, token_ttl=ttl)) as sim:
        credentials = Credentials(
            url=sim.crossbar_url, username="demo", account_name="demo", password=lambda: "demo"
        )
        skew = [0.0]
        provider = TokenProvider(credentials, store=None, clock=lambda: time.time() + skew[0])
        session = Session(
            ConnectionConfig(backoff_initial=0.05, backoff_cap=0.1),
            [sim.blackhole_url],
            [Subscription(ACCOUNT, "call.*.*")],
            provider,
            keep_fresh=provider.keep_fresh,
        )
        deadline = time.monotonic() + 30
        try:
            for item in session.events():
                assert time.monotonic() < deadline, "no renewal while disconnected"
                if isinstance(item, Notice) and item.kind is NoticeKind.SUBSCRIBED:
                    sim.reject_upgrades(503, 10_000)  # blackhole stays down from now on
                    sim.drop_connections()
                if isinstance(item, Notice) and item.kind is NoticeKind.DISCONNECTED:
                    skew[0] = ttl - 60  # the token now nears its expiry, mid-outage
                if sim.stats.refresh >= 1:
                    break
        finally:
            session.close()
        assert sim.stats.refresh == 1 and sim.stats.user_auth == 1


# -- the session: nothing held is thrown away, and the gap is told exactly ---------------------


def test_events_held_when_the_link_goes_mid_subscribe_are_shown_and_the_gap_told(
    scripted: Any,
) -> None:
    """The first socket's subscribe brings events but its reply never comes and the server
    goes; those events are shown once, and the gap is announced from the last frame heard on
    the last fully subscribed link to the moment every subscription is back."""
    from kazoo_tail.kazoo.events import Notice, NoticeKind
    from kazoo_tail.session.resolve import ConnectionConfig
    from kazoo_tail.session.session import Session

    connections: list[int] = []

    def script(ws: ServerConnection) -> None:
        connections.append(len(connections) + 1)
        number = connections[-1]
        for message in ws:
            request = json.loads(message)
            if number == 2:
                ws.send(event_frame(20))  # events, then the server goes, reply unsent
                ws.send(event_frame(21))
                ws.close(1011)
                return
            ws.send(event_frame(number * 10))
            ws.send(reply_frame(request["request_id"], "success", {"subscribed": ["call.*.*"]}))
            if number == 1:
                ws.send(event_frame(11))
                ws.close(1001)
                return

    session = Session(
        ConnectionConfig(backoff_initial=0.01, backoff_cap=0.02),
        [scripted(script)],
        [Subscription(ACCOUNT, "call.*.*")],
        lambda refresh=False: "T",
    )
    shown: list[str] = []
    heard: dict[str, float] = {}
    gaps: list[Notice] = []
    for item in session.events():
        if isinstance(item, Event):
            shown.append(item.data["call_id"])
            heard[item.data["call_id"]] = item.received_at
        elif isinstance(item, Notice) and item.kind is NoticeKind.GAP:
            gaps.append(item)
            break
    session.close()
    assert shown == ["c10", "c11", "c20", "c21", "c30"]
    assert len(gaps) == 1 and gaps[0].gap_from is not None and gaps[0].gap_to is not None
    # The gap starts on link 1, not at the events heard on link 2 (whose reply never came).
    assert heard["c11"] <= gaps[0].gap_from < heard["c20"] < gaps[0].gap_to


def test_a_slow_renewal_does_not_make_buffered_replies_overdue(scripted: Any) -> None:
    """Renewing the token can take longer than the reply timeout (a slow Crossbar, a password
    prompt): the subscribes sent afterwards are timed from then, and replies already waiting
    in the socket are read before any is declared overdue."""

    def script(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            fresh = request["auth_token"] == "fresh"
            status = "success" if fresh else "error"
            data = {"subscribed": ["call.*.*"]} if fresh else {"errors": [TOKEN_ERROR]}
            ws.send(reply_frame(request["request_id"], status, data))

    def tokens(refresh: bool = False) -> str:
        if refresh:
            time.sleep(0.5)  # longer than the reply timeout below
            return "fresh"
        return "old"

    link = link_to(scripted(script))
    steps = link.subscribe(subs(5), tokens, reply_timeout=0.3)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            outcome = done.value
            break
    assert len(outcome.round.accepted) == 5 and outcome.round.resent == 0
    link.transport.close()
