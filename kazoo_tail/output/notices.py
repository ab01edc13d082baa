"""Notices put into words: the session hands over facts, and this is the one place that says
them. Stdlib only, so that JSON mode never pays for importing rich."""

from __future__ import annotations

from kazoo_tail.kazoo.events import Notice, NoticeKind
from kazoo_tail.kazoo.time import utc_stamp

# The status line names up to this many accounts; past it, it counts them.
SUMMARY_ACCOUNTS = 3


def describe(notice: Notice) -> str:
    """One line for the user, e.g. "connection to ws://h:5555 lost (connection reset by the
    server); reconnecting in 1.2s"."""
    kind = notice.kind
    if kind is NoticeKind.SUBSCRIBED:
        return _subscribed(notice)
    if kind is NoticeKind.PROGRESS:
        pace = (
            f"; blackhole admits {notice.block} a second, about {notice.seconds_left:.0f}s to go"
            if notice.seconds_left >= 1
            else ""
        )
        return f"subscribed {notice.answered:,}/{notice.total:,} on {notice.url}{pace}"
    if kind is NoticeKind.DISCONNECTED:
        return _disconnected(notice) + _who_else(notice)
    if kind is NoticeKind.LINK_ENDED:
        others = ", ".join(notice.still_up)
        return f"{notice.reason}; not trying {notice.url} again, going on with {others}"
    if kind is NoticeKind.STALLED:
        checking = "; checking the connection" if notice.count else ""
        return f"{_stalled(notice)}{checking}"
    if kind is NoticeKind.GAP:
        return _gap(notice)
    more = f" ({notice.count} more bad frames ignored before it)" if notice.count else ""
    return f"ignored {notice.reason} from the server{more}"


def _disconnected(notice: Notice) -> str:
    delay = notice.delay or 0.0
    if not notice.reached:
        return f"{notice.reason}; trying again in {delay:.1f}s"
    if notice.still_down:
        # The news first: a status line cut at 80 columns still says it.
        return (
            f"still reconnecting (down {notice.down_for or 0.0:.0f}s, next try in "
            f"{delay:.1f}s): {notice.reason}"
        )
    return f"connection to {notice.url} lost ({notice.reason}); reconnecting in {delay:.1f}s"


def _who_else(notice: Notice) -> str:
    if not notice.several:
        return ""
    if notice.still_up:
        return f"; still subscribed on {', '.join(notice.still_up)}"
    if notice.cluster_down:
        return "; no node is subscribed now"
    return ""


def _gap(notice: Notice) -> str:
    gap_from = notice.gap_from or 0.0
    gap_to = notice.gap_to or gap_from
    window = (
        f"events from {utc_stamp(gap_from)} to {utc_stamp(gap_to, round_up=True)} "
        f"({gap_to - gap_from:.1f}s) may have been missed"
    )
    why = "no node was subscribed meanwhile; " if notice.several else ""
    if notice.stalled:
        lost = ", and the connection was lost" if notice.reconnected else ""
        return (
            f"{window}: {_stalled(notice)}{lost} ({why}blackhole may have dropped them "
            "meanwhile and cannot replay them)"
        )
    return f"reconnected to {notice.url}; {window} ({why}blackhole cannot replay them)"


def _stalled(notice: Notice) -> str:
    return (
        f"kazoo-tail itself did not read the connection for {notice.stalled:.1f}s (it was "
        "stopped, the machine suspended, or it was held up)"
    )


def _subscribed(notice: Notice) -> str:
    """One readable line, however many accounts: they are counted, not listed, past three."""
    by_account: dict[str, tuple[str, ...]] = {}
    for account, binding in notice.subscriptions:
        by_account[account] = (*by_account.get(account, ()), binding)
    url = notice.url
    if len(by_account) <= SUMMARY_ACCOUNTS:
        parts = [
            f"{', '.join(bindings)} for account {account}"
            for account, bindings in by_account.items()
        ]
        return f"subscribed to {'; '.join(parts)} on {url}"
    accounts = list(by_account)
    shown = f"{accounts[0]} and {len(accounts) - 1} more"
    binding_sets = set(by_account.values())
    if len(binding_sets) == 1:
        bindings = ", ".join(binding_sets.pop())
        return f"subscribed to {bindings} for {len(accounts)} accounts ({shown}) on {url}"
    count = len(notice.subscriptions)
    return f"subscribed to {count} bindings for {len(accounts)} accounts ({shown}) on {url}"
