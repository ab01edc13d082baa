"""``kazoo-tail sockets``: the account's live blackhole sockets (GET /v2/accounts/{id}/websockets).

Server text is untrusted: every line goes through ``sanitize`` before printing.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from kazoo_tail.auth.provider import TokenProvider
from kazoo_tail.errors import AuthError, ConnectError, ExitCode, UsageError
from kazoo_tail.kazoo.json_text import compact_json
from kazoo_tail.kazoo.time import unix_from_gregorian
from kazoo_tail.net.crossbar import Crossbar
from kazoo_tail.output.jsonl import escape_json_text
from kazoo_tail.output.terminal import StatusWriter, sanitize
from kazoo_tail.session.resolve import ConnectionConfig, account_ids


def list_sockets(
    config: ConnectionConfig,
    provider: TokenProvider,
    out: IO[str],
    status: StatusWriter,
    *,
    as_json: bool,
) -> ExitCode:
    if config.verify is False:
        status.warning("TLS certificates are not verified (--insecure)")
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
    for item in found.values():
        # Strict JSON in printable ASCII, whatever the server nested or stdout can encode.
        line = escape_json_text(compact_json(item)) if as_json else socket_line(item)
        out.write(line + "\n")
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


def socket_line(item: dict[str, Any]) -> str:
    """One readable line per socket: id, source, node, connect time, bindings with counts."""
    parts = [str(item.get("websocket_session_id", "?"))]
    source = item.get("source")
    if source is not None:
        parts.append(f"from {source}")
    destination = item.get("destination")
    if destination is not None:
        parts.append(f"on {destination}")
    parts.append(f"since {_gregorian_local(item.get('timestamp'))}")
    bindings = item.get("bindings")
    counts = Counter(str(b) for b in bindings) if isinstance(bindings, list) else Counter()
    listed = [f"{binding} x{n}" if n > 1 else binding for binding, n in counts.items()]
    parts.append(", ".join(listed) if listed else "no bindings")
    if "name" in item:
        parts.append(f"name {json.dumps(item['name'])}")
    return sanitize("  ".join(parts))


def _gregorian_local(value: Any) -> str:
    unix = unix_from_gregorian(value)
    if unix is None:
        return "an unknown time"
    try:
        moment = datetime.fromtimestamp(unix)
    except (OverflowError, OSError, ValueError):
        return "an unknown time"
    return moment.strftime("%Y-%m-%d %H:%M:%S")
