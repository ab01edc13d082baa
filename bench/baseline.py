"""The baselines kazoo-tail is measured against, each the simplest honest loop for its job.

python bench/baseline.py raw URL COUNT          websocket-client, skip_utf8_validation,
                                                each frame written unparsed
python bench/baseline.py raw-flush URL COUNT    the same, flushing after every frame
python bench/baseline.py rich URL COUNT         parse, then one rich Text per line
                                                (highlighting off, colours forced on)
"""

from __future__ import annotations

import json
import sys

import websocket


def subscribe(url: str) -> websocket.WebSocket:
    ws = websocket.create_connection(url, skip_utf8_validation=True)
    ws.send(
        json.dumps(
            {
                "action": "subscribe",
                "auth_token": "t",
                "request_id": "r",
                "data": {"account_id": "a", "binding": "call.*.*"},
            }
        )
    )
    ws.recv_data_frame(True)  # the reply
    return ws


def raw(url: str, count: int, flush_each: bool) -> None:
    ws = subscribe(url)
    out = sys.stdout.buffer
    for _ in range(count):
        _, frame = ws.recv_data_frame(True)
        out.write(frame.data + b"\n")
        if flush_each:
            out.flush()
    out.flush()


def rich_lines(url: str, count: int) -> None:
    from rich.console import Console
    from rich.text import Text

    ws = subscribe(url)
    console = Console(force_terminal=True, highlight=False, soft_wrap=True)
    for _ in range(count):
        _, frame = ws.recv_data_frame(True)
        event = json.loads(frame.data)
        data = event["data"]
        console.print(
            Text(
                f"{event['name']} {data['call_direction']} {data['caller_id_number']} -> "
                f"{data.get('callee_id_number', '?')} call {data['call_id']}",
                style="cyan",
            )
        )


def main() -> None:
    mode, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "rich":
        rich_lines(url, count)
    else:
        raw(url, count, flush_each=mode == "raw-flush")


if __name__ == "__main__":
    main()
