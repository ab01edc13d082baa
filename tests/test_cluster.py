"""Issue 11: a tail linked to several blackhole nodes of one cluster, end to end: the
simulator's nodes share one event stream, and faults strike one node at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from websockets.sync.server import ServerConnection

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from tests.test_resilience import FAST

from .conftest import Running, ScriptedServer, login_args, wait_until


@pytest.fixture
def cluster() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(nodes=2, event_rate=0, early_events=False)) as simulator:
        yield simulator


def ws_args(simulator: Simulator) -> list[str]:
    return [arg for url in simulator.blackhole_urls for arg in ("--ws-url", url)]


def subscribed_on(process: Running, url: str) -> int:
    return sum(1 for line in process.stderr_lines if "subscribed to" in line and url in line)


def publish(simulator: Simulator, msg_id: str) -> None:
    account = DEMO.account_id
    simulator.publish(
        f"call.{account}.CHANNEL_CREATE.{msg_id}",
        "CHANNEL_CREATE",
        {"call_id": msg_id, "msg_id": msg_id, "account_id": account},
    )


def test_a_node_restarted_three_times_mid_stream_loses_nothing(
    cluster: Simulator, started: type[Running]
) -> None:
    first, second = cluster.blackhole_urls
    published: list[str] = []

    def burst(size: int) -> None:
        """A few at a time, each few out before the next: a burst of 50 queued for one socket
        would be shed by the node itself, as 4.3's blackhole does (not the tail's doing)."""
        for _ in range(0, size, 5):
            for _ in range(5):
                published.append(f"e{len(published)}")
                publish(cluster, published[-1])
            wait_until(lambda: len(process.stdout_lines) >= len(published))

    total = 3 * (40 + 40) + 40
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--count", str(total),
        "--summary", **FAST,
    )  # fmt: skip
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    for restart in range(1, 4):
        burst(40)
        cluster.node(0).stop()  # no close frame: the node's VM died
        wait_until(lambda n=restart: sum(" lost (" in line for line in process.stderr_lines) >= n)
        burst(40)  # only the second node delivers these
        cluster.node(0).start()
        wait_until(lambda n=restart: subscribed_on(process, first) > n, timeout=30)
    burst(40)
    result = process.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    printed = [event["data"]["msg_id"] for event in result.json_lines()]
    assert sorted(printed) == sorted(published) and len(printed) == total
    assert "may have been missed" not in result.stderr
    assert "still subscribed on" in result.stderr  # the loss was told, and that it cost nothing
    label = first.removeprefix("ws://")
    assert re.search(rf"link {re.escape(label)}: subscribed \S+, lost 3 times", result.stderr)
    assert "0 gaps" in result.stderr
    assert sum(node.stats.frames_shed for node in cluster.nodes) == 0


def test_both_nodes_down_together_is_one_gap_with_its_length(
    cluster: Simulator, started: type[Running]
) -> None:
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--count", "1", **FAST
    )
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    for node in cluster.nodes:
        node.stop()

    def lost(url: str) -> bool:
        return any(f"{url} lost (" in line for line in process.stderr_lines)

    wait_until(lambda: lost(first) and lost(second))
    for node in cluster.nodes:
        node.start()
    process.wait_for_stderr("may have been missed", timeout=30)
    publish(cluster, "after")
    result = process.finish(timeout=30)
    assert result.returncode == 0, result.stderr
    gaps = [line for line in result.stderr.splitlines() if "may have been missed" in line]
    assert len(gaps) == 1 and "no node was subscribed" in gaps[0], result.stderr
    window = re.search(r"events from (\S+) to (\S+) \((\d+\.\d)s\)", gaps[0])
    assert window is not None, gaps[0]
    # Before 3.11 fromisoformat does not read the "Z" the stamps end with.
    started, ended = (
        datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in window.group(1, 2)
    )
    # The window runs from the last frame heard on either link to the first resubscribe.
    length = (ended - started).total_seconds()
    assert ended > started and abs(float(window.group(3)) - length) < 0.051, gaps[0]
    assert "no node is subscribed now" in result.stderr


def test_without_dedupe_every_copy_is_shown_with_its_node(
    cluster: Simulator, started: type[Running]
) -> None:
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--count", "2",
        "--no-dedupe", "--show-node", **FAST,
    )  # fmt: skip
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    publish(cluster, "twice")
    result = process.finish(timeout=30)
    assert result.returncode == 0, result.stderr
    events = result.json_lines()
    assert [e["data"]["msg_id"] for e in events] == ["twice", "twice"]
    nodes = {e["node"] for e in events}
    assert nodes == {first.removeprefix("ws://"), second.removeprefix("ws://")}


def test_the_same_url_twice_is_one_link(cluster: Simulator, started: type[Running]) -> None:
    first = cluster.blackhole_urls[0]
    process = started(
        *login_args(cluster), "--ws-url", f"{first}, {first}", "-b", "call.*.*", "--count", "1",
        **FAST,
    )  # fmt: skip
    process.wait_for_stderr("subscribed to")
    publish(cluster, "once")
    result = process.finish(timeout=30)
    assert result.returncode == 0, result.stderr
    assert cluster.node(0).stats.connections == 1 and cluster.node(1).stats.connections == 0


def test_a_node_that_rejects_what_another_accepted_is_named(
    cluster: Simulator, scripted: ScriptedServer, started: type[Running]
) -> None:
    """Two nodes that disagree about a subscription are probably not one cluster."""
    first = cluster.blackhole_urls[0]

    tails: list[Running] = []

    def accepted_on_first() -> bool:
        # The tail has taken the real node's acceptance (not merely the node sent it).
        return bool(tails) and any(
            "subscribed" in line and first.split("://", 1)[1] in line
            for line in list(tails[0].stderr_lines)
        )

    def rejecting(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            # Answer only once the tail has the real node's acceptance, so the order is known.
            wait_until(accepted_on_first, what="the tail subscribed on the real node")
            reply = {"action": "reply", "request_id": request["request_id"], "status": "error"}
            ws.send(json.dumps({**reply, "data": {"errors": ["account not in your tree"]}}))

    other = scripted(rejecting)
    process = started(
        *login_args(cluster), "--ws-url", first, "--ws-url", other, "-b", "call.*.*", **FAST
    )
    tails.append(process)
    result = process.finish(timeout=30)
    assert result.returncode == 5, result.stderr
    assert f"blackhole node {other} rejected a subscription that {first} accepted" in (
        result.stderr
    )
    assert "probably not one cluster" in result.stderr


def test_doctor_checks_every_node(cluster: Simulator) -> None:
    from .inprocess import run

    cluster.node(1).stop()  # the second node is down: its checks fail, the first's pass
    result = run("doctor", *login_args(cluster), *ws_args(cluster), **FAST)
    first, second = (url.removeprefix("ws://") for url in cluster.blackhole_urls)
    lines = result.stdout.splitlines()
    for check in ("blackhole reachable", "subscribe round trip", "ping round trip"):
        assert any(line.startswith(f"ok    {check} ({first})") for line in lines), result.stdout
    assert any(f"FAIL  blackhole reachable ({second})" in line for line in lines), result.stdout
    assert any(line.startswith("skip  subscribe round trip") and second in line for line in lines)
    assert sum(" bindings " in f" {line} " for line in lines) == 1  # asked of one node
    assert result.returncode == 4


def test_sockets_shows_the_links_on_every_node(cluster: Simulator, started: type[Running]) -> None:
    from .inprocess import run

    first, second = cluster.blackhole_urls
    process = started(*login_args(cluster), *ws_args(cluster), "-b", "call.*.*", **FAST)
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    result = run("sockets", *login_args(cluster), "-o", "json", **FAST)
    assert result.returncode == 0, result.stderr
    sockets = [json.loads(line) for line in result.stdout.splitlines()]
    assert len({item["destination"] for item in sockets}) == 2, result.stdout


def test_ws_urls_listed_in_the_environment_and_a_429_on_one_node(
    cluster: Simulator, started: type[Running]
) -> None:
    """KAZOO_WS_URL may list several URLs; a node answering 429 backs off alone, while the
    other goes on delivering, and no gap is announced."""
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), "-b", "call.*.*", "--count", "2",
        KAZOO_WS_URL=f"{first}, {second}", **FAST,
    )  # fmt: skip
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    cluster.node(1).reject_upgrades(429, 3)
    cluster.node(1).close_connections(code=1001)
    publish(cluster, "during")
    wait_until(lambda: subscribed_on(process, second) >= 2, timeout=30)
    publish(cluster, "after")
    result = process.finish(timeout=30)
    assert result.returncode == 0, result.stderr
    assert [e["data"]["msg_id"] for e in result.json_lines()] == ["during", "after"]
    assert "HTTP 429" in result.stderr and "may have been missed" not in result.stderr
    assert cluster.node(1).stats.rejected_upgrades == 3
    assert cluster.node(0).stats.connections == 1


def test_the_python_api_merges_several_nodes(cluster: Simulator) -> None:
    import kazoo_tail

    config = kazoo_tail.ConnectionConfig(
        url=cluster.crossbar_url,
        ws_url=" ".join(cluster.blackhole_urls),
        account_name="demo",
        username="demo",
        password=DEMO.password,
        bindings=["call.*.*"],
    )
    seen: list[str] = []
    with kazoo_tail.open_session(config) as session:
        assert isinstance(session, kazoo_tail.Session) and len(session.urls) == 2
        subscribed = 0
        for item in session:
            if (
                isinstance(item, kazoo_tail.Notice)
                and item.kind is kazoo_tail.NoticeKind.SUBSCRIBED
            ):
                subscribed += 1
                if subscribed == 2:
                    publish(cluster, "one")
                    publish(cluster, "two")
            elif isinstance(item, kazoo_tail.Event):
                seen.append(item.data["msg_id"])
                if len(seen) == 2:
                    break
    assert seen == ["one", "two"]


def test_no_reconnect_goes_on_with_the_other_node_until_none_is_left(
    cluster: Simulator, started: type[Running]
) -> None:
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--no-reconnect", **FAST
    )
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    cluster.node(0).stop()
    process.wait_for_stderr(f"not trying {first} again, going on with")
    publish(cluster, "still")
    wait_until(lambda: process.stdout_lines, what="an event through the second node")
    cluster.node(1).stop()
    result = process.finish(timeout=30)
    assert result.returncode == 4, result.stderr
    assert [e["data"]["msg_id"] for e in result.json_lines()] == ["still"]
    assert f"lost the connection to {second}" in result.stderr.splitlines()[-1]


def test_events_held_by_a_link_still_subscribing_are_printed_from_the_other_at_once(
    cluster: Simulator, started: type[Running]
) -> None:
    """Node 0 reconnects and its subscribe reply is lost (a busy 4.3 node), so it holds what
    it receives until it asks again; node 1's copies must not be taken for seen meanwhile."""
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--count", "10", **FAST
    )
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    cluster.node(0).shed_replies(1)
    cluster.node(0).drop_connections()
    process.wait_for_stderr(f"{first} lost (")
    wait_until(lambda: cluster.node(0).stats.connections >= 2)
    for n in range(10):
        publish(cluster, f"h{n}")
    wait_until(lambda: len(process.stdout_lines) >= 10, timeout=8)
    assert subscribed_on(process, first) == 1  # printed before node 0 had asked again
    result = process.finish(timeout=30)
    assert [e["data"]["msg_id"] for e in result.json_lines()] == [f"h{n}" for n in range(10)]


def test_a_stalled_node_found_dead_late_reveals_a_gap_that_is_told(
    cluster: Simulator, started: type[Running]
) -> None:
    """Node 0 hangs with its socket open; node 1 drops and comes back before node 0 is
    found dead: for that while no node was subscribed, and the tail says so once it knows."""
    first, second = cluster.blackhole_urls
    process = started(
        *login_args(cluster), *ws_args(cluster), "-b", "call.*.*", "--ping-interval", "1",
        **FAST,
    )  # fmt: skip
    wait_until(lambda: subscribed_on(process, first) and subscribed_on(process, second))
    cluster.node(0).set_stalled(True)
    cluster.node(1).drop_connections()
    wait_until(lambda: subscribed_on(process, second) >= 2, timeout=30)
    process.wait_for_stderr(f"{first} lost (no answer to a ping", timeout=30)
    process.wait_for_stderr("may have been missed", timeout=30)
    cluster.node(0).set_stalled(False)
