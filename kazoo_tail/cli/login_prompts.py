"""``kazoo-tail login``'s questions, each answer checked as soon as it is given.

The Crossbar URL is checked on its own, with the unauthenticated GET /v2/websockets that
``bindings`` and ``doctor`` use: a typo is asked again before anything else is. Kazoo checks
the account, the user name and the password only together (one login call, one 401 for any
of them), so a refused login asks all three again, the account and user with the previous
answers as defaults (Enter keeps them), up to ``TRIES`` times. Nothing loops without a
terminal to ask on: there the login call is the one check, and a wrong answer is one error
and its exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from kazoo_tail.cli.settings import connection_config, password_prompt, verify
from kazoo_tail.errors import AuthError, ConnectError, UsageError

# click before its _readline_prompt (8.1 on Python 3.9; 8.2.0 and 8.2.1 too) ends a visible
# prompt by calling input(" "), which writes that space to stdout even with err=True: a stray
# byte in front of a piped tail's output. Later clicks write all of the prompt where asked.
_SPACE_TO_STDOUT = not hasattr(click.termui, "_readline_prompt")


@contextmanager
def _prompt_on_stderr() -> Iterator[None]:
    if not _SPACE_TO_STDOUT:
        yield
        return

    def ask_on_stderr(text: str) -> str:
        sys.stderr.write(text)
        sys.stderr.flush()
        return input()

    before = click.termui.visible_prompt_func
    click.termui.visible_prompt_func = ask_on_stderr
    try:
        yield
    finally:
        click.termui.visible_prompt_func = before


if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment
    from kazoo_tail.auth.store import CachedToken, ConfigStore, Profile
    from kazoo_tail.output.terminal import StatusWriter
    from kazoo_tail.session.resolve import ConnectionConfig

TRIES = 3
URL_EXAMPLE = "http://kazoo.example.com:8000"
# What a refused user login means: Kazoo does not say which of the three it did not like.
WRONG_LOGIN = "the account name, user name or password is wrong"


@dataclass
class LoggedIn:
    url: str
    config: ConnectionConfig
    token: CachedToken


def log_in(
    options: dict[str, Any],
    env: Environment,
    status: StatusWriter,
    store: ConfigStore,
    saved: Profile,
) -> LoggedIn:
    """Ask for what the options and environment do not give, check it, and log in."""
    interactive = env.stdin_isatty

    def ask(label: str, current: str | None) -> str:
        if not interactive:
            raise UsageError(
                f"{label} is required (no terminal to ask on): see kazoo-tail login --help"
            )
        with _prompt_on_stderr():
            value: str = click.prompt(label, default=current, err=True)
        return value.strip()

    if options["url"]:
        url = options["url"]
        if interactive:
            # Not typed here (--url, KAZOO_URL), so an error, not a question; but said before
            # anyone types a password for it. Without a terminal the login itself is the check.
            check_crossbar(url, options)
    else:
        url = _until_accepted(
            lambda: ask(f"Crossbar URL (e.g. {URL_EXAMPLE})", saved.url),
            lambda answer: check_crossbar(answer, options),
            status,
            again="give the Crossbar URL again",
        )
    options["url"] = url
    asked: list[str] = []  # what a refused login asks again
    if not options["api_key"]:
        if not (options["account_name"] or options["realm"] or options["phone_number"]):
            options["account_name"] = ask("Account name", saved.account_name)
            asked.append("account_name")
        if not options["username"]:
            options["username"] = ask("Username", saved.username)
            asked.append("username")

    config = connection_config(options, None, env, tuning=False)
    # A secret not typed here is tried once: asking again would not change it.
    if config.api_key is not None:
        return LoggedIn(url, config, _login_once(config, store, env, status))
    if env.environ.get("KAZOO_PASSWORD") or options["password_stdin"]:
        try:
            return LoggedIn(url, config, _login_once(config, store, env, status))
        except AuthError as refused:
            raise AuthError(f"{refused.message}: {WRONG_LOGIN}") from None
    if not interactive:
        raise UsageError("no password: set KAZOO_PASSWORD or use --password-stdin")

    for attempt in range(1, TRIES + 1):
        if attempt > 1:
            for key, label in (("account_name", "Account name"), ("username", "Username")):
                if key in asked:
                    options[key] = ask(label, options[key])
            config = connection_config(options, None, env, tuning=False)
        typed: str = click.prompt(password_prompt(config.username, url), hide_input=True, err=True)
        config.password = _given(typed)
        try:
            return LoggedIn(url, config, _login_once(config, store, env, status))
        except AuthError as refused:
            if attempt == TRIES:
                raise AuthError(f"{refused.message} ({TRIES} tries)") from None
            status.error(f"{refused.message}: {WRONG_LOGIN}; try again ({attempt + 1} of {TRIES})")
            status.drain()  # on the terminal before the question it leads to
    raise AssertionError("unreachable: the last try returns or raises")


def check_crossbar(url: str, options: dict[str, Any]) -> None:
    """That the URL is a Crossbar that answers, before anything else is asked or saved."""
    from kazoo_tail.cli.settings import check_urls
    from kazoo_tail.net.crossbar import Crossbar

    check_urls(url, None)
    try:
        Crossbar(url, verify=verify(options)).get_envelope("websockets")
    except AuthError:
        pass  # a Crossbar that wants a token even for this: it is there, which is the question


def _until_accepted(
    answer: Callable[[], str],
    check: Callable[[str], None],
    status: StatusWriter,
    *,
    again: str,
) -> str:
    """Ask until the check passes, telling why not each time, ``TRIES`` times at most."""
    for attempt in range(1, TRIES + 1):
        given = answer()
        try:
            check(given)
            return given
        except (UsageError, ConnectError) as wrong:
            if attempt == TRIES:
                raise
            status.error(f"{wrong.message}; {again} ({attempt + 1} of {TRIES})")
            status.drain()  # on the terminal before the question it leads to
    raise AssertionError("unreachable: the last try returns or raises")


def _login_once(
    config: ConnectionConfig, store: ConfigStore, env: Environment, status: StatusWriter
) -> CachedToken:
    from kazoo_tail.session.resolve import token_provider

    return token_provider(config, store, clock=env.clock, warn=status.warning).login()


def _given(password: str) -> Callable[[], str | None]:
    return lambda: password
