"""forward: events from the simulator, as Kazoo's webhooks would send them, to a real local HTTP
endpoint (tests/hook_receiver.py), run in-process through the CLI.

The payloads' fields are checked field by field in test_webhook_payloads.py; here, what the
endpoint receives from a live run: which hooks, in which order, in which form, with which
headers, and what the user is told.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kazoo_tail.kazoo import webhook_rules
from kazoo_tail.simulator import DEMO

from .conftest import login_args, wait_until
from .hook_receiver import Behaviour, HookReceiver, Received, refused_url
from .inprocess import run

if TYPE_CHECKING:
    from kazoo_tail.simulator import Simulator

    from .conftest import Running as Process
    from .inprocess import Running

A_LEG = "forward-a-leg-0001"
HOOKS_OF_A_CALL = ["channel_create", "channel_answer", "channel_bridge", "channel_destroy"]


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    with HookReceiver() as endpoint:
        yield endpoint


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kazoo pauses 2 s between attempts; the rule is the same at a twentieth of that."""
    monkeypatch.setattr(webhook_rules, "RETRY_PAUSE", 0.1)


def forward(started: type[Running], sim: Simulator, *args: str, **env: str) -> Running:
    """forward started in-process, once it has subscribed."""
    running = started(
        "forward", *login_args(sim), *args, "--output", "json", KAZOO_PASSWORD=DEMO.password, **env
    )
    running.wait_for_stderr("subscribed to")
    return running


def a_leg_only(*args: str) -> list[str]:
    return ["--match", f"data.call_id={A_LEG}", "--count", "4", *args]


def publish_device_to_pstn(sim: Simulator) -> list[dict[str, Any]]:
    """A device calling the PSTN; the A-leg's events' data, in order."""
    events = sim.publish_call(kind="outbound", call_id=A_LEG)
    return [event.data for event in events if event.data.get("call_id") == A_LEG]


def payload_of(request: Received) -> dict[str, Any]:
    """The fields sent, whatever the form (a form's values are all strings)."""
    if request.method == "GET":
        return dict(request.query_pairs)
    if request.headers.get("content-type") == "application/json":
        payload: dict[str, Any] = json.loads(request.body)
        return payload
    return dict(request.form)


def pace(n: int, rate: float, started: list[float] = []) -> None:  # noqa: B006
    """Hold event ``n`` back until its time at ``rate`` a second from event 0: a burst faster
    than any client would make a 4.3 node shed whatever the client does."""
    if n == 0:
        started[:] = [time.monotonic()]
    ahead = started[0] + n / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)


def hook_events(received: list[Received]) -> list[str]:
    return [payload_of(request)["hook_event"] for request in received]


# -- a device-to-PSTN call, in each form ------------------------------------------------------


@pytest.mark.smoke
def test_a_device_to_pstn_call_gives_the_four_channel_hooks_in_order_as_json(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(started, sim, "--to", receiver.url, "--format", "json", *a_leg_only())
    sent = publish_device_to_pstn(sim)
    result = running.finish()
    assert result.returncode == 0, result.stderr
    received = receiver.wait_for(4)
    assert hook_events(received) == HOOKS_OF_A_CALL
    for request in received:
        assert request.method == "POST"
        assert request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-hook-id"] == "kazoo-tail"
        assert request.headers["x-account-id"] == DEMO.account_id
    create, _, bridge, destroy = (json.loads(request.body) for request in received)
    first = sent[0]
    assert create["call_id"] == A_LEG
    assert create["account_id"] == DEMO.account_id
    assert create["caller_id_number"] == first["caller_id_number"]
    assert create["call_direction"] == "inbound"  # the switch's view: the A-leg comes in
    assert create["authorizing_type"] == "device"
    assert bridge["other_leg_call_id"] == sent[2].get("other_leg_call_id")
    # Integers in the payload, although blackhole's event carries them as strings.
    last = sent[-1]
    assert destroy["hangup_cause"] == last["hangup_cause"]
    assert destroy["duration_seconds"] == int(last["duration_seconds"])
    assert destroy["billing_seconds"] == int(last["billing_seconds"])
    assert destroy["ringing_seconds"] == int(last["ringing_seconds"])
    lines = result.json_lines()
    assert [line["outcome"] for line in lines] == ["delivered"] * 4
    assert [line["hook_event"] for line in lines] == HOOKS_OF_A_CALL
    assert all(line["status"] == 200 and line["call_id"] == A_LEG for line in lines)
    assert [line["event_id"] for line in lines] == [data["msg_id"] for data in sent]


def test_form_data_sends_the_same_fields_url_encoded(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(started, sim, "--to", receiver.url, "--format", "form-data", *a_leg_only())
    sent = publish_device_to_pstn(sim)
    assert running.finish().returncode == 0
    received = receiver.wait_for(4)
    assert hook_events(received) == HOOKS_OF_A_CALL
    assert {r.headers["content-type"] for r in received} == {"application/x-www-form-urlencoded"}
    destroy = dict(received[-1].form)
    assert destroy["call_id"] == A_LEG
    assert destroy["hangup_cause"] == sent[-1]["hangup_cause"]
    assert destroy["duration_seconds"] == str(int(sent[-1]["duration_seconds"]))


def test_get_puts_the_fields_in_the_query_string(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(started, sim, "--to", receiver.url, "--method", "get", *a_leg_only())
    publish_device_to_pstn(sim)
    assert running.finish().returncode == 0
    received = receiver.wait_for(4)
    assert hook_events(received) == HOOKS_OF_A_CALL
    for request in received:
        assert request.method == "GET"
        assert request.body == b""
        assert "content-type" not in request.headers
        assert dict(request.query_pairs)["call_id"] == A_LEG


def test_custom_data_is_merged_into_every_payload(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(
        started,
        sim,
        "--to",
        receiver.url,
        "--custom-data",
        "env=dev",
        "--custom-data",
        "team=voice",
        *a_leg_only(),
    )
    publish_device_to_pstn(sim)
    assert running.finish().returncode == 0
    for request in receiver.wait_for(4):
        payload = payload_of(request)
        assert payload["env"] == "dev" and payload["team"] == "voice"


def test_object_hooks_for_a_user_created_then_edited(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(started, sim, "--to", receiver.url, "-b", "object.*.user", "--count", "2")
    created = sim.publish_object(action="doc_created", doc_type="user", doc_id="user-1")
    edited = sim.publish_object(action="doc_edited", doc_type="user", doc_id="user-1")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    payloads = [payload_of(request) for request in receiver.wait_for(2)]
    # webhooks_object:format_event: these four and nothing else (no hook_event).
    assert payloads == [
        {
            "id": "user-1",
            "account_id": DEMO.account_id,
            "action": event.data["event_name"],
            "type": "user",
        }
        for event in (created, edited)
    ]
    assert [event.data["event_name"] for event in (created, edited)] == [
        "doc_created",
        "doc_edited",
    ]
    assert [line["id"] for line in result.json_lines()] == ["user-1", "user-1"]


def test_events_with_no_webhook_counterpart_are_skipped_with_one_notice_per_name(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(
        started,
        sim,
        "--to",
        receiver.url,
        "-b",
        "fax.status.*",
        "-b",
        "object.*.user",
        "--count",
        "1",
    )
    sim.publish_fax(pages=3)
    sim.publish_object(doc_id="after-the-faxes")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    assert [payload_of(r)["id"] for r in receiver.wait_for(1)] == ["after-the-faxes"]
    notices = [line for line in result.stderr.splitlines() if "not forwarded" in line]
    assert len(notices) == 1 and "status" in notices[0], result.stderr


def test_format_event_sends_every_event_as_received(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(
        started,
        sim,
        "--to",
        receiver.url,
        "--format",
        "event",
        "-b",
        "fax.status.*",
        "--count",
        "2",
    )
    sim.publish_fax(pages=3)
    assert running.finish().returncode == 0
    bodies = [json.loads(request.body) for request in receiver.wait_for(2)]
    assert all("fax" in json.dumps(body) for body in bodies)


# -- what the user sees -----------------------------------------------------------------------


def test_pretty_lines_and_print_body(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = started(
        "forward",
        *login_args(sim),
        "--to",
        receiver.url,
        "--output",
        "pretty",
        "--print-body",
        *a_leg_only(),
        KAZOO_PASSWORD=DEMO.password,
    )
    running.wait_for_stderr("subscribed to")
    publish_device_to_pstn(sim)
    result = running.finish()
    assert result.returncode == 0, result.stderr
    delivery_lines = [line for line in result.stdout.splitlines() if " 200 " in line]
    assert [line.split()[1] for line in delivery_lines] == HOOKS_OF_A_CALL
    # The form sent, under its line.
    assert "&hook_event=channel_destroy&hangup_cause=" in result.stdout


def test_summary_counts_delivered_failed_and_skipped(
    sim: Simulator, started: type[Running]
) -> None:
    with HookReceiver(Behaviour(statuses=[200, 500])) as receiver:
        running = forward(
            started,
            sim,
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "-b",
            "fax.status.*",
            "--count",
            "3",
            "--summary",
        )
        sim.publish_object(doc_id="one")
        sim.publish_object(doc_id="two")
        sim.publish_fax(pages=1)
        sim.publish_object(doc_id="three")
        result = running.finish()
    assert result.returncode == 0, result.stderr
    assert [line["outcome"] for line in result.json_lines()] == ["delivered", "failed", "delivered"]
    assert "forwarded: 2 delivered, 0 retried, 1 failed, " in result.stderr
    assert "skipped" in result.stderr


# -- delivery rules ---------------------------------------------------------------------------


def test_an_answer_other_than_200_fails_at_once_and_is_recorded(
    sim: Simulator, started: type[Running], tmp_path: Path
) -> None:
    recording = tmp_path / "run.jsonl"
    with HookReceiver(Behaviour(status=503)) as receiver:
        running = forward(
            started,
            sim,
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "--count",
            "1",
            "--record",
            str(recording),
        )
        event = sim.publish_object(doc_id="the-doc")
        result = running.finish()
        assert len(receiver.received) == 1  # not retried: Kazoo retries no answer it got
    (line,) = result.json_lines()
    assert line["outcome"] == "failed" and line["status"] == 503
    assert line["event_id"] == event.data["msg_id"]
    notes = [json.loads(text) for text in recording.read_text().splitlines()]
    undelivered = [note["undelivered"] for note in notes if "undelivered" in note]
    assert undelivered == [
        {
            "outcome": "failed",
            "hook_event": "object",
            "event_id": event.data["msg_id"],
            "id": "the-doc",
            "attempts": 1,
            "status": 503,
            "error": None,
        }
    ]
    # The recording still replays: the note is passed over.
    replayed = run("replay", str(recording), "--output", "json")
    assert replayed.returncode == 0, replayed.stderr
    assert [json.loads(text)["data"]["id"] for text in replayed.stdout.splitlines()] == ["the-doc"]


@pytest.mark.smoke
def test_a_refused_connection_is_tried_as_often_as_kazoo_does_then_reported(
    sim: Simulator, started: type[Running], quick_retries: None
) -> None:
    running = forward(
        started, sim, "--to", refused_url(), "-b", "object.*.*", "--count", "1", "--retries", "3"
    )
    event = sim.publish_object(doc_id="nobody-home")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    lines = result.json_lines()
    assert [line["outcome"] for line in lines] == ["retrying", "retrying", "failed"]
    assert [line["attempt"] for line in lines] == [1, 2, 3]
    assert all(line["error"] == "connection refused" for line in lines)
    assert lines[-1]["event_id"] == event.data["msg_id"]
    assert "Traceback" not in result.stderr


def test_an_endpoint_down_then_up_gets_the_events_that_follow(
    sim: Simulator, started: type[Running], quick_retries: None
) -> None:
    with HookReceiver() as receiver:
        receiver.stop()
        running = forward(
            started, sim, "--to", receiver.url, "-b", "object.*.*", "--count", "3", "--retries", "2"
        )
        lost = sim.publish_object(doc_id="while-down")
        wait_until(lambda: '"outcome":"failed"' in "".join(running.stdout_lines).replace(" ", ""))
        receiver.start()
        sim.publish_object(doc_id="after-1")
        sim.publish_object(doc_id="after-2")
        result = running.finish()
        received = receiver.wait_for(2)
    assert [payload_of(r)["id"] for r in received] == ["after-1", "after-2"]
    outcomes = [(line["outcome"], line["id"]) for line in result.json_lines()]
    assert outcomes == [
        ("retrying", "while-down"),
        ("failed", "while-down"),
        ("delivered", "after-1"),
        ("delivered", "after-2"),
    ]
    assert result.json_lines()[1]["event_id"] == lost.data["msg_id"]


@pytest.mark.smoke
def test_a_redirect_to_another_host_is_not_followed(sim: Simulator, started: type[Running]) -> None:
    with HookReceiver() as elsewhere, HookReceiver() as receiver:
        receiver.behaviour.redirect_to = elsewhere.url.replace("127.0.0.1", "localhost")
        running = forward(started, sim, "--to", receiver.url, "-b", "object.*.*", "--count", "1")
        sim.publish_object(doc_id="redirected")
        result = running.finish()
        assert len(receiver.received) == 1
        assert elsewhere.received == []
    (line,) = result.json_lines()
    assert line["outcome"] == "failed"
    assert "localhost" in line["error"]


def test_no_secret_reaches_the_endpoint(
    sim: Simulator, started: type[Running], receiver: HookReceiver, isolated_env: Path
) -> None:
    """A password login, an API key login and a token: none of them, nor a token cached,
    in any request's path, query string, headers or body."""
    common = ["--url", sim.crossbar_url, "--to", receiver.url, "-b", "object.*.*"]
    common += ["--count", "1", "--output", "json", "--method"]
    token = sim.mint_token()
    runs = [
        (
            ["--account-name", DEMO.account_name, "--username", DEMO.admin_username],
            {"KAZOO_PASSWORD": DEMO.admin_password},
        ),
        ([], {"KAZOO_API_KEY": DEMO.api_key}),
        ([], {"KAZOO_AUTH_TOKEN": token}),
    ]
    for (login, env), method in zip(runs, ("post", "get", "put")):
        running = started("forward", *common, method, *login, **env)
        running.wait_for_stderr("subscribed to")
        sim.publish_object()
        assert running.finish().returncode == 0
    received = receiver.wait_for(3)
    assert [request.method for request in received] == ["POST", "GET", "PUT"]
    cached = cached_tokens(isolated_env)
    assert cached  # the logins' tokens were cached, and are looked for too
    for request in received:
        seen = " ".join(
            [request.path, request.query, request.body.decode(), json.dumps(request.headers)]
        )
        for secret in [DEMO.admin_password, DEMO.api_key, token, *cached]:
            assert secret not in seen


def cached_tokens(config_dir: Path) -> list[str]:
    found: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, name)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, key)
        elif isinstance(value, str) and "token" in key and len(value) > 16:
            found.append(value)

    for path in config_dir.rglob("*"):
        if path.is_file():
            try:
                walk(json.loads(path.read_text()))
            except ValueError:
                continue
    return found


# -- the stream is never held up --------------------------------------------------------------


def test_a_held_endpoint_never_stops_the_socket_being_drained(
    sim: Simulator, started: type[Running]
) -> None:
    """200 events while the endpoint answers nothing: the node sheds nothing, the queue stays
    within its bound, and every event ends as one line: delivered, dropped or not sent."""
    with HookReceiver() as receiver:
        receiver.hold()
        running = forward(
            started,
            sim,
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "--queue-size",
            "64K",
            "--summary",
        )
        ids = [f"doc-{n:03d}" for n in range(200)]
        for n, doc_id in enumerate(ids):
            pace(n, 1000.0)  # the load under test, not a wait
            sim.publish_object(doc_id=doc_id)
        # The queue is full by the last one: it is dropped, and said so at once.
        wait_until(
            lambda: any('"doc-199"' in line for line in running.stdout_lines),
            what=lambda: running.stderr,
        )
        running.kill()  # Ctrl-C while the endpoint still holds the first request
        receiver.release()
        result = running.finish()
    assert sim.stats.frames_shed == 0
    lines = result.json_lines()
    assert sorted(line["id"] for line in lines) == sorted(ids)
    outcomes = {line["outcome"] for line in lines}
    assert outcomes <= {"delivered", "dropped", "unsent", "failed"}
    assert "dropped" in outcomes and "unsent" in outcomes
    # The one request in flight when stopped may have reached the endpoint: not "unsent".
    assert [line["error"] for line in lines if line["outcome"] == "failed"] == [
        "stopped before an answer came"
    ]
    assert "the endpoint is not keeping up" in result.stderr


@pytest.mark.smoke
def test_the_demo_forwards_to_its_own_endpoint(started: type[Running]) -> None:
    running = started("forward", "--demo", "--count", "3", "--output", "json")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    assert [line["outcome"] for line in result.json_lines()] == ["delivered"] * 3
    assert "demo endpoint: http://127.0.0.1:" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "no endpoint given: pass --to URL"),
        (["--to", "localhost:4242"], "has no scheme; did you mean 'http://localhost:4242'?"),
        (["--to", "http://[::1"], "'http://[::1' is not a valid URL"),
        (["--to", "http://h:99999/"], "is not a valid URL"),
        (["--to", "http://h/", "--custom-data", "novalue"], "is not KEY=VALUE"),
        (["--to", "http://h/", "--retries", "5"], "--retries"),
        (["--to", "http://h/", "--concurrency", "65"], "--concurrency must be 1 to 64"),
        (["--to", "http://h/", "--queue-size", "1K"], "--queue-size must be at least 64K"),
        (["--to", "http://h/", "--format", "event", "--custom-data", "a=b"], "--format event"),
        (["--to", "http://h/", "--hook-id", "a\r\nX-Evil: 1"], "--hook-id is a header's value"),
        (["--to", "ftp://alice:s3cret@h/"], "'ftp://h/' is not a valid URL"),
        (["--to", "h:1/in?token=s3cret"], "'h:1/in?token=…' has no scheme"),
    ],
)
def test_usage_errors_come_before_any_connection(args: list[str], said: str) -> None:
    result = run("forward", "--url", "http://127.0.0.1:9/", *args)
    assert result.returncode == 2
    assert said in result.stderr
    assert "s3cret" not in result.stderr


# -- gaps, several nodes, exit codes ----------------------------------------------------------


def test_a_gap_is_announced_and_forwarding_goes_on(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    running = forward(started, sim, "--to", receiver.url, "-b", "object.*.*", "--count", "2")
    sim.publish_object(doc_id="before")
    receiver.wait_for(1)
    subscribes = sim.stats.subscribes
    sim.drop_connections()
    wait_until(lambda: sim.stats.subscribes > subscribes, what=lambda: running.stderr)
    sim.publish_object(doc_id="after")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    assert "may have been missed" in result.stderr
    assert [payload_of(r)["id"] for r in receiver.wait_for(2)] == ["before", "after"]


def test_several_nodes_deliver_each_event_once(
    started: type[Running], receiver: HookReceiver
) -> None:
    from kazoo_tail.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(nodes=2, event_rate=0, early_events=False, seed=7)
    with Simulator(config) as cluster:
        links = [arg for url in cluster.blackhole_urls for arg in ("--ws-url", url)]
        running = forward(started, cluster, "--to", receiver.url, *links, *a_leg_only())
        wait_until(lambda: running.stderr.count("subscribed to") >= 2, what=running.stderr)
        publish_device_to_pstn(cluster)
        result = running.finish()
    assert result.returncode == 0, result.stderr
    assert hook_events(receiver.wait_for(4)) == HOOKS_OF_A_CALL
    assert len(receiver.received) == 4  # each node sent each event: one request each


def test_a_wrong_password_is_the_tails_exit_code(sim: Simulator, receiver: HookReceiver) -> None:
    result = run("forward", *login_args(sim), "--to", receiver.url, KAZOO_PASSWORD="wrong")
    assert result.returncode == 3, result.stderr
    assert receiver.received == []


def test_with_concurrency_a_slow_call_does_not_hold_up_the_others(
    sim: Simulator, started: type[Running]
) -> None:
    with HookReceiver() as receiver:
        receiver.hold()
        running = forward(
            started,
            sim,
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "--count",
            "3",
            "--concurrency",
            "3",
        )
        for doc_id in ("one", "two", "three"):
            sim.publish_object(doc_id=doc_id)
        receiver.wait_for(3)  # three in flight at once, none answered yet
        receiver.release()
        result = running.finish()
    assert sorted(line["id"] for line in result.json_lines()) == ["one", "three", "two"]


def test_loopback_legs_are_sent_as_kazoos_default_and_left_out_when_asked(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    def publish_legs() -> None:
        for call_id, loopback in (("loop-1", True), ("real-1", False)):
            sim.publish(
                f"call.{DEMO.account_id}.CHANNEL_CREATE.{call_id}",
                "CHANNEL_CREATE",
                {
                    "call_id": call_id,
                    "msg_id": call_id,
                    "channel_is_loopback": loopback,
                    "channel_name": f"{'loopback' if loopback else 'sofia'}/{call_id}",
                    "custom_channel_vars": {"account_id": DEMO.account_id},
                },
            )

    every = forward(
        started, sim, "--to", receiver.url, "-b", "call.CHANNEL_CREATE.*", "--count", "2"
    )
    publish_legs()
    assert every.finish().returncode == 0
    left_out = forward(
        started,
        sim,
        "--to",
        receiver.url,
        "-b",
        "call.CHANNEL_CREATE.*",
        "--count",
        "1",
        "--exclude-internal-legs",
    )
    publish_legs()
    result = left_out.finish()
    assert result.returncode == 0, result.stderr
    sent = [payload_of(request)["call_id"] for request in receiver.wait_for(3)]
    assert sent == ["loop-1", "real-1", "real-1"]
    assert "CHANNEL_CREATE: a loopback leg, left out by --exclude-internal-legs" in result.stderr


def test_the_endpoint_s_credentials_and_query_values_are_never_shown(
    sim: Simulator, started: type[Running], receiver: HookReceiver
) -> None:
    secret_url = receiver.url.replace("//", "//alice:s3cret@") + "?token=t0psecret"
    running = forward(started, sim, "--to", secret_url, "-b", "object.*.*", "--count", "1")
    sim.publish_object(doc_id="with-credentials")
    result = running.finish()
    assert result.returncode == 0, result.stderr
    (request,) = receiver.wait_for(1)
    assert request.query.startswith("token=t0psecret")  # the endpoint gets what it was given
    assert "authorization" in request.headers  # user:password, as httpc sends it
    for shown in (result.stdout, result.stderr):
        assert "s3cret" not in shown and "t0psecret" not in shown
    assert "forwarding to http://127.0.0.1:" in result.stderr and "?token=…" in result.stderr


@pytest.mark.e2e
def test_a_reader_that_leaves_still_gets_what_was_queued_counted(
    sim: Simulator, background: type[Process], tmp_path: Path
) -> None:
    """| head: once stdout's reader is gone the lines stop, but the events still queued are
    counted as not sent and noted in the recording, not lost in silence (a real pipe)."""
    recording = tmp_path / "left.jsonl"
    read_end, write_end = os.pipe()
    with HookReceiver() as receiver:
        receiver.hold()
        process = background(
            "forward",
            *login_args(sim),
            "--to",
            receiver.url,
            "-b",
            "object.*.*",
            "--summary",
            "--record",
            str(recording),
            stdout=write_end,
            KAZOO_PASSWORD=DEMO.password,
        )
        os.close(write_end)
        process.wait_for_stderr("subscribed to")
        for doc_id in ("a", "b", "c"):
            sim.publish_object(doc_id=doc_id)
        receiver.wait_for(1)  # "a" is in flight, "b" and "c" queued behind it
        wait_until(lambda: len(recording.read_text().splitlines()) >= 3)
        os.close(read_end)  # the reader went away
        assert process.process.wait(timeout=20) == 0
        receiver.release()
    stderr = "".join(process.stderr_lines)
    notes = [json.loads(line) for line in recording.read_text().splitlines()]
    undelivered = {n["undelivered"]["id"]: n["undelivered"] for n in notes if "undelivered" in n}
    assert sorted(undelivered) == ["a", "b", "c"]
    assert undelivered["a"]["error"] == "stopped before an answer came"
    assert "1 failed" in stderr and "2 not sent" in stderr


@pytest.mark.parametrize("output", ["json", "pretty"])
def test_ids_from_the_server_never_drive_the_terminal(
    sim: Simulator, started: type[Running], receiver: HookReceiver, output: str
) -> None:
    evil = "evil\x1b[2J\u202e-id"
    running = started(
        "forward",
        *login_args(sim),
        "--to",
        receiver.url,
        "-b",
        "call.CHANNEL_CREATE.*",
        "--count",
        "1",
        "--output",
        output,
        "--print-body",
        KAZOO_PASSWORD=DEMO.password,
    )
    running.wait_for_stderr("subscribed to")
    sim.publish(
        f"call.{DEMO.account_id}.CHANNEL_CREATE.x",
        "CHANNEL_CREATE",
        {"call_id": evil, "msg_id": evil, "custom_channel_vars": {"account_id": DEMO.account_id}},
    )
    result = running.finish()
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert result.stdout.isascii() if output == "json" else "evil\\x1b[2J" in result.stdout
    if output == "json":
        assert json.loads(result.stdout.splitlines()[0])["call_id"] == evil
