"""Every option, declared once: its flags and help, the section of the help page it is shown
in, and the groups of options that commands take.

An option's destination name is the ``ConnectionConfig`` field it fills wherever there is one
(``url``, ``ws_url``, ``account_ids``...), so a new connection setting is one declaration here
(its section places it on the help pages, its groups bring it to the commands) and one field
there. Only click and the stdlib are imported: every TAB press runs this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from kazoo_tail.kazoo import webhook_rules
from kazoo_tail.output.formats import FORMATS

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    F = TypeVar("F", bound=Callable[..., Any])

    class Decorator(Protocol):
        """What click.option returns: it gives back the function it decorates."""

        def __call__(self, function: F, /) -> F: ...


# -- where an option is shown in --help ------------------------------------------------------

CONNECTION = "Connection"
SIMULATOR = "Simulator"
AUTHENTICATION = "Authentication"
SUBSCRIPTION = "Subscription"
FORWARDING = "Forwarding"
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
    FORWARDING,
    OUTPUT,
    FILTERS,
    STAYING_CONNECTED,
    CONFIGURATION,
)

# -- the groups of options commands take (``use``) ---------------------------------------------

SERVER = "server"  # where the cluster is, and where the tool keeps its files
LOGIN = "login"  # who logs in (--token aside: 'login' itself does not take it)
SUBSCRIBE = "subscribe"  # what to subscribe to
SHOW = "show"  # which events are shown, and how: a live tail and a replay
LIVE = "live"  # a live tail's own: recording, stdout's buffer, keeping the link
BOARD = "board"  # the calls board's: the tail's filters and link keeping, not its output
FORWARD = "forward"  # forward's own: where and how events are sent
GROUPS = (SERVER, LOGIN, SUBSCRIBE, SHOW, LIVE, BOARD, FORWARD)


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


class Option(click.Option):
    """click's option, with the section of the help page it is shown in."""

    def __init__(self, *args: Any, section: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.section = section


def option(*declarations: str, section: str, **attributes: Any) -> Decorator:
    """click.option shown in ``section`` of the help page, naming its environment variable in
    --help when it has one. For a command's own options as for the shared ones below."""
    if "envvar" in attributes:
        attributes.setdefault("show_envvar", True)
    decorator: Decorator = click.option(*declarations, cls=Option, section=section, **attributes)
    return decorator


class Declared:
    """A shared option: how to add it to a command, and the groups of options it is in. (A
    plain class: a dataclass or NamedTuple costs every TAB press a little more.)"""

    __slots__ = ("add", "groups")

    def __init__(self, add: Decorator, groups: frozenset[str]) -> None:
        self.add = add
        self.groups = groups


def _declare(
    *declarations: str, section: str, groups: Iterable[str] = (), **attributes: Any
) -> Declared:
    return Declared(option(*declarations, section=section, **attributes), frozenset(groups))


# In the order of the help pages: by section, and in each section as shown.
OPTIONS: dict[str, Declared] = {
    # -- Connection ----------------------------------------------------------------------------
    "url": _declare(
        "--url",
        envvar="KAZOO_URL",
        metavar="URL",
        help="Crossbar base URL, e.g. http://kazoo.example.com:8000.",
        section=CONNECTION,
        groups=[SERVER],
    ),
    "ws_url": _declare(
        "--ws-url",
        envvar="KAZOO_WS_URL",
        metavar="URL",
        multiple=True,
        help="Blackhole websocket URL; repeat it (or list several in KAZOO_WS_URL, apart by "
        "spaces or commas) for one link to each node of a cluster, merged [default: the URL "
        "Crossbar advertises, else ws://HOST:5555, or wss://HOST:7777 for an https --url].",
        section=CONNECTION,
        groups=[SERVER],
    ),
    "ca_bundle": _declare(
        "--ca-bundle",
        type=click.Path(exists=True, dir_okay=False),
        help="CA certificates (PEM) to trust, for Crossbar, the websocket and forward's --to.",
        section=CONNECTION,
        groups=[SERVER],
    ),
    "insecure": _declare(
        "--insecure",
        is_flag=True,
        help="Do not verify TLS certificates (warns on stderr).",
        section=CONNECTION,
        groups=[SERVER],
    ),
    # -- Authentication ------------------------------------------------------------------------
    "account_name": _declare(
        "--account-name",
        envvar="KAZOO_ACCOUNT_NAME",
        metavar="NAME",
        help="Account name to log in to.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "realm": _declare(
        "--realm",
        envvar="KAZOO_ACCOUNT_REALM",
        metavar="REALM",
        help="Log in by account realm instead of name.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "phone_number": _declare(
        "--phone-number",
        envvar="KAZOO_PHONE_NUMBER",
        metavar="NUMBER",
        help="Log in by the account's phone number instead of name.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "username": _declare(
        "--username",
        envvar="KAZOO_USERNAME",
        metavar="USER",
        help="User name. Password: KAZOO_PASSWORD, --password-stdin, or a prompt.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "password_stdin": _declare(
        "--password-stdin",
        is_flag=True,
        help="Read the password from the first line of stdin.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "api_key": _declare(
        "--api-key",
        envvar="KAZOO_API_KEY",
        metavar="KEY",
        callback=_warn_when_on_the_command_line,
        help="Log in with an account API key.",
        section=AUTHENTICATION,
        groups=[LOGIN],
    ),
    "token": _declare(
        "--token",
        envvar="KAZOO_AUTH_TOKEN",
        metavar="TOKEN",
        callback=_warn_when_on_the_command_line,
        help="Use this Crossbar auth token instead of logging in.",
        section=AUTHENTICATION,
    ),
    # -- Subscription --------------------------------------------------------------------------
    "bindings": _declare(
        "-b",
        "--binding",
        "bindings",
        multiple=True,
        metavar="BINDING",
        shell_complete=_complete_binding,
        help="Blackhole binding, e.g. 'call.CHANNEL_CREATE.*' or 'object.doc_created.user'. "
        "Repeatable; 'kazoo-tail bindings' lists them.",
        section=SUBSCRIPTION,
        groups=[SUBSCRIBE],
    ),
    "account_ids": _declare(
        "--account-id",
        "account_ids",
        multiple=True,
        metavar="ID",
        envvar="KAZOO_ACCOUNT_ID",
        help="Account to use. Repeatable [default: the token's account].",
        section=SUBSCRIPTION,
        groups=[SUBSCRIBE],
    ),
    "descendants": _declare(
        "--descendants",
        is_flag=True,
        help="Also subscribe for every descendant of the accounts.",
        section=SUBSCRIPTION,
        groups=[SUBSCRIBE],
    ),
    # -- Forwarding ----------------------------------------------------------------------------
    "to": _declare(
        "--to",
        envvar="KAZOO_TAIL_FORWARD_TO",
        metavar="URL",
        help="Send each event to this http:// or https:// URL as Kazoo's webhooks would.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "method": _declare(
        "--method",
        type=click.Choice(list(webhook_rules.METHODS)),
        default=webhook_rules.DEFAULT_METHOD,
        show_default=True,
        help="The webhook's HTTP verb; get sends the fields in the query string.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "hook_format": _declare(
        "--format",
        "hook_format",
        type=click.Choice(list(webhook_rules.FORMATS)),
        default=webhook_rules.DEFAULT_FORMAT,
        show_default=True,
        help="The webhook's body: json, form-data (url-encoded), or event (the blackhole "
        "event as received, for every event, with or without a webhook counterpart).",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "custom_data": _declare(
        "--custom-data",
        "custom_data",
        multiple=True,
        metavar="KEY=VALUE",
        help="A field added to every payload, as a webhook's custom_data is. Repeatable.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "exclude_internal_legs": _declare(
        "--exclude-internal-legs",
        is_flag=True,
        help="Leave out channel events of loopback legs, as a webhook whose "
        "include_internal_legs is false does (Kazoo's default includes them).",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "retries": _declare(
        "--retries",
        type=click.IntRange(webhook_rules.MIN_RETRIES, webhook_rules.MAX_RETRIES),
        default=webhook_rules.DEFAULT_RETRIES,
        show_default=True,
        metavar="N",
        help="A webhook's retries, as Kazoo counts them: the attempts in all (0 makes one). "
        "Only a connection that fails or gets no answer is tried again, "
        f"{webhook_rules.RETRY_PAUSE:g} s later; any answer but 200 is final.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "concurrency": _declare(
        "--concurrency",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        metavar="N",
        help="Requests in flight at once; above 1, order is kept per call or document only.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "queue_size": _declare(
        "--queue-size",
        type=ByteSize(),
        default="8M",
        show_default=True,
        metavar="SIZE",
        help="Memory for requests waiting for the endpoint; past it, events are dropped and "
        "each one reported.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "hook_id": _declare(
        "--hook-id",
        default="kazoo-tail",
        show_default=True,
        metavar="ID",
        help="The X-Hook-ID header (Kazoo sends its webhook document's id).",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    "print_body": _declare(
        "--print-body",
        is_flag=True,
        help="Show what was sent under each delivery line.",
        section=FORWARDING,
        groups=[FORWARD],
    ),
    # -- Output --------------------------------------------------------------------------------
    "output": _declare(
        "-o",
        "--output",
        type=click.Choice(list(FORMATS)),
        help="Output format [default: pretty on a terminal, else json].",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "json_flag": _declare(
        "--json",
        "json_flag",
        is_flag=True,
        help="Short for --output json.",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "colour": _declare(
        "--color",
        "--colour",
        "colour",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "always", "never"]),
        help="Colour in pretty output (NO_COLOR is honoured in auto).",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "fields": _declare(
        "--fields",
        metavar="PATHS",
        help="Print only these fields, e.g. name,data.call_id: a table after the time in "
        "pretty mode, a reduced object in JSON.",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "calls": _declare(
        "--calls",
        is_flag=True,
        help="Pretty mode: call timelines, every line labelled with its call (#N), each call "
        "closed by a line with its outcome, ring and talk time.",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "count": _declare(
        "--count",
        type=click.IntRange(min=1),
        metavar="N",
        help="Exit after N events (that pass the filters).",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "duration": _declare(
        "--duration",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Exit after this many seconds.",
        section=OUTPUT,
        groups=[SHOW, BOARD],
    ),
    "summary": _declare(
        "--summary",
        is_flag=True,
        help="On exit, print events per name and binding, uptime and gaps to stderr.",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "no_dedupe": _declare(
        "--no-dedupe",
        is_flag=True,
        help="Print every copy of an event (one per matching binding, and per node), not one.",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "show_node": _declare(
        "--show-node",
        is_flag=True,
        help='JSON: add a top-level "node" field, the host:port of the blackhole node that '
        "delivered each event first (pretty output names it whenever --ws-url is repeated).",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "received_at": _declare(
        "--received-at",
        is_flag=True,
        help='JSON: add a top-level "received_at", when each event was received, in UTC to '
        "the millisecond (a replay gives the recorded time).",
        section=OUTPUT,
        groups=[SHOW],
    ),
    "record": _declare(
        "--record",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Append every frame received, with its time, to FILE (JSON lines; see 'replay').",
        section=OUTPUT,
        groups=[LIVE, BOARD],
    ),
    "stale_after": _declare(
        "--stale-after",
        type=click.FloatRange(min=1),
        # Longer than a call rings, short enough that a call whose hangup was missed does not
        # tick on for long; a call talking quietly is confirmed again before.
        default=120.0,
        show_default=True,
        envvar="KAZOO_TAIL_STALE_AFTER",
        metavar="SECONDS",
        help="A call neither heard of nor listed by Crossbar for this long is shown as "
        "unconfirmed, its clocks stopped (Crossbar is asked about it again).",
        section=OUTPUT,
        groups=[BOARD],
    ),
    # -- Filters -------------------------------------------------------------------------------
    "matches": _declare(
        "--match",
        "matches",
        multiple=True,
        metavar="PATH=GLOB",
        help="Only events whose field matches, e.g. data.caller_id_number='+1415*'. "
        "Repeatable; all must hold.",
        section=FILTERS,
        groups=[SHOW, BOARD],
    ),
    "excludes": _declare(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="PATH=GLOB",
        help="Drop events whose field matches. Repeatable.",
        section=FILTERS,
        groups=[SHOW, BOARD],
    ),
    "grep": _declare(
        "--grep",
        metavar="REGEX",
        help="Only events whose JSON text matches.",
        section=FILTERS,
        groups=[SHOW, BOARD],
    ),
    "call_ids": _declare(
        "--call-id",
        "call_ids",
        multiple=True,
        metavar="ID",
        help="Only this call, all its legs (follows other_leg_call_id).",
        section=FILTERS,
        groups=[SHOW, BOARD],
    ),
    # -- Staying connected ---------------------------------------------------------------------
    "buffer_size": _declare(
        "--buffer-size",
        type=ByteSize(),
        default="8M",
        show_default=True,
        envvar="KAZOO_TAIL_BUFFER_SIZE",
        metavar="SIZE",
        help="Memory for events stdout has not taken yet (e.g. 512K, 64M, 1G), so that the "
        "websocket is read even while stdout is blocked.",
        section=STAYING_CONNECTED,
        groups=[LIVE],
    ),
    "spill_size": _declare(
        "--spill-size",
        type=ByteSize(),
        default="1G",
        show_default=True,
        envvar="KAZOO_TAIL_SPILL_SIZE",
        metavar="SIZE",
        help="Beyond --buffer-size, hold up to this much in an unlinked temporary file "
        "(in TMPDIR); 0: none. Past both, events are dropped and counted on stderr.",
        section=STAYING_CONNECTED,
        groups=[LIVE],
    ),
    "ping_interval": _declare(
        "--ping-interval",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        metavar="SECONDS",
        help="Send a websocket ping this often; no answer means a dead link.",
        section=STAYING_CONNECTED,
        groups=[LIVE, BOARD],
    ),
    "ping_timeout": _declare(
        "--ping-timeout",
        type=click.FloatRange(min=0.1),
        envvar="KAZOO_TAIL_PING_TIMEOUT",
        metavar="SECONDS",
        help="No answer to a ping this long means a dead link [default: 3 ping intervals, "
        "at most 10].",
        section=STAYING_CONNECTED,
        groups=[LIVE, BOARD],
    ),
    "no_reconnect": _declare(
        "--no-reconnect",
        is_flag=True,
        help="Exit (code 4) when the connection is lost instead of reconnecting.",
        section=STAYING_CONNECTED,
        groups=[LIVE, BOARD],
    ),
    "max_reconnect_time": _declare(
        "--max-reconnect-time",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Give up (code 4) after being disconnected this long.",
        section=STAYING_CONNECTED,
        groups=[LIVE, BOARD],
    ),
    # -- Configuration -------------------------------------------------------------------------
    "profile": _declare(
        "--profile",
        envvar="KAZOO_TAIL_PROFILE",
        metavar="NAME",
        help="Profile saved by 'login' [default: default].",
        section=CONFIGURATION,
        groups=[SERVER],
    ),
    "config_dir": _declare(
        "--config-dir",
        envvar="KAZOO_TAIL_CONFIG_DIR",
        metavar="DIR",
        type=click.Path(file_okay=False),
        is_eager=True,  # read before --binding completes, which looks at the cached catalogue
        help="Where profiles and cached tokens live.",
        section=CONFIGURATION,
        groups=[SERVER],
    ),
    "debug": _declare(
        "--debug",
        is_flag=True,
        envvar="KAZOO_TAIL_DEBUG",
        help="Show a traceback (secrets redacted) on unexpected errors.",
        section=CONFIGURATION,
        groups=[SERVER],
    ),
}


def use(*names: str) -> Decorator:
    """Add the named options and every option of the named groups, in their declared order."""
    wanted = set(names)
    unknown = wanted - set(OPTIONS) - set(GROUPS)
    if unknown:
        raise ValueError(f"no option or group of options named {', '.join(sorted(unknown))}")
    chosen = [
        declared.add
        for name, declared in OPTIONS.items()
        if name in wanted or declared.groups & wanted
    ]

    def apply(function: F) -> F:
        for add in reversed(chosen):
            function = add(function)
        return function

    return apply
