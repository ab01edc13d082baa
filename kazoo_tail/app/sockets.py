"""``kazoo-tail sockets``: the account's live blackhole sockets (GET /v2/accounts/{id}/websockets).

Server text is untrusted: the listing (``output/lists.py``) escapes every field it prints.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from kazoo_tail.app.tail import warn_if_unverified
from kazoo_tail.auth.provider import TokenProvider
from kazoo_tail.errors import AuthError, ConnectError, ExitCode, UsageError
from kazoo_tail.kazoo.time import unix_from_gregorian
from kazoo_tail.net.crossbar import Crossbar
from kazoo_tail.output.lists import ListForm, write_json_lines, write_lines, write_table
from kazoo_tail.output.terminal import StatusWriter, terminal_width
from kazoo_tail.session.resolve import ConnectionConfig, account_ids


def list_sockets(
    config: ConnectionConfig,
    provider: TokenProvider,
    out: IO[str],
    status: StatusWriter,
    *,
    form: ListForm,
) -> ExitCode:
    warn_if_unverified(config, status)
    if not config.url:
        raise UsageError("listing sockets needs Crossbar: pass --url (or set KAZOO_URL)")
    accounts = account_ids(config, provider.current())
    crossbar = provider.crossbar()
    found: dict[str, dict[str, Any]] = {}
    for account_id in accounts:
        for item in _account_sockets(crossbar, provider, account_id):
            key = str(item.get("websocket_session_id") or f"#{len(found)}")
            found.setdefault(key, item)
    if not found:
        status.info(f"no live blackhole sockets for account {', '.join(accounts)}")
        return ExitCode.OK
    items = list(found.values())
    if form == "json":
        # Each socket as the server described it, not our reading of it.
        write_json_lines(out, items)
    elif form == "lines":
        write_lines(out, [socket_fields(item) for item in items])
    else:
        rows = [socket_fields(item) for item in items]
        write_table(out, SOCKET_COLUMNS, rows, width=terminal_width(out)())
    out.flush()
    return ExitCode.OK


def _account_sockets(
    crossbar: Crossbar, provider: TokenProvider, account_id: str
) -> list[dict[str, Any]]:
    path = f"accounts/{quote(account_id, safe='')}/websockets"
    try:
        data = crossbar.get(path, token=provider.current().token)
    except AuthError:
        if provider.credentials.token:
            raise
        # The cached token may have been revoked (a password change): renew it once.
        data = crossbar.get(path, token=provider.current(refresh=True).token)
    if not isinstance(data, list):
        raise ConnectError(f"Crossbar answered GET /v2/{path} without a list of sockets")
    return [item for item in data if isinstance(item, dict)]


# The bindings last: the longest, they are folded between bindings at the terminal's edge.
SOCKET_COLUMNS = ("SOCKET", "FROM", "NODE", "SINCE", "NAME", "BINDINGS")


def socket_fields(item: dict[str, Any]) -> tuple[str, ...]:
    """A socket's id, source, node, connect time, name and bindings with counts; "-" for
    what the server did not say."""
    bindings = item.get("bindings")
    counts = Counter(str(b) for b in bindings) if isinstance(bindings, list) else Counter()
    listed = [f"{binding} x{n}" if n > 1 else binding for binding, n in counts.items()]
    return (
        _text(item.get("websocket_session_id")),
        _text(item.get("source")),
        _text(item.get("destination")),
        _gregorian_local(item.get("timestamp")),
        json.dumps(item["name"]) if "name" in item else "-",
        ", ".join(listed) or "-",
    )


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _gregorian_local(value: Any) -> str:
    unix = unix_from_gregorian(value)
    if unix is None:
        return "-"
    try:
        moment = datetime.fromtimestamp(unix)
    except (OverflowError, OSError, ValueError):
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S")
