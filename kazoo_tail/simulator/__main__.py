"""``python -m kazoo_tail.simulator``: a standalone fake Kazoo for demos and manual testing."""

from __future__ import annotations

import argparse
import ssl
import sys

from .core import SimulatorConfig
from .runner import serve_forever


def build_parser(prog: str = "python -m kazoo_tail.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fake Kazoo Crossbar + blackhole websocket with realistic demo traffic.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address")
    parser.add_argument("--crossbar-port", type=int, default=8000, help="HTTP API port")
    parser.add_argument("--blackhole-port", type=int, default=5555, help="websocket port")
    parser.add_argument("--event-rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--idle-timeout", type=float, default=3600.0, help="seconds")
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="seconds")
    parser.add_argument("--certfile", help="PEM certificate: serve https and wss")
    parser.add_argument("--keyfile", help="PEM private key for --certfile")
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable traffic")
    parser.add_argument("--ping-module", action="store_true", help="answer app-level pings")
    parser.add_argument(
        "--advertise-ws-url", action="store_true", help="put the websocket URL in auth replies"
    )
    parser.add_argument(
        "--max-connections-per-ip", type=int, default=None, help="refuse more sockets (HTTP 429)"
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m kazoo_tail.simulator") -> int:
    args = build_parser(prog).parse_args(argv)
    context: ssl.SSLContext | None = None
    if args.keyfile and not args.certfile:
        print("error: --keyfile needs --certfile", file=sys.stderr)
        return 2
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as exc:
            print(f"error: cannot load certificate: {exc}", file=sys.stderr)
            return 2
    config = SimulatorConfig(
        host=args.host,
        crossbar_port=args.crossbar_port,
        blackhole_port=args.blackhole_port,
        ssl_context=context,
        token_ttl=args.token_ttl,
        idle_timeout=args.idle_timeout,
        event_rate=args.event_rate,
        seed=args.seed,
        advertise_ws_url=args.advertise_ws_url,
        max_connections_per_ip=args.max_connections_per_ip,
        ping_module=args.ping_module,
    )
    try:
        serve_forever(config)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
