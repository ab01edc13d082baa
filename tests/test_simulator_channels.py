"""The simulator's GET /v2/accounts/{id}/channels, asked with the real Crossbar client: its
own live calls, one item a leg, as Kazoo lists them (docs/calls.md §1)."""

from __future__ import annotations

import pytest

from kazoo_tail.net.crossbar import ChannelsRefused, Crossbar
from kazoo_tail.simulator import DEMO, Simulator

GREGORIAN_2020 = 63_745_056_000


def client(sim: Simulator) -> tuple[Crossbar, str]:
    crossbar = Crossbar(sim.crossbar_url)
    login = crossbar.user_auth(DEMO.username, DEMO.password, account_name=DEMO.account_name)
    return crossbar, login.token


def test_the_listing_has_every_leg_of_the_live_calls_bridged_by_other_leg(sim: Simulator) -> None:
    crossbar, token = client(sim)
    assert crossbar.channels(DEMO.account_id, token=token) == []
    talking = sim.start_call(kind="inbound")
    ringing = sim.start_call(kind="internal", answered=False)
    sim.publish_call(hangup_cause="NORMAL_CLEARING")  # over already: not listed
    items = {item["uuid"]: item for item in crossbar.channels(DEMO.account_id, token=token)}
    assert set(items) == {*talking, *ringing}
    a, b = (items[call_id] for call_id in talking)
    assert (a["other_leg"], b["other_leg"]) == (b["uuid"], a["uuid"])
    assert a["answered"] is True and b["answered"] is True
    assert (a["direction"], b["direction"]) == ("inbound", "outbound")
    assert a["authorizing_type"] == "resource" and b["authorizing_type"] == "device"
    assert isinstance(a["timestamp"], int) and a["timestamp"] > GREGORIAN_2020
    assert all("other_leg" not in items[call_id] for call_id in ringing)
    assert all(items[call_id]["answered"] is False for call_id in ringing)
    assert "account_id" not in a  # Crossbar deletes it: the URL says whose it is
    assert sim.stats.channel_listings == 2


def test_legs_hung_up_unheard_leave_the_listing_and_other_accounts_are_not_listed(
    sim: Simulator,
) -> None:
    crossbar, token = client(sim)
    legs = sim.start_call()
    sim.end_calls_unheard(legs)
    assert crossbar.channels(DEMO.account_id, token=token) == []
    with pytest.raises(ChannelsRefused) as refused:
        crossbar.channels(DEMO.other_account_id, token=token)
    assert refused.value.status == 403


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_is_told_with_its_status(sim: Simulator, status: int) -> None:
    crossbar, token = client(sim)
    sim.refuse_channels(status)
    with pytest.raises(ChannelsRefused) as refused:
        crossbar.channels(DEMO.account_id, token=token)
    assert refused.value.status == status
    assert f"HTTP {status}" in refused.value.message
    sim.refuse_channels(None)
    assert crossbar.channels(DEMO.account_id, token=token) == []
