"""Seeded, pure generators of contact-centre traffic (no I/O).

Used by the simulator (`cxt simulate`), the pipeline benchmark and the tests.
Everything is drawn from a `random.Random(seed)`, so the same seed (and the
same `now`) gives the same customers and the same event stream; this is what
lets a benchmark run be repeated and a test assert exact values.

The shapes follow PRODUCT.md: customer records for `cx.customers.v1` and
interaction envelopes for the five inbound channels.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cxt.tokens import DEV_AGENTS
from domain.surveys import survey_is_bottom_2_box
from kernel.settings import CHANNELS
from kernel.times import iso_datetime as rfc3339  # UTC, ms, 'Z'; naive taken as UTC

Envelope = dict[str, Any]

# Share of traffic per channel; calls dominate in most contact centres.
CHANNEL_WEIGHTS: dict[str, float] = {
    "call": 0.35, "chat": 0.25, "email": 0.20, "survey": 0.08, "social": 0.12,
}
assert set(CHANNEL_WEIGHTS) == set(CHANNELS)

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret",
    "Dennis", "Radia", "Tim", "Sophie", "Karen", "John", "Hedy", "Linus", "Anita",
    "Guido", "Shafi", "Niklaus", "Mary", "Leslie", "Joan", "Claude", "Katherine",
)
LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
    "Hamilton", "Ritchie", "Perlman", "Berners-Lee", "Wilson", "Sparck-Jones", "Backus",
    "Lamarr", "Torvalds", "Borg", "van Rossum", "Goldwasser", "Wirth", "Keller",
    "Lamport", "Clarke", "Shannon", "Johnson",
)
SEGMENTS = (("consumer", 0.75), ("business", 0.20), ("vip", 0.05))
PLANS = (("basic", 0.5), ("plus", 0.35), ("premium", 0.15))
NETWORKS = ("x", "facebook", "instagram")
REGIONS = ("london", "north-west", "scotland", "wales", "midlands", "south-east")

# intent -> (IVR menu path, queue); the queue is where the IVR choice lands.
INTENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "billing": (("main", "billing", "disputes"), "billing-uk"),
    "technical": (("main", "technical", "broadband"), "tech-uk"),
    "cancellation": (("main", "account", "cancel"), "retention-uk"),
    "sales": (("main", "sales", "upgrade"), "sales-uk"),
    "delivery": (("main", "orders", "delivery"), "orders-uk"),
    "account": (("main", "account", "details"), "accounts-uk"),
}
INTENT_WEIGHTS = (0.28, 0.24, 0.10, 0.12, 0.14, 0.12)
OUTCOMES = (("resolved", 0.62), ("unresolved", 0.13), ("transferred", 0.15),
            ("callback_scheduled", 0.10))
EMAIL_SUBJECTS: dict[str, tuple[str, ...]] = {
    "billing": ("Question about my bill", "Charged twice this month", "Refund request"),
    "technical": ("Internet keeps dropping", "Router not working", "Slow speeds"),
    "cancellation": ("Please cancel my contract", "Notice of cancellation"),
    "sales": ("Upgrade options", "Quote for a second line"),
    "delivery": ("Where is my order?", "Parcel not arrived"),
    "account": ("Change of address", "Update my email address"),
}

# (comment, reason codes); bottom-2-box comments are split into the two causes
# the advisory group classifies: agent skill vs business operations.
Comments = tuple[tuple[str, list[str]], ...]
SKILL_COMMENTS: Comments = (
    ("agent was rude", ["agent_attitude"]),
    ("had to repeat myself three times", ["repeat_information"]),
    ("agent didn't know the answer", ["agent_knowledge"]),
    ("was transferred again and again", ["too_many_transfers"]),
    ("promised a call back that never came", ["broken_promise"]),
)
BUSINESS_COMMENTS: Comments = (
    ("price went up again without warning", ["price_increase"]),
    ("delivery late for the second time", ["delivery_delay"]),
    ("billing error still not fixed", ["billing_error"]),
    ("cancellation fee is unfair", ["policy_fee"]),
    ("waited 40 minutes in the queue", ["long_wait"]),
)
NEUTRAL_COMMENTS: Comments = (
    ("ok in the end but slow", ["slow_resolution"]), ("fine", []), ("", []),
)
POSITIVE_COMMENTS: Comments = (
    ("quick and helpful, thanks", []), ("agent sorted it first time", []),
    ("great service", []), ("", []),
)
SOCIAL_TEXTS = (
    ("Still no internet, third day running. Useless.", -0.8),
    ("Why did my bill go up again?", -0.5),
    ("Anyone else waiting ages for a delivery?", -0.4),
    ("Thanks for sorting my router so quickly!", 0.7),
    ("New plan is decent value tbh", 0.4),
    ("Is there an outage in my area?", -0.1),
)


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _phone(index: int) -> str:
    """A unique UK mobile (Ofcom's +447700 9xxxxx drama range) per customer index.

    Past 100,000 customers the 9 steps down to 8, 7, ..., so numbers stay unique
    and never collide with `_unknown_phone`, which uses another country code.
    """
    block, number = divmod(index, 100_000)
    return f"+447700{9 - block}{number:05d}"


def _unknown_phone(rng: random.Random) -> str:
    # Irish mobiles: never in the customer list (all of which are +44).
    return f"+35385{rng.randrange(10**7):07d}"


def make_customer(index: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    slug = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
    identifiers: dict[str, Any] = {
        "phones": [_phone(index)],
        "emails": [f"{slug}.{index}@example.org"],
    }
    if rng.random() < 0.4:
        handle = f"@{slug.replace('.', '_')}{index}"
        identifiers["social"] = [{"network": rng.choice(NETWORKS), "handle": handle}]
    since = datetime(2012, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(4500))
    return {
        "customer_id": f"C-{index:06d}",
        "name": f"{first} {last}",
        "identifiers": identifiers,
        "segment": _weighted(rng, SEGMENTS),
        "plan": _weighted(rng, PLANS),
        "region": rng.choice(REGIONS),
        "customer_since": since.date().isoformat(),
        "lifetime_value_gbp": round(rng.lognormvariate(6.5, 0.8), 2),
        "marketing_consent": rng.random() < 0.6,
        # Share of the plan's allowance used last month; derived from the index, not
        # drawn, so adding it left every other generated value as it was.
        "plan_usage_pct": (index * 37) % 101,
    }


def make_customers(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` customer records, ids C-000001.. with unique phone and email each."""
    rng = random.Random(f"customers:{seed}")
    return [make_customer(i, rng) for i in range(1, n + 1)]


# The one bottom-2-box rule, by the name cxt.simulate and the tests use.
is_bottom_two_box = survey_is_bottom_2_box


def channel_of(envelope: dict[str, Any]) -> str:
    return str(envelope["type"]).split(".", 1)[0]


# --- channel payloads -------------------------------------------------------
# Each returns (event type, payload); the generator adds envelope fields.

def _agent(rng: random.Random) -> str:
    return rng.choice(DEV_AGENTS)


def _intent(rng: random.Random) -> str:
    return rng.choices(list(INTENTS), weights=INTENT_WEIGHTS)[0]


def _short_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(48):012x}"


def call_payload(rng: random.Random) -> tuple[str, dict[str, Any]]:
    intent = _intent(rng)
    path, queue = INTENTS[intent]
    payload: dict[str, Any] = {
        "call_id": _short_id(rng, "call"),
        "direction": "inbound" if rng.random() < 0.85 else "outbound",
        "ivr_path": list(path),
        "intent": intent,
        "queue": queue,
        "agent_id": _agent(rng),
        "wait_seconds": int(rng.expovariate(1 / 90)),
    }
    if rng.random() < 0.3:
        return "call.started", payload
    payload |= {
        "handle_seconds": int(rng.lognormvariate(5.6, 0.5)),
        "transfers": rng.choices((0, 1, 2, 3), weights=(70, 20, 7, 3))[0],
        "outcome": _weighted(rng, OUTCOMES),
    }
    return "call.ended", payload


def chat_payload(rng: random.Random) -> tuple[str, dict[str, Any]]:
    intent = _intent(rng)
    queue = INTENTS[intent][1].replace("-uk", "-chat")
    payload: dict[str, Any] = {
        "chat_id": _short_id(rng, "chat"),
        "queue": queue,
        "agent_id": _agent(rng),
        "intent": intent,
        "wait_seconds": int(rng.expovariate(1 / 40)),
    }
    if rng.random() < 0.3:
        return "chat.started", payload | {"messages": 1}
    payload |= {
        "handle_seconds": int(rng.lognormvariate(6.0, 0.5)),
        "messages": rng.randint(3, 40),
        "outcome": _weighted(rng, OUTCOMES),
    }
    return "chat.ended", payload


def email_payload(rng: random.Random) -> tuple[str, dict[str, Any]]:
    intent = _intent(rng)
    inbound = rng.random() < 0.6
    subject = rng.choice(EMAIL_SUBJECTS[intent])
    payload = {
        "message_id": f"<{rng.getrandbits(64):016x}@mail.example.com>",
        "thread_id": _short_id(rng, "thr"),
        "direction": "inbound" if inbound else "outbound",
        "subject": subject if inbound else f"Re: {subject}",
        "intent": intent,
        # Inbound mail is routed to an agent too, so agent_id is always set.
        "agent_id": _agent(rng),
    }
    return ("email.received" if inbound else "email.sent"), payload


def social_payload(rng: random.Random, account: dict[str, str] | None) -> tuple[str, dict]:
    """`account` is the customer's {network, handle}, or None for a random one."""
    network = account["network"] if account else rng.choice(NETWORKS)
    handle = account["handle"] if account else f"@user{rng.getrandbits(24)}"
    text, sentiment = rng.choice(SOCIAL_TEXTS)
    post_id = str(rng.getrandbits(60))
    payload = {
        "network": network,
        "post_id": post_id,
        "handle": handle,
        "text": text,
        "url": f"https://{network}.example.com/{handle.lstrip('@')}/posts/{post_id}",
        "public": rng.random() < 0.85,
        "sentiment": round(max(-1.0, min(1.0, sentiment + rng.uniform(-0.2, 0.2))), 2),
    }
    return rng.choice(("social.post", "social.mention")), payload


def survey_score(rng: random.Random, bottom2_share: float) -> int:
    if rng.random() < bottom2_share:
        return rng.choices((1, 2), weights=(45, 55))[0]
    return rng.choices((3, 4, 5), weights=(20, 35, 45))[0]


def survey_comment(rng: random.Random, score: int) -> tuple[str, list[str]]:
    if score <= 2:
        pool = SKILL_COMMENTS if rng.random() < 0.5 else BUSINESS_COMMENTS
    elif score == 3:
        pool = NEUTRAL_COMMENTS
    else:
        pool = POSITIVE_COMMENTS
    comment, codes = rng.choice(pool)
    return comment, list(codes)


@dataclass(frozen=True)
class Contact:
    """A call, chat or e-mail remembered so that a later survey can rate it."""

    contact_id: str  # as a survey tool knows it: the channel's own id (CONTACT_IDS)
    channel: str
    agent_id: str
    queue: str | None


# The id a survey tool names the rated contact by: the telephony, chat or mail
# system's own, never our event_id (schemas/payloads/survey.v1.json, contact_id).
CONTACT_IDS = {"call": "call_id", "chat": "chat_id", "email": "message_id"}
# The events that offer a contact to an agent: the agent page pops up for these.
ROUTED_TYPES = frozenset({"call.started", "chat.started", "email.received"})
# Each demo agent (those with a development token, cxt.tokens.DEV_AGENTS) is offered
# one contact every ROUTE_EVERY events, in turn: every 30 s at `cxt up`'s default 20
# events/s.  About 0.3 of all events offer a contact and the demo agents take 0.2, so
# one is nearly always at hand when an agent is due; the rest go to FLOOR_AGENTS.
ROUTE_EVERY = 600
FLOOR_AGENTS = tuple(f"A-{n:03d}" for n in range(501, 581))  # no demo token


def survey_payload(
    rng: random.Random, contact: Contact | None, bottom2_share: float,
) -> tuple[str, dict[str, Any]]:
    score = survey_score(rng, bottom2_share)
    comment, codes = survey_comment(rng, score)
    payload: dict[str, Any] = {"survey_id": _short_id(rng, "srv")}
    if contact is not None:
        payload |= {"contact_id": contact.contact_id, "contact_channel": contact.channel,
                    "agent_id": contact.agent_id, "queue": contact.queue}
    else:
        # A survey about a contact that predates our data (or came from
        # another system): no contact_id to link, but the survey tool still
        # knows agent and queue.
        intent = _intent(rng)
        payload |= {"contact_channel": "call", "agent_id": _agent(rng),
                    "queue": INTENTS[intent][1]}
    payload |= {"score": score, "scale_min": 1, "scale_max": 5, "comment": comment,
                "reason_codes": codes}
    return "survey.response", payload


def make_event_for_channel(
    channel: str,
    rng: random.Random,
    *,
    social: dict[str, str] | None = None,
    contact: Contact | None = None,
    bottom2_share: float = 0.12,
) -> tuple[str, dict[str, Any]]:
    """(event type, payload) for one interaction on `channel`."""
    if channel == "call":
        return call_payload(rng)
    if channel == "chat":
        return chat_payload(rng)
    if channel == "email":
        return email_payload(rng)
    if channel == "social":
        return social_payload(rng, social)
    if channel == "survey":
        return survey_payload(rng, contact, bottom2_share)
    raise ValueError(f"unknown channel {channel!r}")


# --- the generator ----------------------------------------------------------

class TrafficGenerator:
    """An endless, seeded stream of (channel, envelope) across all five channels.

    Shares (each a probability per event):
      unknown_share      identified only by a phone number no customer has
                         (the pipeline must open a provisional profile);
      phone_only_share   known customer, but identified by phone/email/social
                         handle instead of customer_id (needs identity lookup);
      out_of_order_share occurred_at shifted 1-30 minutes into the past, so it
                         arrives after events that happened later;
      bottom2_share      surveys scoring 1 or 2 on the 1-5 scale.

    `channel_weights` (channel -> relative weight, default CHANNEL_WEIGHTS)
    changes the channel mix; a channel left out is never drawn.  The default
    stream is the same as before the parameter existed.
    """

    RECENT_CONTACTS = 5  # per customer, enough for a survey to find its contact
    RECENT_CUSTOMERS = 500  # customers with a recent contact, to draw surveys from

    def __init__(
        self,
        customers: Sequence[dict[str, Any]],
        seed: int,
        *,
        unknown_share: float = 0.03,
        phone_only_share: float = 0.2,
        out_of_order_share: float = 0.05,
        bottom2_share: float = 0.12,
        channel_weights: dict[str, float] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not customers:
            raise ValueError("TrafficGenerator needs at least one customer")
        weights = CHANNEL_WEIGHTS if channel_weights is None else channel_weights
        unknown = set(weights) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) in channel_weights: {sorted(unknown)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("channel_weights must be >= 0 and add up to more than 0")
        self._channels = list(weights)
        self._channel_weights = list(weights.values())
        self.customers = list(customers)
        self._by_id = {c["customer_id"]: c for c in self.customers}
        self.rng = random.Random(f"traffic:{seed}")
        self.unknown_share = unknown_share
        self.phone_only_share = phone_only_share
        self.out_of_order_share = out_of_order_share
        self.bottom2_share = bottom2_share
        self.now = now or (lambda: datetime.now(UTC))
        # Unknown callers are a small recurring pool, as in real life the same
        # unregistered number calls back, so provisional profiles get >1 event.
        self._unknown_phones = [_unknown_phone(self.rng) for _ in range(200)]
        self._contacts: dict[str, deque[Contact]] = {}
        self._recent_keys: deque[str] = deque(maxlen=self.RECENT_CUSTOMERS)
        self._events = 0  # generated so far
        self._routed = 0  # contacts offered to the demo agents so far
        self._floor = 0  # and to the rest of the floor

    def __iter__(self) -> Iterator[tuple[str, Envelope]]:
        while True:
            yield self.next_event()

    def take(self, n: int) -> list[tuple[str, Envelope]]:
        return [self.next_event() for _ in range(n)]

    def next_event(self) -> tuple[str, Envelope]:
        rng = self.rng
        channel = rng.choices(self._channels, weights=self._channel_weights)[0]
        customer, unknown_phone = self._pick_party(channel)
        key = customer["customer_id"] if customer else str(unknown_phone)
        social = _first_social(customer) if customer else None
        contact = self._recall_contact(key) if channel == "survey" else None
        event_type, payload = make_event_for_channel(
            channel, rng, social=social, contact=contact, bottom2_share=self.bottom2_share)
        envelope: Envelope = {
            "event_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "type": event_type,
            "occurred_at": rfc3339(self._occurred_at()),
        }
        if customer is None:
            envelope["identity"] = {"phone": unknown_phone}
        else:
            envelope |= self._identify(channel, customer)
        envelope["payload"] = payload
        self._events += 1
        if event_type in ROUTED_TYPES:
            payload["agent_id"] = self._route()
        if channel in CONTACT_IDS:
            self._remember(key, channel, payload)
        return channel, envelope

    def _pick_party(self, channel: str) -> tuple[dict[str, Any] | None, str | None]:
        """(customer, None) for a known customer, (None, phone) for an unknown one."""
        rng = self.rng
        if rng.random() < self.unknown_share:
            return None, rng.choice(self._unknown_phones)
        # Surveys follow contacts: mostly sent to someone who just called or chatted.
        if channel == "survey" and self._recent_keys and rng.random() < 0.9:
            key = rng.choice(self._recent_keys)
            if key.startswith("+"):
                return None, key
            return self._by_id[key], None
        return rng.choice(self.customers), None

    def _identify(self, channel: str, customer: dict[str, Any]) -> dict[str, Any]:
        """Either {"customer_id"} or {"identity": {...}} the way this channel would know it."""
        if self.rng.random() >= self.phone_only_share:
            return {"customer_id": customer["customer_id"]}
        ids = customer.get("identifiers", {})
        social = _first_social(customer)
        if channel == "social" and social:
            return {"identity": {"social": dict(social)}}
        if channel in ("email", "chat") and ids.get("emails"):
            return {"identity": {"email": ids["emails"][0]}}
        if ids.get("phones"):
            return {"identity": {"phone": ids["phones"][0]}}
        return {"customer_id": customer["customer_id"]}

    def _occurred_at(self) -> datetime:
        moment = self.now() - timedelta(milliseconds=self.rng.randrange(2000))
        if self.rng.random() < self.out_of_order_share:
            moment -= timedelta(minutes=self.rng.uniform(1, 30))
        return moment

    def _route(self) -> str:
        """The demo agent whose turn is due (each every ROUTE_EVERY events, in turn), or
        one of the rest of the floor while none is: a steady pace, not random gaps."""
        due_at = self._routed * ROUTE_EVERY / len(DEV_AGENTS)  # events into the stream
        if self._events < due_at:
            self._floor += 1
            return FLOOR_AGENTS[self._floor % len(FLOOR_AGENTS)]
        self._routed += 1
        return DEV_AGENTS[(self._routed - 1) % len(DEV_AGENTS)]

    def _remember(self, key: str, channel: str, payload: dict) -> None:
        recent = self._contacts.setdefault(key, deque(maxlen=self.RECENT_CONTACTS))
        recent.append(Contact(payload[CONTACT_IDS[channel]], channel, payload["agent_id"],
                              payload.get("queue")))
        self._recent_keys.append(key)

    def _recall_contact(self, key: str) -> Contact | None:
        recent = self._contacts.get(key)
        return recent[-1] if recent else None


def _first_social(customer: dict[str, Any]) -> dict[str, str] | None:
    accounts = customer.get("identifiers", {}).get("social") or []
    return accounts[0] if accounts else None

