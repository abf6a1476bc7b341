"""The fuzzing of validation, the key layout, a live worker and the HTTP API: strategies,
checks and bounded runs shared by tests/integration/dashboard/test_fuzz.py and its bigger
runs in tests/slow/test_fuzz_slow.py."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.relevance import load_relevance
from schemas.validate import (
    CATEGORY_REQUIRED,
    INVALID_TRANSITION,
    REASONS,
    UNKNOWN_ACTOR,
    UNKNOWN_ALERT,
    Interaction,
    Rejection,
    check_interaction,
    identity_keys,
)
from store.keys import Keys, provisional_id
from tests.conftest import LiveDashboard
from tests.support.helpers import REPO, envelope, produce, read_topic

CHANNELS = ("call", "chat", "email", "survey", "social")
MAX_BYTES = 256 * 1024  # the default CXT_MAX_EVENT_BYTES
# The alert-action reasons are never given to an interaction.
INTERACTION_REASONS = frozenset(REASONS) - {UNKNOWN_ALERT, UNKNOWN_ACTOR, INVALID_TRANSITION,
                                             CATEGORY_REQUIRED}

# Fixed seed, no example database, no deadline: the same examples on every machine.
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


def fuzz(max_examples: int, **changes: object) -> settings:
    return settings(FUZZ, max_examples=max_examples, **changes)  # type: ignore[arg-type]


# -- strategies ---------------------------------------------------------------------------

# Ids that look like key separators, hash tags, wildcards, paths or provisional ids.
INJECTION_IDS = ("a:b", "{x}", "*", "../../etc", "C-1}:tl", "~phone:+44", "}abc", "{", "}",
                 "cxt:{C-1}:tl", "?", "[a-z]*", "a\\b", "%2F..%2F", "/etc/passwd", "C-1\x00",
                 "C-1\n:tl", "\u202e1-C", "\U0001f600", "", " ", "null", "~", "a" * 129)
BAD_TIMESTAMPS = ("", "yesterday", "2026-11-22", "2026-11-22T10:00:00", "2026-13-45T99:00:00Z",
                  "2026-02-30T10:00:00Z", "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
                  "9999-12-31T23:59:59-23:59", "2026-W47-1T10:00:00Z", "2026-11-22T10:00:00+2400",
                  "2026-11-22T25:00:00Z", "2026-11-22T10:00:00.1234567890Z", "1e9",
                  "2026-11-22T10:00:00Z\n", "\uff12026-11-22T10:00:00Z", "2026-11-22T10:00:60Z")


def _dumps(value: object) -> bytes:
    # The standard library writes integers of any size; orjson stops at 64 bits.
    return json.dumps(value, ensure_ascii=False).encode()


_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=25)
nasty_text = (st.sampled_from(INJECTION_IDS) | st.text(max_size=200)
              | st.sampled_from(BAD_TIMESTAMPS)
              | st.integers(129, 70_000).map(lambda n: "x" * n))
replacements = json_values | nasty_text

# Spliced in as raw bytes where a JSON value goes: orjson cannot produce these.
_DEEP = ("[" * 300 + "]" * 300, "{\"a\":" * 70 + "1" + "}" * 70, "[" * 2000 + "]" * 2000,
         "[" * 100_000 + "]" * 100_000)
_INVALID_UTF8 = (b'"a\xffb"', b'"\xc3\x28"', b'"\xed\xa0\x80"', b'"\xf8\x88\x80\x80\x80"',
                 b'"\\ud800"', b'"\x00"', b"NaN", b"Infinity", b"01", b'"a', b"1e99999")
raw_splices = (st.sampled_from(_DEEP).map(str.encode) | st.sampled_from(_INVALID_UTF8))

_FIELDS = ("event_id", "type", "occurred_at", "customer_id", "identity", "payload")
_PAYLOAD_FIELDS = ("score", "scale_min", "scale_max", "agent_id", "queue", "intent", "text",
                   "ivr_path", "survey_id", "reason_codes", "handle", "network")
_SPLICE = b'"__fuzz_splice__"'


@st.composite
def bad_envelopes(draw: st.DrawFn, channel: str) -> bytes:
    """A valid envelope of `channel` with one to three fields broken, as bytes."""
    event = envelope(channel, draw(st.sampled_from(("C-1", *INJECTION_IDS[:8]))),
                     event_id=f"E-{draw(st.integers(0, 10**9))}")
    splice: bytes | None = None
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(("replace", "replace", "payload", "delete", "splice",
                                    "identity", "timestamp", "type")))
        if how == "replace":
            event[draw(st.sampled_from(_FIELDS))] = draw(replacements)
        elif how == "payload":
            if not isinstance(event.get("payload"), dict):
                event["payload"] = {}
            event["payload"][draw(st.sampled_from(_PAYLOAD_FIELDS))] = draw(replacements)
        elif how == "delete":
            event.pop(draw(st.sampled_from(_FIELDS)), None)
        elif how == "splice":
            event[draw(st.sampled_from((*_FIELDS, "extra")))] = "__fuzz_splice__"
            splice = draw(raw_splices)
        elif how == "identity":
            event["identity"] = draw(st.dictionaries(
                st.sampled_from(("phone", "email", "social", "other")),
                replacements | st.fixed_dictionaries(
                    {"network": nasty_text, "handle": nasty_text}), max_size=3))
            if draw(st.booleans()):
                event.pop("customer_id", None)
        elif how == "timestamp":
            event["occurred_at"] = draw(st.sampled_from(BAD_TIMESTAMPS) | st.text(max_size=64))
        else:
            event["type"] = draw(st.sampled_from(
                ("call.started", "chat.ended", "survey.response", "CALL.started", "call",
                 "call.", ".call", "call.started.x", "fax.sent", "call.st4rted"))
                | st.text(max_size=30))
    raw = _dumps(event)
    if splice is not None:
        raw = raw.replace(_SPLICE, splice, 1)
    return raw


def raw_values(channel: str) -> st.SearchStrategy[bytes | None]:
    """Anything that can arrive on the topic of `channel`."""
    return st.one_of(
        st.none(), st.binary(max_size=300),
        json_values.map(_dumps),
        bad_envelopes(channel),
        st.integers(MAX_BYTES + 1, MAX_BYTES + 10).map(lambda n: b"{" + b" " * n + b"}"),
    )


# -- 1. the validate stage, pure --------------------------------------------------------------

KEYS = Keys("tfuzz")
_CUSTOMER_KEYS: tuple[Callable[[str], str], ...] = (
    KEYS.timeline, KEYS.entries, KEYS.profile, KEYS.customer_alerts, KEYS.summary_survey,
    KEYS.summary_bottom_2_box, KEYS.summary_alerts, KEYS.summary_erased, KEYS.rated_waits)
_SUFFIXES = (":sum:survey", ":sum:b2b", ":sum:alerts", ":sum:erased", ":tl", ":ev", ":profile",
             ":alerts", ":alert", ":id", ":n", ":seen", ":rwait", ":early", ":recent",
             ":niopen", ":into", ":merged", ":alias", ":ragents", ":notes", ":prefs", ":sv",
             # The intent index, one key per intent of the shipped file (store.timeline).
             *(f":ix:{i}" for i in load_relevance(REPO / "config" / "agent_context.toml")))
# Contact-reason counters: one day's hash tag, then the hour (store/contact_reasons.py).
_CONTACT_COUNTERS = re.compile(r"\{k:\d{8}\}:\d{2}:(n|seen)")
_TRACE = re.compile(r"Traceback|File \"[^\"]*\.py\", line \d+")


def _owner(item: Interaction) -> str:
    if item.customer_id is not None:
        return item.customer_id
    return provisional_id(identity_keys(item.identity or {})[0])


def assert_checked(result: Interaction | Rejection, channel: str) -> None:
    """A Rejection with a known reason and a message, or an Interaction that is safe to key."""
    if isinstance(result, Rejection):
        assert result.reason in INTERACTION_REASONS, result
        assert isinstance(result.message, str) and result.message.strip(), result
        assert len(result.message) < 1000, result
        # The catch-all in check_interaction means a check itself crashed: a bug.
        assert "could not be checked" not in result.message, result
        return
    assert isinstance(result, Interaction), result
    assert result.channel == channel and result.type.split(".")[0] == channel
    assert isinstance(result.event_id, str) and 1 <= len(result.event_id) <= 128
    assert result.occurred_ms >= 0
    cid = result.customer_id
    if cid is not None:
        assert 1 <= len(cid) <= 128 and not cid.startswith(("~", "}"))
        assert not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in cid), cid
    else:
        assert identity_keys(result.identity or {}), result
    # Accepted values are re-serialised into timeline entries and alerts.
    orjson.dumps(result.payload)
    assert_keys_contained(_owner(result))


def assert_keys_contained(owner: str) -> None:
    for key_of in _CUSTOMER_KEYS:
        key = key_of(owner)
        assert key.startswith(f"{KEYS.prefix}:{{{owner}}}:"), key
    for key in identity_keys({"phone": owner, "email": owner}):
        assert KEYS.identity(key).startswith(f"{KEYS.prefix}:{{{key}}}:")


_owners = st.sampled_from(INJECTION_IDS).filter(bool) | st.text(min_size=1, max_size=40)


# -- 2. a live worker -----------------------------------------------------------------------

GOOD_OWNERS = ("C-fz-1", "C-fz-2", "a:b", "{x}", "*", "../../etc", "C-1}:tl", "%2F..%2F",
               "\U0001f600")
# Rejected records name these (or nobody); none of them may show up in Redis.
BAD_OWNERS = ("C-bad", "bad:{x}", "bad*", "../../bad", "C-bad}:tl", "~phone:+44", "~",
              "}bad")


@dataclass
class Sent:
    key: bytes
    channel: str
    value: bytes | None
    expected: Interaction | Rejection


def _collect(count: int) -> list[Sent]:
    """`count` hypothesis-generated records (derandomized), each with its own key; the
    few the validate stage accepts are moved to the good owners with unique event ids."""
    sent: list[Sent] = []
    tag = uuid.uuid4().hex[:8]

    @fuzz(count, phases=[Phase.generate])
    @given(channel=st.sampled_from(CHANNELS), data=st.data())
    def generate(channel: str, data: st.DataObject) -> None:
        key = f"fz-{tag}-{len(sent)}"
        value = data.draw(raw_values(channel))
        event = _json_object(value)
        if event is not None and isinstance(event.get("customer_id"), str):
            # Name a bad owner, so that a write for a rejected record would show up.
            event["customer_id"] = data.draw(st.sampled_from(BAD_OWNERS))
            value = _dumps(event)
        expected = check_interaction(value, channel, max_bytes=MAX_BYTES)
        if isinstance(expected, Interaction) and event is not None:
            if isinstance(event.get("customer_id"), str):
                event["customer_id"] = data.draw(st.sampled_from(GOOD_OWNERS))
            event["event_id"] = key
            value = _dumps(event)
            expected = check_interaction(value, channel, max_bytes=MAX_BYTES)
        sent.append(Sent(key.encode(), channel, value, expected))

    generate()
    return sent


def _json_object(value: bytes | None) -> dict | None:
    if value is None or len(value) > MAX_BYTES:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _tag_and_suffix(key: str, prefix: str) -> tuple[str, str] | None:
    """(hash-tagged part, suffix) of a key in the layout, or None for a global key."""
    rest = key.removeprefix(f"{prefix}:")
    assert rest != key, key
    if rest in ("alerts:recent", "alerts:due", "agents") or _CONTACT_COUNTERS.fullmatch(rest):
        return None
    suffix = next((s for s in _SUFFIXES if rest.endswith("}" + s)), None)
    assert suffix is not None and rest.startswith("{"), f"key outside the layout: {key!r}"
    return rest[1:-len(suffix) - 1], suffix


def fuzz_live_worker(live: LiveDashboard, count: int) -> None:
    """`count` fuzzed records and a few good ones through the worker of `live`: every
    rejected one is dead-lettered with the validate stage's reason, every accepted one
    is on its owner's timeline, and Redis holds keys of the accepted owners only."""
    settings = live.settings
    records = _collect(count)
    bad = [r for r in records if isinstance(r.expected, Rejection)]
    accepted = [r for r in records if isinstance(r.expected, Interaction)]
    good = [envelope(CHANNELS[i % len(CHANNELS)], owner, event_id=f"good-{i}")
            for i, owner in enumerate(GOOD_OWNERS * 2)]
    by_topic: dict[str, list[tuple[bytes | None, bytes | None]]] = {}
    for record in records:
        by_topic.setdefault(settings.topics.for_channel(record.channel), []).append(
            (record.key, record.value))
    for event in good:
        by_topic.setdefault(settings.topics.for_channel(event["type"].split(".")[0]),
                            []).append((event["customer_id"].encode(), orjson.dumps(event)))

    async def send() -> None:
        for topic, messages in by_topic.items():
            await produce(settings, topic, messages)

    asyncio.run(send())
    keys = {r.key for r in bad}
    letters = asyncio.run(read_topic(
        settings, settings.topics.deadletter, timeout=60,
        until=lambda ms: len({m.key for m in ms} & keys) >= len(keys)))
    mine = {m.key: orjson.loads(m.value) for m in letters if m.key in keys}
    missing = [r for r in bad if r.key not in mine]
    assert not missing, (len(missing), [(r.key, r.expected) for r in missing[:5]],
                         live.worker.log())
    reasons: dict[str, int] = {}
    for record in bad:
        letter = mine[record.key]
        assert isinstance(record.expected, Rejection)
        assert letter["reason"] == record.expected.reason, (record.key, record.expected,
                                                            letter["message"])
        assert letter["reason"] in INTERACTION_REASONS and letter["message"].strip()
        assert letter["topic"] == settings.topics.for_channel(record.channel)
        original = None if letter["original"] is None else base64.b64decode(letter["original"])
        assert (original or None) == (record.value or None), record.key
        reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
    # No accepted record was dead-lettered.
    assert not {m.key for m in letters} & {r.key for r in accepted}
    live.worker.assert_alive()

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    prefix = settings.redis_prefix
    try:
        def stored() -> dict[str, str]:
            where: dict[str, str] = {}
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                found = _tag_and_suffix(key, prefix)
                if found and found[1] == ":tl":
                    where.update(dict.fromkeys(client.zrange(key, 0, -1), found[0]))
            return where

        wanted = {e["event_id"] for e in good} | {r.key.decode() for r in accepted}
        timelines = _wait(lambda: (lambda w: w if wanted <= set(w) else None)(stored()))
        assert isinstance(timelines, dict), (wanted - set(stored()), live.worker.log())
        tags = [_tag_and_suffix(k, prefix)
                for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    finally:
        client.close()
    for event in good:
        assert timelines[event["event_id"]] == event["customer_id"]
    allowed = set(GOOD_OWNERS)
    for record in accepted:
        assert isinstance(record.expected, Interaction)
        owner = timelines[record.key.decode()]
        if record.expected.customer_id is not None:
            assert owner == record.expected.customer_id, (record.key, owner)
        else:
            identities = identity_keys(record.expected.identity or {})
            assert owner in allowed | {provisional_id(k) for k in identities}, (record.key,
                                                                                owner)
            allowed |= {provisional_id(k) for k in identities}
        allowed |= set(identity_keys(record.expected.identity or {}))
    owners = {tag for tag, suffix in filter(None, tags) if suffix not in (":alert", ":n", ":seen")}
    assert owners <= allowed, owners - allowed
    assert not owners & set(BAD_OWNERS)
    live.worker.assert_alive()
    assert "Traceback" not in live.worker.log()
    print(f"fuzzed records: {len(records)}; dead-lettered {len(bad)} of {len(bad)} "
          f"({reasons}); fuzzed accepted {len(accepted)}, good {len(good)} all stored; "
          f"owners in Redis: {len(owners)}")


def _wait(check: Callable[[], object], timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return result


# -- 3. the HTTP API and websockets -----------------------------------------------------------

_ids = (st.sampled_from(INJECTION_IDS).filter(bool) | st.text(min_size=1, max_size=60)
        | st.integers(201, 5000).map(lambda n: "C" * n))
_query_values = (st.sampled_from(("", "0", "-1", "1", "1000", "1001", "99999999999999999999",
                                  "ten", "1.5", "1e3", "open", "open,,", "hour", "day",
                                  "1:x", ":x", "x:", "123:", "2026-11-22T10:00:00Z",
                                  "yesterday", "call", "fax", "\x00", "null", "[]",
                                  "99999999d", "9999999999999m", "\u00b2:x", "\u0663:x"))
                 | st.text(max_size=40) | st.integers(1001, 3000).map(lambda n: "9" * n))


Route = tuple[str, str, list[str], list[str], bool]  # method, path, path/query params, body?


def _openapi_routes() -> list[Route]:
    document = orjson.loads((REPO / "dashboard" / "openapi.json").read_bytes())
    routes = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            routes.append((method.upper(), path,
                           [p["name"] for p in params if p["in"] == "path"],
                           [p["name"] for p in params if p["in"] == "query"],
                           "requestBody" in operation))
    return routes


ROUTES = _openapi_routes()


def assert_clean_reply(reply: httpx.Response, what: object) -> None:
    assert reply.status_code < 500, (what, reply.status_code, reply.text[:500])
    assert not _TRACE.search(reply.text), (what, reply.text[:500])
    if reply.status_code >= 400:
        body = reply.json()
        assert set(body) == {"error", "message"}, (what, body)
        assert isinstance(body["error"], str) and body["error"], (what, body)
        assert isinstance(body["message"], str) and body["message"], (what, body)
    elif reply.headers.get("content-type", "").startswith("application/json"):
        reply.json()


_bodies = st.one_of(
    st.none(), st.binary(max_size=200),
    json_values.map(_dumps),
    st.dictionaries(st.sampled_from(("note", "actor", "outcome", "category", "colour")),
                    replacements, max_size=4).map(_dumps),
    st.sampled_from((b"[" * 2000 + b"]" * 2000, b'{"note": "\xff"}', b"x" * 70_000,
                     b'{"note": "' + b"n" * 70_000 + b'"}')),
)


def fuzz_route(live: LiveDashboard, http: httpx.Client, route: Route, examples: int) -> None:
    """Fuzzed path parameters, query strings and bodies on one route, with a valid token."""
    method, path, path_params, query_params, has_body = route
    # The customer's own routes refuse every other role: fuzz them with a customer token.
    own = path == "/api/me" or path.startswith("/api/me/")
    headers = live.headers("customer" if own else "service")
    names = st.sampled_from([*query_params, "colour", "limit", "", "a" * 300, "\u00e9"])
    statuses: set[int] = set()

    @fuzz(examples)
    @given(ids=st.fixed_dictionaries({p: _ids for p in path_params}),
           query=st.lists(st.tuples(names, _query_values), max_size=4),
           body=_bodies if has_body else st.none())
    def check(ids: dict[str, str], query: list[tuple[str, str]], body: bytes | None) -> None:
        url = path
        for name, value in ids.items():
            url = url.replace(f"{{{name}}}", urllib.parse.quote(value, safe=""))
        target = f"{url}?{urllib.parse.urlencode(query)}" if query else url
        reply = http.request(method, target, content=body, headers=headers)
        statuses.add(reply.status_code)
        assert_clean_reply(reply, (method, target[:200], body and body[:100]))

    check()
    if path_params or query_params or has_body:  # the fuzz did reach the checks
        assert statuses & set(range(400, 500)), statuses
