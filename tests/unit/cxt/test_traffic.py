"""Traffic generation (cxt.traffic) and line routing (cxt.produce), no Kafka needed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import orjson
import pytest

from cxt.produce import LineError, Routed, route_line, route_lines
from cxt.simulate import write_customers, write_sample
from cxt.tokens import DEV_AGENTS
from cxt.traffic import (
    CHANNEL_WEIGHTS,
    FLOOR_AGENTS,
    ROUTE_EVERY,
    ROUTED_TYPES,
    TrafficGenerator,
    is_bottom_two_box,
    make_customers,
    rfc3339,
)
from kernel.settings import CHANNELS, Settings, Topics

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TYPES = {
    "call": {"call.started", "call.ended"},
    "chat": {"chat.started", "chat.ended"},
    "email": {"email.received", "email.sent"},
    "survey": {"survey.response"},
    "social": {"social.post", "social.mention"},
}
PAYLOAD_FIELDS = {
    "call": {"call_id", "direction", "ivr_path", "intent", "queue", "agent_id", "wait_seconds"},
    "chat": {"chat_id", "queue", "agent_id", "intent", "wait_seconds", "messages"},
    "email": {"message_id", "thread_id", "direction", "subject", "body", "intent", "agent_id"},
    "survey": {"survey_id", "contact_channel", "agent_id", "queue", "score", "scale_min",
               "scale_max", "comment", "reason_codes"},
    # `sentiment` only when the monitoring tool sends one: our model scores the others.
    "social": {"network", "post_id", "handle", "text", "url", "public"},
}


@pytest.fixture(scope="module")
def customers() -> list[dict]:
    return make_customers(500, seed=3)


@pytest.fixture(scope="module")
def events(customers: list[dict]) -> list[tuple[str, dict]]:
    return TrafficGenerator(customers, seed=11, now=lambda: NOW).take(20_000)


# --- customers ---------------------------------------------------------------

def test_customers_are_deterministic_and_unique(customers: list[dict]) -> None:
    assert make_customers(500, seed=3) == customers
    assert make_customers(500, seed=4) != customers
    ids = [c["customer_id"] for c in customers]
    phones = [p for c in customers for p in c["identifiers"]["phones"]]
    emails = [e for c in customers for e in c["identifiers"]["emails"]]
    assert ids[0] == "C-000001"
    assert len(set(ids)) == len(set(phones)) == len(set(emails)) == 500
    assert all(E164.match(p) for p in phones)


def test_customer_records_match_the_contract(customers: list[dict]) -> None:
    with_social = [c for c in customers if c["identifiers"].get("social")]
    assert 0.3 < len(with_social) / len(customers) < 0.5
    for account in (c["identifiers"]["social"][0] for c in with_social):
        assert account["network"] in {"x", "facebook", "instagram"}
        assert account["handle"].startswith("@")
    for c in customers:
        assert c["segment"] in {"consumer", "business", "vip"}
        assert c["plan"] in {"basic", "plus", "premium"}
        assert c["name"]


def test_phones_stay_unique_beyond_100k() -> None:
    from cxt.traffic import _phone

    assert len({_phone(i) for i in range(99_990, 100_010)}) == 20


# --- events ------------------------------------------------------------------

def test_same_seed_same_stream(customers: list[dict]) -> None:
    def stream(seed: int) -> list:
        return TrafficGenerator(customers, seed=seed, now=lambda: NOW).take(300)

    assert stream(5) == stream(5)
    assert stream(5) != stream(6)


def test_every_event_has_the_contract_fields(events: list[tuple[str, dict]]) -> None:
    for channel, env in events:
        assert channel in CHANNELS
        assert env["type"] in TYPES[channel]
        assert env["type"].split(".", 1)[0] == channel
        assert 1 <= len(env["event_id"]) <= 128
        assert RFC3339.match(env["occurred_at"]), env["occurred_at"]
        datetime.fromisoformat(env["occurred_at"])  # parses, offset included
        assert ("customer_id" in env) != ("identity" in env)
        assert isinstance(env["payload"], dict)
        assert PAYLOAD_FIELDS[channel] <= set(env["payload"]), (channel, env["payload"])
        orjson.dumps(env)  # serialisable as it is


def test_event_ids_are_unique(events: list[tuple[str, dict]]) -> None:
    assert len({env["event_id"] for _, env in events}) == len(events)


def test_channel_mix_is_roughly_as_configured(events: list[tuple[str, dict]]) -> None:
    for channel, weight in CHANNEL_WEIGHTS.items():
        share = sum(1 for c, _ in events if c == channel) / len(events)
        assert share == pytest.approx(weight, abs=0.02), channel


def test_bottom_two_box_share(customers: list[dict]) -> None:
    for configured in (0.12, 0.5):
        gen = TrafficGenerator(customers, seed=1, bottom2_share=configured, now=lambda: NOW)
        surveys = [env["payload"] for c, env in gen.take(30_000) if c == "survey"]
        share = sum(map(is_bottom_two_box, surveys)) / len(surveys)
        assert share == pytest.approx(configured, abs=0.03)
        assert all(1 <= p["score"] <= 5 and (p["scale_min"], p["scale_max"]) == (1, 5)
                   for p in surveys)


def test_bottom_two_box_comments_are_negative(events: list[tuple[str, dict]]) -> None:
    low = [env["payload"] for c, env in events if c == "survey" and env["payload"]["score"] <= 2]
    assert low and all(p["comment"] and p["reason_codes"] for p in low)
    comments = {p["comment"] for p in low}
    assert "agent was rude" in comments  # a skill issue
    assert any("price" in c or "delivery" in c for c in comments)  # business operations


def test_out_of_order_share_present(events: list[tuple[str, dict]]) -> None:
    late = [env for _, env in events
            if datetime.fromisoformat(env["occurred_at"]) < NOW - timedelta(seconds=60)]
    assert len(late) / len(events) == pytest.approx(0.05, abs=0.01)
    for env in late:
        assert datetime.fromisoformat(env["occurred_at"]) >= NOW - timedelta(minutes=31)


def test_identities(customers: list[dict], events: list[tuple[str, dict]]) -> None:
    known_phones = {p for c in customers for p in c["identifiers"]["phones"]}
    known_ids = {c["customer_id"] for c in customers}
    by_id = [env for _, env in events if "customer_id" in env]
    identified = [env["identity"] for _, env in events if "identity" in env]
    unknown = [i for i in identified if "phone" in i and i["phone"] not in known_phones]
    assert all(env["customer_id"] in known_ids for env in by_id)
    assert len(unknown) / len(events) == pytest.approx(0.03, abs=0.01)
    assert all(E164.match(i["phone"]) for i in identified if "phone" in i)
    # Known customers named by phone, email and social handle all occur.
    assert any("phone" in i and i["phone"] in known_phones for i in identified)
    assert any("email" in i for i in identified)
    assert any("social" in i for i in identified)
    assert (len(identified) - len(unknown)) / len(events) == pytest.approx(0.2 * 0.97, abs=0.02)


def _owner(env: dict, customers_by_phone: dict, customers_by_email: dict,
           customers_by_handle: dict) -> str:
    if "customer_id" in env:
        return env["customer_id"]
    identity = env["identity"]
    if "phone" in identity:
        return customers_by_phone.get(identity["phone"], identity["phone"])
    if "email" in identity:
        return customers_by_email[identity["email"]]
    return customers_by_handle[identity["social"]["handle"]]


def test_surveys_rate_an_earlier_contact_of_the_same_customer(
        customers: list[dict], events: list[tuple[str, dict]]) -> None:
    by_phone = {p: c["customer_id"] for c in customers for p in c["identifiers"]["phones"]}
    by_email = {e: c["customer_id"] for c in customers for e in c["identifiers"]["emails"]}
    by_handle = {s["handle"]: c["customer_id"] for c in customers
                 for s in c["identifiers"].get("social", [])}
    seen: dict[str, tuple[str, dict]] = {}  # channel's own id -> (owner, envelope)
    surveys = linked = 0
    named_by: set[str] = set()
    for channel, env in events:
        owner = _owner(env, by_phone, by_email, by_handle)
        if channel == "survey":
            surveys += 1
            contact_id = env["payload"].get("contact_id")
            if contact_id is not None:
                linked += 1
                # Named as a survey tool names it, never by our event_id.
                contact_owner, contact = seen[contact_id]  # strictly earlier
                assert contact_owner == owner
                assert contact["type"].split(".")[0] == env["payload"]["contact_channel"]
                assert contact["payload"]["agent_id"] == env["payload"]["agent_id"]
                named_by.add(env["payload"]["contact_channel"])
        for field in ("call_id", "chat_id", "message_id"):
            if field in env["payload"]:
                seen[env["payload"][field]] = (owner, env)
    assert linked / surveys > 0.8
    assert named_by == {"call", "chat", "email"}  # call_id, chat_id and message_id


def test_each_demo_agent_is_offered_a_contact_at_a_steady_pace(customers: list[dict]) -> None:
    rate = 20.0  # `cxt up`'s default: events are sent evenly, so event n goes at n / rate
    offered: dict[str, list[float]] = {}
    for n, (_, env) in enumerate(TrafficGenerator(customers, seed=5).take(30_000)):
        if env["type"] in ROUTED_TYPES:
            offered.setdefault(env["payload"]["agent_id"], []).append(n / rate)
    demo = {agent: times for agent, times in offered.items() if agent in DEV_AGENTS}
    assert set(demo) == set(DEV_AGENTS)
    gaps = [later - earlier for times in demo.values()
            for earlier, later in pairwise(times)]
    assert ROUTE_EVERY / rate == 30  # what the README promises
    assert len(gaps) > 40 * len(DEV_AGENTS)
    assert all(27 <= gap <= 33 for gap in gaps), (min(gaps), max(gaps))
    assert demo["A-007"][0] < 3  # the first one comes soon after the start
    # Contacts beyond that pace go to agents without a demo token.
    assert set(offered) - set(DEV_AGENTS) <= set(FLOOR_AGENTS)


def test_rfc3339_formats_utc_with_z() -> None:
    assert rfc3339(datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)) == \
        "2025-01-02T03:04:05.678Z"
    assert rfc3339(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05.000Z"


def test_write_sample_and_customers(tmp_path) -> None:
    events_file, customers_file = tmp_path / "events.jsonl", tmp_path / "customers.jsonl"
    assert write_sample(events_file, 50, seed=2, customers=20, now=NOW) == 50
    assert write_customers(customers_file, customers=20, seed=2) == 20
    lines = events_file.read_text().splitlines()
    assert len(lines) == 50
    ids = {orjson.loads(line)["customer_id"] for line in customers_file.read_text().splitlines()}
    for line in lines:
        env = orjson.loads(line)
        assert env.get("customer_id", "C-000001") in ids


# --- produce: routing ----------------------------------------------------------

TOPICS = Topics(call="t.call", chat="t.chat", email="t.email", survey="t.survey",
                social="t.social", customers="t.customers")


def test_route_by_channel_with_customer_key(events: list[tuple[str, dict]]) -> None:
    for channel, env in events[:200]:
        line = orjson.dumps(env).decode()
        routed = route_line(line + "\n", 7, TOPICS)
        assert isinstance(routed, Routed)
        assert routed.topic == f"t.{channel}" == TOPICS.for_channel(channel)
        assert routed.line_no == 7
        assert routed.value == line.encode()  # sent as written, not re-serialised
        expected_key = env["customer_id"].encode() if "customer_id" in env else None
        assert routed.key == expected_key


def test_default_topics_come_from_settings() -> None:
    routed = route_line('{"type": "survey.response", "customer_id": "C-1"}', 1,
                        Settings().topics)
    assert isinstance(routed, Routed) and routed.topic == "cx.survey.v1"


@pytest.mark.parametrize(("line", "reason"), [
    ("not json", "invalid_json"),
    ('{"type": "call.ended"', "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ('"call.ended"', "not_an_object"),
    ('{"event_id": "e1"}', "missing_type"),
    ('{"type": 42}', "missing_type"),
    ('{"type": ""}', "missing_type"),
    ('{"type": "fax.received"}', "unknown_channel"),
    ('{"type": "customers"}', "unknown_channel"),
])
def test_bad_lines_are_reported(line: str, reason: str) -> None:
    error = route_line(line, 12, TOPICS)
    assert isinstance(error, LineError)
    assert (error.line_no, error.reason) == (12, reason)
    assert str(error).startswith("line 12: ")


def test_route_lines_numbers_lines_and_skips_blanks() -> None:
    lines = ['{"type": "call.started", "customer_id": "C-1"}', "", "   ", "oops",
             '{"type": "chat.ended"}']
    out = list(route_lines(lines, TOPICS))
    assert [type(o).__name__ for o in out] == ["Routed", "LineError", "Routed"]
    assert [o.line_no for o in out] == [1, 4, 5]
    assert out[2].key is None


def test_topic_override_sends_verbatim_keyed_by_customer_id() -> None:
    lines = ['{"customer_id": "C-000001", "name": "Ada"}', '{"name": "no id"}', "not json"]
    out = list(route_lines(lines, TOPICS, topic="t.customers"))
    assert all(isinstance(o, Routed) and o.topic == "t.customers" for o in out)
    assert [o.key for o in out] == [b"C-000001", None, None]
    assert [o.value for o in out] == [line.encode() for line in lines]
    assert [o.parsed for o in out] == [True, True, False]


# --- words and bad experiences ---------------------------------------------------------

@pytest.fixture(scope="module")
def by_customer_id(customers: list[dict]) -> list[tuple[str, dict]]:
    """A long stream in which every event names its customer by id."""
    gen = TrafficGenerator(customers, seed=21, unknown_share=0.0, phone_only_share=0.0,
                           unhappy_share=0.03, now=lambda: NOW)
    return gen.take(60_000)


def test_chats_carry_short_transcripts(events: list[tuple[str, dict]]) -> None:
    chats = [env for c, env in events if c == "chat"]
    ended = [env["payload"]["messages"] for env in chats if env["type"] == "chat.ended"]
    transcripts = [m for m in ended if isinstance(m, list)]
    assert 0.7 < len(transcripts) / len(ended) < 0.95  # the rest still send a count
    assert all(isinstance(m, int) for m in ended if not isinstance(m, list))
    for messages in transcripts:
        assert 2 <= len(messages) <= 6
        assert messages[0]["from"] == "customer"
        assert {m["from"] for m in messages} <= {"customer", "agent"}
        assert all(RFC3339.match(m["at"]) and m["text"] for m in messages)
        assert [m["at"] for m in messages] == sorted(m["at"] for m in messages)
    started = [env["payload"]["messages"] for env in chats if env["type"] == "chat.started"]
    assert all(len(m) == 1 and m[0]["from"] == "customer" for m in started)


def test_emails_have_bodies_and_the_agents_reply_outbound(
        events: list[tuple[str, dict]]) -> None:
    emails = [env["payload"] for c, env in events if c == "email"]
    assert all(p["body"] for p in emails)
    assert {p["direction"] for p in emails} == {"inbound", "outbound"}
    assert all(p["subject"].startswith("Re: ") for p in emails if p["direction"] == "outbound")


def test_a_started_call_or_chat_ends_later_under_the_same_id(
        by_customer_id: list[tuple[str, dict]]) -> None:
    started: dict[str, tuple[int, dict]] = {}
    paired = 0
    for n, (channel, env) in enumerate(by_customer_id):
        if channel not in ("call", "chat"):
            continue
        payload, own_id = env["payload"], env["payload"][f"{channel}_id"]
        if env["type"].endswith(".started"):
            started[own_id] = (n, env)
        elif own_id in started:
            first = started.pop(own_id)[1]
            paired += 1
            assert env["customer_id"] == first["customer_id"]
            for name in ("agent_id", "intent", "queue", "wait_seconds"):
                assert payload[name] == first["payload"][name], name
    assert paired > 5000


def test_negative_lines_read_as_negative_and_the_others_do_not() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from cxt.traffic import NEGATIVE_LINES, NEUTRAL_LINES
    from domain.signal_config import load_signals

    vader, escalation = SentimentIntensityAnalyzer(), load_signals().escalation

    def negative(text: str) -> bool:
        return vader.polarity_scores(text)["compound"] <= -0.3 or bool(escalation.said(text))

    assert len(NEGATIVE_LINES) >= 40 and len(NEUTRAL_LINES) >= 40
    assert len(set(NEGATIVE_LINES) | set(NEUTRAL_LINES)) == \
        len(NEGATIVE_LINES) + len(NEUTRAL_LINES)
    # Not every angry line is caught by words alone, as with real customers.
    assert sum(map(negative, NEGATIVE_LINES)) / len(NEGATIVE_LINES) >= 0.75
    assert not [text for text in NEUTRAL_LINES if negative(text)]


def _customer_words(channel: str, payload: dict) -> list[str]:
    if channel == "chat":
        messages = payload.get("messages")
        return [m["text"] for m in messages if m["from"] == "customer"] \
            if isinstance(messages, list) else []
    if channel == "email":
        return [payload["body"]] if payload["direction"] == "inbound" else []
    return [payload.get("text") or ""]


def test_bad_experiences_happen_and_some_end_in_a_bottom_2_box_survey(
        by_customer_id: list[tuple[str, dict]]) -> None:
    from cxt.traffic import NEGATIVE_LINES

    angry = set(NEGATIVE_LINES)
    bad_contacts: dict[str, str] = {}  # the channel's own id of a contact gone badly -> why
    abandoned_at: dict[str, tuple[int, str]] = {}  # customer -> (event index, intent)
    followed_up = 0
    recent: dict[tuple[str, str], list[int]] = {}  # (customer, intent) -> event indexes
    for n, (channel, env) in enumerate(by_customer_id):
        payload, customer = env["payload"], env["customer_id"]
        words = _customer_words(channel, payload)
        own_id = payload.get({"call": "call_id", "chat": "chat_id", "email": "message_id"}
                             .get(channel, ""))
        if channel == "call" and env["type"] == "call.ended":
            if payload["transfers"] >= 3:
                bad_contacts[own_id] = "transfers"
            if payload["outcome"] == "abandoned":
                abandoned_at[customer] = (n, payload["intent"])
                continue
        if channel == "call" and payload["wait_seconds"] > 600:
            bad_contacts[own_id] = "long wait"
        if own_id and any(line in text for text in words for line in angry):
            bad_contacts[own_id] = "words"
        if channel in ("call", "chat", "email") and customer in abandoned_at \
                and abandoned_at.pop(customer)[1] == payload["intent"]:
            followed_up += 1
        if channel in ("call", "chat", "email") and env["type"] != "email.sent":
            seen = recent.setdefault((customer, payload["intent"]), [])
            seen.append(n)
    assert len([w for w in bad_contacts.values() if w == "transfers"]) > 20
    assert len([w for w in bad_contacts.values() if w == "long wait"]) > 20
    assert len([w for w in bad_contacts.values() if w == "words"]) > 100
    assert followed_up > 10
    angry_posts = [env for c, env in by_customer_id if c == "social"
                   and env["payload"]["text"] in angry]
    assert len(angry_posts) > 20 and all(env["payload"]["public"] for env in angry_posts)
    assert any("sentiment" not in env["payload"] for env in angry_posts)
    # Three contacts about one intent within minutes (at 20 events/s, 8000 events).
    assert sum(1 for times in recent.values()
               if any(b - a < 8000 for a, b in zip(times, times[2:], strict=False))) > 50
    # Surveys about a contact gone badly are bottom-2-box far more often than the rest.
    surveys = [env["payload"] for c, env in by_customer_id if c == "survey"]
    about_bad = [p for p in surveys if p.get("contact_id") in bad_contacts]
    others = [p for p in surveys if p.get("contact_id") not in bad_contacts]
    assert len(about_bad) > 50
    share_bad = sum(map(is_bottom_two_box, about_bad)) / len(about_bad)
    share_others = sum(map(is_bottom_two_box, others)) / len(others)
    assert share_bad > 0.6 and share_others < 0.1, (share_bad, share_others)


# --- agents and routing ------------------------------------------------------------------

def test_agents_are_deterministic_valid_records_with_skills_and_languages() -> None:
    from collections import Counter

    from cxt.traffic import INTENTS, make_agents
    from schemas.registry import validator

    agents = make_agents(7, updated_at=NOW)
    assert make_agents(7, updated_at=NOW) == agents and make_agents(8) != make_agents(7)
    assert [a["agent_id"] for a in agents] == DEV_AGENTS
    check = validator("agent.v1")
    for record in agents:
        check(record)
        assert set(record["skills"]) <= set(INTENTS) and "en" in record["languages"]
        assert max(record["skills"].values()) >= 3
    tiers = Counter(a["tier"] for a in agents)
    assert set(tiers) == {"junior", "standard", "senior"} and tiers["standard"] > tiers["senior"]
    assert 0.75 < sum(a["available"] for a in agents) / len(agents) < 0.95
    assert next(a for a in agents if a["agent_id"] == "A-007")["available"]
    other = Counter(tag for a in agents for tag in a["languages"] if tag != "en")
    assert other["pl"] >= 5 and other["cy"] >= 3
    for intent in INTENTS:  # every intent has experts on the floor
        assert sum(a["skills"].get(intent, 0) >= 4 for a in agents) >= 3, intent


def test_customers_have_a_language_without_changing_anything_else(customers: list[dict]) -> None:
    from collections import Counter

    shares = Counter(c["language"] for c in customers)
    assert shares["en"] / len(customers) == pytest.approx(0.88, abs=0.01)
    assert {"pl", "cy", "fr"} <= set(shares)


def test_offered_contacts_come_before_they_start_under_the_same_id(
        customers: list[dict]) -> None:
    gen = TrafficGenerator(customers, seed=11, offered_share=0.5, phone_only_share=0.0,
                           now=lambda: NOW)
    offered: dict[str, dict] = {}
    started = 0
    for channel, env in gen.take(20_000):
        payload = env["payload"]
        if env["type"].endswith(".offered"):
            assert env["type"] in ("call.offered", "chat.offered")
            assert "agent_id" not in payload and payload["intent"] and payload["queue"]
            assert channel != "call" or payload["ivr_path"]
            offered[payload[f"{channel}_id"]] = env
        elif env["type"].endswith(".started") and payload[f"{channel}_id"] in offered:
            first = offered.pop(payload[f"{channel}_id"])
            assert env["customer_id"] == first["customer_id"]
            assert payload["agent_id"] and payload["intent"] == first["payload"]["intent"]
            started += 1
    assert started > 1000
    # Off by default: the benchmarks' mix is unchanged.
    default = TrafficGenerator(customers, seed=11, now=lambda: NOW).take(5000)
    assert not [env for _, env in default if env["type"].endswith(".offered")]


def test_surveys_depend_on_the_agents_skill_in_the_contacts_intent(
        customers: list[dict]) -> None:
    from cxt.traffic import make_agents

    agents = {a["agent_id"]: a for a in make_agents(1)}
    gen = TrafficGenerator(customers, seed=1, now=lambda: NOW)
    counts = {"low": [0, 0], "high": [0, 0]}
    for channel, env in gen.take(60_000):
        payload = env["payload"]
        agent = agents.get(payload.get("agent_id", ""))
        if channel != "survey" or agent is None or "intent" not in payload:
            continue
        band = "high" if agent["skills"].get(payload["intent"], 0) >= 4 else \
            "low" if agent["skills"].get(payload["intent"], 0) <= 1 else None
        if band:
            counts[band][0] += 1
            counts[band][1] += is_bottom_two_box(payload)
    low, high = (b2 / n for n, b2 in counts.values())
    # The bad experiences' surveys (bottom-2-box whoever the agent) dilute the difference.
    assert counts["high"][0] > 300 and low > 1.3 * high, counts
