"""Issue 12, item 7c: a --match or --exclude path that none of the first hundred events had
gets one warning on stderr naming the nearest path they did have, instead of silently matching
nothing forever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kazoo_tail.simulator import DEMO, Simulator

from .conftest import Running, login_args
from .inprocess import run

PASSWORD = {"KAZOO_PASSWORD": DEMO.password}


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning:" in line]


@pytest.fixture
def rushing_sim() -> Iterator[Simulator]:
    """busy_sim five times as fast: 250 call events come in about a second, not five."""
    from kazoo_tail.simulator import SimulatorConfig

    config = SimulatorConfig(event_rate=1000, advertise_ws_url=True, seed=11)
    with Simulator(config) as simulator:
        yield simulator


def test_a_match_on_a_path_no_event_has_is_named_with_the_one_meant(
    rushing_sim: Simulator, started: type[Running]
) -> None:
    process = started(
        *login_args(rushing_sim), "-b", "call.*.*", "--match", "caller_id_number=1001", **PASSWORD
    )
    process.wait_for_stderr("did you mean")
    process.kill()
    assert process.stdout_lines == []
    assert warnings(process.stderr) == [
        "kazoo-tail: warning: --match caller_id_number=1001: none of the first 100 events has "
        '"caller_id_number", so none passed it; did you mean "data.caller_id_number"?'
    ]


def test_each_unseen_exclude_path_is_warned_about_once_and_seen_ones_never(
    rushing_sim: Simulator,
) -> None:
    result = run(
        *login_args(rushing_sim),
        "-b",
        "call.*.*",
        "--exclude",
        "data.caller_id_number=no such number",  # a path events have: no warning
        "--exclude",
        "data.caller_id_numbr=1",  # a typo
        "--exclude",
        "zzzz.qqqq=1",  # nothing near
        "--count",
        "250",  # well past the first hundred, so a second warning would have come
        **PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 250  # the excludes dropped nothing
    assert warnings(result.stderr) == [
        "kazoo-tail: warning: --exclude data.caller_id_numbr=1: none of the first 100 events "
        'has "data.caller_id_numbr", so it dropped none; did you mean "data.caller_id_number"?',
        "kazoo-tail: warning: --exclude zzzz.qqqq=1: none of the first 100 events has "
        '"zzzz.qqqq", so it dropped none',
    ]


def test_a_replay_warns_too_but_not_before_the_hundredth_event(tmp_path: Path) -> None:
    def frame(n: int) -> dict[str, object]:
        return {"action": "event", "name": "CHANNEL_CREATE", "data": {"Caller_ID_Number": str(n)}}

    def write(count: int) -> Path:
        path = tmp_path / f"{count}.jsonl"
        lines = (
            json.dumps({"received_at": 1764291600.0 + n, "text": json.dumps(frame(n))})
            for n in range(count)
        )
        path.write_text("".join(line + "\n" for line in lines))
        return path

    few = run("replay", str(write(99)), "--match", "data.caller_id_number=1")
    assert few.returncode == 0 and few.stdout == "" and few.stderr == ""
    enough = run("replay", str(write(100)), "--match", "data.caller_id_number=1")
    assert enough.returncode == 0 and enough.stdout == ""
    assert warnings(enough.stderr) == [
        "kazoo-tail: warning: --match data.caller_id_number=1: none of the first 100 events has "
        '"data.caller_id_number", so none passed it; did you mean "data.Caller_ID_Number"?'
    ]


def test_the_nearest_path_prefers_case_then_a_missing_prefix_then_a_close_spelling() -> None:
    from kazoo_tail.features.filters import UnseenPathAdvice

    advice = UnseenPathAdvice([("--match", "x=1")], after=2)
    advice.observe(
        {
            "name": "CHANNEL_CREATE",
            "data": {
                "Call_ID": "c",
                "owner_id": "o",
                "custom_channel_vars": {"owner_id": "o", "account_id": "a"},
            },
        }
    )
    assert advice.nearest("data.call_id") == "data.Call_ID"
    assert advice.nearest("owner_id") == "data.owner_id"  # the shortest of the two endings
    assert advice.nearest("account_id") == "data.custom_channel_vars.account_id"
    assert advice.nearest("data.custom_chanel_vars") == "data.custom_channel_vars"
    assert advice.nearest("hangup_cause") is None


def test_a_frame_nested_a_thousand_deep_costs_no_recursion() -> None:
    from kazoo_tail.features.filters import UnseenPathAdvice

    deep: dict[str, object] = {"bottom": 1}
    for _ in range(5000):
        deep = {"a": deep}
    advice = UnseenPathAdvice([("--match", "data.b=1")], after=1)
    (said,) = advice.observe({"data": deep})
    assert said.endswith('did you mean "data.a"?'), said
