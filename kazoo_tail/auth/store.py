"""The config directory: named profiles (no secrets), the token cache, and the server's binding
catalogue.

The files are JSON, written atomically and created with mode 0600 in a 0700 directory. As ssh
does, nothing is trusted that another user could change: a directory or file others can write,
or that belongs to someone else, is refused (the token cache even when others can read it),
since whoever controls profiles.json chooses where the cached token is sent. Every
read-modify-write holds an exclusive lock on a lock file in the directory, so that concurrent
kazoo-tails (eight logins at once, a logout during a tail's renewal) never lose each other's
changes; plain reads need no lock, since a file is only ever replaced whole. Nothing here knows
about click: the CLI resolves the directory and passes it in.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kazoo_tail.errors import ConfigError
from kazoo_tail.kazoo.tokens import token_expiry

PROFILES_FILE = "profiles.json"
TOKENS_FILE = "tokens.json"
CATALOGUE_FILE = "catalogue.json"
LOCK_FILE = "lock"

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ANY = stat.S_IRWXG | stat.S_IRWXO
# Every broken file the user can be shown is one that 'logout --all' removes.
_REMEDY = "delete it or run 'kazoo-tail logout --all'"


@dataclass
class Profile:
    """Where and as whom to log in. Never holds a password, API key or token."""

    url: str | None = None
    ws_url: str | None = None
    account_name: str | None = None
    realm: str | None = None
    phone_number: str | None = None
    username: str | None = None
    # A short hash naming the API key a token was cached for; the key itself is never stored.
    api_key_hash: str | None = None

    @classmethod
    def from_json(cls, raw: Any) -> Profile:
        if not isinstance(raw, dict):
            raise ValueError("a profile must be an object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known and isinstance(v, str)})


@dataclass
class CachedToken:
    token: str
    account_id: str
    owner_id: str | None = None
    account_name: str | None = None
    ws_url: str | None = None

    @property
    def expires_at(self) -> float | None:
        return token_expiry(self.token)

    @classmethod
    def from_json(cls, raw: Any) -> CachedToken:
        """Typed as a profile is, but strictly: the cache is machine-written, so a field of the
        wrong type means a broken file, better named than half used."""
        if not isinstance(raw, dict):
            raise ValueError("a cached token must be an object")
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in raw.items() if k in known}
        for name in ("token", "account_id"):
            if not isinstance(kept.get(name), str):
                raise ValueError(f"a cached token needs a {name} that is a string")
        for name, value in kept.items():
            if not isinstance(value, (str, type(None))):
                raise ValueError(f"the {name} of a cached token must be a string")
        return cls(**kept)


class ConfigStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def profiles_path(self) -> Path:
        return self.directory / PROFILES_FILE

    @property
    def tokens_path(self) -> Path:
        return self.directory / TOKENS_FILE

    # -- profiles ---------------------------------------------------------------------------

    def profiles(self) -> dict[str, Profile]:
        return self._profiles_in(self._read(self.profiles_path, check_private=False))

    def _profiles_in(self, raw: dict[str, Any]) -> dict[str, Profile]:
        try:
            return {name: Profile.from_json(value) for name, value in raw.items()}
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"config file {self.profiles_path} is malformed: {exc}; {_REMEDY}"
            ) from None

    def profile(self, name: str) -> Profile | None:
        return self.profiles().get(name)

    def save_profile(self, name: str, profile: Profile) -> None:
        with self._update(self.profiles_path, check_private=False) as raw:
            raw[name] = {k: v for k, v in asdict(profile).items() if v is not None}

    def remove_corrupt_profiles(self) -> bool:
        """Remove profiles.json if it cannot be parsed, since then no command could start;
        True if it was removed. A healthy file is kept (it holds no secrets), and so is one
        that is unsafe or unreadable: the error naming it says what to do, and deleting what
        another user planted is not a logout's job."""
        path = self.profiles_path
        if not path.exists():
            return False
        with self._locked():
            try:
                text = self._read_bytes(path, check_private=False)
            except ConfigError:
                return False
            if text is None:
                return False
            try:
                self._profiles_in(self._parse(path, text))
            except ConfigError:
                self._remove(path)
                return True
            return False

    # -- tokens -----------------------------------------------------------------------------

    def token(self, key: str) -> CachedToken | None:
        raw = self._read(self.tokens_path, check_private=True)
        entry = raw.get(key)
        if entry is None:
            return None
        try:
            return CachedToken.from_json(entry)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"token cache {self.tokens_path} is malformed: {exc}; {_REMEDY}"
            ) from None

    def save_token(self, key: str, token: CachedToken) -> None:
        with self._update(self.tokens_path, check_private=True) as raw:
            raw[key] = {k: v for k, v in asdict(token).items() if v is not None}

    def token_count(self) -> int:
        """How many tokens are cached, whoever and wherever for."""
        if not self.tokens_path.exists():
            return 0
        return len(self._read(self.tokens_path, check_private=True))

    def forget_tokens(self, keys: Collection[str] | None = None) -> int:
        """Forget the cached tokens of these keys (all of them with None); a corrupt cache is
        removed. A key is matched whole: user 'ops' is not user 'ops2'."""
        path = self.tokens_path
        if not path.exists():
            return 0
        with self._locked():
            try:
                raw = self._read(path, check_private=False)
            except ConfigError:
                self._remove(path)
                return 1
            doomed = [key for key in raw if keys is None or key in keys]
            if len(doomed) == len(raw):
                self._remove(path)
                return len(doomed)
            for key in doomed:
                del raw[key]
            self._write(path, raw)
            return len(doomed)

    # -- the server's binding catalogue, for shell completion --------------------------------

    def cached_catalogue(self) -> dict[str, list[str]]:
        """What 'kazoo-tail bindings' last fetched; never an error (completion must not fail)."""
        from kazoo_tail.kazoo.catalog import clean

        try:
            return clean(self._read(self.directory / CATALOGUE_FILE, check_private=False))
        except ConfigError:
            return {}

    def save_catalogue(self, catalogue: dict[str, list[str]]) -> None:
        self._write(self.directory / CATALOGUE_FILE, dict(catalogue))

    # -- file plumbing ----------------------------------------------------------------------

    def _read(self, path: Path, *, check_private: bool) -> dict[str, Any]:
        text = self._read_bytes(path, check_private=check_private)
        return {} if text is None else self._parse(path, text)

    def _read_bytes(self, path: Path, *, check_private: bool) -> bytes | None:
        """The file's bytes, None if it does not exist; an error if it is unsafe or unreadable."""
        self._check_directory()
        try:
            with open(path, "rb") as handle:
                refuse_if_unsafe(path, os.fstat(handle.fileno()), private=check_private)
                return handle.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except PermissionError:
            raise ConfigError(f"cannot read config file {path}: permission denied") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None

    @staticmethod
    def _parse(path: Path, text: bytes) -> dict[str, Any]:
        """The JSON object in a file's bytes; every error here means the file is corrupt."""
        if _nesting(text) > MAX_NESTING:
            # Refused before parsing: json's RecursionError deep in the stack can make a
            # finaliser run then fail too, and say so on stderr beside our one sentence.
            raise ConfigError(f"config file {path} is corrupt (nested too deeply); {_REMEDY}")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(
                f"config file {path} is corrupt (not valid JSON); {_REMEDY}"
            ) from None
        except RecursionError:
            raise ConfigError(
                f"config file {path} is corrupt (nested too deeply); {_REMEDY}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} is corrupt (expected a JSON object); {_REMEDY}")
        return data

    @contextmanager
    def _update(self, path: Path, *, check_private: bool) -> Iterator[dict[str, Any]]:
        with self._locked():
            raw = self._read(path, check_private=check_private)
            yield raw
            self._write(path, raw)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's lock: one read-modify-write at a time, across processes.

        flock is released by the kernel when its holder dies, so a killed kazoo-tail never
        leaves the directory locked; the lock file itself stays (removing it would let two
        writers lock two different files).
        """
        try:
            import fcntl
        except ImportError:  # Windows: no flock; writes stay atomic, only concurrency is lost
            yield
            return
        self._ensure_directory()
        path = self.directory / LOCK_FILE
        try:
            fd = self._open_lock(path)
        except OSError as exc:
            raise ConfigError(f"cannot lock config file {path}: {exc.strerror}") from None
        try:
            # Whoever else can open it could hold it forever and stall every write.
            refuse_if_unsafe(path, os.fstat(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _open_lock(path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            # Ours, just made: the umask may have taken the owner's own bits (umask 277 leaves
            # 0400, which the next writer could not open for writing).
            os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        return fd

    def _remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot remove config file {path}: {exc.strerror}") from None

    def _check_directory(self) -> None:
        try:
            info = os.stat(self.directory)
        except FileNotFoundError:
            return  # nothing to read yet; writing creates it private
        except OSError as exc:
            raise ConfigError(
                f"cannot use config directory {self.directory}: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"config directory {self.directory} is not a directory")
        refuse_if_unsafe(self.directory, info)

    def _ensure_directory(self) -> None:
        """Create the directory and any missing parent with mode 0700 whatever the umask (277
        would leave 0500, in which not even the next parent could be made), then check it: a
        directory that was already there may be anyone's."""
        missing: list[Path] = []
        candidate = self.directory
        while not os.path.isdir(candidate) and candidate.parent != candidate:
            missing.append(candidate)
            candidate = candidate.parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory, 0o700)
                os.chmod(directory, 0o700)  # a chmod is the one thing the umask does not touch
            except FileExistsError:
                pass  # a concurrent kazoo-tail made it first; a file there fails just below
            except OSError as exc:
                raise ConfigError(
                    f"cannot create config directory {self.directory}: {exc.strerror}"
                ) from None
        self._check_directory()

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        """Write via a 0600 temp file in the same directory, then rename over the target."""
        import tempfile  # only writers pay for it (it pulls in shutil, random, bz2, lzma)

        self._ensure_directory()
        payload = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
        try:
            # mkstemp creates the file private, so it is never readable by others.
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
        except OSError as exc:
            raise ConfigError(
                f"cannot write to config directory {self.directory}: {exc.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                if os.name == "posix":
                    os.fchmod(fd, 0o600)  # mkstemp's 0600 less the umask, which may be 0400
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise ConfigError(f"cannot write config file {path}: {exc.strerror}") from None


def refuse_if_unsafe(path: Path, info: os.stat_result, *, private: bool = False) -> None:
    """Refuse what another user could change (or, when ``private``, even read), as ssh does.

    Root's own files are trusted too (root could change them anyway). Only on POSIX: elsewhere
    the mode bits do not describe who may write.
    """
    if not hasattr(os, "geteuid"):
        return
    is_directory = stat.S_ISDIR(info.st_mode)
    what = "config directory" if is_directory else "config file"
    if info.st_uid not in (os.geteuid(), 0):
        remedy = "use a config directory of your own" if is_directory else "remove it"
        raise ConfigError(
            f"refusing to use {what} {path}: it belongs to another user (uid {info.st_uid}), "
            f"who could change it; {remedy}"
        )
    if private and info.st_mode & _OTHERS_ANY:
        raise ConfigError(
            f"refusing to use {path}: other users can read or change it (run: chmod 600 {path})"
        )
    if info.st_mode & _OTHERS_WRITE:
        remedy = f"chmod 700 {path}" if is_directory else f"chmod go-w {path}"
        raise ConfigError(
            f"refusing to use {what} {path}: other users can write to it (run: {remedy})"
        )


# Far deeper than any file kazoo-tail writes (three levels), far below the interpreter's limit.
MAX_NESTING = 200
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _nesting(text: bytes) -> int:
    """How deep the brackets of a JSON text go, strings left out (they may hold brackets)."""
    depth = deepest = 0
    for byte in _STRINGS.sub(b"", text):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest
