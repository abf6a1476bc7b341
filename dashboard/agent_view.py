"""The agent context of one customer: read from Redis, ranked by dashboard.context.

The timeline is read as its digest (store.digest): the newest entries, the last days
the prompts look at (all entries for a week, surveys for a month, as the shipped file
says) and the old contacts the worker indexed as relevant to the intent, in one round
trip, instead of all of up to 1,000 entries.  `build_context`
ranks that part as it would the whole: the same events, prompts, "at risk" reasons
and open alerts (tests/integration/dashboard/test_digest.py compares both).  What it
cannot know without the whole timeline, `counts`, is completed from the timeline's
length: `total` counts the contacts read plus one per entry not read (exact when the
digest is the whole timeline), `relevant` the relevant contacts read (exact up to the
index's cap).  The whole timeline is still read for an ambiguous profile (the
who-is-calling question counts its entries), an intent the file does not configure
(it has no index), or a limit of the index's cap or more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import cast

from dashboard.context import NOTES_SHOWN, build_context, open_alert_ids
from dashboard.prompts import RECENT_BOTTOM_2_BOX, REPEAT_CONTACT, AgentConfig, resolve_intent
from dashboard.services import Services
from domain.alerts import OPEN_STATUSES
from domain.contacts import parse_ms
from domain.identity import is_ambiguous
from domain.rated import contact_ids
from domain.records import Alert, TimelineEntry
from store.digest import Digest
from store.timeline import INDEX_CAP
from usecases.customers import candidates_of

# Contacts that reach an agent: the moment to push the customer's context.
TRIGGER_TYPES = frozenset({"call.started", "chat.started", "email.received"})
DEFAULT_LIMIT = 30
DAY_MS = 86_400_000
# The digest's core: at least this many newest entries (a few per shown contact, so the
# newest "other" contacts are all there), and this far around each old contact (its
# other entries, the survey rating it) and before the core's oldest entry.
DIGEST_NEWEST = 100
DIGEST_MARGIN_MS = 3 * 3_600_000
DIGEST_MOST = 1000  # entries in the core at most: a customer with a very busy month


async def agent_context(services: Services, customer_id: str, *, intent: str | None,
                        contact: dict | None = None, limit: int = DEFAULT_LIMIT) -> dict:
    started = time.perf_counter()
    config = services.agent_config
    now_ms = int(time.time() * 1000)
    asked = resolve_intent(intent, contact)
    # Below the index's cap: the contact being taken may be one of the indexed.
    digest_ok = (not is_ambiguous(customer_id) and limit < INDEX_CAP
                 and (asked is None or asked in config.relevance))
    end_ms = _end_ms(contact, now_ms)
    # Independent reads side by side: one round trip of waiting.  The customer's notes
    # and preferences are one pipeline; one note more than is shown tells the page that
    # there are others.
    (read, alerts), profiles, words = await asyncio.gather(
        _timeline_and_alerts(services, customer_id, asked, end_ms, limit, digest_ok,
                             lean=True),
        services.timelines.profiles([customer_id]),
        services.self_service.own_words([customer_id], limit=NOTES_SHOWN + 1),
    )
    digest = await _with_tied(services, customer_id, read, alerts) \
        if isinstance(read, Digest) else None
    entries = cast(list[dict], digest.entries if digest is not None else read)

    def build(entries: list[dict]) -> dict:
        return build_context(
            customer_id=customer_id, profile=profiles[0], entries=entries, alerts=alerts,
            intent=intent, contact=contact, config=config, now_ms=now_ms, limit=limit,
            notes=words[0].notes, preferences=words[0].preferences)

    context = build(entries)
    if digest is not None and digest.lean and context["counts"]["relevant"] < limit:
        # The index promised a page of relevant contacts that are not all there (their
        # entries are gone): the page shows the newest others too, which a lean digest
        # does not hold.
        full, _ = await _timeline_and_alerts(services, customer_id, asked, end_ms, limit,
                                             digest_ok, lean=False)
        digest = await _with_tied(services, customer_id, cast(Digest, full), alerts)
        entries = cast(list[dict], digest.entries)
        context = build(entries)
    if digest is not None and not digest.whole:
        if context["counts"]["total"] < limit:
            # Contacts of many entries each left the core short of a page: rare, and
            # then the whole timeline is what answers.
            context = build(cast(list[dict], await services.timelines.read(customer_id)))
        else:
            context["counts"]["total"] += digest.total - len(entries)
    if is_ambiguous(customer_id):
        context["who_is_calling"] = await who_is_calling(services, customer_id, contact, entries)
    services.metrics.context_seconds.observe(time.perf_counter() - started)
    return context


async def _timeline_and_alerts(services: Services, customer_id: str, asked: str | None,
                               end_ms: int, limit: int, digest_ok: bool, *, lean: bool
                               ) -> tuple[Digest | list[TimelineEntry], list[Alert]]:
    """The timeline (its digest, or all of it) and the customer's alerts.  On a single
    server the digest and the alerts are one script call that also reads the entries of
    the open alerts (store.digest.read_with_alerts); a cluster reads the alerts apart.
    `lean`: when the intent's index holds more contacts than the page (the contact being
    taken may be one of them), the digest's core is the lookback days only."""
    if not digest_ok:
        return await asyncio.gather(services.timelines.read(customer_id),
                                    services.alerts.of_customer(customer_id))
    digests = services.timelines.digest
    contact_days, survey_days = lookback_days(services.agent_config)
    since_ms, surveys_since_ms = end_ms - contact_days * DAY_MS, end_ms - survey_days * DAY_MS
    newest = max(DIGEST_NEWEST, 3 * limit)
    lean_from = limit + 1 if lean else 0
    if digests.one_slot:
        return await digests.read_with_alerts(
            customer_id, asked, since_ms=since_ms, surveys_since_ms=surveys_since_ms,
            newest=newest, margin_ms=DIGEST_MARGIN_MS, most=DIGEST_MOST,
            open_statuses=OPEN_STATUSES, lean_from=lean_from)
    return await asyncio.gather(
        digests.read(customer_id, asked, since_ms=since_ms, surveys_since_ms=surveys_since_ms,
                     newest=newest, margin_ms=DIGEST_MARGIN_MS, most=DIGEST_MOST,
                     lean_from=lean_from),
        services.alerts.of_customer(customer_id))


def lookback_days(config: AgentConfig) -> tuple[int, int]:
    """How far back the prompts and the "at risk" banner look at the timeline: at all
    its contacts (repeat contacts, negative words), and at its surveys only (a recent
    bad survey).  The digest reads that much."""
    contacts = max([config.at_risk_days, *(rule.within_days for rule in config.prompts
                                           if rule.when == REPEAT_CONTACT and rule.within_days)])
    surveys = max([contacts, *(rule.within_days for rule in config.prompts
                               if rule.when == RECENT_BOTTOM_2_BOX and rule.within_days)])
    return contacts, surveys


def _end_ms(contact: dict | None, now_ms: int) -> int:
    # A repeat-contact window ends at the contact being taken, which may be older.
    occurred = contact.get("occurred_at") if isinstance(contact, dict) else None
    return min(now_ms, parse_ms(occurred) or now_ms)


async def _with_tied(services: Services, customer_id: str, digest: Digest,
                     alerts: list[dict]) -> Digest:
    """The digest with the entries of open alerts it lacks (their survey, the contact it
    rates), read around those entries in one more round trip, only when one is missing."""
    if digest.whole:
        return digest
    open_alerts = [a for a in alerts if isinstance(a, dict) and a.get("status") in OPEN_STATUSES]
    wanted = open_alert_ids(open_alerts)
    if not wanted:
        return digest
    # Event ids first: the survey and the rated contact are mostly found by them, and the
    # channel ids then need not be gathered.
    missing = wanted - {entry["event_id"] for entry in digest.entries}
    if missing:
        missing -= _ids_of(digest.entries)
    if not missing:
        return digest
    around: set[str] = set()
    for alert in open_alerts:
        survey, rated = alert.get("survey_event_id"), alert.get("contact_id")
        if survey in missing and isinstance(survey, str):
            around.add(survey)
        if rated in missing:
            # The contact by its event id, which a channel id is not: the alert holds the
            # rated entry once found; a survey rates a contact shortly before it, so the
            # survey's surroundings are read too.
            held = alert.get("rated_contact")
            event_id = held.get("event_id") if isinstance(held, dict) else rated
            around.update(e for e in (event_id, survey) if isinstance(e, str))
    more = await services.timelines.digest.around(customer_id, sorted(around),
                                                   margin_ms=DIGEST_MARGIN_MS)
    return digest.with_rows(more)


def _ids_of(entries: Iterable[TimelineEntry]) -> set[str]:
    ids: set[str] = set()
    for entry in entries:
        ids.add(entry["event_id"])
        ids.update(contact_ids(entry))  # type: ignore[arg-type]
    return ids


async def who_is_calling(services: Services, profile_id: str, contact: dict | None,
                         entries: list[dict]) -> dict:
    """An ambiguous profile's question to the agent: the customers who claim its
    identifier (each at its root) and the interaction a confirmation files, that of the
    live contact, or on a look-up the profile's newest."""
    candidates = await candidates_of(services.timelines, services.identities, profile_id)
    event_id = contact.get("event_id") if isinstance(contact, dict) else None
    if not isinstance(event_id, str) and entries:
        event_id = entries[0].get("event_id")
    return {"profile_id": profile_id, "event_id": event_id if isinstance(event_id, str) else None,
            "waiting": len(entries),
            "candidates": [{"customer_id": c.customer_id, "name": c.name} for c in candidates]}
