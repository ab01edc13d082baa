"""The Python API: the README's example runs against the simulator, and the library needs
neither click nor rich."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import kazoo_tail
from kazoo_tail.simulator import DEMO, Simulator, SimulatorConfig

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README's Python API section has no python example"
    return match.group(1)


@pytest.fixture
def traffic_sim() -> Iterator[Simulator]:
    config = SimulatorConfig(event_rate=50, advertise_ws_url=True, seed=3)
    with Simulator(config) as simulator:
        yield simulator


@pytest.mark.e2e
def test_readme_example_runs_against_the_simulator(traffic_sim: Simulator) -> None:
    code = readme_example()
    assert "http://127.0.0.1:8000" in code
    code = code.replace("http://127.0.0.1:8000", traffic_sim.crossbar_url)
    code += "\nimport sys\nprint('loaded:', sorted({'click', 'rich'} & set(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("notice: subscribed to call.CHANNEL_CREATE.*")
    name, routing_key = lines[1].split(" ")
    assert name in ("CHANNEL_CREATE", "doc_created")
    assert DEMO.account_id.replace("/", "") in routing_key.replace("%2F", "")
    assert lines[-1] == "loaded: []"
    assert traffic_sim.stats.user_auth == 1


def test_public_names_are_exported_and_typed() -> None:
    assert set(kazoo_tail.__all__) <= set(dir(kazoo_tail))
    for name in kazoo_tail.__all__:
        assert getattr(kazoo_tail, name) is not None
    assert (Path(kazoo_tail.__file__).parent / "py.typed").exists()
    with pytest.raises(AttributeError):
        _ = kazoo_tail.no_such_name  # type: ignore[attr-defined]


def test_a_given_token_and_ws_url_need_no_crossbar(sim: Simulator) -> None:
    config = kazoo_tail.ConnectionConfig(
        token=sim.mint_token(), ws_url=sim.blackhole_url, bindings=["object.doc_created.user"]
    )
    with kazoo_tail.open_session(config) as session:
        items = iter(session)
        notice = next(items)
        assert isinstance(notice, kazoo_tail.Notice)
        assert notice.kind is kazoo_tail.NoticeKind.SUBSCRIBED
        sim.publish_object()
        event = next(items)
        assert isinstance(event, kazoo_tail.Event) and event.name == "doc_created"
    assert sim.stats.user_auth == 0


def test_errors_carry_the_cli_exit_codes(sim: Simulator) -> None:
    config = kazoo_tail.ConnectionConfig(
        url=sim.crossbar_url,
        account_name="demo",
        username="demo",
        password="wrong",
        bindings=["call.*.*"],
    )
    with pytest.raises(kazoo_tail.AuthError) as refused:
        kazoo_tail.open_session(config)
    assert refused.value.exit_code == kazoo_tail.ExitCode.AUTH
    with pytest.raises(kazoo_tail.UsageError):
        kazoo_tail.open_session(kazoo_tail.ConnectionConfig(url=sim.crossbar_url))
    config = kazoo_tail.ConnectionConfig(
        token=sim.mint_token(), ws_url=sim.blackhole_url, bindings=["call.NO_SUCH.*"]
    )
    with kazoo_tail.open_session(config) as session, pytest.raises(kazoo_tail.SubscribeError):
        next(iter(session))
