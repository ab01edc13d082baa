"""Several blackhole nodes fed by one event stream, as a Kazoo cluster's AMQP federation does.

Every node gets every event (same routing key, msg_id and envelope) and delivers it to its own
subscribed sockets; each node keeps its own rate buckets, shedding, send timeout, upgrade
rejections, per-IP limit and faults, because a client holding links to two nodes meets both.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from .blackhole_server import BlackholeServer
from .stats import Stats
from .traffic import Event


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Delayed:
    """One node's late AMQP fan-out: each event waits a random 0..``jitter`` seconds, in the
    order published (a node's queue keeps order; only the nodes disagree with each other),
    then a further random 0..``reorder`` seconds in no order at all, as blackhole dispatching
    each event from its own Erlang process does."""

    def __init__(
        self,
        deliver: Callable[[Event], object],
        jitter: float,
        rng: random.Random,
        reorder: float = 0.0,
    ) -> None:
        self._deliver = deliver
        self._jitter = jitter
        self._reorder = reorder
        self._rng = rng
        self._last_due = 0.0
        self._turn = 0
        self._due: list[tuple[float, int, Event]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="kazoo-sim-fanout", daemon=True)
        self._thread.start()

    def put(self, event: Event) -> None:
        with self._wake:
            ordered = max(self._last_due, time.monotonic() + self._rng.uniform(0.0, self._jitter))
            self._last_due = ordered
            due = ordered + (self._rng.uniform(0.0, self._reorder) if self._reorder else 0.0)
            self._turn += 1  # equal times keep the order published
            heapq.heappush(self._due, (due, self._turn, event))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped:
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(wait)
                if self._stopped:
                    return
                _, _, event = heapq.heappop(self._due)
            self._deliver(event)

    def close(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=2.0)


class BlackholeNode:
    """One blackhole node: its server, its own counters and its fault hooks."""

    def __init__(
        self,
        index: int,
        server: BlackholeServer,
        stats: Stats,
        scheme: str,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        reorder: float = 0.0,
    ) -> None:
        self.index = index
        self.server = server
        self.stats = stats
        self._scheme = scheme
        self._jitter = jitter
        self._reorder = reorder
        self._rng = rng or random.Random()
        self._delayed: _Delayed | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> BlackholeNode:
        """Listen (again, on the same port after a stop) and accept sockets."""
        self.server.start()
        if (self._jitter > 0 or self._reorder > 0) and self._delayed is None:
            self._delayed = _Delayed(self.server.publish, self._jitter, self._rng, self._reorder)
        return self

    def stop(self, close_code: int | None = None) -> None:
        """Take the node down: connections are refused until start(). Its sockets end with no
        close frame, as when the node's VM dies, or with ``close_code`` (1001: a clean stop)."""
        self.server.stop(close_code)

    def restart(self, close_code: int | None = None) -> None:
        self.stop(close_code)
        self.start()

    def shutdown(self) -> None:
        """Stop for good (the simulator is stopping): clean closes, no more deliveries."""
        if self._delayed is not None:
            self._delayed.close()
            self._delayed = None
        self.server.stop(1001)

    @property
    def running(self) -> bool:
        return self.server.running

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"{self._scheme}://{format_host(self.server.host)}:{self.port}"

    @property
    def name(self) -> str:
        """What Crossbar's socket listing calls this node ("destination")."""
        return self.server.node_name

    # -- events --------------------------------------------------------------------

    def publish(self, event: Event) -> int:
        """Deliver to this node's subscribed sockets; frames queued (0 while delayed or down)."""
        if self._delayed is not None:
            self._delayed.put(event)
            return 0
        return self.server.publish(event)

    # -- faults and inspection -----------------------------------------------------

    def send_raw(self, payload: str | bytes) -> None:
        """Send this exact frame (text if str, binary if bytes) to every open socket."""
        self.server.send_raw(payload)

    def close_connections(self, code: int = 1001, reason: str = "") -> None:
        self.server.close_connections(code, reason)

    def drop_connections(self) -> None:
        """Abort every websocket's TCP connection without a close frame."""
        self.server.drop_connections()

    def reject_upgrades(self, status: int, count: int) -> None:
        """The next ``count`` upgrades to this node get plain HTTP ``status``, empty body."""
        self.server.reject_upgrades(status, count)

    def shed_replies(self, count: int) -> None:
        """Lose the next ``count`` replies on any of this node's sockets (a busy 4.3 node)."""
        self.server.shed_replies(count)

    def set_stalled(self, stalled: bool) -> None:
        """Hung node: stop reading from (so no pongs) and writing to every socket."""
        self.server.set_stalled(stalled)

    @property
    def client_close_codes(self) -> list[int]:
        """The close codes clients sent this node when they said goodbye, oldest first."""
        return list(self.server.client_close_codes)

    def sockets(self) -> list[dict[str, Any]]:
        """Authenticated live sockets, shaped like GET /v2/accounts/{id}/websockets items."""
        return self.server.sockets()


class Cluster:
    """The nodes together: one event stream in, and the socket tracking Crossbar asks."""

    def __init__(self, nodes: list[BlackholeNode]) -> None:
        self.nodes = nodes

    def start(self) -> None:
        started: list[BlackholeNode] = []
        try:
            for node in self.nodes:
                node.start()
                started.append(node)
        except BaseException:
            for node in started:
                node.shutdown()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.shutdown()

    def publish(self, event: Event) -> int:
        # The same Event object for every node: identical routing key, msg_id and data.
        return sum(node.publish(event) for node in self.nodes)

    def sockets(self, account_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Every node's sockets, as blackhole_tracking gathers them from the whole cluster (a
        node that is down does not answer and is left out)."""
        return [item for node in self.nodes for item in node.server.sockets(account_ids)]

    def socket_by_id(self, session_id: str) -> dict[str, Any] | None:
        for node in self.nodes:
            found = node.server.socket_by_id(session_id)
            if found is not None:
                return found
        return None
