"""Pure logic: tokens, hashes, bindings, URLs, escaping, de-duplication, backoff, config files."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import stat
from pathlib import Path

import pytest

from kazoo_tail.auth.provider import Credentials
from kazoo_tail.auth.store import CachedToken, ConfigStore, Profile
from kazoo_tail.errors import ConfigError, UsageError, redact, register_secret
from kazoo_tail.kazoo.catalog import check_binding
from kazoo_tail.kazoo.events import Deduplicator, Event
from kazoo_tail.kazoo.tokens import token_claims, token_expiry
from kazoo_tail.kazoo.wire import BadFrame, Reply, parse_frame, subscribe_message
from kazoo_tail.net.crossbar import credentials_hash
from kazoo_tail.net.urls import check_url, default_ws_url
from kazoo_tail.output.terminal import sanitize
from kazoo_tail.session.session import Backoff

from .conftest import SAMPLES, sample


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_credentials_hash_matches_the_spec_check_values() -> None:
    # docs/protocol.md §5: john@example.com:m32c6NfqYEt
    assert credentials_hash("John@Example.com", "m32c6NfqYEt") == "82a2dc91686ec828a67152d45a5c5ef7"
    assert (
        credentials_hash("john@example.com", "m32c6NfqYEt", "sha")
        == "055cf886cb9b5c5867083463867c527ace0f8ecc"
    )


def test_token_claims_and_expiry_are_read_without_verification() -> None:
    token = sample("11_user_auth_success.json")["auth_token"]
    assert token_claims(token)["account_id"] == "4b8c6fec4b2597882c0390202d195419"
    assert token_expiry(token) == 1602531000.0
    assert token_claims("not-a-jwt") == {}
    assert token_expiry(f"{b64({})}.{b64({'exp': 'soon'})}.sig") is None
    assert token_claims("a.!!!.c") == {}


def test_redact_removes_jwts_and_registered_secrets() -> None:
    token = sample("11_user_auth_success.json")["auth_token"]
    register_secret("hunter2-password")
    text = redact(f"failed to authenticate token {token} with hunter2-password")
    assert token not in text and "hunter2-password" not in text
    assert "<redacted" in text


@pytest.mark.parametrize(
    ("binding", "suggestion"),
    [
        ("doc_created.*.user.*", "object.doc_created.user"),
        ("CHANNEL_CREATE.*", "call.CHANNEL_CREATE.*"),
        ("call.4b8c6fec4b2597882c0390202d195419.CHANNEL_CREATE.*", "call.CHANNEL_CREATE.*"),
    ],
)
def test_amqp_style_bindings_are_refused_with_the_blackhole_form(
    binding: str, suggestion: str
) -> None:
    with pytest.raises(UsageError, match=f"did you mean '{suggestion}'"):
        check_binding(binding)


@pytest.mark.parametrize(
    ("binding", "suggestion"),
    [
        ("fax.*.*", "fax.status.*"),
        ("call.*", "call.*.*"),
        ("object.doc_created", "object.doc_created.*"),
        ("call.CHANNEL_CREAT.*", "call.CHANNEL_CREATE.*"),
    ],
)
def test_an_impossible_binding_is_told_the_nearest_form_of_its_own_module(
    binding: str, suggestion: str
) -> None:
    with pytest.raises(UsageError, match=f"did you mean '{re.escape(suggestion)}'"):
        check_binding(binding)


@pytest.mark.parametrize("binding", ["", " call.*.*", "call..*", "*.CHANNEL_CREATE.*", "a b"])
def test_impossible_bindings_are_refused(binding: str) -> None:
    with pytest.raises(UsageError):
        check_binding(binding)


@pytest.mark.parametrize(
    "binding", ["call.*.*", "object.doc_created.user", "fax.status.*", "custom_module.x"]
)
def test_plausible_bindings_go_to_the_server(binding: str) -> None:
    check_binding(binding)


@pytest.mark.parametrize(
    ("url", "schemes", "said"),
    [
        ("127.0.0.1:8000", ("http", "https"), "did you mean 'http://127.0.0.1:8000'? (or https://"),
        ("[::1]:8000/v2", ("http", "https"), "did you mean 'http://[::1]:8000/v2'?"),
        ("kazoo.example.com", ("http", "https"), "did you mean 'http://kazoo.example.com'?"),
        ("10.0.0.5:5555", ("ws", "wss"), "did you mean 'ws://10.0.0.5:5555'? (or wss://"),
        ("http//kazoo:8000", ("http", "https"), "is not a valid URL: it must look like"),
        ("kazoo:99999", ("http", "https"), "is not a valid URL: it must look like"),
        ("ftp://kazoo:21", ("http", "https"), "is not a valid URL: it must look like"),
    ],
)
def test_a_url_without_its_scheme_is_told_the_url_it_would_be(
    url: str, schemes: tuple[str, ...], said: str
) -> None:
    with pytest.raises(UsageError) as refused:
        check_url(url, schemes, "the Crossbar URL")
    assert said in refused.value.message


def test_default_ws_url_follows_the_crossbar_scheme() -> None:
    assert default_ws_url("http://kazoo.example.com:8000") == "ws://kazoo.example.com:5555"
    assert default_ws_url("https://kazoo.example.com:8443/v2") == "wss://kazoo.example.com:7777"
    assert default_ws_url("http://[::1]:8000") == "ws://[::1]:5555"


def test_subscribe_message_has_one_binding_token_and_request_id() -> None:
    message = json.loads(subscribe_message("r1", "tok", "acct", "call.*.*"))
    assert message == {
        "action": "subscribe",
        "auth_token": "tok",
        "request_id": "r1",
        "data": {"account_id": "acct", "binding": "call.*.*"},
    }


def test_parse_frame_tells_events_replies_and_garbage_apart() -> None:
    event_bytes = (SAMPLES / "05_event_call_channel_create.json").read_bytes()
    event = parse_frame(event_bytes, 1.0)
    assert isinstance(event, Event) and event.kind == "call" and event.name == "CHANNEL_CREATE"
    reply = parse_frame(json.dumps(sample("04_error_reply_unauthorized_account.json")).encode(), 1)
    assert isinstance(reply, Reply) and not reply.ok
    assert reply.errors == ["unauthorized account id"]
    assert parse_frame(b'{"action":"something-new"}', 1) is None
    for garbage in (b"\xff\xfe", b"not json", b"[1,2]", b'"s"', b"[" * 100000):
        with pytest.raises(BadFrame):
            parse_frame(garbage, 1)


def test_event_kind_comes_from_the_binding_or_the_category() -> None:
    for name, kind in [
        ("08_event_object_doc_created_user.json", "object"),
        ("09_event_fax_status.json", "fax"),
    ]:
        envelope = sample(name)
        assert Event(b"", envelope, 0).kind == kind
        envelope["subscribed_key"] = 42
        assert Event(b"", envelope, 0).kind == kind
    assert Event(b"", {"data": "x"}, 0).kind == "other"


def test_deduplicator_is_bounded_and_keys_on_routing_key_and_msg_id() -> None:
    dedupe = Deduplicator(capacity=3)

    def event(routing_key: str, msg_id: str | None, binding: str = "call.*.*") -> Event:
        data = {"msg_id": msg_id} if msg_id else {}
        return Event(b"", {"routing_key": routing_key, "subscribed_key": binding, "data": data}, 0)

    assert not dedupe.is_duplicate(event("call.a.X.1", "m1"))
    assert dedupe.is_duplicate(event("call.a.X.1", "m1", "call.X.*"))
    assert not dedupe.is_duplicate(event("call.a.X.1", None))
    assert not dedupe.is_duplicate(event("call.a.X.1", None))
    for n in range(10):
        dedupe.is_duplicate(event("k", str(n)))
    assert len(dedupe._seen) == 3
    assert not dedupe.is_duplicate(event("call.a.X.1", "m1"))  # long forgotten


def test_backoff_draws_from_a_tenth_of_a_doubling_ceiling_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(4.0, 0.5 * 2**n) for n in range(10)]
    assert all(c / 10 <= d <= c for d, c in zip(delays, ceilings))
    assert max(delays[5:]) > 1.0
    backoff.reset()
    assert 0.05 <= backoff.next_delay() <= 0.5


def test_sanitize_makes_every_control_character_visible() -> None:
    hostile = "a\x1b]0;pwned\x07b\x9bc\x00d\x7fe\u202ef\n"
    cleaned = sanitize(hostile)
    assert cleaned == "a\\x1b]0;pwned\\x07b\\x9bc\\x00d\\x7fe\\u202ef\\x0a"
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) < 0xA0 for ch in cleaned)
    assert sanitize("Zoë 日本") == "Zoë 日本"


def test_cache_keys_separate_servers_accounts_and_users() -> None:
    a = Credentials(url="http://k:8000", username="Demo", account_name="Demo").cache_key()
    b = Credentials(url="http://k:8000/v2/", username="demo", account_name="demo").cache_key()
    c = Credentials(url="http://k:8000", username="other", account_name="demo").cache_key()
    d = Credentials(url="http://k:8000", api_key="x" * 64).cache_key()
    assert a == b and a != c and d is not None and "x" * 64 not in d
    assert Credentials(url=None, username="demo").cache_key() is None


def test_config_store_writes_private_files_atomically(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "cfg")
    store.save_token("k", CachedToken(token="t", account_id="a"))
    store.save_profile("default", Profile(url="http://k:8000", username="demo"))
    assert stat.S_IMODE(os.stat(tmp_path / "cfg").st_mode) == 0o700
    for name in ("tokens.json", "profiles.json"):
        assert stat.S_IMODE(os.stat(tmp_path / "cfg" / name).st_mode) == 0o600
    assert store.token("k") == CachedToken(token="t", account_id="a")
    assert store.profile("default") == Profile(url="http://k:8000", username="demo")
    assert [p.name for p in (tmp_path / "cfg").iterdir() if p.name.startswith(".")] == []
    assert store.forget_tokens(["k"]) == 1 and store.token("k") is None


def test_config_store_refuses_a_token_cache_others_can_read(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.save_token("k", CachedToken(token="t", account_id="a"))
    os.chmod(store.tokens_path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.token("k")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"k": "just a string"}', "\xff"])
def test_corrupt_config_files_are_one_sentence_naming_the_file(
    tmp_path: Path, content: str
) -> None:
    store = ConfigStore(tmp_path)
    store.tokens_path.write_text(content)
    os.chmod(store.tokens_path, 0o600)
    with pytest.raises(ConfigError) as info:
        store.token("k")
    assert str(store.tokens_path) in str(info.value) and "\n" not in str(info.value)
    assert store.forget_tokens() == 1  # logout can always clear a broken cache
