"""The strict, fast JSON parser the wire and recordings use: orjson, or the json module made as
strict as orjson where orjson cannot be loaded.

orjson is compiled, so the one-file build (tools/build_pyz.py) cannot carry it: a zip archive
cannot load an extension module. The callers rely on what orjson refuses (a refused frame is
made standard and carries that text, see json_text.py), so the fallback refuses the same:
NaN and Infinity, a number too large for a double, a lone surrogate escape, text that is not
UTF-8 (surrogates encoded as UTF-8 included), a byte order mark. It also reads integers
outside 64 bits as floats, as orjson does.

``KAZOO_TAIL_JSON=stdlib`` chooses the fallback even with orjson installed, so that the
parser tests run both ways.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

from kazoo_tail.kazoo.json_text import compact_json

if TYPE_CHECKING:
    # For the checker only: `bytes | str` at run time needs 3.10; the one-file build runs on 3.9.
    from collections.abc import Callable

    Loads = Callable[[bytes | str], Any]
    Dumps = Callable[[Any], bytes]


class JSONDecodeError(ValueError):
    """Text the strict parser refuses."""


class JSONEncodeError(TypeError):
    """A value the strict writer refuses."""


# A lone surrogate escape (one not part of a valid pair); any other escape is consumed whole
# so that the "u" of an escaped backslash's "\\ud800" is not taken for one.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
    r"|\\.",
    re.DOTALL,
)
# orjson's integer range: below it or above it, the number is read as a float.
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1


def _refuse_constant(name: str) -> Any:
    raise JSONDecodeError(f"{name} is not JSON")


def _float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JSONDecodeError("number is infinity when parsed as double")
    return number


def _int(text: str) -> int | float:
    number = int(text)
    return number if _INT_MIN <= number <= _INT_MAX else float(number)


_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_float, parse_int=_int, strict=True
)


def _has_lone_surrogate(text: str) -> bool:
    return any(match.group(1) for match in _LONE_SURROGATE.finditer(text))


def stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """orjson.loads's answers, from the json module (see the module's docstring)."""
    try:
        if isinstance(data, str):
            data.encode("utf-8")  # a str holding a surrogate, as orjson refuses it
            text = data
        else:
            text = bytes(data).decode("utf-8")
    except UnicodeError:
        raise JSONDecodeError("str is not valid UTF-8") from None
    if text.startswith("\ufeff"):
        raise JSONDecodeError("UTF-8 byte order mark (BOM) is not supported")
    if "\\u" in text and _has_lone_surrogate(text):
        raise JSONDecodeError("lone surrogate in hex escape")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise JSONDecodeError("nested too deeply") from None
    except JSONDecodeError:
        raise
    except ValueError as error:
        raise JSONDecodeError(str(error)) from None


def stdlib_dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, non-finite numbers as null, as orjson.dumps writes it."""
    try:
        return compact_json(value).encode("utf-8")
    except (UnicodeError, TypeError, ValueError) as error:
        raise JSONEncodeError(str(error)) from None


def _choose() -> tuple[Loads, Dumps, tuple[type[Exception], ...], tuple[type[Exception], ...], str]:
    if os.environ.get("KAZOO_TAIL_JSON") != "stdlib":
        try:
            import orjson
        except ImportError:
            pass
        else:
            return (
                orjson.loads,
                orjson.dumps,
                (orjson.JSONDecodeError, JSONDecodeError),
                (orjson.JSONEncodeError, JSONEncodeError),
                "orjson",
            )
    return stdlib_loads, stdlib_dumps, (JSONDecodeError,), (JSONEncodeError,), "stdlib"


loads: Loads
dumps: Dumps
# What to catch around loads and dumps: either parser's refusals.
DECODE_ERRORS: tuple[type[Exception], ...]
ENCODE_ERRORS: tuple[type[Exception], ...]
# "orjson" or "stdlib": which one this process uses.
PARSER: str
loads, dumps, DECODE_ERRORS, ENCODE_ERRORS, PARSER = _choose()
