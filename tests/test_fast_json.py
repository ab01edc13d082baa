"""The strict parser both ways: orjson, and the json module made to answer as orjson does
(the one-file build has no orjson). The parser tests themselves also run with the fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kazoo_tail.kazoo import fast_json

ROOT = Path(__file__).resolve().parent.parent

# What the callers rely on orjson to refuse or to read in its own way.
CASES = [
    b'{"a":1}',
    b"NaN",
    b"[Infinity]",
    b"[-Infinity]",
    b'"\\ud800"',
    b'"\\udc00"',
    b'"\\ud83d\\ude00"',
    b'"\\\\ud800"',
    b"\xff",
    b'"\xed\xa0\x80"',
    b"\xef\xbb\xbf{}",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"123456789012345678901234567890",
    b"1e400",
    b"-1E400",
    b"1e-400",
    b"-0.0",
    b'{"a":1,"a":2}',
    b" {} ",
    b"{} x",
    b'"\x01"',
    b'"\t"',
    b"01",
    b"1.",
    b'"\\x"',
    b"[1,]",
    b"",
    b'"\\u0000"',
    b'"\\/"',
    b"\x00",
    b"[" * 500 + b"]" * 500,
    '{"é":"ü€😀"}'.encode(),
]


def answer(loads: Any, data: bytes | str) -> tuple[str, Any]:
    try:
        value = loads(data)
    except ValueError:
        return "refused", None
    return "read", (type(value).__name__, value)


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_the_fallback_reads_and_refuses_what_orjson_does(data: bytes) -> None:
    assert answer(fast_json.stdlib_loads, data) == answer(orjson.loads, data)
    if b"\xff" not in data and b"\xed" not in data:
        text = data.decode()
        assert answer(fast_json.stdlib_loads, text) == answer(orjson.loads, text)


def test_a_str_holding_a_surrogate_is_refused_both_ways() -> None:
    assert answer(fast_json.stdlib_loads, '"\ud800"') == answer(orjson.loads, '"\ud800"')


@pytest.mark.parametrize(
    "value",
    [
        {"received_at": 1764291600.123456, "text": '{"a":"é"}'},
        {"opcode": 2, "bytes": "AAE="},
        {"n": float("nan"), "i": float("inf")},
        [1, 2.5, None, True, "x"],
    ],
)
def test_the_fallback_writes_what_orjson_writes(value: Any) -> None:
    assert fast_json.stdlib_dumps(value) == orjson.dumps(value)


def test_the_fallback_refuses_to_write_a_lone_surrogate() -> None:
    with pytest.raises(fast_json.JSONEncodeError):
        fast_json.stdlib_dumps({"s": "\ud800"})


@pytest.mark.e2e
def test_the_parser_tests_pass_with_the_fallback() -> None:
    """The frame and recording tests, run again in a process that uses the json module."""
    env = {**os.environ, "KAZOO_TAIL_JSON": "stdlib"}
    code = "from kazoo_tail.kazoo import fast_json; print(fast_json.PARSER)"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert chosen.stdout.strip() == "stdlib"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/test_frames.py",
            "tests/test_hardening_record.py",
            "tests/test_received_at.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
