"""URL checks and blackhole's usual address: pure functions, before any connection."""

from __future__ import annotations

from urllib.parse import urlsplit

from kazoo_tail.errors import UsageError


def check_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    """A usage error, before any connection, for a URL that cannot work."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        port, parts = -1, urlsplit("")
    if parts.scheme not in schemes or not parts.hostname or port == -1:
        raise UsageError(
            f"{what} {url!r} is not a valid URL: it must look like "
            f"{schemes[0]}://HOST:PORT (scheme {' or '.join(schemes)})"
        )


def default_ws_url(crossbar_url: str) -> str:
    """Blackhole's usual address on the Crossbar host: ws on 5555, or wss on 7777 via HAProxy."""
    parts = urlsplit(crossbar_url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    if parts.scheme == "https":
        return f"wss://{host}:7777"
    return f"ws://{host}:5555"
