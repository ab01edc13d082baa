"""What blackhole can be subscribed to: the built-in catalogue of docs/protocol.md §4,
checks of a binding against it, and the concrete forms offered to shell completion.

The checks mirror the server's own validators for the modules Kazoo ships (call, object, fax,
conference); a binding for any other module goes to the server untouched, since an operator
may load modules we do not know.
"""

from __future__ import annotations

from kazoo_tail.errors import UsageError

KNOWN_MODULES = ("call", "object", "fax", "conference", "presence")

CALL_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_DESTROY",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "PARK_PARKED",
    "PARK_RETRIEVED",
    "PARK_ABANDONED",
)
OBJECT_ACTIONS = ("doc_created", "doc_edited", "doc_deleted")
OBJECT_TYPES = (
    "account",
    "callflow",
    "device",
    "faxbox",
    "media",
    "user",
    "vmbox",
    "fax",
    "mailbox_message",
    "call_recording",
)
CONFERENCE_EVENTS = (
    "conference-create",
    "conference-destroy",
    "lock",
    "unlock",
    "add-member",
    "del-member",
    "stop-talking",
    "start-talking",
    "mute-member",
    "unmute-member",
    "deaf-member",
    "undeaf-member",
)


def builtin_catalogue() -> dict[str, list[str]]:
    """The templates GET /v2/websockets lists on a 4.3 cluster, by module."""
    return {
        "call": [f"call.{event}.{{CALL_ID}}" for event in CALL_EVENTS],
        "fax": ["fax.status.{FAX_ID}", "fax.object.{ACTION}"],
        "object": [f"object.{a}.{t}" for a in OBJECT_ACTIONS for t in OBJECT_TYPES],
        "conference": [
            "conference.command.{CONFERENCE_ID}",
            *[f"conference.event.{{CONFERENCE_ID}}.*.{e}" for e in CONFERENCE_EVENTS],
            "conference.event.{CONFERENCE_ID}.*",
        ],
    }


def clean(raw: object) -> dict[str, list[str]]:
    """A server's catalogue, keeping only what looks like a binding: it is shown on the
    terminal and offered by shell completion, so no control character or space may pass."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(module): [t for t in templates if isinstance(t, str) and _printable(t)]
        for module, templates in raw.items()
        if isinstance(templates, list) and _printable(str(module))
    }


def _printable(text: str) -> bool:
    return text.isprintable() and " " not in text and 0 < len(text) < 200


def concrete_forms(catalogue: dict[str, list[str]] | None = None) -> list[str]:
    """Ready-to-use bindings: wildcards for every id, plus the module-wide wildcards."""
    forms: list[str] = ["call.*.*", "object.*.*", "fax.status.*", "fax.object.*"]
    forms += [f"object.{a}.*" for a in OBJECT_ACTIONS]
    forms += [f"object.*.{t}" for t in OBJECT_TYPES]
    for templates in (catalogue or builtin_catalogue()).values():
        for template in templates:
            if not isinstance(template, str) or "{CONFERENCE_ID}" in template:
                continue  # a conference needs a real id; there is no wildcard form
            form = template
            for placeholder in ("{CALL_ID}", "{FAX_ID}", "{ACTION}", "{USER}"):
                form = form.replace(placeholder, "*")
            if form not in forms:
                forms.append(form)
    return forms


def uses_monthly_database(binding: str) -> bool:
    """Whether blackhole ties this binding to the month it was made in (faxes and voicemail
    messages live in per-month databases), so that it must be renewed after the 1st."""
    keys = binding.split(".")
    if keys[0] == "object" and len(keys) == 3:
        return keys[2] in ("*", "fax", "mailbox_message")
    return keys[:2] == ["fax", "object"]


def problem(binding: str) -> str | None:
    """Why blackhole would refuse this binding, or None when it may be valid."""
    module, _, rest = binding.partition(".")
    keys = rest.split(".") if rest else []
    if module == "call":
        if len(keys) != 2:
            return "a call binding is call.<EVENT>.<CALL_ID>"
        if keys[0] != "*" and keys[0] not in CALL_EVENTS:
            return f"event {keys[0]} is not a call event"
    elif module == "object":
        if len(keys) != 2:
            return "an object binding is object.<ACTION>.<TYPE>"
        if keys[0] != "*" and keys[0] not in OBJECT_ACTIONS:
            return f"{keys[0]} is not a document action ({', '.join(OBJECT_ACTIONS)})"
        if keys[1] != "*" and keys[1] not in OBJECT_TYPES:
            return f"{keys[1]} is not a document type blackhole publishes"
    elif module == "fax":
        if len(keys) != 2 or keys[0] not in ("status", "object"):
            return "a fax binding is fax.status.<FAX_ID> or fax.object.<ACTION>"
    elif module == "conference":
        if len(keys) < 2 or keys[0] not in ("command", "event") or keys[1] == "*":
            return "a conference binding needs a conference id: conference.event.<ID>.*"
    return None


def nearest(binding: str, forms: list[str] | None = None) -> str | None:
    """The valid form closest to a mistyped binding."""
    import difflib

    candidates = forms or concrete_forms()
    matches = difflib.get_close_matches(binding, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_binding(binding: str) -> None:
    """Reject bindings that blackhole can never accept, suggesting the form it wants.

    Deliberately liberal: an operator may load modules we do not know, so anything that could
    be valid goes to the server, which has the last word.
    """
    if not binding or binding != binding.strip() or " " in binding:
        raise UsageError(f"binding {binding!r} is not valid: it must be non-empty, without spaces")
    segments = binding.split(".")
    if any(segment == "" for segment in segments):
        raise UsageError(f"binding {binding!r} is not valid: it has an empty segment")
    module = segments[0]
    if module in ("*", "#"):
        raise UsageError(
            f"binding {binding!r} is not valid: the first segment must name a module "
            f"({', '.join(KNOWN_MODULES)}), e.g. 'call.*.*'"
        )
    placeholders = [segment for segment in segments if _is_placeholder(segment)]
    if placeholders:
        raise UsageError(_placeholder_advice(binding, segments, placeholders[0]))
    suggestion = suggest_binding(binding)
    if suggestion is not None:
        raise UsageError(
            f"binding {binding!r} is not a blackhole binding; did you mean {suggestion!r}?"
        )
    reason = problem(binding)
    if reason is not None:
        # The nearest form of the module the user named: 'fax.*.*' is not near 'call.*.*'.
        forms = [form for form in concrete_forms() if form.split(".", 1)[0] == module]
        closest = nearest(binding, forms) if forms else nearest(binding)
        hint = f"; did you mean {closest!r}?" if closest else ""
        raise UsageError(f"binding {binding!r} cannot exist: {reason}{hint}")


def _is_placeholder(segment: str) -> bool:
    """{CALL_ID} as GET /v2/websockets lists it, or <CALL_ID> as the README's table shows it."""
    return any(c in segment for c in "{}<>")


def _placeholder_advice(binding: str, segments: list[str], placeholder: str) -> str:
    """One sentence for a catalogue template pasted as a binding: blackhole would take the
    placeholder literally, subscribe, and deliver nothing, forever."""
    said = (
        f"binding {binding!r} holds the catalogue placeholder {placeholder}, which matches nothing"
    )
    wildcard = ".".join("*" if _is_placeholder(s) else s for s in segments)
    if problem(wildcard) is None:
        return f"{said}; did you mean {wildcard!r} ('*' matches any value)?"
    return f"{said}; put a real id in its place (a conference binding has no wildcard for it)"


def suggest_binding(binding: str) -> str | None:
    """The blackhole form of an AMQP-style routing pattern, as Kazoo's old docs showed them."""
    segments = binding.split(".")
    if segments[0] in OBJECT_ACTIONS and len(segments) >= 3:
        return f"object.{segments[0]}.{segments[2]}"
    if segments[0] in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_DESTROY", "CHANNEL_BRIDGE"):
        return f"call.{segments[0]}.*"
    if segments[0] == "call" and len(segments) == 4:
        return f"call.{segments[2]}.{segments[3]}"
    return None
