"""--token with --url and no --ws-url: the websocket URL is the one Crossbar advertises for
the token (GET /v2/token_auth, as Kazoo answers it), and a guess is said aloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kazoo_tail.net.crossbar import Crossbar
from kazoo_tail.simulator import Simulator, SimulatorConfig

from .inprocess import run, tail_until_subscribed


@pytest.fixture
def two_nodes() -> Iterator[Simulator]:
    """Two blackhole nodes, Crossbar advertising the first: a guess would reach neither."""
    config = SimulatorConfig(event_rate=0, early_events=False, advertise_ws_url=True, nodes=2)
    with Simulator(config) as simulator:
        yield simulator


@pytest.fixture
def silent_crossbar() -> Iterator[Simulator]:
    """A Crossbar with no blackhole.url configured: it advertises nothing."""
    config = SimulatorConfig(event_rate=0, early_events=False, advertise_ws_url=False)
    with Simulator(config) as simulator:
        yield simulator


def test_token_auth_names_the_advertised_url(two_nodes: Simulator) -> None:
    crossbar = Crossbar(two_nodes.crossbar_url)
    assert crossbar.advertised_ws_url(two_nodes.mint_token()) == two_nodes.blackhole_url
    assert two_nodes.stats["token_auth"] == 1


def test_token_and_url_subscribe_on_the_advertised_url(two_nodes: Simulator) -> None:
    # A configured --ws-url is used as it is: Crossbar is not asked.
    other = two_nodes.blackhole_urls[1]
    configured = tail_until_subscribed(
        two_nodes,
        "--url",
        two_nodes.crossbar_url,
        "--ws-url",
        other,
        "-b",
        "call.*.*",
        KAZOO_AUTH_TOKEN=two_nodes.mint_token(),
    )
    assert configured.returncode == 0, configured.stderr
    assert two_nodes.stats["token_auth"] == 0
    assert two_nodes.node(1).stats["subscribes"] == 1
    # Without it, Crossbar is asked, and the advertised node (not a guess) is subscribed on.
    advertised = two_nodes.node(0)
    result = tail_until_subscribed(
        two_nodes,
        "--url",
        two_nodes.crossbar_url,
        "-b",
        "call.*.*",
        KAZOO_AUTH_TOKEN=two_nodes.mint_token(),
    )
    assert result.returncode == 0, result.stderr
    assert len(result.json_lines()) == 1
    assert two_nodes.stats["token_auth"] == 1
    assert advertised.stats["subscribes"] == 1
    assert two_nodes.node(1).stats["connections"] == 1  # the configured run's only
    assert f"on {two_nodes.blackhole_url}" in result.stderr
    assert "guess" not in result.stderr


def test_a_guess_is_said_once(silent_crossbar: Simulator) -> None:
    host = silent_crossbar.crossbar_url.split("//", 1)[1].split(":", 1)[0]
    guessed = f"ws://{host}:5555"
    result = run(
        "--url",
        silent_crossbar.crossbar_url,
        "-b",
        "call.*.*",
        "--count",
        "1",
        "--max-reconnect-time",
        "0",
        KAZOO_AUTH_TOKEN=silent_crossbar.mint_token(),
    )
    assert silent_crossbar.stats["token_auth"] == 1
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "kazoo-tail: warning: Crossbar did not advertise blackhole's websocket URL "
        f"(GET /v2/token_auth named none), so guessing {guessed}: pass --ws-url if "
        "blackhole is elsewhere"
    ]
    assert result.stdout == ""
