"""The simulator's GET /v2/accounts/{id}/channels, asked with the real Crossbar client: its
own live calls, one item a leg, as Kazoo lists them (docs/calls.md §1)."""

from __future__ import annotations

import pytest

from kazoo_tail.net.crossbar import ChannelsRefused, Crossbar
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

GREGORIAN_2020 = 63_745_056_000


def client(sim: Simulator) -> tuple[Crossbar, str]:
    crossbar = Crossbar(sim.crossbar_url)
    login = crossbar.user_auth(DEMO.username, DEMO.password, account_name=DEMO.account_name)
    return crossbar, login.token


def test_the_listing_has_every_leg_of_the_live_calls_joined_by_other_leg(sim: Simulator) -> None:
    crossbar, token = client(sim)
    assert crossbar.channels(DEMO.account_id, token=token) == []
    talking = sim.start_call(kind="inbound")
    ringing = sim.start_call(kind="internal", answered=False)
    sim.publish_call(hangup_cause="NORMAL_CLEARING")  # over already: not listed
    items = {item["uuid"]: item for item in crossbar.channels(DEMO.account_id, token=token)}
    assert set(items) == {*talking, *ringing}
    a, b = (items[call_id] for call_id in talking)
    assert (a["other_leg"], b["other_leg"]) == (b["uuid"], a["uuid"])  # the bridge: both
    assert a["answered"] is True and b["answered"] is True
    assert (a["direction"], b["direction"]) == ("inbound", "outbound")
    assert a["authorizing_type"] == "resource" and b["authorizing_type"] == "device"
    # The B-leg the A-leg's bridge rings knows its A-leg from its creation; the A-leg learns
    # of it only at the bridge (ecallmgr_fs_channel:props_to_record/2, get_other_leg/2).
    ringing_a, ringing_b = (items[call_id] for call_id in ringing)
    assert "other_leg" not in ringing_a and ringing_b["other_leg"] == ringing_a["uuid"]
    assert ringing_a["answered"] is False and ringing_b["answered"] is False
    assert "account_id" not in a  # Crossbar deletes it: the URL says whose it is
    assert sim.stats.channel_listings == 2


def test_a_4_3_item_has_the_fields_and_types_of_4_3s_to_props(sim: Simulator) -> None:
    crossbar, token = client(sim)
    a_id, b_id = sim.start_call(kind="internal")
    items = {item["uuid"]: item for item in crossbar.channels(DEMO.account_id, token=token)}
    a, b = items[a_id], items[b_id]
    for item in (a, b):
        assert isinstance(item["timestamp"], int) and item["timestamp"] > GREGORIAN_2020
        assert isinstance(item["elapsed_s"], int) and 0 <= item["elapsed_s"] < 60
        for flag in ("answered", "is_onhold", "is_loopback", "channel_authorized"):
            assert isinstance(item[flag], bool), flag
        assert item["channel_authorized"] is False and item["is_loopback"] is False
        # An empty CAV proplist, through kz_json:from_list_recursive/1.
        assert item["custom_application_vars"] == ""
        assert "custom_channel_vars" not in item  # master's
        for deleted in ("account_id", "bridge_id", "realm", "node", "switch_url", "fetch_id"):
            assert deleted not in item  # cb_channels:delete_keys/1
    for key in ("caller_id_name", "caller_id_number", "callee_id_name", "callee_id_number"):
        assert a[key] and a[key] == b[key], key  # one caller, one callee, on both legs
    assert a["destination"] == a["callee_id_number"] != a["caller_id_number"]
    assert a["username"] and a["owner_id"] and a["presence_id"].endswith(DEMO.realm)
    assert a["from_tag"] and b["from_tag"]


def test_master_lists_every_ccv_in_kazoos_spelling_and_no_caller_or_callee_ids() -> None:
    config = SimulatorConfig(
        kazoo_version="master", event_rate=0, early_events=False, advertise_ws_url=True, seed=7
    )
    with Simulator(config) as sim:
        crossbar, token = client(sim)
        a_id, b_id = sim.start_call(kind="inbound")
        items = {item["uuid"]: item for item in crossbar.channels(DEMO.account_id, token=token)}
    a, b = items[a_id], items[b_id]
    assert (a["other_leg"], b["other_leg"]) == (b_id, a_id)
    for item in (a, b):
        assert not {"caller_id_name", "caller_id_number", "callee_id_name"} & set(item)
        assert "callee_id_number" not in item
        assert item["custom_application_vars"] == {}
        assert item["custom_channel_vars"]["Account-ID"] == DEMO.account_id
    assert a["custom_channel_vars"]["Resource-Type"] == "offnet-origination"
    assert a["custom_channel_vars"]["Inception"] == b["custom_channel_vars"]["Inception"]
    assert b["custom_channel_vars"]["Authorizing-Type"] == "device"
    assert a["authorizing_type"] == "resource" and b["owner_id"]  # still at the top level


def test_a_sub_accounts_calls_are_listed_under_it_only(sim: Simulator) -> None:
    crossbar, token = client(sim)
    sub = DEMO.sub_account_ids[0]
    legs = sim.start_call(sub, kind="outbound")
    assert crossbar.channels(DEMO.account_id, token=token) == []
    assert {item["uuid"] for item in crossbar.channels(sub, token=token)} == set(legs)


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
