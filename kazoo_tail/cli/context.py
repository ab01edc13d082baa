"""What a command reaches through its click context: the environment it runs in, its status
lines, and stdout for text. Only click and the stdlib load here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kazoo_tail.app.environment import Environment
    from kazoo_tail.output.terminal import StatusWriter


def environment(ctx: click.Context) -> Environment:
    """The environment given to ``run``, else the process's own (read once, when needed)."""
    from kazoo_tail.app.environment import Environment

    env = ctx.find_object(Environment)
    if env is None:
        env = Environment.from_process()
        ctx.find_root().obj = env
    return env


def status_writer(env: Environment) -> StatusWriter:
    from kazoo_tail.output.terminal import StatusWriter

    return StatusWriter(env.stderr, colour=env.stderr_isatty and "NO_COLOR" not in env.environ)


def write_stdout(ctx: click.Context, text: str) -> None:
    """A line of text (a help page, the version) on the environment's stdout, whose failures
    mean what every other write's do (``errors.stdout_failure``)."""
    out = environment(ctx).text_stdout()
    out.write(text + "\n")
    out.flush()
