"""Exit codes and the exception hierarchy that carries them to the CLI boundary.

The core raises these; only ``cli`` turns them into one sentence on stderr and an exit code.
"""

from __future__ import annotations

import enum
import re


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    CONNECT = 4
    SUBSCRIBE = 5
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


class KazooTailError(Exception):
    """An error with a one-sentence message meant for the user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(KazooTailError):
    exit_code = ExitCode.USAGE


class ConfigError(KazooTailError):
    """The config directory or one of its files cannot be used."""


class AuthError(KazooTailError):
    """Crossbar or blackhole refused our credentials or token."""

    exit_code = ExitCode.AUTH


class ConnectError(KazooTailError):
    """The server could not be reached, or kept failing until we gave up."""

    exit_code = ExitCode.CONNECT


class SubscribeError(KazooTailError):
    """Blackhole rejected a subscription."""

    exit_code = ExitCode.SUBSCRIBE


class OutputError(KazooTailError):
    """Events could not be written to stdout for a reason other than its reader leaving (a
    full disk, an I/O error): exit code 1, like any tool whose output failed."""


def stdout_failed(error: OSError) -> OutputError:
    """Why writing to stdout failed (a full disk, an I/O error), as the error that ends it."""
    return OutputError(f"cannot write to stdout: {error.strerror or error}")


# -- keeping secrets out of messages ---------------------------------------------------------

_secrets: set[str] = set()

# Three base64url segments, the first two starting like a JSON object ("eyJ"): a JWT.
_JWT = r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"


def register_secret(value: str | None) -> None:
    """Remember a password, API key or token so that ``redact`` removes it from any text.

    Very short values are left out: they would blank ordinary words (a password "demo" would
    hide the account "demo"), and a password is never put in a message anyway, only its hash
    is sent; tokens and API keys, which could be, are long.
    """
    if value and len(value) >= 8:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    # re caches the compiled pattern; compiling it at import would cost every TAB press.
    return re.sub(_JWT, "<redacted token>", text)
