"""kazoo-tail: tail live events from a 2600Hz Kazoo cluster's blackhole websocket."""

__version__ = "0.1.0"
