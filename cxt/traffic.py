"""Seeded, pure generators of contact-centre traffic (no I/O).

Used by the simulator (`cxt simulate`), the pipeline benchmark and the tests.
Everything is drawn from a `random.Random(seed)`, so the same seed (and the
same `now`) gives the same customers and the same event stream; this is what
lets a benchmark run be repeated and a test assert exact values.

The shapes follow PRODUCT.md: customer records for `cx.customers.v1` and
interaction envelopes for the five inbound channels.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from cxt.tokens import DEV_AGENT, DEV_AGENTS
from domain.routing import TIERS, Agent, RoutingConfig, agent_from_record
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


# The customer's own words.  Written for the demo (not taken from the labelled fixture
# tests/fixtures/customer_texts.jsonl, which measures the detector): angry, escalating,
# sarcastic and fed-up lines for the customers having a bad experience, and everyday
# questions, thanks and polite requests (some with "cancel" in them) for everyone else.
NEGATIVE_LINES = (
    "This is ridiculous, I've been waiting over an hour for someone to answer.",
    "Absolutely useless service, nothing has been fixed.",
    "I'm really angry, you've charged me twice again.",
    "Third time I've contacted you about this and still nothing.",
    "I want to make a formal complaint.",
    "Put me through to a supervisor, please. Now.",
    "If this isn't sorted today I'm cancelling my contract.",
    "Honestly the worst customer service I've ever had.",
    "My internet has been down for four days and nobody cares.",
    "You promised a call back yesterday and nobody rang. Again.",
    "I'm fed up with being passed from one department to another.",
    "This is unacceptable, I pay for a service I'm not getting.",
    "I'll be taking this to the ombudsman.",
    "Terrible. The engineer never turned up.",
    "Why is my bill £40 higher than last month?? Nobody told me.",
    "I've had enough, I'm going elsewhere.",
    "Stop sending me letters about a debt I've already paid!",
    "Your app keeps crashing and I can't pay my bill. So frustrating.",
    "The parcel is lost and your courier is lying about delivering it.",
    "I'm disgusted with how I've been treated.",
    "Still no refund after six weeks. Pathetic.",
    "How many times do I have to explain the same thing?",
    "I was cut off twice while on hold. Awful.",
    "Nobody ever reads my emails, do they?",
    "You mis-sold me this contract and I want out.",
    "Worst broadband provider in the country \U0001F621",
    "Wow, another price rise. Brilliant. Thanks for nothing.",
    "I'm so disappointed, I've been a customer for ten years.",
    "Your agent hung up on me. Rude and unprofessional.",
    "The router you sent was broken out of the box. Useless.",
    "I'm furious, my account was closed without any warning.",
    "This is a shambles from start to finish.",
    "I've wasted my whole morning on this. Horrible experience.",
    "Sort it out or I'm reporting you to Ofcom.",
    "My order is two weeks late and your tracking is a joke.",
    "I'm sick of the excuses, just fix it.",
    "Nothing works and nobody can tell me why. Hopeless.",
    "Charged a cancellation fee I was told I wouldn't pay. Disgraceful.",
    "I can't believe how bad this has been, I'm really upset.",
    "Never again. Worst decision I made was switching to you.",
    "You've lost my payment and now you're threatening me with late fees!",
    "Hours on the phone and it's still broken. I hate this.",
)
NEUTRAL_LINES = (
    "Hi, can you tell me when my next bill is due?",
    "Thanks, that's sorted it, really appreciate it.",
    "Could you check the status of my order please?",
    "I'd like to upgrade to the faster broadband package.",
    "Brilliant, thank you for your help!",
    "Can I change the email address on my account?",
    "I've moved house, how do I update my address?",
    "Great service today, the agent was lovely.",
    "Is there a discount if I add a second line?",
    "My router light is flashing orange, what does that mean?",
    "Please cancel the TV add-on at the end of the month, thanks.",
    "Perfect, that works for me.",
    "Could you send me a copy of my last invoice?",
    "Just checking the engineer is still booked for Tuesday.",
    "Thanks for the quick reply!",
    "The parcel arrived this morning, cheers.",
    "What are the options for paying by direct debit?",
    "Happy with the new plan so far.",
    "Can you explain the charges on page two of my bill?",
    "No worries, I'll try restarting it and get back to you.",
    "That's really helpful, thanks a lot.",
    "I'd like to know more about the fibre offer.",
    "When will the new phone be delivered?",
    "All working again now, thank you \U0001F60A",
    "Can I pay my bill over the phone?",
    "Lovely, have a good day.",
    "I need to update my card details.",
    "Do you deliver on Saturdays?",
    "Speeds are much better since the fix, thanks.",
    "Could I get a call back tomorrow morning instead?",
    "How do I set up the parental controls?",
    "I'm moving abroad so please close my account. Thanks for everything.",
    "Sounds good, go ahead.",
    "Thank you, you've been very patient with me.",
    "Not bad at all, the install was quick.",
    "Can you confirm you received my meter reading?",
    "OK great, I'll wait for the email.",
    "The new app is easy to use, nice job.",
    "I'd like to add my partner to the account.",
    "Excellent, problem solved.",
    "Just wanted to say thanks to Priya for sorting my bill.",
)
AGENT_LINES = (
    "Thanks for getting in touch, let me take a look.",
    "I'm sorry to hear that, let me check your account.",
    "I can see what happened now.",
    "I've raised that with our engineers.",
    "Is there anything else I can help with?",
    "I've applied a credit to your account.",
    "Let me transfer you to the right team.",
    "I understand, I'll escalate this for you.",
    "Thanks for your patience.",
    "That's all done for you now.",
)
COMPLAINT_SUBJECT_PREFIXES = ("Complaint: ", "URGENT: ", "Still waiting: ", "3rd email: ", "")


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
        "language": customer_language(index),  # derived from the index too
    }


# The languages customers speak (a share in hundredths each), most of them English.
CUSTOMER_LANGUAGES = (("en", 88), ("pl", 6), ("cy", 3), ("fr", 2), ("ur", 1))
_LANGUAGE_SLOTS = tuple(tag for tag, hundredths in CUSTOMER_LANGUAGES for _ in range(hundredths))
assert len(_LANGUAGE_SLOTS) == 100


def customer_language(index: int) -> str:
    # 53 is prime to 100, so every run of 100 indexes meets each slot once.
    return _LANGUAGE_SLOTS[(index * 53) % 100]


def make_customers(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` customer records, ids C-000001.. with unique phone and email each."""
    rng = random.Random(f"customers:{seed}")
    return [make_customer(i, rng) for i in range(1, n + 1)]


# The one bottom-2-box rule, by the name cxt.simulate and the tests use.
is_bottom_two_box = survey_is_bottom_2_box


# --- agents -----------------------------------------------------------------
# The demo's agents (DEV_AGENTS, A-001..A-120) as the workforce-management system would
# publish them on cx.agents.v1 (schemas/agent.v1.json).  Each has a main intent, at a
# level their tier makes likely, and a few others lower; every agent speaks English
# and some another language too; seniors also take the VIP queue.

AGENT_TIERS = (("junior", 0.3), ("standard", 0.5), ("senior", 0.2))
assert {t for t, _ in AGENT_TIERS} == set(TIERS)
# Per tier: the main intent's possible levels, how many other intents, their levels.
_TIER_SKILLS: dict[str, tuple[tuple[int, ...], int, tuple[int, ...]]] = {
    "junior": ((3, 4), 1, (1, 2)),
    "standard": ((4, 4, 5), 2, (1, 2, 3)),
    "senior": ((4, 5, 5), 3, (2, 3, 4)),
}
# Other languages than English, with the share of agents speaking each.
AGENT_LANGUAGES = (("pl", 0.12), ("cy", 0.07), ("fr", 0.05), ("es", 0.03), ("ur", 0.03))
AGENT_AVAILABLE_SHARE = 0.85  # logged in; the rest are on leave, training, off shift
# The queue a skill serves from this level on: the hint's queues (config/routing.toml).
QUEUE_FROM_LEVEL = 3
_HINT_QUEUES = RoutingConfig()


def make_agent(agent_id: str, rng: random.Random, *,
               updated_at: datetime | None = None) -> dict[str, Any]:
    tier = _weighted(rng, AGENT_TIERS)
    main_levels, others, other_levels = _TIER_SKILLS[tier]
    main = rng.choices(_INTENT_NAMES, cum_weights=_INTENT_CUMULATIVE)[0]
    skills = {main: rng.choice(main_levels)}
    for intent in rng.sample([i for i in _INTENT_NAMES if i != main], others):
        skills[intent] = rng.choice(other_levels)
    languages = ["en", *(tag for tag, share in AGENT_LANGUAGES if rng.random() < share)]
    queues = [_HINT_QUEUES.queue_for(intent) for intent, level in skills.items()
              if level >= QUEUE_FROM_LEVEL]
    queues.append(_HINT_QUEUES.default_queue)
    if tier == "senior" and _HINT_QUEUES.vip_queue:
        queues.append(_HINT_QUEUES.vip_queue)
    if tier != "junior" and rng.random() < 0.3:
        queues.extend(_HINT_QUEUES.segment_queues.values())
    record: dict[str, Any] = {
        "agent_id": agent_id,
        "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "skills": skills,
        "languages": languages,
        "tier": tier,
        "queues": queues,
        "available": rng.random() < AGENT_AVAILABLE_SHARE,
    }
    if updated_at is not None:
        record["updated_at"] = rfc3339(updated_at)
    return record


def make_agents(seed: int, *, updated_at: datetime | None = None) -> list[dict[str, Any]]:
    """The agent records of DEV_AGENTS, the same for the same seed."""
    rng = random.Random(f"agents:{seed}")
    records = [make_agent(agent_id, rng, updated_at=updated_at) for agent_id in DEV_AGENTS]
    for record in records:
        if record["agent_id"] == DEV_AGENT:  # the README's agent page: always on shift
            record["available"] = True
    return records


# How the handling agent changes the chance that a survey about a contact is bottom-2-box
# (a factor on the traffic's chance): the agent's level in the contact's intent (0: not
# their skill), not speaking the customer's language (served in a second language, a
# customer is misunderstood and feels it: worse than the least skilled agent), and for a
# delicate caller (a VIP, or one with an open alert) the tier; and what no record says:
# each agent's own knack, some better and some worse than their levels suggest, which only
# the surveys reveal.  The agents of the floor without a record (FLOOR_AGENTS) count as 1.
SKILL_BOTTOM2 = (2.2, 1.8, 1.4, 1.0, 0.7, 0.5)  # by level 0..5
LANGUAGE_MISMATCH_BOTTOM2 = 3.0
DELICATE_TIER_BOTTOM2 = {"junior": 1.5, "standard": 1.0, "senior": 0.7}
KNACK_SIGMA = 0.35  # lognormal: a fifth of the agents are 1.3x better or worse, or more
_KNACKS: dict[str, float] = {}


def knack(agent_id: str) -> float:
    """The agent's hidden factor, the same in every run (drawn from the id alone)."""
    found = _KNACKS.get(agent_id)
    if found is None:
        found = _KNACKS[agent_id] = random.Random(f"knack:{agent_id}").lognormvariate(
            0, KNACK_SIGMA)
    return found


def bottom2_factor(agent: Agent | None, intent: str | None, language: str | None,
                   delicate: bool) -> float:
    if agent is None:
        return 1.0
    factor = knack(agent.agent_id)
    if intent:
        factor *= SKILL_BOTTOM2[agent.skills.get(intent, 0)]
    if language and not any(tag.split("-", 1)[0] == language.split("-", 1)[0]
                            for tag in agent.languages):
        factor *= LANGUAGE_MISMATCH_BOTTOM2
    if delicate:
        factor *= DELICATE_TIER_BOTTOM2.get(agent.tier, 1.0)
    return factor


def channel_of(envelope: dict[str, Any]) -> str:
    return str(envelope["type"]).split(".", 1)[0]


# --- channel payloads -------------------------------------------------------
# Each returns (event type, payload); the generator adds envelope fields.

def _agent(rng: random.Random) -> str:
    return rng.choice(DEV_AGENTS)


_INTENT_NAMES = list(INTENTS)
_INTENT_CUMULATIVE = list(accumulate(INTENT_WEIGHTS))  # draws as weights= does, faster


def _intent(rng: random.Random) -> str:
    return rng.choices(_INTENT_NAMES, cum_weights=_INTENT_CUMULATIVE)[0]


draw_intent = _intent  # the traffic's intent mix, by the name cxt.routing_trial uses


def _short_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(48):012x}"


def call_payload(rng: random.Random, *, intent: str | None = None
                 ) -> tuple[str, dict[str, Any]]:
    """A call.started (30%) or a call.ended on its own."""
    payload = call_start(rng, intent=intent)
    if rng.random() < 0.3:
        return "call.started", payload
    return "call.ended", payload | call_end_fields(rng)


def call_start(rng: random.Random, *, intent: str | None = None,
               wait_seconds: int | None = None, inbound: bool | None = None) -> dict[str, Any]:
    intent = intent or _intent(rng)
    path, queue = INTENTS[intent]
    inbound = rng.random() < 0.85 if inbound is None else inbound
    return {
        "call_id": _short_id(rng, "call"),
        "direction": "inbound" if inbound else "outbound",
        "ivr_path": list(path),
        "intent": intent,
        "queue": queue,
        "agent_id": _agent(rng),
        "wait_seconds": int(rng.expovariate(1 / 90)) if wait_seconds is None else wait_seconds,
    }


def call_end_fields(rng: random.Random, *, transfers: int | None = None,
                    outcome: str | None = None) -> dict[str, Any]:
    """What call.ended adds to the call's payload; three transfers or more are rare
    here, as the many-transfers signal fires on them."""
    return {
        "handle_seconds": int(rng.lognormvariate(5.6, 0.5)),
        "transfers": (rng.choices((0, 1, 2, 3), weights=(70, 20, 9, 1))[0]
                      if transfers is None else transfers),
        "outcome": outcome or _weighted(rng, OUTCOMES),
    }


def transcript(rng: random.Random, customer_lines: Sequence[str], lines: int,
               ends: datetime, seconds: float) -> list[dict[str, str]]:
    """`lines` chat lines, customer first and then taking turns with the agent, spread
    evenly over the `seconds` before `ends`."""
    step = timedelta(seconds=seconds / max(lines, 1))
    ends = ends.astimezone(UTC)
    return [{"from": "customer" if i % 2 == 0 else "agent",
             "text": rng.choice(customer_lines if i % 2 == 0 else AGENT_LINES),
             "at": (ends - step * (lines - 1 - i)).isoformat(timespec="milliseconds")}
            for i in range(lines)]


def chat_payload(rng: random.Random, *, intent: str | None = None,
                 now: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """A chat.started (30%, the customer's opening line) or a chat.ended on its own (a
    transcript of 2-6 lines, or only the message count as some chat tools send)."""
    payload = chat_start(rng, intent=intent, now=now)
    if rng.random() < 0.3:
        return "chat.started", payload
    return "chat.ended", payload | chat_end_fields(rng, now=now)


def chat_start(rng: random.Random, *, intent: str | None = None, now: datetime | None = None,
               lines: Sequence[str] = NEUTRAL_LINES) -> dict[str, Any]:
    intent = intent or _intent(rng)
    queue = INTENTS[intent][1].replace("-uk", "-chat")
    return {
        "chat_id": _short_id(rng, "chat"),
        "queue": queue,
        "agent_id": _agent(rng),
        "intent": intent,
        "wait_seconds": int(rng.expovariate(1 / 40)),
        "messages": [{"from": "customer", "text": rng.choice(lines),
                      "at": rfc3339(now or datetime.now(UTC))}],
    }


def chat_end_fields(rng: random.Random, *, now: datetime | None = None,
                    lines: Sequence[str] = NEUTRAL_LINES,
                    count_share: float = 0.15) -> dict[str, Any]:
    handle = int(rng.lognormvariate(6.0, 0.5))
    messages: int | list[dict[str, str]]
    if rng.random() < count_share:
        messages = rng.randint(3, 40)
    else:
        messages = transcript(rng, lines, rng.randint(2, 6), now or datetime.now(UTC),
                              handle)
    return {"handle_seconds": handle, "messages": messages,
            "outcome": _weighted(rng, OUTCOMES)}


def email_payload(rng: random.Random, *, intent: str | None = None, angry: bool = False,
                  inbound: bool | None = None) -> tuple[str, dict[str, Any]]:
    intent = intent or _intent(rng)
    inbound = rng.random() < 0.6 if inbound is None else inbound
    subject = rng.choice(EMAIL_SUBJECTS[intent])
    if inbound:
        pool = NEGATIVE_LINES if angry else NEUTRAL_LINES
        body = " ".join(rng.sample(pool, rng.randint(1, 2)))
        if angry:
            subject = rng.choice(COMPLAINT_SUBJECT_PREFIXES) + subject
    else:
        subject, body = f"Re: {subject}", rng.choice(AGENT_LINES)
    payload = {
        "message_id": f"<{rng.getrandbits(64):016x}@mail.example.com>",
        "thread_id": _short_id(rng, "thr"),
        "direction": "inbound" if inbound else "outbound",
        "subject": subject,
        "body": body,
        "intent": intent,
        # Inbound mail is routed to an agent too, so agent_id is always set.
        "agent_id": _agent(rng),
    }
    return ("email.received" if inbound else "email.sent"), payload


def social_payload(rng: random.Random, account: dict[str, str] | None, *,
                   angry: bool = False) -> tuple[str, dict]:
    """`account` is the customer's {network, handle}, or None for a random one.  The
    monitoring tool's `sentiment` comes with every everyday post and with half the
    angry ones (our model scores the others)."""
    network = account["network"] if account else rng.choice(NETWORKS)
    handle = account["handle"] if account else f"@user{rng.getrandbits(24)}"
    if angry:
        text, sentiment = rng.choice(NEGATIVE_LINES), rng.uniform(-0.9, -0.5)
    elif rng.random() < 0.3:
        text, sentiment = rng.choice(SOCIAL_TEXTS)
    else:
        text, sentiment = rng.choice(NEUTRAL_LINES), rng.uniform(0.0, 0.5)
    post_id = str(rng.getrandbits(60))
    payload = {
        "network": network,
        "post_id": post_id,
        "handle": handle,
        "text": text,
        "url": f"https://{network}.example.com/{handle.lstrip('@')}/posts/{post_id}",
        "public": True if angry else rng.random() < 0.85,
    }
    if not angry or rng.random() < 0.5:
        payload["sentiment"] = round(max(-1.0, min(1.0, sentiment + rng.uniform(-0.2, 0.2))), 2)
    return ("social.post" if angry else rng.choice(("social.post", "social.mention"))), payload


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
    intent: str | None = None


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
        if contact.intent:  # what the survey tool knows of the contact it sent it for
            payload["intent"] = contact.intent
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

@dataclass(frozen=True, slots=True)
class _Due:
    """The next steps of one customer's story."""

    customer: dict[str, Any]
    steps: list[Step]
    story: dict[str, Any]  # what the steps share: intent, the contact so far


@dataclass(frozen=True)
class Step:
    """One event of a story: sent on `channel` the first time that channel is drawn
    `after` events past the previous step."""

    channel: str
    after: int
    build: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


# Bad experiences, each a short story of one customer (see TrafficGenerator).
STORIES_BY_CHANNEL: dict[str, tuple[str, ...]] = {
    "call": ("transfers", "long_wait", "abandoned", "repeat"),
    "chat": ("angry_chat", "angry_chat", "repeat"),
    "email": ("angry_email", "repeat"),
    "social": ("public_post",),
}
# Most stories stop before the survey; this share of customers answers one, rating the
# story's last contact in the bottom two boxes.
SURVEY_AFTER_BAD = 0.6
MAX_PENDING = 20_000  # per channel: a bound on memory if a channel is hardly ever drawn
# An offered contact is answered after its wait, but a demo's never waits longer than this.
OFFER_WAIT_MAX_S = 60


class TrafficGenerator:
    """An endless, seeded stream of (channel, envelope) across all five channels.

    Shares (each a probability per event):
      unknown_share      identified only by a phone number no customer has
                         (the pipeline must open a provisional profile);
      phone_only_share   known customer, but identified by phone/email/social
                         handle instead of customer_id (needs identity lookup);
      out_of_order_share occurred_at shifted 1-30 minutes into the past, so it
                         arrives after events that happened later;
      bottom2_share      surveys scoring 1 or 2 on the 1-5 scale (at least the
                         share the bad experiences bring);
      unhappy_share      a contact that starts a bad experience (below);
      offered_share      a known customer's call or chat that the IVR first offers
                         (call.offered / chat.offered, no agent yet) and that
                         starts after the wait (`cxt simulate` sends them; off by
                         default, so the benchmarks' mix stays as it was).

    Contacts come as they do from real sources: most calls and chats send a
    started event and, minutes later, an ended one with the same id (a story of
    two steps).  A bad experience is a story too: an angry or escalating chat,
    e-mail or public post, a call transferred three to five times or after a wait
    of over ten minutes, an abandoned call followed by another contact, or three
    contacts about the same intent within minutes; then, for SURVEY_AFTER_BAD of
    those customers, a bottom-2-box survey some seconds to minutes later.  A
    step waits for a draw of its own channel, so the channel mix stays as
    configured; `pace` (events per second the stream is sent at) turns a story's
    seconds into events.

    `channel_weights` (channel -> relative weight, default CHANNEL_WEIGHTS)
    changes the channel mix; a channel left out is never drawn.

    A survey's chance of a bottom-2-box score depends on the rated contact's agent
    (`bottom2_factor`: their skill level in the contact's intent, the customer's
    language, the tier for VIPs; the generator does not follow open alerts), from
    `agents` (default `make_agents(seed)`, the records `cxt simulate` publishes); the
    overall share stays at bottom2_share.
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
        unhappy_share: float = 0.015,
        pace: float = 20.0,
        channel_weights: dict[str, float] | None = None,
        now: Callable[[], datetime] | None = None,
        offered_share: float = 0.0,
        agents: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        if not customers:
            raise ValueError("TrafficGenerator needs at least one customer")
        weights = CHANNEL_WEIGHTS if channel_weights is None else channel_weights
        unknown = set(weights) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) in channel_weights: {sorted(unknown)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("channel_weights must be >= 0 and add up to more than 0")
        if pace <= 0:
            raise ValueError("pace must be > 0 events/s")
        if not 0 <= offered_share <= 1:
            raise ValueError("offered_share must be from 0 to 1")
        self._channels = list(weights)
        self._cumulative = list(accumulate(weights.values()))
        self._drawn = {c for c, w in weights.items() if w > 0}
        self.customers = list(customers)
        self._by_id = {c["customer_id"]: c for c in self.customers}
        self.rng = random.Random(f"traffic:{seed}")
        self.unknown_share = unknown_share
        self.phone_only_share = phone_only_share
        self.out_of_order_share = out_of_order_share
        self.bottom2_share = bottom2_share
        self.unhappy_share = unhappy_share
        self.offered_share = offered_share
        self.pace = pace
        # The handling agents' records decide how their contacts' surveys turn out.
        self.agents = {record["agent_id"]: agent_from_record(record)
                       for record in (make_agents(seed) if agents is None else agents)}
        self.now = now or (lambda: datetime.now(UTC))
        # Unknown callers are a small recurring pool, as in real life the same
        # unregistered number calls back, so provisional profiles get >1 event.
        self._unknown_phones = [_unknown_phone(self.rng) for _ in range(200)]
        self._contacts: dict[str, deque[Contact]] = {}
        self._recent_keys: deque[str] = deque(maxlen=self.RECENT_CUSTOMERS)
        self._events = 0  # generated so far
        self._routed = 0  # contacts offered to the demo agents so far
        self._floor = 0  # and to the rest of the floor
        # Per channel, a heap of (due after this many events, order scheduled, the story).
        self._pending: dict[str, list[tuple[int, int, _Due]]] = {c: [] for c in CHANNELS}
        self._scheduled = 0
        self._surveys = 0  # surveys sent, and of them those closing a bad experience
        self._bad_surveys = 0
        self._bottom2 = 0  # of all surveys sent
        self._factors, self._rated = 0.0, 0  # the sum of the everyday surveys' agent factors
        self.bad_experiences = 0  # stories started, for the simulator's summary

    def __iter__(self) -> Iterator[tuple[str, Envelope]]:
        while True:
            yield self.next_event()

    def take(self, n: int) -> list[tuple[str, Envelope]]:
        return [self.next_event() for _ in range(n)]

    def next_event(self) -> tuple[str, Envelope]:
        rng = self.rng
        channel = rng.choices(self._channels, cum_weights=self._cumulative)[0]
        pending = self._pending[channel]
        if pending and pending[0][0] <= self._events:
            due = heapq.heappop(pending)[2]
            return channel, self._step(channel, due.customer, due.steps, due.story)
        customer, unknown_phone = self._pick_party(channel)
        if customer is not None and channel != "survey" and rng.random() < self.unhappy_share:
            self.bad_experiences += 1
            story = {"intent": _intent(rng), "social": _first_social(customer)}
            return channel, self._step(channel, customer,
                                       self._bad_experience(channel, story), story)
        key = customer["customer_id"] if customer else str(unknown_phone)
        social = _first_social(customer) if customer else None
        contact = self._recall_contact(key) if channel == "survey" else None
        if channel == "survey":
            chance = self._everyday_bottom2() * self._handling(contact, customer)
            event_type, payload = survey_payload(rng, contact, min(1.0, chance))
            self._surveys += 1
            self._bottom2 += payload["score"] <= 2
        elif channel == "call":
            event_type, payload = self._call(customer is not None)
        elif channel == "chat":
            event_type, payload = self._chat(customer is not None)
        else:
            event_type, payload = make_event_for_channel(channel, rng, social=social)
        if customer is not None and event_type in ("call.started", "chat.started"):
            if self.offered_share and rng.random() < self.offered_share:
                return channel, self._offer(channel, customer, payload)
            envelope = self._envelope(channel, customer, unknown_phone, event_type, payload)
            self._schedule(customer, [self._ending(channel)], {"payload": payload})
            return channel, envelope
        return channel, self._envelope(channel, customer, unknown_phone, event_type, payload)

    def _offer(self, channel: str, customer: dict[str, Any], started: dict[str, Any]
               ) -> Envelope:
        """The IVR's call.offered / chat.offered (no agent yet: the routing hint is asked
        for now); the started event follows when the wait is over, then the ended one."""
        offered = {name: value for name, value in started.items()
                   if name not in ("agent_id", "wait_seconds")}
        envelope = self._envelope(channel, customer, None, f"{channel}.offered", offered)
        wait = self._events_in(min(started["wait_seconds"], OFFER_WAIT_MAX_S))
        self._schedule(customer, [Step(channel, wait, lambda _: (f"{channel}.started", started)),
                                  self._ending(channel)], {"payload": started})
        return envelope

    def _handling(self, contact: Contact | None, customer: dict[str, Any] | None) -> float:
        """How the rated contact's agent moves the survey's bottom-2-box chance: their
        `bottom2_factor` over the mean factor so far, so that the agents shift the
        bottom-2-box surveys between them and the overall share stays as configured."""
        factor = 1.0
        if contact is not None:
            language = customer.get("language") if customer else None
            vip = customer is not None and customer.get("segment") == "vip"
            factor = bottom2_factor(self.agents.get(contact.agent_id), contact.intent,
                                    language, vip)
        self._factors += factor
        self._rated += 1
        return factor * self._rated / self._factors

    # -- the envelope ------------------------------------------------------------------

    def _envelope(self, channel: str, customer: dict[str, Any] | None,
                  unknown_phone: str | None, event_type: str,
                  payload: dict[str, Any]) -> Envelope:
        rng = self.rng
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
        if channel in CONTACT_IDS and payload.get("agent_id"):
            key = customer["customer_id"] if customer else str(unknown_phone)
            self._remember(key, channel, payload)
        return envelope

    # -- everyday contacts ----------------------------------------------------------------

    def _call(self, known: bool) -> tuple[str, dict[str, Any]]:
        """Calls of known customers start and end (a story of two steps) 60% of the time."""
        if known and self.rng.random() < 0.6:
            return "call.started", call_start(self.rng)
        return call_payload(self.rng)

    def _chat(self, known: bool) -> tuple[str, dict[str, Any]]:
        now = self.now()
        if known and self.rng.random() < 0.6:
            return "chat.started", chat_start(self.rng, now=now)
        return chat_payload(self.rng, now=now)

    def _ending(self, channel: str, *, lines: Sequence[str] = NEUTRAL_LINES,
                **call_end: Any) -> Step:
        """The ended event of the story's started call or chat, its handle time later."""
        def build(story: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            started = story["payload"]
            if channel == "call":
                return "call.ended", started | call_end_fields(self.rng, **call_end)
            ended = started | chat_end_fields(self.rng, now=self.now(), lines=lines,
                                              count_share=0.15 if lines is NEUTRAL_LINES
                                              else 0.0)
            return "chat.ended", ended

        handle = self.rng.lognormvariate(5.6 if channel == "call" else 6.0, 0.5)
        return Step(channel, self._events_in(min(handle, 600)), build)

    def _everyday_bottom2(self) -> float:
        """The bottom-2 share of everyday surveys that keeps all surveys at bottom2_share,
        the bad experiences' surveys (all bottom-2) included."""
        if not self._surveys:
            return self.bottom2_share
        target = self.bottom2_share
        bad = min(self._bad_surveys / self._surveys, 0.99)
        behind = target - self._bottom2 / self._surveys  # > 0: too few bottom-2 so far
        return max(0.0, min(1.0, (target - bad) / (1 - bad) + behind))

    # -- stories -------------------------------------------------------------------------

    def _events_in(self, seconds: float) -> int:
        return max(1, int(seconds * self.pace))

    def _schedule(self, customer: dict[str, Any], steps: list[Step],
                  story: dict[str, Any]) -> None:
        step = steps[0]
        pending = self._pending[step.channel]
        if step.channel not in self._drawn or len(pending) >= MAX_PENDING:
            return  # never sent: the story ends here
        self._scheduled += 1
        heapq.heappush(pending, (self._events + step.after, self._scheduled,
                                 _Due(customer, steps, story)))

    def _step(self, channel: str, customer: dict[str, Any], steps: list[Step],
              story: dict[str, Any]) -> Envelope:
        """Send the first of `steps` now and schedule the rest."""
        event_type, payload = steps[0].build(story)
        envelope = self._envelope(channel, customer, None, event_type, payload)
        if channel in CONTACT_IDS:
            story["payload"] = payload
            if payload.get("agent_id"):
                story["contact"] = self._contacts[customer["customer_id"]][-1]
        elif channel == "survey":
            self._surveys += 1
            self._bad_surveys += 1
            self._bottom2 += 1
        if len(steps) > 1:
            self._schedule(customer, steps[1:], story)
        return envelope

    def _bad_experience(self, channel: str, story: dict[str, Any]) -> list[Step]:
        """The steps of a bad experience that starts on `channel`."""
        rng, intent = self.rng, story["intent"]
        kind = rng.choice(STORIES_BY_CHANNEL[channel])
        steps: list[Step]
        if kind in ("transfers", "long_wait"):
            wait = rng.randint(660, 1800) if kind == "long_wait" else None
            transfers = rng.randint(3, 5) if kind == "transfers" else None
            outcome = rng.choice(("unresolved", "transferred")) if transfers else None
            steps = [Step("call", 0, lambda _: (
                "call.started", call_start(rng, intent=intent, wait_seconds=wait, inbound=True))),
                self._ending("call", transfers=transfers, outcome=outcome)]
        elif kind == "abandoned":
            def abandoned(_: dict[str, Any]) -> tuple[str, dict[str, Any]]:
                call = call_start(rng, intent=intent, wait_seconds=rng.randint(240, 900),
                                  inbound=True)
                call |= {"agent_id": None, "handle_seconds": 0, "transfers": 0,
                         "outcome": "abandoned"}
                return "call.ended", call
            steps = [Step("call", 0, abandoned),
                     Step("call", self._events_in(rng.uniform(30, 600)), lambda _: (
                         "call.started", call_start(rng, intent=intent, inbound=True))),
                     self._ending("call")]
        elif kind == "angry_chat":
            steps = [Step("chat", 0, lambda _: ("chat.started", chat_start(
                rng, intent=intent, now=self.now(), lines=NEGATIVE_LINES))),
                self._ending("chat", lines=NEGATIVE_LINES)]
        elif kind == "angry_email":
            steps = [Step("email", 0, lambda _: email_payload(rng, intent=intent, angry=True,
                                                               inbound=True))]
        elif kind == "public_post":
            steps = [Step("social", 0, lambda s: social_payload(
                rng, s["social"], angry=True))]
        else:  # repeat: three contacts about the same intent within minutes
            steps = [self._repeat_contact(channel, 0, intent, NEUTRAL_LINES)]
            for lines in (NEUTRAL_LINES, NEGATIVE_LINES):
                other = rng.choice(("call", "chat", "email"))
                steps.append(self._repeat_contact(
                    other, self._events_in(rng.uniform(30, 240)), intent, lines))
        if rng.random() < SURVEY_AFTER_BAD and kind != "public_post":
            steps.append(Step("survey", self._events_in(rng.uniform(20, 240)),
                              lambda s: survey_payload(rng, s.get("contact"), 1.0)))
        return steps

    def _repeat_contact(self, channel: str, after: int, intent: str,
                        lines: Sequence[str]) -> Step:
        rng = self.rng

        def build(_: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            if channel == "call":
                return "call.ended", (call_start(rng, intent=intent, inbound=True)
                                      | call_end_fields(rng))
            if channel == "chat":
                return "chat.ended", chat_start(rng, intent=intent, now=self.now()) | \
                    chat_end_fields(rng, now=self.now(), lines=lines, count_share=0.0)
            return email_payload(rng, intent=intent, angry=lines is NEGATIVE_LINES,
                                 inbound=True)
        return Step(channel, after, build)

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
                              payload.get("queue"), payload.get("intent")))
        self._recent_keys.append(key)

    def _recall_contact(self, key: str) -> Contact | None:
        recent = self._contacts.get(key)
        return recent[-1] if recent else None


def _first_social(customer: dict[str, Any]) -> dict[str, str] | None:
    accounts = customer.get("identifiers", {}).get("social") or []
    return accounts[0] if accounts else None

