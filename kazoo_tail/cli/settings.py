"""From parsed options (and a saved profile) to the settings the programs take."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from kazoo_tail.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from kazoo_tail.app.environment import Environment
    from kazoo_tail.app.pipeline import OutputOptions
    from kazoo_tail.auth.store import ConfigStore, Profile
    from kazoo_tail.session.resolve import ConnectionConfig

APP_NAME = "kazoo-tail"
DEFAULT_PROFILE = "default"
# The login a profile can supply; used only when the command line names none of its own.
LOGIN_KEYS = ("username", "account_name", "realm", "phone_number", "api_key")
# Tuning knobs for tests and unusual networks, deliberately not on the command line.
TUNING = {
    "backoff_initial": "KAZOO_TAIL_BACKOFF_INITIAL",
    "backoff_cap": "KAZOO_TAIL_BACKOFF_CAP",
    "connect_timeout": "KAZOO_TAIL_CONNECT_TIMEOUT",
}


def config_store(config_dir: str | Path | None, env: Environment | None = None) -> ConfigStore:
    """The store in --config-dir, else the environment's config dir, else the usual place."""
    from pathlib import Path

    from kazoo_tail.auth.store import ConfigStore

    directory = config_dir or (env.config_dir if env is not None else None)
    return ConfigStore(Path(directory) if directory else Path(click.get_app_dir(APP_NAME)))


def saved_profile(store: ConfigStore, name: str | None) -> Profile | None:
    profile = store.profile(name or DEFAULT_PROFILE)
    if profile is None and name:
        raise UsageError(
            f"no profile named {name!r} in {store.profiles_path}: "
            f"run 'kazoo-tail login --profile {name}'"
        )
    return profile


def verify(options: Mapping[str, Any]) -> bool | str:
    if options.get("insecure"):
        return False
    return str(options["ca_bundle"]) if options.get("ca_bundle") else True


def connection_config(
    options: Mapping[str, Any], profile: Profile | None, env: Environment, *, tuning: bool = True
) -> ConnectionConfig:
    """Options fill the config's fields of the same name; the profile fills in the server and,
    when the command line names no login of its own, the login (so that ``--username other``
    is never paired with the profile's account). ``tuning`` reads the environment's knobs,
    for the commands that connect to blackhole."""
    import dataclasses

    from kazoo_tail.session.resolve import ConnectionConfig

    names = {field.name for field in dataclasses.fields(ConnectionConfig)}
    given = {key: value for key, value in options.items() if key in names and value is not None}
    # --ws-url repeated: one setting of several URLs, as KAZOO_WS_URL and profiles hold them.
    given["ws_url"] = ws_url_setting(given.get("ws_url"))
    saved = None if any(options.get(key) for key in LOGIN_KEYS) else profile
    if profile is not None:
        # The profile's blackhole belongs to the profile's Crossbar: with another --url, the
        # token that Crossbar issues must not go to the profile's websocket server.
        same_cluster = not given.get("url") or given["url"] == profile.url
        given["url"] = given.get("url") or profile.url
        if same_cluster:
            given["ws_url"] = given.get("ws_url") or profile.ws_url
    check_urls(given.get("url"), given.get("ws_url"))
    if saved is not None:
        for key in ("username", "account_name", "realm", "phone_number", "api_key_hash"):
            if not given.get(key):
                given[key] = getattr(saved, key)
    for key in ("bindings", "account_ids"):
        given[key] = tuple(given.get(key, ()))
    for field, variable in TUNING.items() if tuning else ():
        given[field] = _env_seconds(env.environ, variable, given.get(field))
    return ConnectionConfig(
        **{key: value for key, value in given.items() if value is not None},
        password=password_source(
            env,
            bool(options.get("password_stdin")),
            username=given.get("username"),
            url=given.get("url"),
        ),
        verify=verify(options),
        reconnect=not options.get("no_reconnect", False),
        dedupe=not options.get("no_dedupe", False),
    )


def ws_url_setting(value: str | Sequence[str] | None) -> str | None:
    """--ws-url, given once or repeated, as the one setting KAZOO_WS_URL and profiles hold:
    URLs apart by spaces."""
    if value is None or isinstance(value, str):
        return value or None
    return " ".join(value) or None


def check_urls(url: str | None, ws_url: str | None) -> None:
    """A usage error for a --url or --ws-url (or a profile's) that cannot work, or that carries
    a password, before anything is connected to, shown or saved."""
    from kazoo_tail.net.urls import check_url

    if url:
        check_url(url, ("http", "https"), "the Crossbar URL")
    from kazoo_tail.net.urls import split_urls

    for one in split_urls(ws_url or ""):
        check_url(one, ("ws", "wss"), "the blackhole URL")


def output_options(options: Mapping[str, Any], env: Environment) -> OutputOptions:
    from kazoo_tail.app.pipeline import OutputOptions
    from kazoo_tail.features.filters import parse_fields

    chosen = "json" if options.get("json_flag") else options.get("output")
    output = chosen or ("pretty" if env.stdout_isatty else "json")
    return OutputOptions(
        output=output,
        colour=options["colour"],
        count=options["count"],
        duration=options["duration"],
        matches=list(options["matches"]),
        excludes=list(options["excludes"]),
        grep=options["grep"],
        call_ids=list(options["call_ids"]),
        fields=parse_fields(options["fields"]) if options["fields"] else [],
        calls=options["calls"],
        summary=options["summary"],
        show_node=bool(options.get("show_node")),
        received_at=bool(options.get("received_at")),
        **{key: options[key] for key in ("buffer_size", "spill_size") if key in options},
    )


def password_source(
    env: Environment,
    from_stdin: bool,
    *,
    username: str | None = None,
    url: str | None = None,
) -> Callable[[], str | None]:
    """The password, asked for at most once and then kept in memory (never on disk), so that
    a tail can log in again hours later when its token can no longer be refreshed. The prompt
    names the user, the server and why it asks: it may come hours into a tail, between
    events, where a bare "Password:" says nothing."""
    from kazoo_tail.auth.provider import login_reason, may_prompt

    remembered: list[str] = []

    def password() -> str | None:
        value: str | None = env.environ.get("KAZOO_PASSWORD")
        if value:
            return value
        if remembered:
            return remembered[0]
        if not may_prompt.get():
            return None  # a background thread: stdin and the terminal are not its to use
        if from_stdin:
            value = env.stdin.readline().rstrip("\r\n") or None
        elif env.stdin_isatty and env.stderr_isatty:
            # On stderr (the terminal), never on stdout, which carries only events.
            label = password_prompt(username, url, login_reason.get())
            from kazoo_tail.output.terminal import drain_status_lines

            drain_status_lines()  # the status lines before it are shown before it
            value = click.prompt(label, hide_input=True, err=True)
        if value:
            remembered.append(value)
        return value

    return password


def password_prompt(username: str | None, url: str | None, reason: str | None = None) -> str:
    """E.g. "Password for ops at kazoo.example.com:8000 (token rejected)"."""
    from urllib.parse import urlsplit

    from kazoo_tail.output.terminal import sanitize

    label = "Password"
    if username:
        label += f" for {username}"
    server = urlsplit(url).netloc if url else ""
    if server:
        label += f" at {server}"
    if reason:
        label += f" ({reason})"
    return sanitize(label)  # a user name from an environment variable can hold anything


def _env_seconds(environ: Mapping[str, str], name: str, default: float | None) -> float | None:
    value = environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number < float("inf"):
        raise UsageError(f"{name} must be a positive number of seconds, not {value!r}")
    return number
