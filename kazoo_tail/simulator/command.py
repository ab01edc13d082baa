"""The simulator's command line, one definition for ``python -m kazoo_tail.simulator`` and
``kazoo-tail simulator``. Only click and the stdlib load here; the servers load when it runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# Where each option is shown on a help page with sections (kazoo-tail simulator --help).
LISTENING, TRAFFIC, BEHAVIOUR = "Listening", "Traffic", "Behaving like Kazoo"


class _Option(click.Option):
    """click's option with the section of the help page it is shown in, which kazoo-tail's
    sectioned help reads (plain click ignores it)."""

    def __init__(self, *args: Any, section: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section = section


def _option(section: str, *declarations: str, **attributes: Any) -> Callable[[F], F]:
    return click.option(*declarations, cls=_Option, section=section, **attributes)


# Shared with `kazoo-tail demo`, which runs the simulator in-process and shows them in a
# section of its own.
def event_rate_option(section: str = TRAFFIC) -> Callable[[F], F]:
    return _option(
        section,
        "--event-rate",
        type=click.FloatRange(min=0),
        default=5.0,
        show_default=True,
        metavar="PER_SECOND",
        help="Simulated events per second.",
    )


def seed_option(section: str = TRAFFIC) -> Callable[[F], F]:
    return _option(
        section, "--seed", type=int, metavar="N", help="Make the simulated traffic repeatable."
    )


def nodes_option(section: str = TRAFFIC) -> Callable[[F], F]:
    return _option(
        section,
        "--nodes",
        type=click.IntRange(1, 8),
        default=1,
        show_default=True,
        metavar="N",
        help="Blackhole nodes sharing one event stream, as in a Kazoo cluster (each on its own "
        "port).",
    )


def build(
    *, advertise_ws_url: bool, command_class: type[click.Command] | None = None
) -> click.Command:
    """The command; ``advertise_ws_url`` is its default for --advertise-ws-url, and
    ``command_class`` the client's help with sections."""

    @click.command(
        cls=command_class or click.Command,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        epilog="""\b
Examples:
  kazoo-tail simulator
  kazoo-tail simulator --crossbar-port 8000 --blackhole-port 5555 --event-rate 20
  kazoo-tail simulator --nodes 2      # blackhole on 5555 and 5556, same events""",
    )
    @_option(
        LISTENING,
        "--host",
        default="127.0.0.1",
        show_default=True,
        metavar="ADDRESS",
        help="Address to listen on.",
    )
    @_option(
        LISTENING,
        "--crossbar-port",
        type=click.IntRange(0, 65535),
        metavar="PORT",
        default=8000,
        show_default=True,
        help="Crossbar's HTTP port (0: any free port).",
    )
    @_option(
        LISTENING,
        "--blackhole-port",
        type=click.IntRange(0, 65535),
        metavar="PORT",
        default=5555,
        show_default=True,
        help="Blackhole's websocket port; with --nodes, node N listens on this + N - 1 (0: any "
        "free ports).",
    )
    @nodes_option()
    @_option(
        TRAFFIC,
        "--node-jitter",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        default=0.0,
        show_default=True,
        help="With --nodes: each node delivers each event up to this many seconds late, so "
        "the nodes disagree on order.",
    )
    @_option(
        TRAFFIC,
        "--reorder-window",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        default=0.0,
        show_default=True,
        help="Each node delivers each event up to this many seconds late, in no order (as "
        "blackhole's per-event processes do).",
    )
    @event_rate_option()
    @_option(
        BEHAVIOUR,
        "--idle-timeout",
        type=click.FloatRange(min=0.1),
        metavar="SECONDS",
        default=3600.0,
        show_default=True,
        help="Close a socket (1000) after this many seconds without a frame from its client.",
    )
    @_option(
        BEHAVIOUR,
        "--token-ttl",
        type=click.FloatRange(min=1),
        metavar="SECONDS",
        default=3600.0,
        show_default=True,
        help="Seconds a token lives.",
    )
    @_option(
        LISTENING,
        "--certfile",
        type=click.Path(exists=True, dir_okay=False),
        metavar="FILE",
        help="PEM certificate: serve https and wss.",
    )
    @_option(
        LISTENING,
        "--keyfile",
        type=click.Path(exists=True, dir_okay=False),
        help="PEM private key for --certfile.",
    )
    @seed_option()
    @_option(BEHAVIOUR, "--ping-module", is_flag=True, help="Answer blackhole's app-level pings.")
    @_option(
        BEHAVIOUR,
        "--advertise-ws-url/--no-advertise-ws-url",
        default=advertise_ws_url,
        show_default=True,
        help="Put the websocket URL in auth replies, as a cluster with blackhole.url does.",
    )
    @_option(
        LISTENING,
        "--max-connections-per-ip",
        type=click.IntRange(min=1),
        metavar="N",
        help="Refuse more sockets than this from one address (HTTP 429).",
    )
    @_option(
        BEHAVIOUR,
        "--kazoo-version",
        type=click.Choice(["4.3", "master"]),
        default="4.3",
        show_default=True,
        help="Whose blackhole to behave like: 4.3 sheds frames past 50 queued and kills a "
        "socket whose send blocks 5 s; master sheds nothing, waits 30 s, and binds after "
        "it replies.",
    )
    @_option(
        BEHAVIOUR,
        "--refuse-channels",
        type=click.Choice(["401", "403", "500"]),
        help="Refuse GET /v2/accounts/{id}/channels with this status, as Crossbar does for a "
        "bad token (401), token restrictions that deny it (403), or ecallmgr out of reach "
        "(500).",
    )
    def simulator(
        host: str,
        crossbar_port: int,
        blackhole_port: int,
        nodes: int,
        node_jitter: float,
        reorder_window: float,
        event_rate: float,
        idle_timeout: float,
        token_ttl: float,
        certfile: str | None,
        keyfile: str | None,
        seed: int | None,
        ping_module: bool,
        advertise_ws_url: bool,
        max_connections_per_ip: int | None,
        kazoo_version: str,
        refuse_channels: str | None,
    ) -> None:
        """Run the built-in Kazoo simulator as a server until Ctrl-C.

        A Crossbar (HTTP) and blackhole (websocket) that log in the demo user and publish
        made-up calls, documents and faxes: for trying kazoo-tail, or any blackhole client,
        without a cluster.
        """
        import ssl

        from .core import SimulatorConfig
        from .runner import serve_forever

        context: ssl.SSLContext | None = None
        if keyfile and not certfile:
            raise click.UsageError("--keyfile needs --certfile")
        if certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                context.load_cert_chain(certfile, keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise click.UsageError(f"cannot load the certificate: {exc}") from None
        if blackhole_port and blackhole_port + nodes - 1 > 65535:
            raise click.UsageError(
                f"--nodes {nodes} from --blackhole-port {blackhole_port} needs ports past 65535"
            )
        config = SimulatorConfig(
            host=host,
            crossbar_port=crossbar_port,
            blackhole_port=blackhole_port,
            nodes=nodes,
            node_jitter=node_jitter,
            reorder_window=reorder_window,
            ssl_context=context,
            token_ttl=token_ttl,
            idle_timeout=idle_timeout,
            event_rate=event_rate,
            seed=seed,
            advertise_ws_url=advertise_ws_url,
            max_connections_per_ip=max_connections_per_ip,
            ping_module=ping_module,
            kazoo_version=kazoo_version,
            refuse_channels=int(refuse_channels) if refuse_channels else None,
        )
        try:
            serve_forever(config)
        except OSError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return simulator
