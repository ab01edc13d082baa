"""The commands: each parses, builds settings, and hands over to a program in ``app``.

Heavy modules (requests, websocket-client, rich) load inside the command bodies, never at
import: every TAB press of shell completion runs this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kazoo_tail.cli import options as opt
from kazoo_tail.cli.boundary import end_on_sigterm
from kazoo_tail.cli.context import environment, status_writer, write_stdout
from kazoo_tail.cli.group import DefaultGroup
from kazoo_tail.cli.help import SectionedCommand
from kazoo_tail.cli.settings import (
    APP_NAME,
    DEFAULT_PROFILE,
    config_store,
    connection_config,
    output_options,
    saved_profile,
    ws_url_setting,
)
from kazoo_tail.errors import ConfigError, UsageError
from kazoo_tail.simulator.command import build as build_simulator_command
from kazoo_tail.simulator.command import event_rate_option, nodes_option, seed_option

if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment
    from kazoo_tail.auth.provider import TokenProvider
    from kazoo_tail.session.resolve import ConnectionConfig
    from kazoo_tail.simulator import Simulator

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}
# What a tail without --binding follows, on a real server as in the demo: everything blackhole
# streams for a whole account (calls, documents, faxes). A conference needs its id.
DEFAULT_BINDINGS = ("call.*.*", "object.*.*", "fax.status.*")


@click.group(
    cls=DefaultGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail demo            # no server needed: the built-in simulator
  kazoo-tail login           # once: save a server and cache a token
  kazoo-tail --binding object.doc_created.user
  kazoo-tail -b 'call.CHANNEL_CREATE.*' -b 'call.CHANNEL_DESTROY.*'
  kazoo-tail -b 'call.*.*' | jq -r .data.caller_id_number
  kazoo-tail bindings        # what -b can subscribe to""",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _show_version(ctx) if value else None,
    help="Show the version and exit.",
)
def cli() -> None:
    """Tail live events from a 2600Hz Kazoo blackhole websocket.

    With no command it runs 'tail', whose options follow. Events go to stdout (pretty on a
    terminal, JSON lines otherwise); status and errors go to stderr. Run 'kazoo-tail login'
    once to save a server and cache a token; 'kazoo-tail COMMAND --help' for a command.
    """


def _show_version(ctx: click.Context) -> None:
    if not ctx.resilient_parsing:
        from kazoo_tail.cli.version import version_line

        write_stdout(ctx, version_line())
        ctx.exit()


def _connection(
    options: dict[str, Any], ctx: click.Context
) -> tuple[ConnectionConfig, TokenProvider]:
    """The connection config and its token provider, from options and the saved profile."""
    from kazoo_tail.session.resolve import token_provider

    env = environment(ctx)
    store = config_store(options.get("config_dir"), env)
    profile = saved_profile(store, options.get("profile"))
    config = connection_config(options, profile, env)
    if not config.url and not (config.token and config.ws_url):
        raise UsageError(
            "no Kazoo server given: pass --url (or set KAZOO_URL), run 'kazoo-tail login', "
            "or try 'kazoo-tail demo'"
        )
    return config, token_provider(config, store, clock=env.clock, warn=status_writer(env).warning)


def _demo_login(
    options: dict[str, Any], simulator: Simulator, env: Environment
) -> tuple[ConnectionConfig, TokenProvider]:
    """The demo user's login to a running simulator, with one link to each of its nodes."""
    from kazoo_tail.session.resolve import token_provider
    from kazoo_tail.simulator import DEMO

    options.update(
        url=simulator.crossbar_url,
        ws_url=tuple(simulator.blackhole_urls),  # one link to each node, merged
        username=DEMO.username,
        account_name=DEMO.account_name,
    )
    config = connection_config(options, None, env)
    config.password = lambda: DEMO.password
    return config, token_provider(config, clock=env.clock)


@cli.command(
    "tail",
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail tail -b 'call.CHANNEL_CREATE.*'
  kazoo-tail -b 'object.*.user' --account-id 4b8c6fec... --descendants
  kazoo-tail -b 'call.*.*' --match 'data.caller_id_number=+1415*' --calls""",
)
@opt.use(opt.SUBSCRIBE, opt.SHOW, opt.LIVE, opt.LOGIN, "token", opt.SERVER)
@click.pass_context
def tail_command(ctx: click.Context, /, **options: Any) -> None:
    """Subscribe to bindings and print events (the default command).

    Without --binding it follows calls, documents and faxes: call.*.*, object.*.* and
    fax.status.*, as 'demo' does.
    """
    from pathlib import Path

    from kazoo_tail.app.tail import run_tail

    end_on_sigterm()
    env = environment(ctx)
    options["bindings"] = options["bindings"] or DEFAULT_BINDINGS
    show = output_options(options, env)
    config, provider = _connection(options, ctx)
    record = Path(options["record"]) if options["record"] else None
    ctx.exit(run_tail(config, provider, show, env, status_writer(env), record=record))


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail demo
  kazoo-tail demo -b 'call.*.*' --calls
  kazoo-tail demo --event-rate 50 --json | jq -r .name
  kazoo-tail demo --nodes 2""",
)
@opt.use(opt.SUBSCRIBE, opt.SHOW, opt.LIVE)
@event_rate_option(opt.SIMULATOR)
@seed_option(opt.SIMULATOR)
@nodes_option(opt.SIMULATOR)
@opt.use("debug")
@click.pass_context
def demo(
    ctx: click.Context, /, event_rate: float, seed: int | None, nodes: int, **options: Any
) -> None:
    """Tail the built-in Kazoo simulator: no server or account needed.

    It logs in with the demo user over HTTP and subscribes over a real websocket on
    127.0.0.1, exactly as against a real cluster. Without --binding it follows calls,
    documents and faxes.
    """
    from pathlib import Path

    from kazoo_tail.app.pipeline import check_show
    from kazoo_tail.app.tail import run_tail
    from kazoo_tail.kazoo.catalog import check_binding
    from kazoo_tail.simulator import Simulator, SimulatorConfig

    end_on_sigterm()
    env = environment(ctx)
    status = status_writer(env)
    show = output_options(options, env)
    # Every usage error before the demo server is started.
    check_show(show)
    for binding in options["bindings"]:
        check_binding(binding)
    with Simulator(SimulatorConfig(event_rate=event_rate, seed=seed, nodes=nodes)) as simulator:
        urls = simulator.blackhole_urls
        blackhole = f"blackhole {urls[0]}" if nodes == 1 else f"blackhole nodes {', '.join(urls)}"
        status.info(f"demo server: Crossbar {simulator.crossbar_url}, {blackhole}")
        options["bindings"] = options["bindings"] or DEFAULT_BINDINGS
        config, provider = _demo_login(options, simulator, env)
        record = Path(options["record"]) if options["record"] else None
        code = run_tail(config, provider, show, env, status, record=record)
    ctx.exit(code)


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail login
  kazoo-tail login --url http://kazoo.example.com:8000 --account-name acme --username ops
  KAZOO_API_KEY=... kazoo-tail login --url https://kazoo.example.com:8443 --save-as prod""",
)
@opt.use(opt.LOGIN, opt.SERVER)
@opt.option(
    "--save-as",
    metavar="NAME",
    help="Profile name to save [default: --profile or default].",
    section=opt.CONFIGURATION,
)
@click.pass_context
def login(ctx: click.Context, /, save_as: str | None, **options: Any) -> None:
    """Log in, cache the token, and save the server and user as profile.

    Asks for whatever is not given by options or environment. The password and API key
    are never written to disk; the token is cached with mode 0600.
    """
    from kazoo_tail.auth.provider import api_key_hash
    from kazoo_tail.auth.store import Profile
    from kazoo_tail.cli.login_prompts import log_in

    env = environment(ctx)
    status = status_writer(env)
    store = config_store(options["config_dir"], env)
    name = save_as or options["profile"] or DEFAULT_PROFILE
    saved = store.profile(name) or Profile()
    # Each answer is checked when given, and a refused login asked again (see login_prompts).
    logged_in = log_in(options, env, status, store, saved)
    config, token = logged_in.config, logged_in.token
    profile = Profile(
        url=logged_in.url,
        ws_url=ws_url_setting(options["ws_url"]) or saved.ws_url,
        account_name=config.account_name,
        realm=config.realm,
        phone_number=config.phone_number,
        username=config.username,
        api_key_hash=api_key_hash(config.api_key) if config.api_key else None,
    )
    store.save_profile(name, profile)
    who = f"user {config.username}" if config.username else "API key"
    status.info(
        f"logged in as {who} of account {token.account_name or token.account_id} "
        f"({token.account_id}); profile {name!r} saved in {store.directory}"
    )


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail logout
  kazoo-tail logout --profile prod
  kazoo-tail logout --all""",
)
@opt.use("profile", "url", "account_name", "realm", "phone_number", "username", "api_key")
@opt.option(
    "--all",
    "everything",
    is_flag=True,
    help="Forget every cached token, and remove a profiles file too corrupt to read.",
    section=opt.CONFIGURATION,
)
@opt.use("config_dir")
@click.pass_context
def logout(
    ctx: click.Context,
    /,
    profile: str | None,
    everything: bool,
    config_dir: str | None,
    **options: Any,
) -> None:
    """Forget the tokens the next run would use (the profile stays).

    That is the profile's token, and the one of the login that the options or the
    environment (KAZOO_URL, KAZOO_USERNAME, KAZOO_API_KEY...) name. Tokens for other servers
    or users are kept, and counted; --all forgets them too."""
    env = environment(ctx)
    status = status_writer(env)
    store = config_store(config_dir, env)
    if everything:
        forgotten = store.forget_tokens()
        # No command can get past a profiles file it cannot read, not even a login.
        if store.remove_corrupt_profiles():
            status.warning(
                f"removed the corrupt {store.profiles_path}; save its profiles again with "
                "'kazoo-tail login --save-as NAME'"
            )
    else:
        # The tokens the next run would use: the profile's, and the one of the login the
        # options and environment (KAZOO_URL, KAZOO_USERNAME...) name, which is keyed apart.
        saved = saved_profile(store, profile)
        keys = set()
        for given in ({}, options):
            config = connection_config(given, saved, env, tuning=False)
            key = config.credentials().cache_key()
            if key:
                keys.add(key)
        forgotten = store.forget_tokens(keys) if keys else 0
    status.info(f"forgot {forgotten} cached token{'s' if forgotten != 1 else ''}")
    others = 0 if everything else store.token_count()
    if others:
        tokens, remain = ("token", "remains") if others == 1 else ("tokens", "remain")
        status.info(
            f"{others} cached {tokens} for other servers or users {remain} in "
            f"{store.tokens_path}; 'kazoo-tail logout --all' forgets them too"
        )


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail replay incident.jsonl
  kazoo-tail replay incident.jsonl --calls -o pretty --realtime
  kazoo-tail replay incident.jsonl --match name=CHANNEL_DESTROY | jq .data.hangup_cause""",
)
@click.argument("recording", type=click.Path(exists=True, dir_okay=False))
@opt.option(
    "--realtime",
    is_flag=True,
    help="Replay at the recorded pace instead of at once.",
    section=opt.OUTPUT,
)
@opt.use(opt.SHOW, "debug")
@click.pass_context
def replay(ctx: click.Context, /, recording: str, realtime: bool, **options: Any) -> None:
    """Show a recording made with --record, as the live tail showed it.

    It goes through the same filters and output as a tail. The output is what the live
    tail printed (or would have, with other options), so a recording is the thing to
    attach to a bug report.
    """
    from pathlib import Path

    from kazoo_tail.app.replay import run_replay

    end_on_sigterm()
    env = environment(ctx)
    show = output_options(options, env)
    code = run_replay(
        Path(recording),
        show,
        env,
        status_writer(env),
        realtime=realtime,
        dedupe=not options["no_dedupe"],
    )
    ctx.exit(code)


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail bindings
  kazoo-tail bindings --url http://kazoo.example.com:8000 | grep object
  kazoo-tail bindings -o json | jq -r 'select(.module == "object") | .binding'""",
)
@opt.option(
    "-o",
    "--output",
    type=click.Choice(["pretty", "json"]),
    help="A table [default on a terminal], or JSON lines, one object per binding; piped "
    "without -o, one binding per line.",
    section=opt.OUTPUT,
)
@opt.use(opt.SERVER)
@click.pass_context
def bindings(ctx: click.Context, /, output: str | None, **options: Any) -> None:
    """List the bindings the server offers (no login needed).

    They come from GET /v2/websockets. Without a server, or when it lists none, the
    built-in catalogue of Kazoo 4.3 is shown.
    The server's list is remembered for shell completion of --binding.
    """
    from kazoo_tail.cli.settings import verify
    from kazoo_tail.kazoo import catalog
    from kazoo_tail.output import lists

    env = environment(ctx)
    status = status_writer(env)
    store = config_store(options["config_dir"], env)
    profile = saved_profile(store, options["profile"])
    url = options["url"] or (profile.url if profile is not None else None)
    offered: dict[str, list[str]] = {}
    if url:
        from kazoo_tail.net.crossbar import Crossbar

        data = Crossbar(url, verify=verify(options)).get("websockets")
        if isinstance(data, dict):
            offered = catalog.clean(data)
    if offered:
        try:
            store.save_catalogue(offered)
        except ConfigError as exc:
            # Only completion reads it: the listing asked for is still shown.
            status.warning(f"the catalogue was not cached for completion: {exc.message}")
    else:
        status.info(
            "the server lists no bindings; showing the built-in catalogue"
            if url
            else "no server given; showing the built-in catalogue (Kazoo 4.3)"
        )
        offered = catalog.builtin_catalogue()
    listed = [(module, template) for module in sorted(offered) for template in offered[module]]
    out = env.text_stdout()
    form = lists.list_form(output, env.stdout_isatty)
    if form == "json":
        lists.write_json_lines(out, [{"module": m, "binding": b} for m, b in listed])
    elif form == "lines":
        # The binding alone: it starts with its module, and is what --binding takes.
        lists.write_lines(out, [(binding,) for _, binding in listed])
    else:
        # The module named once, on the first of its bindings, so the groups stand out.
        rows = [
            (m if i == 0 or listed[i - 1][0] != m else "", b) for i, (m, b) in enumerate(listed)
        ]
        lists.write_table(out, ("MODULE", "BINDING"), rows)
    out.flush()


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail doctor
  kazoo-tail doctor -b 'object.doc_created.user' --account-id 4b8c6fec...
  kazoo-tail doctor --token "$TOKEN" --ws-url wss://kazoo.example.com:7777""",
)
@opt.option(
    "-b",
    "--binding",
    "bindings",
    multiple=True,
    metavar="BINDING",
    help="Also check that these bindings can be subscribed. Repeatable.",
    section=opt.SUBSCRIPTION,
)
@opt.use("account_ids", opt.LOGIN, "token", opt.SERVER)
@opt.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long each check may wait for an answer.",
    section=opt.CONNECTION,
)
@click.pass_context
def doctor(ctx: click.Context, /, timeout: float, **options: Any) -> None:
    """Check, step by step, why events do or do not arrive.

    Crossbar reachable, login, token time left, blackhole reachable (ws or wss, TLS),
    a subscribe round trip, a ping round trip, and which bindings the account can use:
    one line each, with the time it took. The exit code says whether all passed.
    """
    from kazoo_tail.app.doctor import run_doctor

    end_on_sigterm()  # its websocket is closed on the way out, as a tail's is
    config, provider = _connection(options, ctx)
    ctx.exit(run_doctor(config, provider, environment(ctx).text_stdout(), timeout=timeout))


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail sockets
  kazoo-tail sockets | cut -f1
  kazoo-tail sockets --account-id 4b8c6fec... -o json | jq .bindings""",
)
@opt.option(
    "-o",
    "--output",
    type=click.Choice(["pretty", "json"]),
    help="A table [default on a terminal], or JSON lines, one object per socket; piped "
    "without -o, one socket per line, its fields apart by tabs.",
    section=opt.OUTPUT,
)
@opt.use("account_ids", opt.LOGIN, "token", opt.SERVER)
@click.pass_context
def sockets(ctx: click.Context, /, **options: Any) -> None:
    """List the account's live blackhole sockets and their bindings."""
    from kazoo_tail.app.sockets import list_sockets
    from kazoo_tail.output.lists import list_form

    end_on_sigterm()
    env = environment(ctx)
    config, provider = _connection(options, ctx)
    form = list_form(options["output"], env.stdout_isatty)
    code = list_sockets(config, provider, env.text_stdout(), status_writer(env), form=form)
    ctx.exit(code)


@cli.command(
    "calls",
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail calls
  kazoo-tail calls --match 'data.caller_id_number=+1415*'
  kazoo-tail calls --demo          # the built-in simulator's calls""",
)
@opt.use(opt.SUBSCRIBE, opt.BOARD, opt.LOGIN, "token", opt.SERVER)
@opt.option(
    "--demo",
    "demo_mode",
    is_flag=True,
    help="Show the built-in simulator's calls.",
    section=opt.CONNECTION,
)
@click.pass_context
def calls_command(ctx: click.Context, /, demo_mode: bool, **options: Any) -> None:
    """Live board of calls in progress and recent hangups (q quits).

    Without --binding it follows call.*.*.
    """
    from pathlib import Path

    from kazoo_tail.app.board import NEEDS_TERMINAL, NEEDS_TERMINAL_DEMO, run_board
    from kazoo_tail.app.pipeline import check_show
    from kazoo_tail.kazoo.catalog import check_binding

    end_on_sigterm()
    env = environment(ctx)
    if not env.stdout_isatty:
        raise UsageError(NEEDS_TERMINAL_DEMO if demo_mode else NEEDS_TERMINAL)
    options.update(
        bindings=options["bindings"] or ("call.*.*",),
        output="pretty",
        colour="auto",
        fields=None,
        calls=False,
        count=None,
        summary=False,
    )
    show = output_options(options, env)
    # Every usage error before the demo server is started.
    check_show(show)
    for binding in options["bindings"]:
        check_binding(binding)
    record = Path(options["record"]) if options["record"] else None
    stale_after = options.pop("stale_after")
    status = status_writer(env)
    if not demo_mode:
        config, provider = _connection(options, ctx)
        ctx.exit(
            run_board(config, provider, show, env, status, record=record, stale_after=stale_after)
        )
    from kazoo_tail.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig()) as simulator:
        config, provider = _demo_login(options, simulator, env)
        code = run_board(
            config, provider, show, env, status, record=record, stale_after=stale_after
        )
    ctx.exit(code)


@cli.command(
    "forward",
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail forward --to http://localhost:4242/hooks
  kazoo-tail forward --to http://localhost:4242/hooks --method get -b 'call.CHANNEL_CREATE.*'
  kazoo-tail forward --to http://localhost:4242/hooks --format form-data --custom-data env=dev
  kazoo-tail forward --demo          # the simulator's events, to a built-in endpoint""",
)
@opt.use(opt.FORWARD, opt.SUBSCRIBE, opt.LIVE, opt.LOGIN, "token", opt.SERVER)
@opt.use("output", "json_flag", "colour", "count", "duration", "summary")
@opt.use("matches", "excludes", "grep", "call_ids")
@opt.option(
    "--demo",
    "demo_mode",
    is_flag=True,
    help="Forward the built-in simulator's events (to a built-in endpoint without --to).",
    section=opt.CONNECTION,
)
@click.pass_context
def forward_command(ctx: click.Context, /, demo_mode: bool, **options: Any) -> None:
    """Send each event to a URL as Kazoo's webhooks would send it.

    Each event that passes the filters becomes the request Kazoo's webhooks app would send
    for it, fields, encoding and headers alike. One line per delivery on stdout: the hook,
    the call or document, the answer and how long it took. Without --binding it follows what
    the channel, parking and object webhooks fire on. Rules and sources: docs/webhooks.md.
    """
    from pathlib import Path

    from kazoo_tail.app.forward import ForwardSettings, check_forward, run_forward
    from kazoo_tail.app.pipeline import check_show
    from kazoo_tail.kazoo import webhooks
    from kazoo_tail.kazoo.catalog import check_binding

    end_on_sigterm()
    env = environment(ctx)
    status = status_writer(env)
    options.update(bindings=options["bindings"] or webhooks.HOOK_BINDINGS, fields=None, calls=False)
    show = output_options(options, env)
    settings = ForwardSettings(
        to=options["to"] or "",
        hook=webhooks.HookOptions(
            method=options["method"],
            format=options["hook_format"],
            custom_data=tuple(_key_value(item) for item in options["custom_data"]),
            include_internal_legs=not options["exclude_internal_legs"],
            hook_id=options["hook_id"],
        ),
        retries=options["retries"],
        concurrency=options["concurrency"],
        queue_size=options["queue_size"],
        print_body=options["print_body"],
    )
    record = Path(options["record"]) if options["record"] else None
    # Every usage error before a login or the demo's servers.
    check_show(show)
    for binding in options["bindings"]:
        check_binding(binding)
    if settings.to:
        check_forward(settings)
    elif not demo_mode:
        raise UsageError(
            "no endpoint given: pass --to URL, e.g. --to http://localhost:4242/hooks "
            "(or try 'kazoo-tail forward --demo')"
        )
    if not demo_mode:
        config, provider = _connection(options, ctx)
        ctx.exit(run_forward(config, provider, show, settings, env, status, record=record))
    from contextlib import ExitStack

    from kazoo_tail.simulator import Simulator, SimulatorConfig
    from kazoo_tail.simulator.hook_endpoint import HookEndpoint

    with ExitStack() as servers:
        simulator = servers.enter_context(Simulator(SimulatorConfig()))
        status.info(
            f"demo server: Crossbar {simulator.crossbar_url}, "
            f"blackhole {', '.join(simulator.blackhole_urls)}"
        )
        if not settings.to:
            endpoint = servers.enter_context(HookEndpoint())
            settings.to = endpoint.url
            status.info(f"demo endpoint: {endpoint.url} (answers 200 to every request)")
        config, provider = _demo_login(options, simulator, env)
        code = run_forward(config, provider, show, settings, env, status, record=record)
    ctx.exit(code)


def _key_value(item: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise UsageError(f"--custom-data {item!r} is not KEY=VALUE, e.g. --custom-data env=dev")
    return key, value


@cli.command(
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  kazoo-tail completion fish | source      # in ~/.config/fish/config.fish
  eval "$(kazoo-tail completion bash)"     # in ~/.bashrc
  eval "$(kazoo-tail completion zsh)"      # in ~/.zshrc, after compinit""",
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, /, shell: str) -> None:
    """Print the script that completes kazoo-tail's words in SHELL.

    Loaded from the shell's startup file, it works wherever pip or pipx put kazoo-tail, as
    long as kazoo-tail is on the PATH: the script asks kazoo-tail itself for candidates.
    """
    write_stdout(ctx, completion_script(shell).rstrip("\n"))


def completion_script(shell: str) -> str:
    """The script click writes for SHELL, the same one completions/ holds (a test keeps them
    equal): generated here rather than read from a packaged copy, so that it is the same in a
    wheel, an editable install and a single-file zipapp."""
    from click.shell_completion import get_completion_class

    script_class = get_completion_class(shell)
    if script_class is None:  # the Choice above lets only click's own shells through
        raise UsageError(f"no completion for {shell}")
    complete_var = "_" + APP_NAME.replace("-", "_").upper() + "_COMPLETE"
    return script_class(cli, {}, APP_NAME, complete_var).source()


# The simulator's own command (one definition, also behind python -m kazoo_tail.simulator);
# here it tells clients where its websocket is, as a cluster with blackhole.url set does.
cli.add_command(
    build_simulator_command(advertise_ws_url=True, command_class=SectionedCommand), "simulator"
)
