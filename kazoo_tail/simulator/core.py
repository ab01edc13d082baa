"""The Simulator facade: wires Crossbar, the blackhole node(s), traffic and fault hooks."""

from __future__ import annotations

import platform
import random
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .accounts import DEMO, Directory, TokenAuthority
from .blackhole_server import BlackholeServer
from .channels import Channels
from .cluster import BlackholeNode, Cluster, format_host
from .crossbar_server import CrossbarApp, CrossbarServer
from .stats import Stats
from .traffic import Event, TrafficFactory, TrafficThread

KAZOO_VERSIONS = ("4.3", "master")
# Where master's blackhole differs from 4.3's (docs/protocol.md §6): field -> (4.3, master).
MASTER_DIFFERS: dict[str, tuple[Any, Any]] = {
    "max_queued_messages": (50, None),
    # master sets none, so ranch's default applies (30 s, the socket closed alike).
    "send_timeout": (5.0, 30.0),
    "bind_delay": (0.0, 0.05),
}


@dataclass
class SimulatorConfig:
    host: str = "127.0.0.1"
    crossbar_port: int = 0
    # The first node's port; node i listens on blackhole_port + i (all on free ports if 0).
    blackhole_port: int = 0
    # Blackhole nodes sharing one event stream (a cluster whose AMQP listeners federate).
    nodes: int = 1
    # Each node delivers each event a random 0..node_jitter seconds late (order kept per node),
    # so a client of several nodes cannot count on them agreeing on order; 0 = at once.
    node_jitter: float = 0.0
    # Each node delivers each event a further random 0..reorder_window seconds late, order
    # NOT kept (blackhole dispatches each event from its own process); 0 = in order.
    reorder_window: float = 0.0
    # Server-side context; when set, both servers speak TLS (https and wss).
    ssl_context: ssl.SSLContext | None = None
    token_ttl: float = 3600.0
    # Close 1000 after this long without bytes from the client (pings count).
    idle_timeout: float = 3600.0
    # Generated events per second across the demo accounts; 0 = only explicit publish().
    event_rate: float = 5.0
    seed: int | None = None
    # On a successful subscribe, send one matching event before the reply, as Kazoo may.
    early_events: bool = True
    # Put data.ui_config.api.kazoo_websocket.url into auth replies.
    advertise_ws_url: bool = False
    # Plain HTTP 429 on upgrade when this many sockets from one IP are open.
    max_connections_per_ip: int | None = None
    # bh_ping loaded: {"action":"ping"} answers {"response":"pong"}.
    ping_module: bool = False
    # Per-socket bucket: 100 at first, then a block of 10 each second.
    rate_limit: bool = True
    # Which Kazoo's blackhole to behave like where a client can tell: "4.3" sheds frames and
    # kills a socket whose send blocks; "master" does neither but binds after it replies. The
    # three fields below default to 4.3's values; "master" replaces those left at them.
    kazoo_version: str = "4.3"
    # Outbound frames (replies too) are dropped while more than this many are queued for a
    # socket (blackhole.max_queued_messages); None = never.
    max_queued_messages: int | None = 50
    # A socket whose one send blocks this long is killed (blackhole.send_timeout_ms); None = never.
    send_timeout: float | None = 5.0
    # A new binding matches events this long after its reply (master's cast); 0 = at once.
    bind_delay: float = 0.0
    # /descendants is paged by 50; honouring paginate=false is off by default, the harsher case
    # (the client must follow every page).
    honour_paginate_false: bool = False
    # Crossbar refuses GET /v2/accounts/{id}/channels with this status (401, 403, 500); None:
    # lists them. Simulator.refuse_channels changes it while running.
    refuse_channels: int | None = None

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("nodes must be at least 1")
        if self.blackhole_port and self.blackhole_port + self.nodes - 1 > 65535:
            raise ValueError("the blackhole nodes' ports would pass 65535")
        if self.node_jitter < 0:
            raise ValueError("node_jitter must not be negative")
        if self.reorder_window < 0:
            raise ValueError("reorder_window must not be negative")
        if self.kazoo_version not in KAZOO_VERSIONS:
            raise ValueError(f"kazoo_version must be one of {', '.join(KAZOO_VERSIONS)}")
        if self.kazoo_version == "master":
            for name, (on_43, on_master) in MASTER_DIFFERS.items():
                if getattr(self, name) == on_43:
                    setattr(self, name, on_master)


class Simulator:
    """A fake Kazoo (Crossbar + one or more blackhole nodes) on loopback, for tests and demos.

    With several nodes, the fault hooks here act on every node (the cluster as a whole); use
    node(i) for one node's. ``stats`` counts the whole cluster, node(i).stats one node's.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.stats = Stats()
        self.directory = Directory.demo()
        self.tokens = TokenAuthority(self.config.token_ttl)
        self.traffic = TrafficFactory(self.directory, DEMO.account_id, self.config.seed)
        # ecallmgr's live channels, from the calls published: what Crossbar lists.
        self.channels = Channels(self.config.kazoo_version)
        self._cluster: Cluster | None = None
        self._crossbar: CrossbarServer | None = None
        self._traffic_thread: TrafficThread | None = None
        self._refuse_channels = self.config.refuse_channels
        self._channels_gate = threading.Event()
        self._channels_gate.set()

    # -- lifecycle -----------------------------------------------------------------

    def _make_node(self, index: int, rng: random.Random) -> BlackholeNode:
        cfg = self.config
        node_stats = Stats()

        def count(name: str) -> None:
            node_stats.incr(name)
            self.stats.incr(name)

        base_name = platform.node() or "blackhole"
        server = BlackholeServer(
            host=cfg.host,
            port=cfg.blackhole_port + index if cfg.blackhole_port else 0,
            ssl_context=cfg.ssl_context,
            tokens=self.tokens,
            directory=self.directory,
            traffic=self.traffic,
            count=count,
            idle_timeout=cfg.idle_timeout,
            early_events=cfg.early_events,
            ping_module=cfg.ping_module,
            rate_limit=cfg.rate_limit,
            max_connections_per_ip=cfg.max_connections_per_ip,
            max_queued_messages=cfg.max_queued_messages,
            send_timeout=cfg.send_timeout,
            bind_delay=cfg.bind_delay,
            node_name=base_name if cfg.nodes == 1 else f"{base_name}-{index + 1}",
        )
        scheme = "wss" if cfg.ssl_context else "ws"
        node_rng = random.Random(rng.random())
        return BlackholeNode(
            index, server, node_stats, scheme, cfg.node_jitter, node_rng, cfg.reorder_window
        )

    def start(self) -> Simulator:
        cfg = self.config
        rng = random.Random(cfg.seed)
        cluster = Cluster([self._make_node(index, rng) for index in range(cfg.nodes)])
        cluster.start()
        self._cluster = cluster
        app = CrossbarApp(
            self.tokens,
            self.directory,
            cluster,
            self.stats.incr,
            websocket_url=lambda: self.blackhole_url if cfg.advertise_ws_url else None,
            api_url=lambda: self.crossbar_url,
            honour_paginate_false=cfg.honour_paginate_false,
            channels=self.channels.listing,
            refuse_channels=lambda: self._refuse_channels,
            channels_gate=self._channels_gate,
        )
        try:
            crossbar = CrossbarServer(cfg.host, cfg.crossbar_port, cfg.ssl_context, app)
        except BaseException:
            cluster.stop()
            self._cluster = None
            raise
        crossbar.start()
        self._crossbar = crossbar
        self._traffic_thread = TrafficThread(self.traffic, cfg.event_rate, self._publish_event)
        self._traffic_thread.start()
        return self

    def stop(self) -> None:
        self._channels_gate.set()  # a listing held must not hold up the server's close
        if self._traffic_thread is not None:
            self._traffic_thread.stop()
            self._traffic_thread = None
        if self._crossbar is not None:
            self._crossbar.stop()
            self._crossbar = None
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def nodes(self) -> list[BlackholeNode]:
        if self._cluster is None:
            raise RuntimeError("simulator is not running")
        return list(self._cluster.nodes)

    def node(self, index: int) -> BlackholeNode:
        """The blackhole node ``index`` (0 is the first), with its own faults and stats."""
        return self.nodes[index]

    @property
    def blackhole(self) -> BlackholeServer:
        """The first node's server."""
        return self.node(0).server

    @property
    def crossbar_url(self) -> str:
        """Base URL without /v2, e.g. http://127.0.0.1:8000."""
        if self._crossbar is None:
            raise RuntimeError("simulator is not running")
        scheme = "https" if self.config.ssl_context else "http"
        return f"{scheme}://{format_host(self.config.host)}:{self._crossbar.port}"

    @property
    def blackhole_url(self) -> str:
        """The first node's URL (the one Crossbar advertises)."""
        return self.node(0).url

    @property
    def blackhole_urls(self) -> list[str]:
        """Every node's URL, the first node's first."""
        return [node.url for node in self.nodes]

    # -- events --------------------------------------------------------------------

    def _publish_event(self, event: Event) -> int:
        self.stats.incr("events_published")
        self.channels.observe(event)
        if self._cluster is None:
            return 0
        return self._cluster.publish(event)

    def publish(self, routing_key: str, name: str | None, data: dict[str, Any]) -> int:
        """Deliver one event to every matching subscription on every node; returns the frames
        queued (those a node_jitter delays are not counted)."""
        return self._publish_event(Event(routing_key, name, data))

    def publish_event(self, event: Event) -> int:
        return self._publish_event(event)

    def publish_call(
        self,
        account_id: str = DEMO.account_id,
        *,
        answered: bool = True,
        hangup_cause: str | None = None,
        talk_seconds: float | None = None,
        call_id: str | None = None,
        kind: str | None = None,
    ) -> list[Event]:
        """Publish every event of one two-leg call at once (time-ordered); returns them.
        ``kind``: outbound, inbound or internal, as the account sees it (random if None)."""
        scheduled = self.traffic.call(
            account_id,
            start=time.time(),
            answered=answered,
            hangup_cause=hangup_cause,
            talk_seconds=talk_seconds,
            call_id=call_id,
            kind=kind,
        )
        events = [item.event for item in scheduled]
        for event in events:
            self._publish_event(event)
        return events

    def start_call(
        self, account_id: str = DEMO.account_id, *, answered: bool = True, kind: str | None = None
    ) -> list[str]:
        """Publish a two-leg call's events up to its hangup, which never comes (see
        ``end_calls_unheard``); returns its legs' call ids, the A-leg's first."""
        scheduled = self.traffic.call(
            account_id, start=time.time(), answered=answered, talk_seconds=3600, kind=kind
        )
        ids: list[str] = []
        for item in scheduled:
            if item.event.name == "CHANNEL_DESTROY":
                continue
            call_id = str(item.event.data["call_id"])
            if call_id not in ids:
                ids.append(call_id)
            self._publish_event(item.event)
        return ids

    def end_calls_unheard(self, call_ids: list[str]) -> None:
        """These legs hang up with no event sent: as if their hangups were lost in a gap."""
        self.channels.forget(call_ids)

    def refuse_channels(self, status: int | None = 403) -> None:
        """Crossbar refuses channel listings with ``status`` as Kazoo does: 403 when token
        restrictions deny them, 401 as for a bad token, 500 when ecallmgr cannot be reached;
        None: lists them again."""
        self._refuse_channels = status

    def hold_channel_listings(self, held: bool = True) -> None:
        """Channel listings wait until released (a minute at most), as behind a slow
        ecallmgr; False releases them."""
        if held:
            self._channels_gate.clear()
        else:
            self._channels_gate.set()

    def publish_object(
        self,
        account_id: str = DEMO.account_id,
        action: str = "doc_created",
        doc_type: str = "user",
        doc_id: str | None = None,
    ) -> Event:
        event = self.traffic.object_change(account_id, action, doc_type, doc_id)
        self._publish_event(event)
        return event

    def publish_fax(self, account_id: str = DEMO.account_id, pages: int = 2) -> list[Event]:
        events = [item.event for item in self.traffic.fax(account_id, pages=pages)]
        for event in events:
            self._publish_event(event)
        return events

    def publish_conference(
        self,
        account_id: str = DEMO.account_id,
        event: str = "add-member",
        conference_id: str | None = None,
        call_id: str | None = None,
    ) -> Event:
        built = self.traffic.conference_event(account_id, event, conference_id, call_id)
        self._publish_event(built)
        return built

    # -- faults and inspection -----------------------------------------------------

    def send_raw(self, payload: str | bytes) -> None:
        """Send this exact frame (text if str, binary if bytes) to every open socket."""
        for node in self.nodes:
            node.send_raw(payload)

    def close_connections(self, code: int = 1001, reason: str = "") -> None:
        for node in self.nodes:
            node.close_connections(code, reason)

    def drop_connections(self) -> None:
        """Abort every websocket's TCP connection without a close frame."""
        for node in self.nodes:
            node.drop_connections()

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far, like a password change."""
        self.tokens.revoke_all()

    def mint_token(
        self,
        account_id: str = DEMO.account_id,
        owner_id: str | None = DEMO.owner_id,
        exp: float | None = None,
        method: str = "cb_user_auth",
    ) -> str:
        """A token as Crossbar would issue it; ``exp`` is absolute Unix time (past = expired)."""
        return self.tokens.mint(account_id, owner_id, method, exp)

    def reject_upgrades(self, status: int, count: int) -> None:
        """The next ``count`` websocket upgrades to each node get plain HTTP ``status`` with an
        empty body."""
        for node in self.nodes:
            node.reject_upgrades(status, count)

    def shed_replies(self, count: int) -> None:
        """Lose the next ``count`` replies on each node's sockets, as a busy 4.3 node does."""
        for node in self.nodes:
            node.shed_replies(count)

    def set_stalled(self, stalled: bool) -> None:
        """Hung nodes: stop reading from (so no pongs) and writing to every socket."""
        for node in self.nodes:
            node.set_stalled(stalled)

    @property
    def client_close_codes(self) -> list[int]:
        """The close codes clients sent when they said goodbye, oldest first node by node."""
        return [code for node in self.nodes for code in node.client_close_codes]

    def sockets(self) -> list[dict[str, Any]]:
        """Authenticated live sockets of every node, shaped like GET
        /v2/accounts/{id}/websockets items."""
        if self._cluster is None:
            raise RuntimeError("simulator is not running")
        return self._cluster.sockets()
