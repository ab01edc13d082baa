"""The simulator as a Kazoo cluster: several blackhole nodes on their own ports, one event stream,
faults per node; over real loopback sockets (issue 11, requirement 6)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

from .conftest import BIN, kazoo_tail_env, run, wait_until
from .test_simulator import call, expect_close, login, md5, recv_json, subscribe, user_auth

pytestmark = pytest.mark.timeout(20)

ACCT = DEMO.account_id

MakeCluster = Callable[..., Simulator]


@pytest.fixture
def make_cluster() -> Iterator[MakeCluster]:
    started: list[Simulator] = []

    def factory(nodes: int = 2, **overrides: Any) -> Simulator:
        settings: dict[str, Any] = {"event_rate": 0.0, "early_events": False, "seed": 7}
        settings.update(overrides)
        sim = Simulator(SimulatorConfig(nodes=nodes, **settings)).start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


def ws_open(url: str, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("open_timeout", 20)  # a bound on failure only: a loaded machine is slow
    kwargs.setdefault("close_timeout", 1)
    return connect(url, **kwargs)


def next_event(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame = recv_json(ws, timeout)
        if frame["action"] == "event":
            return frame


def publish_create(sim: Simulator, call_id: str) -> None:
    sim.publish(
        f"call.{ACCT}.CHANNEL_CREATE.{call_id}",
        "CHANNEL_CREATE",
        {"call_id": call_id, "msg_id": call_id, "account_id": ACCT},
    )


def test_urls_one_per_node_and_the_first_is_blackhole_url(make_cluster: MakeCluster) -> None:
    sim = make_cluster(3)
    urls = sim.blackhole_urls
    assert len(urls) == 3 and len(set(urls)) == 3
    assert all(re.fullmatch(r"ws://127\.0\.0\.1:\d+", url) for url in urls)
    assert sim.blackhole_url == urls[0] == sim.node(0).url
    assert [node.url for node in sim.nodes] == urls
    assert len({node.name for node in sim.nodes}) == 3


def test_a_published_event_reaches_every_node_alike(make_cluster: MakeCluster) -> None:
    sim = make_cluster(3)
    token = login(sim)
    with ExitStack() as stack:
        sockets = [stack.enter_context(ws_open(url)) for url in sim.blackhole_urls]
        for ws in sockets:
            assert subscribe(ws, token, "call.*.*")["status"] == "success"
        events = sim.publish_call(answered=False)
        received = [[next_event(ws) for _ in events] for ws in sockets]
    first = received[0]
    assert [frame["data"]["msg_id"] for frame in first] == [e.data["msg_id"] for e in events]
    assert [frame["routing_key"] for frame in first] == [e.routing_key for e in events]
    assert received[1] == first and received[2] == first, "same envelope from every node"
    assert sim.stats.events_published == len(events)


def test_generated_traffic_reaches_every_node(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2, event_rate=100.0, seed=3)
    token = login(sim)
    with ws_open(sim.blackhole_urls[0]) as first, ws_open(sim.blackhole_urls[1]) as second:
        assert subscribe(first, token, "call.*.*")["status"] == "success"
        assert subscribe(second, token, "call.*.*")["status"] == "success"
        # Published once both were subscribed, so the first node must carry it too.
        wanted = next_event(second)
        while True:
            frame = next_event(first)
            if frame["data"].get("msg_id") == wanted["data"].get("msg_id"):
                break
    assert frame == wanted


def test_node_jitter_keeps_each_nodes_order(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2, node_jitter=0.02)
    token = login(sim)
    with ws_open(sim.blackhole_urls[0]) as first, ws_open(sim.blackhole_urls[1]) as second:
        subscribe(first, token, "call.CHANNEL_CREATE.*")
        subscribe(second, token, "call.CHANNEL_CREATE.*")
        sent = [f"jitter-{n}" for n in range(20)]
        for call_id in sent:
            publish_create(sim, call_id)
        for ws in (first, second):
            assert [next_event(ws)["data"]["msg_id"] for _ in sent] == sent


def test_a_node_restart_refuses_connections_while_down(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2)
    token = login(sim)
    down_url = sim.blackhole_urls[1]
    with ws_open(sim.blackhole_urls[0]) as survivor, ws_open(down_url) as doomed:
        subscribe(survivor, token, "call.CHANNEL_CREATE.*")
        subscribe(doomed, token, "call.CHANNEL_CREATE.*")
        sim.node(1).stop()
        assert not sim.node(1).running
        assert expect_close(doomed).rcvd is None, "a dying node sends no close frame"
        with pytest.raises(ConnectionRefusedError):
            ws_open(down_url)
        publish_create(sim, "while-down")
        assert next_event(survivor)["data"]["msg_id"] == "while-down"
        sim.node(1).start()
        assert sim.blackhole_urls[1] == down_url
        with ws_open(down_url) as back:
            subscribe(back, token, "call.CHANNEL_CREATE.*")
            publish_create(sim, "after")
            assert next_event(back)["data"]["msg_id"] == "after"
            assert next_event(survivor)["data"]["msg_id"] == "after"
        assert sim.node(0).stats.connections == 1
        assert sim.node(1).stats.connections == 2
        assert sim.stats.connections == 3


def test_a_clean_node_stop_says_going_away(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2)
    with ws_open(sim.blackhole_urls[1]) as ws:
        call(ws, {"action": "noop", "request_id": "ready"})
        sim.node(1).restart(close_code=1001)
        closed = expect_close(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 1001
    with ws_open(sim.blackhole_urls[1]) as ws:
        assert call(ws, {"action": "noop", "request_id": "again"})["request_id"] == "again"


def test_faults_on_one_node_leave_the_others_alone(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2)
    first_url, second_url = sim.blackhole_urls
    token = login(sim)
    sim.node(1).reject_upgrades(503, 1)
    with pytest.raises(InvalidStatus) as info:
        ws_open(second_url)
    assert info.value.response.status_code == 503
    with ws_open(first_url) as first, ws_open(second_url) as second:
        subscribe(first, token, "call.CHANNEL_CREATE.*")
        subscribe(second, token, "call.CHANNEL_CREATE.*")

        sim.node(0).shed_replies(1)
        first.send(json.dumps({"action": "noop", "request_id": "lost"}))
        assert call(second, {"action": "noop", "request_id": "kept"})["request_id"] == "kept"
        assert call(first, {"action": "noop", "request_id": "next"})["request_id"] == "next"

        sim.node(1).set_stalled(True)
        pong = second.ping()
        assert call(first, {"action": "noop", "request_id": "awake"})["request_id"] == "awake"
        sim.node(1).set_stalled(False)
        assert pong.wait(5)

        sim.node(0).drop_connections()
        assert expect_close(first).rcvd is None
        publish_create(sim, "still-here")
        assert next_event(second)["data"]["msg_id"] == "still-here"

        sim.node(1).close_connections(4001, "bye")
        closed = expect_close(second)
        assert closed.rcvd is not None and closed.rcvd.code == 4001
    assert sim.node(1).stats.rejected_upgrades == 1
    assert sim.node(0).stats.rejected_upgrades == 0
    assert sim.node(0).stats.replies_shed == 1 and sim.node(1).stats.replies_shed == 0
    aggregate = sim.stats.as_dict()
    for name in ("connections", "subscribes", "pings", "rejected_upgrades", "replies_shed"):
        assert aggregate[name] == sim.node(0).stats[name] + sim.node(1).stats[name], name


def test_each_node_has_its_own_rate_buckets_and_connection_limit(
    make_cluster: MakeCluster,
) -> None:
    sim = make_cluster(2, max_connections_per_ip=1)
    first_url, second_url = sim.blackhole_urls
    token = login(sim)
    with ws_open(first_url) as first, ws_open(second_url) as second:
        with pytest.raises(InvalidStatus) as info:
            ws_open(first_url)
        assert info.value.response.status_code == 429
        errors = 0
        for batch in range(0, 104, 8):  # a few at a time: 50 queued replies would be shed
            for n in range(batch, batch + 8):
                first.send(json.dumps({"action": "noop", "auth_token": token, "request_id": n}))
            errors += sum(recv_json(first)["status"] == "error" for _ in range(8))
        assert errors, "a burst over 100 must hit the first node's bucket"
        reply = call(second, {"action": "noop", "auth_token": token, "request_id": "fresh"})
        assert reply["status"] == "success"
    assert sim.node(0).stats.rate_limited == errors and sim.node(1).stats.rate_limited == 0


def test_crossbar_lists_the_sockets_of_every_node(make_cluster: MakeCluster) -> None:
    sim = make_cluster(3)
    token = login(sim)

    def listing() -> list[dict[str, Any]]:
        reply = requests.get(
            f"{sim.crossbar_url}/v2/accounts/{ACCT}/websockets",
            headers={"X-Auth-Token": token},
            timeout=5,
        )
        items: list[dict[str, Any]] = reply.json()["data"]
        return items

    with ExitStack() as stack:
        sockets = [stack.enter_context(ws_open(url)) for url in sim.blackhole_urls]
        for ws in sockets:
            subscribe(ws, token, "object.doc_created.*")
        items = listing()
        ids = {item["websocket_session_id"] for item in items}
        assert ids == {"{}:{}".format(*ws.local_address[:2]) for ws in sockets}
        assert {item["destination"] for item in items} == {node.name for node in sim.nodes}
        assert sorted(map(str, sim.sockets())) == sorted(map(str, items))
        last = "{}:{}".format(*sockets[2].local_address[:2])
        one = requests.get(
            f"{sim.crossbar_url}/v2/accounts/{ACCT}/websockets/{last}",
            headers={"X-Auth-Token": token},
            timeout=5,
        )
        assert one.status_code == 200 and one.json()["data"]["destination"] == sim.node(2).name
        sim.node(1).stop()
        wait_until(lambda: len(listing()) == 2, what="the stopped node's socket left the listing")


def test_crossbar_advertises_the_first_node(make_cluster: MakeCluster) -> None:
    sim = make_cluster(2, advertise_ws_url=True)
    reply = user_auth(sim, {"credentials": md5("demo:demo"), "account_name": "demo"})
    advertised = reply.json()["data"]["ui_config"]["api"]["kazoo_websocket"]["url"]
    assert advertised == sim.blackhole_urls[0]


@pytest.mark.e2e
def test_the_standalone_simulator_prints_every_node() -> None:
    proc = subprocess.Popen(
        [str(BIN), "simulator", "--nodes", "2", "--crossbar-port", "0", "--blackhole-port", "0"]
        + ["--event-rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kazoo_tail_env(),
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(4)]
        urls = re.findall(r"(ws://\S+) \(node (\d) of 2\)", "".join(lines))
        assert [number for _, number in urls] == ["1", "2"], lines
        for url, _ in urls:
            with ws_open(url) as ws:
                assert call(ws, {"action": "noop", "request_id": "up"})["status"] == "error"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == "" and "Traceback" not in err


@pytest.mark.e2e
def test_demo_runs_a_cluster() -> None:
    result = run("demo", "--nodes", "2", "--count", "1", "--json", "--event-rate", "50")
    assert result.returncode == 0, result.stderr
    nodes = re.search(r"blackhole nodes (ws://\S+), (ws://\S+)\n", result.stderr)
    assert nodes and nodes.group(1) != nodes.group(2), result.stderr
    assert len(result.json_lines()) == 1


@pytest.mark.e2e
def test_demo_refuses_more_than_eight_nodes() -> None:
    result = run("demo", "--nodes", "9")
    assert result.returncode == 2
    assert "'--nodes': 9 must be from 1 to 8" in result.stderr and result.stdout == ""
