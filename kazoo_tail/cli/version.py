"""What ``kazoo-tail --version`` says: our version, the Python running it, and the versions of
the four libraries a bug report most often hinges on.

Versions come from the installed distributions' metadata, which costs no import of the libraries
themselves (``--version`` stays as quick as a TAB press). Where there is no metadata, as in a
single-file zipapp that carries the packages without their dist-info, the module's own
``__version__`` is asked, and failing that the version is shown as "?".
"""

from __future__ import annotations

import importlib
import platform
import warnings
from importlib import metadata

from kazoo_tail import __version__
from kazoo_tail.cli.settings import APP_NAME

# (distribution, importable module) for each library --version names, in the order shown.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("click", "click"),
    ("requests", "requests"),
    ("websocket-client", "websocket"),
    ("rich", "rich"),
)


def library_version(distribution: str, module: str) -> str:
    """The version of an installed library, or "?" when neither its metadata nor the module
    tells."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    try:
        # Some libraries deprecate their __version__ (click does); it is only a fallback here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            found = getattr(importlib.import_module(module), "__version__", None)
    except ImportError:
        return "?"
    return found if isinstance(found, str) else "?"


def version_line() -> str:
    """E.g. ``kazoo-tail 0.2.0 (Python 3.11.7, click 8.2.1, requests 2.32.3, ...)``."""
    parts = [f"Python {platform.python_version()}"]
    parts += [f"{dist} {library_version(dist, module)}" for dist, module in LIBRARIES]
    return f"{APP_NAME} {__version__} ({', '.join(parts)})"
