"""Every option, declared once, and the bundles commands take them in.

An option's destination name is the ``ConnectionConfig`` field it fills wherever there is one
(``url``, ``ws_url``, ``account_ids``...), so a new connection setting is one field there and
one declaration here. Only click and the stdlib are imported: every TAB press runs this.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from kazoo_tail.output.formats import FORMATS

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    F = TypeVar("F", bound=Callable[..., Any])

    class Decorator(Protocol):
        """What click.option returns: it gives back the function it decorates."""

        def __call__(self, function: F, /) -> F: ...


def _complete_binding(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Bindings from the built-in catalogue, and the server's as 'bindings' last saw it."""
    from click.shell_completion import CompletionItem

    from kazoo_tail.cli.settings import config_store
    from kazoo_tail.kazoo import catalog

    forms = catalog.concrete_forms()
    # demo has no --config-dir, but the environment's choice still holds for it.
    directory = ctx.params.get("config_dir") or os.environ.get("KAZOO_TAIL_CONFIG_DIR")
    cached = config_store(directory).cached_catalogue()
    if cached:
        forms += [form for form in catalog.concrete_forms(cached) if form not in forms]
    return [CompletionItem(form) for form in forms if form.startswith(incomplete)]


def _warn_when_on_the_command_line(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """A secret in argv is visible to every user of the machine (ps, /proc/PID/cmdline) and
    lands in shell history: say so, and name the variable that keeps it out of sight."""
    from click.core import ParameterSource

    if (
        value
        and not ctx.resilient_parsing
        and param.name is not None
        and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
    ):
        from kazoo_tail.cli.context import environment, status_writer

        flag = param.opts[0] if param.opts else param.name
        variable = param.envvar if isinstance(param.envvar, str) else "its variable"
        status_writer(environment(ctx)).warning(
            f"{flag} on the command line can be read by every user of this machine (ps) and "
            f"stays in your shell history; set {variable} instead"
        )
    return value


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A size in bytes: 65536, 512K, 64M, 1G (K, M, G and T are powers of 1024; a trailing
    B or iB is allowed)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        number, unit = text.rstrip("KMGT"), text[len(text.rstrip("KMGT")) :]
        try:
            size = float(number) * _UNITS[unit]
        except (ValueError, KeyError):
            size = float("nan")
        if not 0 <= size < float("inf"):
            self.fail(f"{value!r} is not a size such as 512K, 64M or 1G", param, ctx)
        return int(size)


def _option(*declarations: str, **attributes: Any) -> Decorator:
    """click.option, naming its environment variable in --help when it has one."""
    if "envvar" in attributes:
        attributes.setdefault("show_envvar", True)
    option: Decorator = click.option(*declarations, **attributes)
    return option


OPTIONS: dict[str, Decorator] = {
    # -- the server --------------------------------------------------------------------------
    "url": _option(
        "--url",
        envvar="KAZOO_URL",
        metavar="URL",
        help="Crossbar base URL, e.g. http://kazoo.example.com:8000.",
    ),
    "ws_url": _option(
        "--ws-url",
        envvar="KAZOO_WS_URL",
        metavar="URL",
        multiple=True,
        help="Blackhole websocket URL; repeat it (or list several in KAZOO_WS_URL, apart by "
        "spaces or commas) for one link to each node of a cluster, merged [default: the URL "
        "Crossbar advertises, else ws://HOST:5555, or wss://HOST:7777 for an https --url].",
    ),
    "ca_bundle": _option(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False),
        help="CA certificates (PEM) to trust, for Crossbar and the websocket.",
    ),
    "insecure": _option(
        "--insecure", is_flag=True, help="Do not verify TLS certificates (warns on stderr)."
    ),
    "profile": _option(
        "--profile",
        envvar="KAZOO_TAIL_PROFILE",
        metavar="NAME",
        help="Profile saved by 'login' [default: default].",
    ),
    "config_dir": _option(
        "--config-dir",
        envvar="KAZOO_TAIL_CONFIG_DIR",
        metavar="DIR",
        type=click.Path(file_okay=False),
        is_eager=True,  # read before --binding completes, which looks at the cached catalogue
        help="Where profiles and cached tokens live.",
    ),
    "debug": _option(
        "--debug",
        is_flag=True,
        envvar="KAZOO_TAIL_DEBUG",
        help="Show a traceback (secrets redacted) on unexpected errors.",
    ),
    # -- who logs in -------------------------------------------------------------------------
    "account_name": _option(
        "--account-name",
        envvar="KAZOO_ACCOUNT_NAME",
        metavar="NAME",
        help="Account name to log in to.",
    ),
    "realm": _option(
        "--realm",
        envvar="KAZOO_ACCOUNT_REALM",
        metavar="REALM",
        help="Log in by account realm instead of name.",
    ),
    "phone_number": _option(
        "--phone-number",
        envvar="KAZOO_PHONE_NUMBER",
        metavar="NUMBER",
        help="Log in by the account's phone number instead of name.",
    ),
    "username": _option(
        "--username",
        envvar="KAZOO_USERNAME",
        metavar="USER",
        help="User name. Password: KAZOO_PASSWORD, --password-stdin, or a prompt.",
    ),
    "password_stdin": _option(
        "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
    ),
    "api_key": _option(
        "--api-key",
        envvar="KAZOO_API_KEY",
        metavar="KEY",
        callback=_warn_when_on_the_command_line,
        help="Log in with an account API key.",
    ),
    "token": _option(
        "--token",
        envvar="KAZOO_AUTH_TOKEN",
        metavar="TOKEN",
        callback=_warn_when_on_the_command_line,
        help="Use this Crossbar auth token instead of logging in.",
    ),
    # -- what to subscribe -------------------------------------------------------------------
    "bindings": _option(
        "-b",
        "--binding",
        "bindings",
        multiple=True,
        metavar="BINDING",
        shell_complete=_complete_binding,
        help="Blackhole binding, e.g. 'call.CHANNEL_CREATE.*' or 'object.doc_created.user'. "
        "Repeatable; 'kazoo-tail bindings' lists them.",
    ),
    "account_ids": _option(
        "--account-id",
        "account_ids",
        multiple=True,
        metavar="ID",
        envvar="KAZOO_ACCOUNT_ID",
        help="Account to use. Repeatable [default: the token's account].",
    ),
    "descendants": _option(
        "--descendants", is_flag=True, help="Also subscribe for every descendant of the accounts."
    ),
    # -- staying connected -------------------------------------------------------------------
    "ping_interval": _option(
        "--ping-interval",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        metavar="SECONDS",
        help="Send a websocket ping this often; no answer means a dead link.",
    ),
    "ping_timeout": _option(
        "--ping-timeout",
        type=click.FloatRange(min=0.1),
        envvar="KAZOO_TAIL_PING_TIMEOUT",
        metavar="SECONDS",
        help="No answer to a ping this long means a dead link [default: 3 ping intervals, "
        "at most 10].",
    ),
    "no_reconnect": _option(
        "--no-reconnect",
        is_flag=True,
        help="Exit (code 4) when the connection is lost instead of reconnecting.",
    ),
    "max_reconnect_time": _option(
        "--max-reconnect-time",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Give up (code 4) after being disconnected this long.",
    ),
    "buffer_size": _option(
        "--buffer-size",
        type=ByteSize(),
        default="8M",
        show_default=True,
        envvar="KAZOO_TAIL_BUFFER_SIZE",
        metavar="SIZE",
        help="Memory for events stdout has not taken yet (e.g. 512K, 64M, 1G), so that the "
        "websocket is read even while stdout is blocked.",
    ),
    "spill_size": _option(
        "--spill-size",
        type=ByteSize(),
        default="1G",
        show_default=True,
        envvar="KAZOO_TAIL_SPILL_SIZE",
        metavar="SIZE",
        help="Beyond --buffer-size, hold up to this much in an unlinked temporary file "
        "(in TMPDIR); 0: none. Past both, events are dropped and counted on stderr.",
    ),
    "record": _option(
        "--record",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Append every frame received, with its time, to FILE (JSON lines; see 'replay').",
    ),
    # -- what to show, and how ---------------------------------------------------------------
    "output": _option(
        "-o",
        "--output",
        type=click.Choice(list(FORMATS)),
        help="Output format [default: pretty on a terminal, else json].",
    ),
    "json_flag": _option("--json", "json_flag", is_flag=True, help="Short for --output json."),
    "colour": _option(
        "--color",
        "--colour",
        "colour",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "always", "never"]),
        help="Colour in pretty output (NO_COLOR is honoured in auto).",
    ),
    "matches": _option(
        "--match",
        "matches",
        multiple=True,
        metavar="PATH=GLOB",
        help="Only events whose field matches, e.g. data.caller_id_number='1555*'. "
        "Repeatable; all must hold.",
    ),
    "excludes": _option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="PATH=GLOB",
        help="Drop events whose field matches. Repeatable.",
    ),
    "grep": _option("--grep", metavar="REGEX", help="Only events whose JSON text matches."),
    "call_ids": _option(
        "--call-id",
        "call_ids",
        multiple=True,
        metavar="ID",
        help="Only this call, all its legs (follows other_leg_call_id).",
    ),
    "fields": _option(
        "--fields",
        metavar="PATHS",
        help="Print only these fields, e.g. name,data.call_id: a table after the time in "
        "pretty mode, a reduced object in JSON.",
    ),
    "calls": _option(
        "--calls",
        is_flag=True,
        help="Pretty mode: call timelines, every line labelled with its call (#N), each call "
        "closed by a line with its outcome, ring and talk time.",
    ),
    "count": _option(
        "--count",
        type=click.IntRange(min=1),
        metavar="N",
        help="Exit after N events (that pass the filters).",
    ),
    "duration": _option(
        "--duration",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Exit after this many seconds.",
    ),
    "show_node": _option(
        "--show-node",
        is_flag=True,
        help='JSON: add a top-level "node" field, the host:port of the blackhole node that '
        "delivered each event first (pretty output names it whenever --ws-url is repeated).",
    ),
    "received_at": _option(
        "--received-at",
        is_flag=True,
        help='JSON: add a top-level "received_at", when each event was received, in UTC to '
        "the millisecond (a replay gives the recorded time).",
    ),
    "summary": _option(
        "--summary",
        is_flag=True,
        help="On exit, print events per name and binding, uptime and gaps to stderr.",
    ),
    "no_dedupe": _option(
        "--no-dedupe",
        is_flag=True,
        help="Print an event once per matching binding instead of once.",
    ),
}


def use(*names: str) -> Decorator:
    """Apply the named options, in the order given on the help page."""

    def apply(function: F) -> F:
        for name in reversed(names):
            function = OPTIONS[name](function)
        return function

    return apply


SERVER = ("url", "ws_url", "ca_bundle", "insecure", "profile", "config_dir", "debug")
LOGIN = ("account_name", "realm", "phone_number", "username", "password_stdin", "api_key")
SHOW = (
    "output",
    "json_flag",
    "colour",
    "matches",
    "excludes",
    "grep",
    "call_ids",
    "fields",
    "calls",
    "count",
    "duration",
    "summary",
    "no_dedupe",
    "show_node",
    "received_at",
)
SUBSCRIBE = ("bindings", "account_ids", "descendants")
STAY_CONNECTED = (
    "record",
    "buffer_size",
    "spill_size",
    "ping_interval",
    "ping_timeout",
    "no_reconnect",
    "max_reconnect_time",
)
# The calls board: the tail's filters and connection keeping, without its output choices.
BOARD = (
    "matches",
    "excludes",
    "grep",
    "call_ids",
    "duration",
    "record",
    "ping_interval",
    "ping_timeout",
    "no_reconnect",
    "max_reconnect_time",
)

# -- where each option is shown in --help ----------------------------------------------------

CONNECTION = "Connection"
SIMULATOR = "Simulator"
AUTHENTICATION = "Authentication"
SUBSCRIPTION = "Subscription"
OUTPUT = "Output"
FILTERS = "Filters"
STAYING_CONNECTED = "Staying connected"
CONFIGURATION = "Configuration"
# The order of the sections on every help page: where, as whom, what, how shown, and the rest.
SECTION_ORDER = (
    CONNECTION,
    SIMULATOR,
    AUTHENTICATION,
    SUBSCRIPTION,
    OUTPUT,
    FILTERS,
    STAYING_CONNECTED,
    CONFIGURATION,
)
# By destination name: the options above and the few a single command declares itself.
SECTIONS: dict[str, str] = {
    "url": CONNECTION,
    "ws_url": CONNECTION,
    "ca_bundle": CONNECTION,
    "insecure": CONNECTION,
    "demo_mode": CONNECTION,
    "event_rate": SIMULATOR,
    "seed": SIMULATOR,
    "nodes": SIMULATOR,
    "account_name": AUTHENTICATION,
    "realm": AUTHENTICATION,
    "phone_number": AUTHENTICATION,
    "username": AUTHENTICATION,
    "password_stdin": AUTHENTICATION,
    "api_key": AUTHENTICATION,
    "token": AUTHENTICATION,
    "bindings": SUBSCRIPTION,
    "account_ids": SUBSCRIPTION,
    "descendants": SUBSCRIPTION,
    "output": OUTPUT,
    "json_flag": OUTPUT,
    "colour": OUTPUT,
    "fields": OUTPUT,
    "calls": OUTPUT,
    "count": OUTPUT,
    "duration": OUTPUT,
    "summary": OUTPUT,
    "no_dedupe": OUTPUT,
    "show_node": OUTPUT,
    "received_at": OUTPUT,
    "record": OUTPUT,
    "realtime": OUTPUT,
    "matches": FILTERS,
    "excludes": FILTERS,
    "grep": FILTERS,
    "call_ids": FILTERS,
    "ping_interval": STAYING_CONNECTED,
    "ping_timeout": STAYING_CONNECTED,
    "no_reconnect": STAYING_CONNECTED,
    "max_reconnect_time": STAYING_CONNECTED,
    "buffer_size": STAYING_CONNECTED,
    "spill_size": STAYING_CONNECTED,
    "profile": CONFIGURATION,
    "config_dir": CONFIGURATION,
    "debug": CONFIGURATION,
    "save_as": CONFIGURATION,
    "everything": CONFIGURATION,
}
