"""A blackhole-shaped websocket server that only exists to be faster than any client.

It speaks just enough of the protocol for a benchmark: the HTTP upgrade, subscribe replies with
the request's ``request_id``, then a stream of pre-encoded event frames written in large
batches, either as fast as the socket takes them or at a fixed rate. It is not the simulator:
the simulator is exact, this one is quick.

Workloads (``FastServer(workload=...)``), every frame with a msg_id of its own:

- ``create``: ~1.8 KB CHANNEL_CREATE frames of 97 call ids in turn (the first benchmarks');
- ``create-calls``: a CHANNEL_CREATE for a new call every event (``-b 'call.CHANNEL_CREATE.*'``);
- ``calls``: distinct calls of CREATE, ANSWER and DESTROY, ten in flight (``call.*.*``);
- ``never-hangup``: distinct calls of CREATE and ANSWER whose hangup never comes;
- ``objects``: object docs created, edited and deleted (``object.*.*``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAMPLES = Path(__file__).parent.parent / "tests" / "samples"
SAMPLE = SAMPLES / "05_event_call_channel_create.json"
WORKLOADS = ("create", "create-calls", "calls", "never-hangup", "objects")


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


MSG_ID_PLACEHOLDER = "#" * 16


def event_templates(variants: int = 97, size: int = 1500) -> list[tuple[bytes, bytes]]:
    """Call events of about ``size`` bytes, split around a fixed-width msg_id, so that every
    frame sent can carry a unique msg_id (nothing is de-duplicated) at the cost of a join."""
    envelope: dict[str, Any] = json.loads(SAMPLE.read_text())
    envelope["data"]["msg_id"] = MSG_ID_PLACEHOLDER
    base = json.dumps(envelope, separators=(",", ":"))
    pad = max(0, size - len(base) - 40)
    templates = []
    for n in range(variants):
        envelope["data"]["call_id"] = f"call-{n:04d}"
        envelope["data"]["custom_sip_headers"] = {"x_pad": "p" * pad}
        text = json.dumps(envelope, separators=(",", ":")).encode()
        before, after = text.split(MSG_ID_PLACEHOLDER.encode())
        header = frame(b"x" * len(text))[: -len(text)]
        templates.append((header + before, after))
    return templates


# The sample calls' id, and the fixed-width ids put in its place ("bench-0000000042").
_SAMPLE_CALL_ID = "at6dmu4ffk97vnlp6qfq"
_SAMPLE_DOC_ID = "d7a1b9e3c4f24f5a8e0b1c2d3e4f5a6b"
_CALL_ID = "bench-%(c)010d"
_DOC_ID = "doc%(c)013d"


def _numbered(envelope: dict[str, Any], old_id: str, new_id: str, key: str) -> bytes:
    """A frame template: the envelope with ``old_id`` made ``new_id`` and the msg_id a
    fixed-width number, for ``template % {b"c": call, b"m": msg}``."""
    envelope["data"]["msg_id"] = MSG_ID_PLACEHOLDER
    envelope["subscribed_key"] = key
    text = json.dumps(envelope, separators=(",", ":")).replace("%", "%%")
    text = text.replace(old_id, new_id).replace(MSG_ID_PLACEHOLDER, "%(m)016d")
    payload = text.encode()
    length = len(payload % {b"c": 0, b"m": 0})
    return frame(b"x" * length)[:-length] + payload


def workload_templates(workload: str) -> list[bytes]:
    """The frame templates a workload takes its events from (see ``frame_bytes``)."""
    if workload == "objects":
        sample = json.loads((SAMPLES / "08_event_object_doc_created_user.json").read_text())
        templates = []
        for action in ("doc_created", "doc_edited", "doc_deleted"):
            for kind in ("user", "device", "callflow"):
                envelope = json.loads(json.dumps(sample))
                envelope["name"] = envelope["data"]["event_name"] = action
                envelope["data"]["type"] = kind
                envelope["routing_key"] = (
                    envelope["routing_key"]
                    .replace("doc_created", action)
                    .replace(".user.", f".{kind}.")
                )
                templates.append(_numbered(envelope, _SAMPLE_DOC_ID, _DOC_ID, "object.*.*"))
        return templates
    names = ["05_event_call_channel_create"]
    if workload != "create-calls":
        names.append("06_event_call_channel_answer")
    if workload == "calls":
        names.append("07_event_call_channel_destroy")
    key = "call.CHANNEL_CREATE.*" if workload == "create-calls" else "call.*.*"
    return [
        _numbered(
            json.loads((SAMPLES / f"{name}.json").read_text()), _SAMPLE_CALL_ID, _CALL_ID, key
        )
        for name in names
    ]


class FastServer:
    def __init__(self, total: int, rate: float | None = None, workload: str = "create") -> None:
        if workload not in WORKLOADS:
            raise ValueError(f"unknown workload {workload!r}")
        self.total = total
        self.rate = rate
        self.workload = workload
        self.templates = event_templates()
        self.numbered = [] if workload == "create" else workload_templates(workload)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.sent_at: list[float] = []
        self.subscribed_at: list[float] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> FastServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.listener.close()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._connection, args=(conn,), daemon=True).start()
        except OSError:
            return

    def _connection(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        try:
            self._handshake(conn, reader)
            self._answer_subscribe(conn, reader)
        except OSError:
            conn.close()
            return
        self._stream(conn)

    def _stream(self, conn: socket.socket) -> None:
        """Send the events to a subscribed client, then close (1000)."""
        try:
            if self.rate is None:
                self._blast(conn)
            else:
                self._paced(conn)
            conn.sendall(frame(struct.pack("!H", 1000), 0x8))
            time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()

    def _handshake(self, conn: socket.socket, reader: Any) -> None:
        key = b""
        while True:
            line = reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def _answer_subscribe(self, conn: socket.socket, reader: Any) -> None:
        head = reader.read(2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", reader.read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", reader.read(8))[0]
        mask = reader.read(4)
        masked = reader.read(length)
        self.subscribed_at.append(time.time())
        message = json.loads(bytes(b ^ mask[i % 4] for i, b in enumerate(masked)))
        reply = {
            "action": "reply",
            "request_id": message["request_id"],
            "status": "success",
            "data": {"subscribed": [message["data"]["binding"]]},
        }
        conn.sendall(frame(json.dumps(reply).encode()))

    def frame_bytes(self, n: int) -> bytes:
        """The n-th event's frame. Calls go ten at a time: the ten's CREATEs, then their
        ANSWERs, then (``calls``) their DESTROYs."""
        if self.workload == "create":
            before, after = self.templates[n % len(self.templates)]
            return before + b"%016d" % n + after
        templates = self.numbered
        if self.workload in ("create-calls", "objects"):
            template, call = templates[n % len(templates)], n
        else:
            stage, within = divmod(n % (10 * len(templates)), 10)
            template = templates[stage]
            call = n // (10 * len(templates)) * 10 + within
        return template % {b"c": call, b"m": n}

    def _blast(self, conn: socket.socket) -> None:
        batch = 64
        for start in range(0, self.total, batch):
            end = min(start + batch, self.total)
            conn.sendall(b"".join(self.frame_bytes(n) for n in range(start, end)))

    def _paced(self, conn: socket.socket) -> None:
        assert self.rate is not None
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        for n in range(self.total):
            while (now := time.perf_counter()) < next_at:
                time.sleep(min(next_at - now, 0.001))
            self.sent_at.append(time.time())
            conn.sendall(self.frame_bytes(n))
            next_at += interval


class FastCluster:
    """Several FastServer nodes sending one stream in lockstep, as federated blackhole nodes
    do: every frame, with the same msg_id, to each node's client, a batch to each in turn, so
    the copies arrive about together (a blast from independent servers would let one link
    run arbitrarily far ahead of the other, which no cluster does)."""

    def __init__(self, total: int, nodes: int = 2) -> None:
        self.total = total
        self.nodes = [_LockstepNode(total, self) for _ in range(nodes)]
        self.urls = [node.url for node in self.nodes]
        self._ready: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> FastCluster:
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def subscribed(self, conn: socket.socket) -> None:
        with self._lock:
            self._ready.append(conn)
            if len(self._ready) < len(self.nodes):
                return
            conns, self._ready = self._ready, []
        threading.Thread(target=self._blast, args=(conns,), daemon=True).start()

    def _blast(self, conns: list[socket.socket]) -> None:
        first = self.nodes[0]
        batch = 64
        try:
            for start in range(0, self.total, batch):
                end = min(start + batch, self.total)
                data = b"".join(first.frame_bytes(n) for n in range(start, end))
                for conn in conns:
                    conn.sendall(data)
            for conn in conns:
                conn.sendall(frame(struct.pack("!H", 1000), 0x8))
            time.sleep(0.5)
        except OSError:
            pass
        finally:
            for conn in conns:
                conn.close()


class _LockstepNode(FastServer):
    def __init__(self, total: int, cluster: FastCluster) -> None:
        super().__init__(total)
        self.cluster = cluster

    def _stream(self, conn: socket.socket) -> None:
        self.cluster.subscribed(conn)  # the cluster sends, to every node's client in turn
