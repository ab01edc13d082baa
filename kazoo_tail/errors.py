"""Exit codes and the exception hierarchy that carries them to the CLI boundary.

The core raises these; only ``cli`` turns them into one sentence on stderr and an exit code.
"""

from __future__ import annotations

import enum
import re
from typing import NoReturn


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


# What each exit code means, for the main --help; tests/test_help.py holds README's table to it.
EXIT_CODE_MEANINGS: tuple[tuple[ExitCode, str], ...] = (
    (
        ExitCode.OK,
        "done: --count or --duration reached, or the reader of stdout went away (| head)",
    ),
    (
        ExitCode.ERROR,
        "other error (an unusable config file, stdout cannot be written, e.g. a full disk, "
        "an unexpected failure)",
    ),
    (ExitCode.USAGE, "usage error (bad option, impossible binding, no server given)"),
    (
        ExitCode.AUTH,
        "authentication failed (wrong password, unknown API key, rejected token, or a token "
        "blackhole crashes on, close 1011, three times in a row)",
    ),
    (ExitCode.CONNECT, "cannot connect to Crossbar or blackhole, or gave up reconnecting"),
    (
        ExitCode.SUBSCRIBE,
        "blackhole rejected a subscription (unknown event, account not in your tree)",
    ),
    (
        ExitCode.HANGUP,
        "hung up (SIGHUP: the terminal or ssh session went away); the socket is closed as "
        "for SIGTERM",
    ),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C)"),
    (ExitCode.TERMINATED, "terminated (SIGTERM)"),
)


class KazooTailError(Exception):
    """An error with a one-sentence message meant for the user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        # Redacted when read, not when made: a secret registered after the error was built (a
        # key Crossbar echoed back while we were still failing) is still kept off the screen.
        return redact(self._message)

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


def stdout_failure(error: OSError) -> OutputError | None:
    """What a failed write to stdout means; decided here and nowhere else.

    ``None``: its reader went away (EPIPE: ``| head`` had its lines). That is an ending, not
    an error: the ``BrokenPipeError`` goes on up, a tail stops reading, and the CLI boundary
    exits 0 without a word. Anything else (a full disk, an I/O error, a descriptor closed
    under us) ends the run with this ``OutputError``: one sentence, exit code 1.
    """
    if isinstance(error, BrokenPipeError):
        return None
    return OutputError(f"cannot write to stdout: {error.strerror or error}")


def raise_stdout_failure(error: OSError) -> NoReturn:
    """For every writer to stdout, in its ``except OSError``: raise what ``stdout_failure``
    says the failure means (the ``BrokenPipeError`` itself when the reader went away)."""
    failure = stdout_failure(error)
    if failure is None:
        raise error
    raise failure from None


# -- keeping secrets out of messages ---------------------------------------------------------

# Every form of every secret, longest first when used; filled by register_secret.
_secrets: set[str] = set()
# Machine-made secrets (API keys, credential hashes), any run of whose characters is hidden.
_machine_made: set[str] = set()
_fragments: re.Pattern[str] | None = None

# A run this long of a machine-made secret's characters is hidden wherever it appears: a
# server echoing a prefix or a part of a key gives nothing usable away, and eight random hex
# or base64 characters do not occur in ordinary text by chance.
FRAGMENT_LENGTH = 8
# Machine-made values shorter than this are not kept: they would blank ordinary letters.
MACHINE_MADE_MINIMUM = 4

# Three base64url segments, the first two starting like a JSON object ("eyJ"): a JWT.
_JWT = r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"


def register_secret(value: str | None, *, machine_made: bool = False) -> None:
    """Remember a password, API key, hash or token so that ``redact`` removes it from any text,
    also in the JSON-escaped forms a server's error message or our own JSON gives it.

    ``machine_made`` (an API key, a credentials hash): hidden however short it is (down to a
    few characters, for a mistyped key), and any run of ``FRAGMENT_LENGTH`` of its characters
    is hidden too. Other short values are left out: they would blank ordinary words (a
    password "demo" would hide the account "demo"), and a password is never put in a message
    anyway, only its hash is sent; tokens, which could be, are long.
    """
    global _fragments
    if not value or len(value) < (MACHINE_MADE_MINIMUM if machine_made else 8):
        return
    import json  # only a program that holds secrets pays for it, not every TAB press

    _secrets.update(
        form
        for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1])
        if form
    )
    if machine_made and value not in _machine_made:
        _machine_made.add(value)
        _fragments = None


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    text = _redact_fragments(text)
    # re caches the compiled pattern; compiling it at import would cost every TAB press.
    return re.sub(_JWT, "<redacted token>", text)


def _redact_fragments(text: str) -> str:
    """Hide every run of text made of overlapping pieces of a machine-made secret."""
    global _fragments
    if not _machine_made or len(text) < FRAGMENT_LENGTH:
        return text
    if _fragments is None:
        pieces = {
            secret[start : start + FRAGMENT_LENGTH]
            for secret in _machine_made
            for start in range(max(1, len(secret) - FRAGMENT_LENGTH + 1))
        }
        # A lookahead finds every start, overlapping ones included.
        alternatives = "|".join(re.escape(piece) for piece in sorted(pieces))
        _fragments = re.compile(f"(?=({alternatives}))")
    runs: list[list[int]] = []
    for found in _fragments.finditer(text):
        start, end = found.start(), found.start() + len(found.group(1))
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    for start, end in reversed(runs):
        text = f"{text[:start]}<redacted>{text[end:]}"
    return text
