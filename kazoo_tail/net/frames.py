"""Reading websocket frames from a byte stream (RFC 6455 §5), without doing any I/O.

websocket-client opens the connection and sends our frames; reading is done here because its
reader makes three ``recv`` calls (each behind a ``select``) per frame, which holds a tail to a
fraction of what a busy cluster sends. Feeding this parser large reads costs one ``recv`` per
many frames instead.
"""

from __future__ import annotations

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_KNOWN = {OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG}

# Drop consumed bytes from the front of the buffer once this many have piled up.
_COMPACT_AFTER = 1 << 20


class FrameError(Exception):
    """The peer broke the framing rules; the connection cannot be trusted any more."""


class FrameReader:
    """Feed bytes with ``feed``; take whole messages (opcode, payload) out with ``next``.

    Fragmented messages are reassembled; control frames (ping, pong, close) are returned as
    they come, even between the fragments of a message.
    """

    def __init__(self, max_message: int = 256 << 20) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._pos = 0
        self._fragments: list[bytes] = []
        self._fragment_opcode: int | None = None
        self._fragment_size = 0
        # A framing error found after good frames in one take_all, raised on the next call.
        self._error: FrameError | None = None
        # Whether unread bytes are buffered, or an error waits: kept up to date as bytes come
        # and go, since it is asked (``has_data``) a few times per event.
        self.pending = False

    def feed(self, data: bytes | memoryview) -> None:
        if self._pos >= _COMPACT_AFTER:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data
        self.pending = len(self._buffer) > self._pos

    def has_data(self) -> bool:
        """Whether unread bytes are buffered (perhaps not yet a whole frame), or an error
        found in them waits to be raised."""
        return self.pending

    def take_all(self) -> list[tuple[int, bytes]]:
        """Every whole message buffered, in order (perhaps none). A frame that breaks the
        rules after some good ones is raised on the next call, so that those are delivered
        first. One call a batch, not two a message: at a modest rate this runs per event."""
        error, self._error = self._error, None
        if error is not None:
            self.pending = len(self._buffer) > self._pos
            raise error
        messages: list[tuple[int, bytes]] = []
        try:
            # While bytes are left (not a call more to find that none are).
            while self.pending:
                frame = self._next_frame()
                if frame is None:
                    return messages
                fin, opcode, payload = frame
                # The common frame, whole and between messages, needs no reassembly.
                if fin and opcode and self._fragment_opcode is None:
                    if opcode >= OP_CLOSE and len(payload) > 125:
                        raise FrameError("a control frame that is fragmented or too long")
                    messages.append((opcode, payload))
                    continue
                message = self._message(fin, opcode, payload)
                if message is not None:
                    messages.append(message)
        except FrameError as exc:
            if not messages:
                raise
            self._error = exc
            self.pending = True
        return messages

    def next(self) -> tuple[int, bytes] | None:
        error, self._error = self._error, None
        if error is not None:
            self.pending = len(self._buffer) > self._pos
            raise error
        while True:
            frame = self._next_frame()
            if frame is None:
                return None
            message = self._message(*frame)
            if message is not None:
                return message

    def _message(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        """A frame's part in a message: the whole message when it ends one, else None."""
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                raise FrameError("a control frame that is fragmented or too long")
            return opcode, payload
        if opcode == OP_CONTINUATION:
            if self._fragment_opcode is None:
                raise FrameError("a continuation frame with no message to continue")
            self._add_fragment(payload)
            if fin:
                message = b"".join(self._fragments)
                opcode = self._fragment_opcode
                self._fragments, self._fragment_opcode, self._fragment_size = [], None, 0
                return opcode, message
            return None
        if self._fragment_opcode is not None:
            raise FrameError("a new message began before the previous one ended")
        if fin:
            return opcode, payload
        self._fragment_opcode = opcode
        self._add_fragment(payload)
        return None

    def _add_fragment(self, payload: bytes) -> None:
        self._fragment_size += len(payload)
        if self._fragment_size > self.max_message:
            raise FrameError(f"a message larger than {self.max_message} bytes")
        self._fragments.append(payload)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        # Nothing taken: whatever is there is unread (a frame taken sets it below).
        self.pending = available > 0
        if available < 2:
            return None
        first, second = buffer[pos], buffer[pos + 1]
        if first & 0x70:
            raise FrameError("a frame with reserved bits set (no extension was negotiated)")
        opcode = first & 0x0F
        if opcode not in _KNOWN:
            raise FrameError(f"a frame with unknown opcode {opcode}")
        length = second & 0x7F
        header = 2
        if length == 126:
            header = 4
            if available < header:
                return None
            length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
        elif length == 127:
            header = 10
            if available < header:
                return None
            length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
        if length > self.max_message:
            raise FrameError(f"a frame larger than {self.max_message} bytes")
        masked = second & 0x80
        if masked:
            header += 4
        if available < header + length:
            return None
        start = pos + header
        payload = bytes(buffer[start : start + length])
        if masked:
            # Servers must not mask, but a mask is easy to undo, so be liberal.
            mask = bytes(buffer[start - 4 : start])
            key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
            payload = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        self._pos = start + length
        self.pending = available > header + length
        return bool(first & 0x80), opcode, payload
