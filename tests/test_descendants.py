"""--descendants on a reseller's tree: Crossbar pages the listing by 50, and every page is
followed; the status line counts the accounts instead of listing them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig
from kazoo_tail.simulator.accounts import Account

from .conftest import login_args
from .inprocess import run, tail_until_subscribed

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}
EXTRA = 58  # with the demo's own two sub-accounts: 60, over one page of 50


def reseller(honour_paginate_false: bool) -> Iterator[Simulator]:
    config = SimulatorConfig(
        event_rate=0,
        early_events=False,
        advertise_ws_url=True,
        honour_paginate_false=honour_paginate_false,
    )
    with Simulator(config) as simulator:
        for n in range(EXTRA):
            simulator.directory.add_account(
                Account(f"{n:032x}", f"customer-{n}", f"c{n}.example.com", DEMO.account_id)
            )
        yield simulator


@pytest.fixture
def paging_sim() -> Iterator[Simulator]:
    yield from reseller(honour_paginate_false=False)


@pytest.fixture
def unpaged_sim() -> Iterator[Simulator]:
    yield from reseller(honour_paginate_false=True)


def test_every_page_of_descendants_is_subscribed(paging_sim: Simulator) -> None:
    result = tail_until_subscribed(
        paging_sim, *login_args(paging_sim), "-b", "call.*.*", "--descendants", **PASSWORD
    )
    assert result.returncode == 0, result.stderr
    accounts = 1 + len(DEMO.sub_account_ids) + EXTRA
    assert paging_sim.stats.descendants_pages == 2  # 50, then the other 10
    assert paging_sim.stats.subscribes == accounts and paging_sim.stats.connections == 1
    (status,) = [line for line in result.stderr.splitlines() if "subscribed to" in line]
    assert f"subscribed to call.*.* for {accounts} accounts ({DEMO.account_id} and" in status
    assert f"{accounts - 1} more) on {paging_sim.blackhole_url}" in status


def test_paginate_false_takes_one_request_where_honoured(unpaged_sim: Simulator) -> None:
    result = tail_until_subscribed(
        unpaged_sim, *login_args(unpaged_sim), "-b", "call.*.*", "--descendants", **PASSWORD
    )
    assert result.returncode == 0, result.stderr
    assert unpaged_sim.stats.descendants_pages == 1
    assert unpaged_sim.stats.subscribes == 1 + len(DEMO.sub_account_ids) + EXTRA


def test_subscribing_a_big_tree_paces_itself_and_says_how_far_it_got(
    paging_sim: Simulator,
) -> None:
    """61 accounts x 2 bindings: the bucket admits 100 at once, then 10 a second, so the round
    takes about 3 s; it says how far it got meanwhile, and no frame is refused on the way."""
    accounts = 1 + len(DEMO.sub_account_ids) + EXTRA
    result = tail_until_subscribed(
        paging_sim,
        *login_args(paging_sim),
        "-b", "call.*.*", "-b", "object.*.*", "--descendants",
        **PASSWORD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert paging_sim.stats.subscribes == 2 * accounts  # each sent once: none refused
    progress = [
        line for line in result.stderr.splitlines() if "subscribed " in line and "/" in line
    ]
    assert progress, result.stderr
    assert f"/{2 * accounts:,} on {paging_sim.blackhole_url}" in progress[0]


def test_duration_is_honoured_while_the_bucket_paces_the_subscribes(
    paging_sim: Simulator,
) -> None:
    accounts = 1 + len(DEMO.sub_account_ids) + EXTRA
    result = run(
        *login_args(paging_sim),
        "-b", "call.*.*", "-b", "object.*.*", "--descendants", "--duration", "2",
        **PASSWORD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # 122 subscribes need 3 s after the first: the tail ended before it could finish them.
    assert paging_sim.stats.subscribes < 2 * accounts
