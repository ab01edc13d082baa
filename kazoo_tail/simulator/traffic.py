"""Realistic, seedable Kazoo event generators and the background thread that plays them.

Every generator returns ``Scheduled`` events (wall-clock time + event) so one scenario,
say a whole call, can be spread over a few seconds and overlap with others.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .accounts import Account, Directory
from .bindings import CALL_EVENTS, CONFERENCE_EVENTS, MODB_TYPES, account_db, account_modb
from .bindings import amqp_encode as encode

GREGORIAN_OFFSET = 62167219200
APP_VERSION = "4.3.142"
SWITCH_HOST = "fs1.kazoo.test"
SWITCH_IP = "10.26.0.21"

_FIRST = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")
_LAST = ("Smith", "Jones", "White", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Clark")
_CALLERS = (
    ("+14155550123", "WIRELESS CALLER"),
    ("+12125550147", "John Doe"),
    ("+13125550199", "ACME CORP"),
    ("+16175550110", "Maria Rossi"),
    ("+17205550162", "DENVER CO"),
    ("+15035550188", "Ken Adams"),
)
_UNANSWERED_CAUSES = (
    ("ORIGINATOR_CANCEL", "sip:487"),
    ("NO_ANSWER", "sip:480"),
    ("USER_BUSY", "sip:486"),
    ("CALL_REJECTED", "sip:603"),
)
_USER_AGENTS = ("Yealink SIP-T46S 66.86.0.15", "PolycomVVX-VVX_411-UA/6.3.1", "Zoiper rv2.10")
_SDP = (
    "v=0\r\no=- 7274649247909803147 2 IN IP4 {ip}\r\ns=-\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 8 101\r\nc=IN IP4 {ip}\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
)


@dataclass(frozen=True)
class Event:
    """One message as blackhole would see it on AMQP: routing key, Event-Name, public data."""

    routing_key: str
    name: str | None
    data: dict[str, Any]


@dataclass(frozen=True, order=True)
class Scheduled:
    at: float
    seq: int
    event: Event = field(compare=False)


@dataclass(frozen=True)
class Extension:
    user_id: str
    device_id: str
    name: str
    number: str
    sip_user: str


def gregorian(unix: float) -> int:
    return int(unix) + GREGORIAN_OFFSET


class TrafficFactory:
    """Builds events; deterministic for a given seed (apart from wall-clock stamps)."""

    def __init__(self, directory: Directory, root_account_id: str, seed: int | None = None) -> None:
        self.directory = directory
        self.root_account_id = root_account_id
        self.rng = random.Random(seed)
        self._lock = threading.RLock()
        self._seq = itertools.count()
        self._last_us = 0
        # Traffic covers one account tree: what a token for its root may subscribe to.
        self.accounts = [
            a
            for a in directory.accounts.values()
            if directory.is_in_hierarchy(root_account_id, a.id)
        ]
        self.extensions: dict[str, list[Extension]] = {}
        self.docs: dict[str, list[tuple[str, str, int]]] = {}
        self.conferences: dict[str, list[str]] = {}
        names = [f"{f} {last}" for last in _LAST for f in _FIRST]
        self.rng.shuffle(names)
        for index, account in enumerate(self.accounts):
            exts = []
            for n in range(4):
                exts.append(
                    Extension(
                        self._hex(),
                        self._hex(),
                        names[(index * 4 + n) % len(names)],
                        str(1001 + n + 100 * index),
                        "user_" + self._alnum(8),
                    )
                )
            self.extensions[account.id] = exts
            self.docs[account.id] = []
            self.conferences[account.id] = [self._hex(), self._hex()]

    # -- small helpers -------------------------------------------------------------

    def _hex(self, length: int = 32) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _alnum(self, length: int) -> str:
        return "".join(
            self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length)
        )

    def _uuid(self) -> str:
        h = self._hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def _msg_id_us(self, at: float) -> str:
        # Call events carry a microsecond msg_id; keep it unique even for equal stamps.
        with self._lock:
            value = max(int(at * 1_000_000), self._last_us + 1)
            self._last_us = value
            return str(value)

    def _sched(self, at: float, event: Event) -> Scheduled:
        return Scheduled(at, next(self._seq), event)

    def account(self, account_id: str | None = None) -> Account:
        if account_id is not None:
            return self.directory.accounts[account_id]
        # The parent account is busier than its sub-accounts.
        weights = [3 if a.parent_id is None else 1 for a in self.accounts]
        return self.rng.choices(self.accounts, weights=weights)[0]

    def _extensions(self, account: Account) -> list[Extension]:
        if account.id not in self.extensions:
            self.extensions[account.id] = [
                Extension(self._hex(), self._hex(), "Guest User", "2001", "user_" + self._alnum(8))
            ]
        return self.extensions[account.id]

    # -- calls ---------------------------------------------------------------------

    def _leg(
        self,
        account: Account,
        call_id: str,
        direction: str,
        created: float,
        caller: tuple[str, str],
        callee: tuple[str, str],
        ext: Extension,
        from_device: bool,
        resource: str = "",
        inception: str = "",
    ) -> dict[str, Any]:
        """One leg's fields. Its channel vars are those Kazoo sets (docs/calls.md §2.3): a
        device's endpoint vars (``ext``), or with ``resource`` a carrier leg's:
        ``offnet-origination`` (stepswitch_inbound: inception, resource_type, and, for a
        carrier recognised by IP, resource_id and authorizing_type resource) or
        ``offnet-termination`` (stepswitch_bridge: resource_type, resource_id, no
        authorizing_type). ``inception`` is also what 4.3 copies onto every bridged B-leg."""
        caller_number, caller_name = caller
        callee_number, callee_name = callee
        sip_peer = (
            f"{ext.sip_user}@{account.realm}" if from_device else f"{caller_number}@{SWITCH_IP}"
        )
        ccv: dict[str, Any] = {
            "account_id": account.id,
            "account_name": account.name,
            "account_realm": account.realm,
            "realm": account.realm,
            "ecallmgr_node": "ecallmgr@apps1.kazoo.test",
        }
        if resource == "offnet-origination":
            ccv.update(
                {
                    "inception": inception,
                    "resource_type": resource,
                    "resource_id": self._hex(),
                    "global_resource": "true",
                    "authorizing_type": "resource",
                }
            )
        elif resource == "offnet-termination":
            ccv.update(
                {
                    "resource_type": resource,
                    "resource_id": self._hex(),
                    "global_resource": "true",
                    "e164_destination": callee_number,
                    # stepswitch puts the dialled number on the carrier leg it bridges.
                    "original_number": callee_number,
                }
            )
        else:
            ccv.update(
                {
                    "authorizing_id": ext.device_id,
                    "authorizing_type": "device",
                    "owner_id": ext.user_id,
                    "username": ext.sip_user,
                }
            )
            if inception:
                ccv["inception"] = inception
        return {
            "app_name": "ecallmgr",
            "app_version": APP_VERSION,
            "call_direction": direction,
            "call_id": call_id,
            "caller_id_name": caller_name,
            "caller_id_number": caller_number,
            "callee_id_name": callee_name,
            "callee_id_number": callee_number,
            "channel_created_time": int(created * 1_000_000),
            "channel_is_loopback": False,
            "channel_loopback_bowout": False,
            "channel_loopback_bowout_execute": False,
            "channel_moving": False,
            "channel_name": f"sofia/sipinterface_1/{sip_peer}",
            "custom_application_vars": {},
            "custom_channel_vars": ccv,
            "custom_sip_headers": {"x_auth_ip": "192.168.25.203" if from_device else SWITCH_IP},
            "event_category": "call_event",
            "from": f"{caller_number}@{account.realm}",
            "from_tag": self._alnum(10),
            "from_uri": f"{caller_number}@{account.realm}",
            "media_server": SWITCH_HOST,
            "presence_id": f"{ext.number}@{account.realm}",
            "request": f"{callee_number}@{account.realm}",
            "switch_hostname": SWITCH_HOST,
            "switch_nodename": f"freeswitch@{SWITCH_HOST}",
            "switch_uri": f"sip:{SWITCH_IP}:11000",
            "switch_url": f"sip:mod_sofia@{SWITCH_IP}:11000",
            "to": f"{callee_number}@{account.realm}",
            "to_uri": f"{callee_number}@{account.realm}",
        }

    def _call_event(
        self, account: Account, leg: dict[str, Any], name: str, at: float, **extra: Any
    ) -> Scheduled:
        states = {
            "CHANNEL_CREATE": ("DOWN", "CS_INIT", "DELAYED NEGOTIATION"),
            "CHANNEL_ANSWER": ("ACTIVE", "CS_EXECUTE", "ANSWER"),
            "CHANNEL_BRIDGE": ("ACTIVE", "CS_EXCHANGE_MEDIA", "ANSWER"),
            "CHANNEL_HOLD": ("HELD", "CS_EXCHANGE_MEDIA", "ANSWER"),
            "CHANNEL_UNHOLD": ("ACTIVE", "CS_EXCHANGE_MEDIA", "ANSWER"),
            "CHANNEL_DESTROY": ("HANGUP", "CS_DESTROY", "ANSWER"),
            "PARK_PARKED": ("ACTIVE", "CS_EXECUTE", "ANSWER"),
            "PARK_RETRIEVED": ("ACTIVE", "CS_EXECUTE", "ANSWER"),
            "PARK_ABANDONED": ("HANGUP", "CS_DESTROY", "ANSWER"),
        }
        call_state, channel_state, disposition = states[name]
        data = dict(leg)
        data.update(
            {
                "channel_call_state": call_state,
                "channel_state": channel_state,
                "disposition": disposition,
                "event_name": name,
                "msg_id": self._msg_id_us(at),
                "timestamp": gregorian(at),
            }
        )
        data.update(extra)
        routing_key = f"call.{account.id}.{name}.{encode(str(data['call_id']))}"
        return self._sched(at, Event(routing_key, name, data))

    def call(
        self,
        account_id: str | None = None,
        start: float | None = None,
        answered: bool | None = None,
        hangup_cause: str | None = None,
        talk_seconds: float | None = None,
        call_id: str | None = None,
        kind: str | None = None,
    ) -> list[Scheduled]:
        """One whole two-leg call: create, (answer, bridge), destroy. Timed from ``start``.

        ``kind``, as the account sees the call: ``outbound`` (a device to the PSTN),
        ``inbound`` (the PSTN to a device) or ``internal`` (a device to another); at random
        when not given."""
        with self._lock:
            return self._call(
                account_id, start, answered, hangup_cause, talk_seconds, call_id, kind
            )

    def _call(
        self,
        account_id: str | None,
        start: float | None,
        answered: bool | None,
        hangup_cause: str | None,
        talk_seconds: float | None,
        call_id: str | None,
        kind: str | None = None,
    ) -> list[Scheduled]:
        rng = self.rng
        account = self.account(account_id)
        t0 = time.time() if start is None else start
        extensions = self._extensions(account)
        ext = rng.choice(extensions)
        if kind is None:
            kind = rng.choices(("outbound", "inbound", "internal"), (2, 2, 1))[0]
        if kind not in ("outbound", "inbound", "internal"):
            raise ValueError(f"unknown call kind {kind!r}")
        external = rng.choice(_CALLERS)
        b_id = self._uuid()
        b_created = t0 + rng.uniform(0.05, 0.3)
        if kind == "inbound":
            # A carrier's leg in; routing marks it (inception, resource_type...), and 4.3
            # copies its inception onto the B-leg that rings the device.
            caller = external
            callee = (ext.number, ext.name)
            a_id = call_id or f"{self._hex(24)}@{SWITCH_IP}"
            inception = f"{ext.number}@{SWITCH_IP}"
            a_leg = self._leg(
                account, a_id, "inbound", t0, caller, callee, ext, False,
                "offnet-origination", inception,
            )  # fmt: skip
            b_leg = self._leg(
                account, b_id, "outbound", b_created, caller, callee, ext, True, "", inception
            )
        else:
            a_id = call_id or self._alnum(20)
            caller = (ext.number, ext.name)
            if kind == "outbound":
                callee = (external[0], "")
                target, resource = ext, "offnet-termination"
            else:
                others = [other for other in extensions if other is not ext] or [ext]
                target = rng.choice(others)
                callee, resource = (target.number, target.name), ""
            a_leg = self._leg(account, a_id, "inbound", t0, caller, callee, ext, True)
            b_leg = self._leg(
                account, b_id, "outbound", b_created, caller, callee, target, False, resource
            )
        b_leg["other_leg_call_id"] = a_id
        if answered is None:
            answered = rng.random() < 0.8
        ring = rng.uniform(0.5, 4.0)
        a_create = a_leg
        if kind == "inbound":
            # Kazoo 4.3: a carrier's leg is routed after its CHANNEL_CREATE, which carries
            # only the account id kz_hooks found from the dialled number (docs/calls.md §3.2).
            a_create = dict(a_leg, custom_channel_vars={"account_id": account.id})
        events = [
            self._call_event(account, a_create, "CHANNEL_CREATE", t0),
            self._call_event(account, b_leg, "CHANNEL_CREATE", b_created),
        ]
        answer_at = b_created + ring
        if answered:
            talk = talk_seconds if talk_seconds is not None else rng.uniform(1.0, 25.0)
            a_leg["other_leg_call_id"] = b_id
            events.append(self._call_event(account, b_leg, "CHANNEL_ANSWER", answer_at))
            events.append(self._call_event(account, a_leg, "CHANNEL_ANSWER", answer_at + 0.02))
            # ecallmgr_call_events:generic_call_event_props/1 carries FreeSWITCH's view of the
            # leg bridged to (Other-Leg-*); webhooks' channel_bridge reads the dialled number.
            other_leg = {
                "other_leg_caller_id_name": b_leg["caller_id_name"],
                "other_leg_caller_id_number": b_leg["caller_id_number"],
                "other_leg_destination_number": b_leg["callee_id_number"],
                "other_leg_direction": b_leg["call_direction"],
            }
            events.append(
                self._call_event(
                    account, a_leg, "CHANNEL_BRIDGE", answer_at + 0.05, bridge_id=a_id, **other_leg
                )
            )
            if talk > 4 and rng.random() < 0.15:
                hold_at = answer_at + talk / 3
                events.append(self._call_event(account, a_leg, "CHANNEL_HOLD", hold_at))
                events.append(self._call_event(account, a_leg, "CHANNEL_UNHOLD", hold_at + 1.5))
            end = answer_at + talk
            cause, code = (hangup_cause or "NORMAL_CLEARING"), "sip:200"
        else:
            end = answer_at
            if hangup_cause is None:
                cause, code = rng.choice(_UNANSWERED_CAUSES)
            else:
                cause, code = hangup_cause, "sip:487"
        for leg, at, created in ((b_leg, end, b_created), (a_leg, end + 0.03, t0)):
            billed = int(end - answer_at) if answered else 0
            extra: dict[str, Any] = {
                "billing_seconds": str(billed),
                "duration_seconds": str(int(at - created) + (1 if answered else 0)),
                "ringing_seconds": str(int(ring)),
                "hangup_cause": cause,
                "hangup_code": code,
                "to_tag": self._alnum(13),
                "user_agent": rng.choice(_USER_AGENTS),
            }
            if answered:
                extra["remote_sdp"] = _SDP.format(
                    ip=f"192.168.25.{rng.randint(2, 250)}", port=rng.randrange(16384, 32768, 2)
                )
            else:
                extra["disposition"] = "FAIL"
            events.append(self._call_event(account, leg, "CHANNEL_DESTROY", at, **extra))
        return sorted(events)

    def call_event(
        self, account_id: str, name: str, call_id: str | None = None, at: float | None = None
    ) -> Event:
        """A single call event of any supported type (used for early events)."""
        with self._lock:
            account = self.account(account_id)
            moment = time.time() if at is None else at
            ext = self.rng.choice(self._extensions(account))
            leg = self._leg(
                account,
                call_id or self._alnum(20),
                "inbound",
                moment,
                (ext.number, ext.name),
                self.rng.choice(_CALLERS)[:1] + ("",),
                ext,
                True,
            )
            return self._call_event(account, leg, name, moment).event

    # -- configuration objects -----------------------------------------------------

    def object_change(
        self,
        account_id: str | None = None,
        action: str | None = None,
        doc_type: str | None = None,
        doc_id: str | None = None,
        at: float | None = None,
    ) -> Event:
        """A datamgr doc event; deletes are soft deletes like Kazoo's."""
        with self._lock:
            rng = self.rng
            account = self.account(account_id)
            moment = time.time() if at is None else at
            if doc_type is None:
                doc_type = rng.choices(
                    ("user", "device", "callflow", "vmbox", "media"), weights=(4, 4, 3, 1, 1)
                )[0]
            pool = self.docs[account.id] if account.id in self.docs else []
            existing = [d for d in pool if d[1] == doc_type]
            if action is None:
                action = "doc_created"
                if existing:
                    action = rng.choices(
                        ("doc_created", "doc_edited", "doc_deleted"), weights=(2, 5, 1)
                    )[0]
            rev = 1
            created = gregorian(moment)
            if doc_id is None:
                if action != "doc_created" and existing:
                    doc_id, _, rev = rng.choice(existing)
                    pool.remove((doc_id, doc_type, rev))
                    rev += 1
                    created -= rng.randint(60, 86400 * 30)
                else:
                    doc_id = self._hex()
            if action != "doc_deleted":
                pool.append((doc_id, doc_type, rev))
            db = account_modb(account.id) if doc_type in MODB_TYPES else account_db(account.id)
            data = {
                "account_id": account.id,
                "app_name": "datamgr",
                "app_version": APP_VERSION,
                "database": db,
                # kzs_publish swaps these two, so "created" is the edit time on edits.
                "date_created": gregorian(moment),
                "date_modified": created,
                "event_category": "configuration",
                "event_name": action,
                "id": doc_id,
                "is_soft_deleted": action == "doc_deleted",
                "msg_id": self._hex(),
                "origin_cache": "kazoo_data_cache",
                "rev": f"{rev}-{self._hex()}",
                "type": doc_type,
            }
            return Event(f"{action}.{db}.{doc_type}.{encode(doc_id)}", action, data)

    # -- faxes ---------------------------------------------------------------------

    def fax(
        self,
        account_id: str | None = None,
        pages: int | None = None,
        start: float | None = None,
        job_id: str | None = None,
    ) -> list[Scheduled]:
        """Status updates of one outbound fax job, start to end."""
        with self._lock:
            rng = self.rng
            account = self.account(account_id)
            t = time.time() if start is None else start
            total = pages if pages is not None else rng.randint(1, 5)
            job = job_id or f"{time.gmtime(t).tm_year:04d}{time.gmtime(t).tm_mon:02d}-{self._hex()}"
            faxbox = self._hex()
            remote = rng.choice(_CALLERS)[0]
            steps: list[tuple[str, str, int, float]] = [
                ("start", "Fax job received", 0, 0.0),
                ("prepare", "Preparing fax document", 0, 0.4),
            ]
            for page in range(1, total + 1):
                steps.append(("send", f"Sent Page {page} of {total}", page, 0.8 + page * 1.2))
            steps.append(("end", "Fax Successfully sent", total, 1.5 + total * 1.2))
            out: list[Scheduled] = []
            for state, status, page, offset in steps:
                at = t + offset
                data: dict[str, Any] = {
                    "account_id": account.id,
                    "app_name": "fax",
                    "app_version": APP_VERSION,
                    "direction": "outgoing",
                    "event_category": "fax",
                    "event_name": "status",
                    "fax_state": state,
                    "faxbox_id": faxbox,
                    "job_id": job,
                    "msg_id": self._hex(),
                    "page": page,
                    "status": status,
                }
                if state in ("send", "end"):
                    data["fax_info"] = {
                        "fax_transferred_pages": page,
                        "fax_transfer_rate": 14400,
                        "fax_ecm_used": "on",
                        "fax_remote_station_id": remote,
                        "fax_success": "true",
                    }
                key = f"fax.status.{account.id}.{encode(job)}"
                out.append(self._sched(at, Event(key, "status", data)))
            return out

    # -- conferences ---------------------------------------------------------------

    def conference_event(
        self,
        account_id: str | None = None,
        event: str = "add-member",
        conference_id: str | None = None,
        call_id: str | None = None,
        at: float | None = None,
    ) -> Event:
        with self._lock:
            rng = self.rng
            account = self.account(account_id)
            conf = conference_id or rng.choice(self.conferences.get(account.id) or [self._hex()])
            cid = call_id or self._alnum(20)
            ext = rng.choice(self._extensions(account))
            member = str(rng.randint(1, 60))
            data: dict[str, Any] = {
                "event": event,
                "conference_id": conf,
                "instance_id": self._uuid(),
                "call_id": cid,
                "participant_id": member,
                "account_id": account.id,
                "caller_id_name": ext.name,
                "caller_id_number": ext.number,
                "channel_presence_id": f"{ext.number}@{account.realm}",
                "conference_channel_vars": {
                    "member_id": member,
                    "is_moderator": rng.random() < 0.2,
                    "speak": True,
                    "hear": True,
                },
                "custom_channel_vars": {"account_id": account.id},
                "custom_application_vars": {},
                "app_name": "ecallmgr",
                "app_version": APP_VERSION,
                "event_category": "conference",
                "event_name": "event",
                "msg_id": self._hex(),
            }
            _ = at
            key = f"conference.event.{event}.{account.id}.{conf}.{encode(cid)}"
            return Event(key, "event", data)

    def conference_visit(
        self, account_id: str | None = None, start: float | None = None
    ) -> list[Scheduled]:
        """A participant joining a conference and leaving a little later."""
        with self._lock:
            account = self.account(account_id)
            t = time.time() if start is None else start
            conf = self.rng.choice(self.conferences.get(account.id) or [self._hex()])
            cid = self._alnum(20)
            stay = self.rng.uniform(2.0, 20.0)
            join = self.conference_event(account.id, "add-member", conf, cid)
            leave = self.conference_event(account.id, "del-member", conf, cid)
            return [self._sched(t, join), self._sched(t + stay, leave)]

    # -- mixing --------------------------------------------------------------------

    def random_scenario(self, start: float) -> list[Scheduled]:
        with self._lock:
            kind = self.rng.choices(("call", "object", "fax", "conference"), (5, 3, 1, 1))[0]
            if kind == "call":
                return self.call(start=start)
            if kind == "fax":
                return self.fax(start=start)
            if kind == "conference":
                return self.conference_visit(start=start)
            return [self._sched(start, self.object_change(at=start))]

    def example_for(self, subscription_key: str) -> Event | None:
        """An event this traffic could produce that lands on ``subscription_key``, if any."""
        parts = subscription_key.split(".")
        known = self.directory.accounts
        if parts[0] == "call" and len(parts) == 4:
            account_id, name, call_id = parts[1], parts[2], parts[3]
            if account_id not in known or name not in CALL_EVENTS:
                return None
            return self.call_event(account_id, name, None if call_id == "*" else call_id)
        if parts[:2] == ["fax", "status"] and len(parts) == 4:
            if parts[2] not in known:
                return None
            job = None if parts[3] == "*" else parts[3]
            return self.fax(parts[2], pages=1, job_id=job)[2].event
        if parts[:2] == ["conference", "event"] and len(parts) == 6:
            event, account_id, conf, call_id = parts[2], parts[3], parts[4], parts[5]
            if account_id not in known:
                return None
            name = "add-member" if event == "*" else event
            if name not in CONFERENCE_EVENTS:
                return None
            return self.conference_event(
                account_id, name, conf, None if call_id == "*" else call_id
            )
        if len(parts) == 4 and parts[1].startswith("account%2F"):
            action, db, doc_type = parts[0], parts[1], parts[2]
            flat = db.removeprefix("account%2F").replace("%2F", "")
            account_id, _, month = flat.partition("-")
            if account_id not in known:
                return None
            if doc_type == "*":
                doc_type = "fax" if month else "user"
            return self.object_change(
                account_id, "doc_created" if action == "*" else action, doc_type
            )
        return None


class TrafficThread:
    """Plays random scenarios so that, on average, ``rate`` events per second go out."""

    def __init__(
        self, factory: TrafficFactory, rate: float, sink: Callable[[Event], object]
    ) -> None:
        self.factory = factory
        self.rate = rate
        self.sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kazoo-sim-traffic", daemon=True)

    def start(self) -> None:
        if self.rate > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        pending: list[Scheduled] = []
        next_spawn = time.time()
        rng = random.Random(self.factory.rng.random())
        while not self._stop.is_set():
            now = time.time()
            if next_spawn < now - 5.0:
                # After a long pause, do not burst out everything that "should" have happened.
                next_spawn = now
            while next_spawn <= now:
                scenario = self.factory.random_scenario(next_spawn)
                for item in scenario:
                    heapq.heappush(pending, item)
                next_spawn += rng.expovariate(self.rate / max(1, len(scenario)))
            while pending and pending[0].at <= now:
                self.sink(heapq.heappop(pending).event)
            wake = min(next_spawn, pending[0].at if pending else next_spawn)
            self._stop.wait(min(max(0.0, wake - time.time()), 0.5))
