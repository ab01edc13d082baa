"""The websocket frame reader: every frame shape a server may send, fed in any chunking."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kazoo_tail.net.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameReader,
)


def frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True, mask: bytes = b"") -> bytes:
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + payload


def read_all(data: bytes, chunk: int) -> list[tuple[int, bytes]]:
    reader = FrameReader()
    messages = []
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        while (message := reader.next()) is not None:
            messages.append(message)
    return messages


STREAM = (
    frame(b"small")
    + frame(b"m" * 300)
    + frame(b"L" * 70000, OP_BINARY)
    + frame(b"frag-", fin=False)
    + frame(b"ping!", OP_PING)
    + frame(b"ment", OP_CONTINUATION)
    + frame(b"masked", mask=b"\x01\x02\x03\x04")
    + frame(b"\x03\xe8", OP_CLOSE)
)
EXPECTED = [
    (OP_TEXT, b"small"),
    (OP_TEXT, b"m" * 300),
    (OP_BINARY, b"L" * 70000),
    (OP_PING, b"ping!"),
    (OP_TEXT, b"frag-ment"),
    (OP_TEXT, b"masked"),
    (OP_CLOSE, b"\x03\xe8"),
]


@pytest.mark.parametrize("chunk", [1, 3, 7, 1024, 1 << 20])
def test_every_chunking_yields_the_same_messages(chunk: int) -> None:
    assert read_all(STREAM, chunk) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=60))
def test_arbitrary_chunk_boundaries(cuts: list[int]) -> None:
    reader = FrameReader()
    messages, position = [], 0
    for cut in cuts + [len(STREAM)]:
        reader.feed(STREAM[position : position + cut])
        position += cut
        while (message := reader.next()) is not None:
            messages.append(message)
    assert messages == EXPECTED


@pytest.mark.parametrize(
    "data",
    [
        bytes([0xC1, 0x00]),  # reserved bit (compression was never negotiated)
        bytes([0x83, 0x00]),  # unknown opcode
        frame(b"x", OP_CONTINUATION),  # nothing to continue
        frame(b"a", fin=False) + frame(b"b"),  # new message inside a fragmented one
        frame(b"p" * 200, OP_PING),  # control frame too long
    ],
)
def test_protocol_violations_are_errors(data: bytes) -> None:
    reader = FrameReader()
    reader.feed(data)
    with pytest.raises(FrameError):
        while reader.next() is not None:
            pass


def test_oversized_messages_are_refused_before_they_are_buffered() -> None:
    reader = FrameReader(max_message=1000)
    reader.feed(frame(b"x" * 2000)[:10])
    with pytest.raises(FrameError, match="larger than"):
        reader.next()


# -- take_all: every whole message of a read at once (the streaming session's path) -----------


def test_take_all_returns_every_whole_message_and_keeps_a_partial_one() -> None:
    data = frame(b"a") + frame(b"b", OP_PING) + frame(b"c" * 300) + frame(b"d")[:2]
    reader = FrameReader()
    reader.feed(data)
    assert reader.take_all() == [(OP_TEXT, b"a"), (OP_PING, b"b"), (OP_TEXT, b"c" * 300)]
    assert reader.has_data()  # the partial frame waits for the rest
    assert reader.take_all() == []
    reader.feed(frame(b"d")[2:])
    assert reader.take_all() == [(OP_TEXT, b"d")]
    assert not reader.has_data()


def test_take_all_reassembles_fragments_around_a_control_frame() -> None:
    reader = FrameReader()
    reader.feed(
        frame(b"he", fin=False)
        + frame(b"p", OP_PING)
        + frame(b"llo", OP_CONTINUATION)
        + frame(b"x", mask=b"\x01\x02\x03\x04")
    )
    assert reader.take_all() == [(OP_PING, b"p"), (OP_TEXT, b"hello"), (OP_TEXT, b"x")]


def test_a_bad_frame_after_good_ones_is_raised_once_they_are_taken() -> None:
    reader = FrameReader()
    reader.feed(frame(b"a") + frame(b"b") + bytes([0x80 | 0x3, 0]))  # opcode 3 is unknown
    assert reader.take_all() == [(OP_TEXT, b"a"), (OP_TEXT, b"b")]
    assert reader.has_data()
    with pytest.raises(FrameError):
        reader.take_all()


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(1, 50))
def test_take_all_agrees_with_next_in_any_chunking(payloads: list[bytes], chunk: int) -> None:
    data = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    taken: list[tuple[int, bytes]] = []
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        taken += reader.take_all()
    assert taken == read_all(data, chunk) == [(OP_TEXT, p) for p in payloads]
    assert not reader.has_data()
