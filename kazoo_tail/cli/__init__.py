"""Command-line wiring: options, environment, profiles, and the one place errors become exit codes.

Only click and the stdlib are imported at module level: every TAB press of shell completion
runs this program, so requests, websocket-client and rich load only when a command needs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from kazoo_tail import __version__
from kazoo_tail.errors import ExitCode, KazooTailError, UsageError, redact
from kazoo_tail.output.terminal import StatusWriter, sanitize

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from kazoo_tail.app.tail import OutputOptions, TailRequest
    from kazoo_tail.auth.provider import Credentials, TokenProvider
    from kazoo_tail.auth.store import ConfigStore, Profile

F = TypeVar("F", bound=Callable[..., Any])
APP_NAME = "kazoo-tail"
DEFAULT_PROFILE = "default"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like Ctrl-C so the socket is closed on the way out."""


class DefaultGroup(click.Group):
    """A group whose default command is ``tail``: ``kazoo-tail -b X`` runs ``tail -b X``."""

    default_command = "tail"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # While completing the first word, stay at the group so that command names complete too.
        completing_first_word = ctx.resilient_parsing and not args
        explicit = bool(args) and args[0] in (*self.commands, "-h", "--help", "--version")
        if not completing_first_word and not explicit:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            tail = self.commands[self.default_command]
            with tail.make_context(ctx.info_name, [], parent=ctx, resilient_parsing=True) as sub:
                items += tail.shell_complete(sub, incomplete)
        return items

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The default command's options are what most users look for, so show them here.
        tail = self.commands[self.default_command]
        with click.Context(tail, info_name=ctx.info_name) as tail_ctx:
            self.format_usage(ctx, formatter)
            self.format_help_text(ctx, formatter)
            tail.format_options(tail_ctx, formatter)
        self.format_commands(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[COMMAND]", "[OPTIONS]"]


# -- option bundles --------------------------------------------------------------------------


def _apply(options: list[Callable[[F], F]], function: F) -> F:
    for option in reversed(options):
        function = option(function)
    return function


def server_options(function: F) -> F:
    """Where the Kazoo cluster is, and how far to trust its certificates."""
    return _apply(
        [
            click.option(
                "--url",
                envvar="KAZOO_URL",
                metavar="URL",
                help="Crossbar base URL, e.g. http://kazoo.example.com:8000 [env: KAZOO_URL].",
            ),
            click.option(
                "--ws-url",
                envvar="KAZOO_WS_URL",
                metavar="URL",
                help="Blackhole websocket URL [env: KAZOO_WS_URL; default: the URL Crossbar "
                "advertises, else ws://HOST:5555, or wss://HOST:7777 for an https --url].",
            ),
            click.option(
                "--ca-bundle",
                type=click.Path(exists=True, dir_okay=False),
                help="CA certificates (PEM) to trust, for Crossbar and the websocket.",
            ),
            click.option(
                "--insecure", is_flag=True, help="Do not verify TLS certificates (warns on stderr)."
            ),
            click.option(
                "--profile",
                envvar="KAZOO_TAIL_PROFILE",
                metavar="NAME",
                help="Profile saved by 'login' [env: KAZOO_TAIL_PROFILE; default: default].",
            ),
            click.option(
                "--config-dir",
                envvar="KAZOO_TAIL_CONFIG_DIR",
                metavar="DIR",
                type=click.Path(file_okay=False),
                help="Where profiles and cached tokens live [env: KAZOO_TAIL_CONFIG_DIR].",
            ),
            click.option(
                "--debug",
                is_flag=True,
                envvar="KAZOO_TAIL_DEBUG",
                help="Show a traceback (secrets redacted) on unexpected errors.",
            ),
        ],
        function,
    )


def login_options(function: F) -> F:
    """Who to log in as. The password never goes on the command line."""
    return _apply(
        [
            click.option(
                "--account-name",
                envvar="KAZOO_ACCOUNT_NAME",
                metavar="NAME",
                help="Account name to log in to [env: KAZOO_ACCOUNT_NAME].",
            ),
            click.option(
                "--realm",
                envvar="KAZOO_ACCOUNT_REALM",
                metavar="REALM",
                help="Log in by account realm instead of name.",
            ),
            click.option(
                "--phone-number",
                envvar="KAZOO_PHONE_NUMBER",
                metavar="NUMBER",
                help="Log in by the account's phone number instead of name.",
            ),
            click.option(
                "--username",
                envvar="KAZOO_USERNAME",
                metavar="USER",
                help="User name [env: KAZOO_USERNAME]. Password: KAZOO_PASSWORD, "
                "--password-stdin, or a prompt.",
            ),
            click.option(
                "--password-stdin",
                is_flag=True,
                help="Read the password from the first line of stdin.",
            ),
            click.option(
                "--api-key",
                envvar="KAZOO_API_KEY",
                metavar="KEY",
                help="Log in with an account API key [env: KAZOO_API_KEY].",
            ),
        ],
        function,
    )


def token_option(function: F) -> F:
    return click.option(
        "--token",
        envvar="KAZOO_AUTH_TOKEN",
        metavar="TOKEN",
        help="Use this Crossbar auth token instead of logging in [env: KAZOO_AUTH_TOKEN].",
    )(function)


def show_options(function: F) -> F:
    """Which events to show and how; shared by 'tail', 'demo' and 'replay'."""
    return _apply(
        [
            click.option(
                "-o",
                "--output",
                type=click.Choice(["pretty", "json"]),
                help="pretty lines or JSON lines [default: pretty on a terminal, else json].",
            ),
            click.option("--json", "json_flag", is_flag=True, help="Short for --output json."),
            click.option(
                "--color",
                "--colour",
                "colour",
                default="auto",
                show_default=True,
                type=click.Choice(["auto", "always", "never"]),
                help="Colour in pretty output (NO_COLOR is honoured in auto).",
            ),
            click.option(
                "--match",
                "matches",
                multiple=True,
                metavar="PATH=GLOB",
                help="Only events whose field matches, e.g. "
                "data.caller_id_number='1555*'. Repeatable; all must hold.",
            ),
            click.option(
                "--exclude",
                "excludes",
                multiple=True,
                metavar="PATH=GLOB",
                help="Drop events whose field matches. Repeatable.",
            ),
            click.option("--grep", metavar="REGEX", help="Only events whose JSON text matches."),
            click.option(
                "--call-id",
                "call_ids",
                multiple=True,
                metavar="ID",
                help="Only this call, all its legs (follows other_leg_call_id).",
            ),
            click.option(
                "--fields",
                metavar="PATHS",
                help="Print only these fields, e.g. name,data.call_id: "
                "tab-separated in pretty mode, a reduced object in JSON.",
            ),
            click.option(
                "--calls",
                is_flag=True,
                help="Pretty mode: group each call's events under its first line, "
                "with ring and talk time on hangup.",
            ),
            click.option(
                "--count",
                type=click.IntRange(min=1),
                metavar="N",
                help="Exit after N events (that pass the filters).",
            ),
            click.option(
                "--duration",
                type=click.FloatRange(min=0),
                metavar="SECONDS",
                help="Exit after this many seconds.",
            ),
            click.option(
                "--summary",
                is_flag=True,
                help="On exit, print events per name and binding, uptime and gaps to stderr.",
            ),
            click.option(
                "--no-dedupe",
                is_flag=True,
                help="Print an event once per matching binding instead of once.",
            ),
        ],
        function,
    )


def tail_options(function: F) -> F:
    """What to subscribe to and how to stay connected; shared by 'tail' and 'demo'."""
    return _apply(
        [
            click.option(
                "-b",
                "--binding",
                "bindings",
                multiple=True,
                metavar="BINDING",
                shell_complete=_complete_binding,
                help="Blackhole binding, e.g. 'call.CHANNEL_CREATE.*' or "
                "'object.doc_created.user'. Repeatable.",
            ),
            click.option(
                "--account-id",
                "account_ids",
                multiple=True,
                metavar="ID",
                envvar="KAZOO_ACCOUNT_ID",
                help="Account to subscribe for. Repeatable [env: KAZOO_ACCOUNT_ID; "
                "default: the token's account].",
            ),
            click.option(
                "--descendants",
                is_flag=True,
                help="Also subscribe for every descendant of the account(s).",
            ),
            show_options,
            click.option(
                "--record",
                type=click.Path(dir_okay=False),
                metavar="FILE",
                help="Append every frame received, with its time, to FILE "
                "(JSON lines; see 'replay').",
            ),
            click.option(
                "--ping-interval",
                type=click.FloatRange(min=0.1),
                default=30.0,
                show_default=True,
                metavar="SECONDS",
                help="Send a websocket ping this often; no answer means a dead link.",
            ),
            click.option(
                "--no-reconnect",
                is_flag=True,
                help="Exit (code 4) when the connection is lost instead of reconnecting.",
            ),
            click.option(
                "--max-reconnect-time",
                type=click.FloatRange(min=0),
                metavar="SECONDS",
                help="Give up (code 4) after being disconnected this long.",
            ),
        ],
        function,
    )


def _complete_binding(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Bindings from the built-in catalogue, and the server's as 'bindings' last saw it."""
    from click.shell_completion import CompletionItem

    from kazoo_tail.kazoo import catalog

    forms = catalog.concrete_forms()
    cached = _store(os.environ.get("KAZOO_TAIL_CONFIG_DIR")).cached_catalogue()
    if cached:
        forms += [form for form in catalog.concrete_forms(cached) if form not in forms]
    return [CompletionItem(form) for form in forms if form.startswith(incomplete)]


# -- commands ----------------------------------------------------------------------------------


@click.group(cls=DefaultGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name=APP_NAME)
def cli() -> None:
    """Tail live events from a 2600Hz Kazoo cluster's blackhole websocket.

    \b
      kazoo-tail --binding object.doc_created.user
      kazoo-tail -b 'call.CHANNEL_CREATE.*' -b 'call.CHANNEL_DESTROY.*'
      kazoo-tail -b 'call.*.*' | jq -r .data.caller_id_number
      kazoo-tail demo            # no server needed: the built-in simulator

    Events go to stdout (pretty on a terminal, JSON lines otherwise); status and errors go
    to stderr. Run 'kazoo-tail login' once to save a server and cache a token.
    """


@cli.command("tail", context_settings=CONTEXT_SETTINGS)
@tail_options
@login_options
@token_option
@server_options
def tail_command(**options: Any) -> None:
    """Subscribe to bindings and print events (the default command)."""
    from kazoo_tail.app.tail import run_tail

    _end_on_sigterm()
    status = StatusWriter()
    store = _store(options["config_dir"])
    profile = _profile(store, options["profile"])
    request = _tail_request(options, store, profile)
    sys.exit(run_tail(request, status))


@cli.command(context_settings=CONTEXT_SETTINGS)
@tail_options
@click.option(
    "--event-rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Simulated events per second.",
)
@click.option("--seed", type=int, help="Make the simulated traffic repeatable.")
@click.option("--debug", is_flag=True, envvar="KAZOO_TAIL_DEBUG", help="Show tracebacks.")
def demo(event_rate: float, seed: int | None, **options: Any) -> None:
    """Tail the built-in Kazoo simulator: no server or account needed.

    It logs in with the demo user over HTTP and subscribes over a real websocket on
    127.0.0.1, exactly as against a real cluster. Without --binding it follows calls,
    documents and faxes.
    """
    from kazoo_tail.app.tail import run_tail
    from kazoo_tail.auth.provider import Credentials, TokenProvider
    from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

    _end_on_sigterm()
    status = StatusWriter()
    with Simulator(SimulatorConfig(event_rate=event_rate, seed=seed)) as simulator:
        status.info(
            f"demo server: Crossbar {simulator.crossbar_url}, blackhole {simulator.blackhole_url}"
        )
        credentials = Credentials(
            url=simulator.crossbar_url,
            username=DEMO.username,
            account_name=DEMO.account_name,
            password=lambda: DEMO.password,
        )
        if not options["bindings"]:
            options["bindings"] = ("call.*.*", "object.*.*", "fax.status.*")
        request = _tail_request_base(options, TokenProvider(credentials, store=None))
        request.crossbar_url = simulator.crossbar_url
        request.ws_url = simulator.blackhole_url
        code = run_tail(request, status)
    sys.exit(code)


@cli.command(context_settings=CONTEXT_SETTINGS)
@login_options
@server_options
@click.option(
    "--save-as", metavar="NAME", help="Profile name to save [default: --profile or default]."
)
def login(save_as: str | None, **options: Any) -> None:
    """Log in to Crossbar, cache the token, and save the server and user as a profile.

    Asks for whatever is not given by options or environment. The password and API key
    are never written to disk; the token is cached with mode 0600.
    """
    from kazoo_tail.auth.provider import TokenProvider, api_key_hash
    from kazoo_tail.auth.store import Profile

    status = StatusWriter()
    store = _store(options["config_dir"])
    name = save_as or options["profile"] or DEFAULT_PROFILE
    saved = store.profile(name) or Profile()
    interactive = sys.stdin.isatty()

    def ask(label: str, current: str | None) -> str:
        if not interactive:
            raise UsageError(
                f"{label} is required (no terminal to ask on): see kazoo-tail login --help"
            )
        value: str = click.prompt(label, default=current, err=True)
        return value.strip()

    url = options["url"] or ask("Crossbar URL (e.g. http://kazoo.example.com:8000)", saved.url)
    if not options["api_key"]:
        if not (options["account_name"] or options["realm"] or options["phone_number"]):
            options["account_name"] = ask("Account name", saved.account_name)
        options["username"] = options["username"] or ask("Username", saved.username)
    options["url"] = url
    credentials = _credentials(options, Profile())
    if (
        credentials.api_key is None
        and not os.environ.get("KAZOO_PASSWORD")
        and not options["password_stdin"]
    ):
        if not interactive:
            raise UsageError("no password: set KAZOO_PASSWORD or use --password-stdin")
    provider = TokenProvider(credentials, store, verify=_verify(options))
    token = provider.login()
    profile = Profile(
        url=url,
        ws_url=options["ws_url"] or saved.ws_url,
        account_name=credentials.account_name,
        realm=credentials.realm,
        phone_number=credentials.phone_number,
        username=credentials.username,
        api_key_hash=api_key_hash(credentials.api_key) if credentials.api_key else None,
    )
    store.save_profile(name, profile)
    who = f"user {credentials.username}" if credentials.username else "API key"
    status.info(
        f"logged in as {who} of account {token.account_name or token.account_id} "
        f"({token.account_id}); profile {name!r} saved in {store.directory}"
    )


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--profile", envvar="KAZOO_TAIL_PROFILE", metavar="NAME", help="Profile to log out.")
@click.option("--all", "everything", is_flag=True, help="Forget every cached token.")
@click.option(
    "--config-dir",
    envvar="KAZOO_TAIL_CONFIG_DIR",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Where profiles and cached tokens live.",
)
def logout(profile: str | None, everything: bool, config_dir: str | None) -> None:
    """Forget the cached token of a profile (the profile itself is kept)."""
    status = StatusWriter()
    store = _store(config_dir)
    if everything:
        forgotten = store.forget_tokens()
    else:
        saved = _profile(store, profile)
        key = _credentials({}, saved).cache_key() if saved else None
        forgotten = store.forget_tokens(key) if key else 0
    status.info(f"forgot {forgotten} cached token{'s' if forgotten != 1 else ''}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
@click.option("--realtime", is_flag=True, help="Replay at the recorded pace instead of at once.")
@show_options
@click.option("--debug", is_flag=True, envvar="KAZOO_TAIL_DEBUG", help="Show tracebacks.")
def replay(recording: str, realtime: bool, **options: Any) -> None:
    """Show a recording made with --record, through the same filters and output as a tail.

    The output is what the live tail printed (or would have, with other options), so a
    recording is the thing to attach to a bug report.
    """
    from pathlib import Path

    from kazoo_tail.app.tail import run_replay

    status = StatusWriter()
    sys.exit(run_replay(Path(recording), _show_options(options), status, realtime=realtime))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["pretty", "json"]),
    help="One binding per line, or the catalogue as one JSON object.",
)
@server_options
def bindings(output: str | None, **options: Any) -> None:
    """List the bindings the server offers (GET /v2/websockets, no login needed).

    Without a server, or when it lists none, the built-in catalogue of Kazoo 4.3 is shown.
    The server's list is remembered for shell completion of --binding.
    """
    import json

    from kazoo_tail.kazoo import catalog

    status = StatusWriter()
    store = _store(options["config_dir"])
    profile = _profile(store, options["profile"])
    url = options["url"] or (profile.url if profile is not None else None)
    offered: dict[str, list[str]] = {}
    if url:
        from kazoo_tail.net.crossbar import Crossbar

        data = Crossbar(url, verify=_verify(options)).get("websockets")
        if isinstance(data, dict):
            offered = catalog.clean(data)
    if offered:
        store.save_catalogue(offered)
    else:
        status.info(
            "the server lists no bindings; showing the built-in catalogue"
            if url
            else "no server given; showing the built-in catalogue (Kazoo 4.3)"
        )
        offered = catalog.builtin_catalogue()
    if output == "json" or (output is None and not sys.stdout.isatty()):
        click.echo(json.dumps(offered, sort_keys=True))
        return
    for module in sorted(offered):
        for template in offered[module]:
            click.echo(sanitize(template))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-b",
    "--binding",
    "bindings",
    multiple=True,
    metavar="BINDING",
    help="Also check that these bindings can be subscribed. Repeatable.",
)
@click.option(
    "--account-id",
    "account_ids",
    multiple=True,
    metavar="ID",
    help="Account to check [default: the token's account].",
)
@login_options
@token_option
@server_options
def doctor(**options: Any) -> None:
    """Check, step by step, why events do or do not arrive.

    Crossbar reachable, login, token time left, blackhole reachable (ws or wss, TLS),
    a subscribe round trip, a ping round trip, and which bindings the account can use:
    one line each, with the time it took. The exit code says whether all passed.
    """
    from kazoo_tail.app.doctor import run_doctor

    request = _request_for_command(options)
    sys.exit(run_doctor(request, sys.stdout))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--account-id",
    "account_ids",
    multiple=True,
    metavar="ID",
    help="Account whose sockets to list [default: the token's account].",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["pretty", "json"]),
    help="pretty lines or JSON lines [default: pretty on a terminal, else json].",
)
@login_options
@token_option
@server_options
def sockets(**options: Any) -> None:
    """List the account's live blackhole sockets and their bindings."""
    from kazoo_tail.app.doctor import list_sockets

    request = _request_for_command(options)
    sys.exit(list_sockets(request, sys.stdout))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--crossbar-port", type=int, default=8000, show_default=True)
@click.option("--blackhole-port", type=int, default=5555, show_default=True)
@click.option("--event-rate", type=click.FloatRange(min=0), default=5.0, show_default=True)
@click.option("--idle-timeout", type=click.FloatRange(min=0.1), default=3600.0, show_default=True)
@click.option("--token-ttl", type=click.FloatRange(min=1), default=3600.0, show_default=True)
@click.option("--seed", type=int)
def simulator(
    host: str,
    crossbar_port: int,
    blackhole_port: int,
    event_rate: float,
    idle_timeout: float,
    token_ttl: float,
    seed: int | None,
) -> None:
    """Run the built-in Kazoo simulator as a standalone server until Ctrl-C."""
    from kazoo_tail.simulator import SimulatorConfig, serve_forever

    serve_forever(
        SimulatorConfig(
            host=host,
            crossbar_port=crossbar_port,
            blackhole_port=blackhole_port,
            event_rate=event_rate,
            idle_timeout=idle_timeout,
            token_ttl=token_ttl,
            seed=seed,
            # Tell clients where the websocket is, as a cluster with blackhole.url set does.
            advertise_ws_url=True,
        )
    )


# -- turning options into a request -----------------------------------------------------------


def _store(config_dir: str | None) -> ConfigStore:
    from pathlib import Path

    from kazoo_tail.auth.store import ConfigStore

    return ConfigStore(Path(config_dir) if config_dir else Path(click.get_app_dir(APP_NAME)))


def _profile(store: ConfigStore, name: str | None) -> Profile | None:
    profile = store.profile(name or DEFAULT_PROFILE)
    if profile is None and name:
        raise UsageError(
            f"no profile named {name!r} in {store.profiles_path}: "
            f"run 'kazoo-tail login --profile {name}'"
        )
    return profile


LOGIN_KEYS = ("username", "account_name", "realm", "phone_number", "api_key")


def _credentials(options: dict[str, Any], profile: Profile | None) -> Credentials:
    from kazoo_tail.auth.provider import Credentials

    # The profile's login is used only when the command line names none of its own, so that
    # `--username other` is never paired with the profile's account.
    saved = None if any(options.get(key) for key in LOGIN_KEYS) else profile

    def choose(key: str) -> str | None:
        value: str | None = options.get(key) or (getattr(saved, key) if saved else None)
        return value

    return Credentials(
        url=options.get("url") or (profile.url if profile is not None else None),
        username=choose("username"),
        account_name=choose("account_name"),
        realm=choose("realm"),
        phone_number=choose("phone_number"),
        api_key=options.get("api_key"),
        api_key_hash=saved.api_key_hash if saved is not None else None,
        token=options.get("token"),
        password=_password_source(bool(options.get("password_stdin"))),
    )


def _password_source(from_stdin: bool) -> Callable[[], str | None]:
    """The password, asked for at most once and then kept in memory (never on disk), so that
    a tail can log in again hours later when its token can no longer be refreshed."""
    remembered: list[str] = []

    def password() -> str | None:
        env = os.environ.get("KAZOO_PASSWORD")
        if env:
            return env
        if remembered:
            return remembered[0]
        value: str | None = None
        if from_stdin:
            value = sys.stdin.readline().rstrip("\r\n") or None
        elif sys.stdin.isatty() and sys.stderr.isatty():
            value = click.prompt("Password", hide_input=True, err=True)
        if value:
            remembered.append(value)
        return value

    return password


def _verify(options: dict[str, Any]) -> bool | str:
    if options.get("insecure"):
        return False
    return str(options["ca_bundle"]) if options.get("ca_bundle") else True


def _tail_request(
    options: dict[str, Any], store: ConfigStore, profile: Profile | None
) -> TailRequest:
    from kazoo_tail.auth.provider import TokenProvider

    credentials = _credentials(options, profile)
    if not credentials.url and not (credentials.token and options.get("ws_url")):
        raise UsageError(
            "no Kazoo server given: pass --url (or set KAZOO_URL), run 'kazoo-tail login', "
            "or try 'kazoo-tail demo'"
        )
    provider = TokenProvider(credentials, store, verify=_verify(options))
    request = _tail_request_base(options, provider)
    request.crossbar_url = credentials.url
    request.ws_url = options.get("ws_url") or (profile.ws_url if profile is not None else None)
    request.verify = _verify(options)
    return request


def _request_for_command(options: dict[str, Any]) -> TailRequest:
    """A TailRequest for commands that share tail's connection options but not all of its
    output options (doctor, sockets)."""
    defaults: dict[str, Any] = {
        "bindings": (),
        "account_ids": (),
        "descendants": False,
        "record": None,
        "json_flag": False,
        "output": None,
        "colour": "auto",
        "count": None,
        "duration": None,
        "ping_interval": 30.0,
        "no_reconnect": True,
        "max_reconnect_time": None,
        "no_dedupe": False,
        "matches": (),
        "excludes": (),
        "grep": None,
        "call_ids": (),
        "fields": None,
        "calls": False,
        "summary": False,
    }
    options = {**defaults, **options}
    store = _store(options["config_dir"])
    return _tail_request(options, store, _profile(store, options["profile"]))


def _show_options(options: dict[str, Any]) -> OutputOptions:
    from kazoo_tail.app.tail import OutputMode, OutputOptions
    from kazoo_tail.features.filters import parse_fields

    chosen = "json" if options.get("json_flag") else options.get("output")
    output: OutputMode = "json"
    if chosen == "pretty" or (chosen is None and sys.stdout.isatty()):
        output = "pretty"
    return OutputOptions(
        output=output,
        colour=options["colour"],
        count=options["count"],
        duration=options["duration"],
        dedupe=not options["no_dedupe"],
        matches=list(options["matches"]),
        excludes=list(options["excludes"]),
        grep=options["grep"],
        call_ids=list(options["call_ids"]),
        fields=parse_fields(options["fields"]) if options["fields"] else [],
        calls=options["calls"],
        summary=options["summary"],
    )


def _tail_request_base(options: dict[str, Any], provider: TokenProvider) -> TailRequest:
    from pathlib import Path

    from kazoo_tail.app.tail import TailRequest

    return TailRequest(
        provider=provider,
        bindings=list(options["bindings"]),
        account_ids=list(options["account_ids"]),
        descendants=options["descendants"],
        record=Path(options["record"]) if options["record"] else None,
        ping_interval=options["ping_interval"],
        ping_timeout=_env_float("KAZOO_TAIL_PING_TIMEOUT", 10.0),
        reconnect=not options["no_reconnect"],
        max_reconnect_time=options["max_reconnect_time"],
        backoff_initial=_env_float("KAZOO_TAIL_BACKOFF_INITIAL", 0.5),
        backoff_cap=_env_float("KAZOO_TAIL_BACKOFF_CAP", 30.0),
        show=_show_options(options),
    )


def _env_float(name: str, default: float) -> float:
    """Tuning knobs for tests and unusual networks, deliberately not on the command line."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number < float("inf"):
        raise UsageError(f"{name} must be a positive number of seconds, not {value!r}")
    return number


# -- the error boundary ------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _end_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so a tail closes its socket (only where it matters:
    importing signal costs every TAB press a few milliseconds)."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; every ending goes through here and gets its documented exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("KAZOO_TAIL_DEBUG"))
    status = StatusWriter()
    try:
        result = cli.main(args=args, prog_name=APP_NAME, standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except click.exceptions.Abort:
        code = ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except Terminated:
        code = ExitCode.TERMINATED
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except KazooTailError as exc:
        status.error(exc.message)
        code = exc.exit_code
    except BrokenPipeError:
        code = ExitCode.OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one sentence, no trace
        if debug:
            import traceback

            sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        status.error(
            f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
            + ("" if debug else " (run with --debug for details)")
        )
        code = ExitCode.ERROR
    sys.exit(code)
