"""URL checks and blackhole's usual address: pure functions, before any connection."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from kazoo_tail.errors import UsageError

# Everything up to the last "@" before any query or fragment: where a URL's user:password is.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?(//)?[^?#]*@")


def check_url(url: str, schemes: tuple[str, ...], what: str, *, endpoint: bool = False) -> None:
    """A usage error, before any connection, for a URL that cannot work or that carries a user
    name or password (which would be shown in messages and saved in the config files).
    ``endpoint``: a URL of the user's own receiver (forward's --to), which may carry a user
    name and password, as a Kazoo webhook's may; messages then show no query values either."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        port, parts = -1, urlsplit("")
    if not endpoint and ("@" in parts.netloc or (port == -1 and "@" in url)):
        raise UsageError(
            f"{what} {without_userinfo(url)!r} must not carry a user name or password: "
            "remove the 'USER:PASSWORD@' part and log in with --username and KAZOO_PASSWORD "
            "(or --api-key)"
        )
    if parts.scheme not in schemes or not parts.hostname or port == -1:
        shown = shown_url(url, hide_query_values=endpoint)
        with_scheme = _with_scheme(url, schemes[0])
        if with_scheme is not None:
            raise UsageError(
                f"{what} {shown!r} has no scheme; did you mean "
                f"{shown_url(with_scheme, hide_query_values=endpoint)!r}? "
                f"(or {schemes[-1]}:// if the server has TLS)"
            )
        raise UsageError(
            f"{what} {shown!r} is not a valid URL: it must look like "
            f"{schemes[0]}://HOST:PORT (scheme {' or '.join(schemes)})"
        )


_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def _with_scheme(url: str, scheme: str) -> str | None:
    """``host:port`` typed without its scheme, as the URL it would be with one; None when the
    text is not a host and port (or names a scheme itself, as in ``http//host``)."""
    if "://" in url:
        return None
    address = url.split("/", 1)[0]
    found = _HOST_PORT.fullmatch(address)
    if found is None or found.group(1).lower() in ("http", "https", "ws", "wss"):
        return None
    port = found.group(2)
    if port is not None and int(port[1:]) > 65535:
        return None
    rest = url[len(address) :]
    if any(char.isspace() or char == "@" for char in rest):
        return None
    return f"{scheme}://{url}"


def split_urls(text: str) -> list[str]:
    """Several URLs in one setting (KAZOO_WS_URL, a profile), apart by spaces or commas; each
    once, in their order."""
    return list(dict.fromkeys(part for part in re.split(r"[\s,]+", text) if part))


def node_label(url: str) -> str:
    """A short name for a blackhole node in status lines and pretty output: its host and
    port."""
    return urlsplit(url).netloc or url


def without_userinfo(url: str) -> str:
    """The URL as it may be shown: without whatever could be a user name and password."""
    return _USERINFO.sub(lambda found: (found.group(1) or "") + (found.group(2) or ""), url)


# In running text (an exception's message): a URL's "//user:password@".
_USERINFO_IN_TEXT = re.compile(r"//[^/\s@]*@")


def text_without_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``//user:pw@host`` ->
    ``//host``)."""
    return _USERINFO_IN_TEXT.sub("//", text)


def shown_url(url: str, limit: int = 200, *, hide_query_values: bool = False) -> str:
    """A URL a server gave us, as it may be shown: no userinfo, no control characters, and
    not endless; with ``hide_query_values``, each value of its query string as ``…`` (a
    webhook receiver often takes its secret there: ``?token=...``)."""
    text = re.sub(r"[\s\x00-\x1f\x7f-\x9f]+", "", without_userinfo(url))
    if hide_query_values:
        base, question, query = text.partition("?")
        query, hash_sign, fragment = query.partition("#")
        names = [pair.partition("=")[0] for pair in query.split("&")] if query else []
        text = base + question + "&".join(f"{name}=…" for name in names) + hash_sign + fragment
    return text if len(text) <= limit else text[: limit - 1] + "…"


def why_not_follow(origin: str, target: str) -> str | None:
    """Why credentials for ``origin`` must not follow a redirect to ``target`` (another host
    or port, or plain text after TLS), or None when they may: the same host and port, or the
    same host moving from plain text to TLS (http to https, ws to wss) on any port, the usual
    redirect to TLS."""
    try:
        before, after = urlsplit(origin), urlsplit(target)
        ports = _port(before), _port(after)
    except ValueError:
        return "an address that is not a valid URL"
    if not after.hostname or (before.hostname or "").lower() != after.hostname.lower():
        return "another host"
    if before.scheme == after.scheme:
        return "another port" if ports[0] != ports[1] else None
    if (before.scheme, after.scheme) in (("http", "https"), ("ws", "wss")):
        return None
    return "plain text instead of TLS" if before.scheme in ("https", "wss") else "another scheme"


def _port(parts: SplitResult) -> int | None:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme)


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def default_ws_url(crossbar_url: str) -> str:
    """Blackhole's usual address on the Crossbar host: ws on 5555, or wss on 7777 via HAProxy."""
    parts = urlsplit(crossbar_url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    if parts.scheme == "https":
        return f"wss://{host}:7777"
    return f"ws://{host}:5555"
