"""The pipeline for one batch: topic -> validate -> resolve -> score -> store -> detect
-> alert -> publish.

Independent of faust: it takes plain `Record`s and returns the `Outgoing`
messages to publish.  The caller publishes them and only then acknowledges
the records, so a crash anywhere leaves the batch to be redelivered, and the
idempotent store turns the redelivery into no change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import cast

from domain.alerts import (
    CONTEXT_SIZE,
    ESCALATED,
    RESOLVED,
    UNACKNOWLEDGED,
    ActionRejected,
    alert_id_for,
    apply_action,
    escalate,
    has_action,
    new_alert,
    with_rated_contact,
)
from domain.identity import (
    NeverMatch,
    Owner,
    is_ambiguous,
)
from domain.negative import KIND as NEGATIVE
from domain.negative import holds_contact, with_linked
from domain.records import Alert, AlertAction, TimelineEntry
from domain.routing import RoutingConfig, load_routing_config
from domain.rules import Rules
from domain.sentiment import Sentiment, customer_text, score_entry
from domain.signal_config import SignalConfig
from domain.survey_metrics import hour_of, metric_fields
from domain.surveys import is_bottom_2_box, payload_is_bottom_2_box
from kernel import jsonbytes
from kernel.settings import Settings
from kernel.times import iso_ms, utc_now_iso
from schemas.validate import (
    Interaction,
    Rejection,
    check_action,
    check_interaction,
    survey_scale,
)
from store.agents import AgentCache, AgentStore
from store.alerts import AlertStore, Rated, RatedLookup, SurveyCount
from store.contact_reasons import ContactReasonStore
from store.identities import IdentityStore
from store.keys import is_provisional
from store.negatives import NegativeStore
from store.self_service import SelfServiceStore
from store.timeline import AddResult, NewEntry, RatedWait, TimelineStore
from streams.customers import CustomerSteps
from streams.detection import Detector, Fresh
from streams.identity import (
    file_entries,
    resolve_owners,
)
from streams.records import Messages, Outgoing, Record
from streams.routing import OFFERED_TYPES, RoutingSteps
from streams.self_service import SelfServiceSteps
from usecases.routing import Router

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, settings: Settings, store: TimelineStore, alerts: AlertStore,
                 rules: Rules, *, signals: SignalConfig | None = None,
                 negatives: NegativeStore | None = None,
                 reasons: ContactReasonStore | None = None,
                 identities: IdentityStore | None = None,
                 agents: AgentStore | None = None,
                 routing: RoutingConfig | None = None) -> None:
        self.topics = settings.topics
        self.identities = identities or IdentityStore(store.redis, store.keys)
        self.never = NeverMatch(settings.identity_never_match)
        self.max_bytes = settings.max_event_bytes
        self.store = store
        self.alerts = alerts
        self.rules = rules
        self.ack_timeout_ms = settings.alert_ack_timeout_s * 1000
        self._channel_of = settings.topics.channel_of
        signals = signals or SignalConfig()
        self.sentiment = signals.sentiment
        self.negatives = negatives or NegativeStore(
            store.redis, store.keys, counters_ttl_days=settings.timeline_max_age_days)
        self.detector = Detector(
            signals, rules, alerts, self.negatives,
            reasons or ContactReasonStore(store.redis, store.keys,
                                          ttl_days=settings.timeline_max_age_days),
            ack_timeout_ms=self.ack_timeout_ms)
        self.messages = Messages(settings.topics)
        self.people = CustomerSteps(self.messages, store, self.identities, alerts,
                                    self.negatives, self.never, self._rated_late)
        # The low-volume steps of customer records and identity actions (streams.customers).
        self.customers = self.people.customers
        self.identity_actions = self.people.identity_actions
        # Agent records in, hints for offered contacts out (streams.routing).
        self.agent_store = agents or AgentStore(store.redis, store.keys,
                                                rated_ttl_days=settings.timeline_max_age_days)
        self.routing = RoutingSteps(self.messages, self.agent_store, Router(
            self.identities, self.agent_store, AgentCache(self.agent_store),
            routing or load_routing_config(settings.routing_rules_path), self.never))
        self.agents = self.routing.agent_records
        # The customers' own notes and preferences, cx.self-service.v1 (streams.self_service).
        self.account = SelfServiceSteps(self.messages, store, self.identities,
                                        SelfServiceStore(store.redis, store.keys),
                                        max_bytes=self.max_bytes)
        self.self_service = self.account.events

    # -- interactions (the five inbound channels) ----------------------------

    async def interactions(self, records: Sequence[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        accepted: list[tuple[Record, Interaction]] = []
        for record in records:
            checked = check_interaction(
                record.value, self._channel_of[record.topic], max_bytes=self.max_bytes
            )
            if isinstance(checked, Rejection):
                out.append(self._reject(record, checked))
            else:
                accepted.append((record, checked))
        if not accepted:
            return out

        owners = await resolve_owners(self.identities, [item for _, item in accepted],
                                      self.never)
        accepted_at = utc_now_iso()
        texts = [customer_text(item.channel, item.payload, self.sentiment.max_chars)
                 for _, item in accepted]
        sentiments = [score_entry(item.channel, item.payload, self.sentiment, text=text)
                      for (_, item), text in zip(accepted, texts, strict=True)]
        entries = [
            _timeline_entry(record, item, owner, accepted_at, sentiment)
            for (record, item), owner, sentiment in zip(accepted, owners, sentiments, strict=True)
        ]
        entries, added = await file_entries(self.store, self.identities, entries)
        fresh = [Fresh(e, record, sentiment, r, text)
                 for e, r, (record, _), sentiment, text
                 in zip(entries, added.results, accepted, sentiments, texts, strict=True)
                 if r is not AddResult.DUPLICATE]
        out.extend(self._publish(f.entry) for f in fresh)
        # Before the surveys: a bottom-2-box survey links to the alert its contact raised.
        out.extend(self._alert_out(a) for a in await self.detector.detect(fresh))
        surveys = [(f.entry, f.record) for f in fresh if f.entry.entry["channel"] == "survey"]
        out.extend(await self._surveys(surveys))
        out.extend(await self._rated_late(added.waits))
        out.extend(await self.routing.hints([f.entry for f in fresh
                                             if f.entry.entry["type"] in OFFERED_TYPES]))
        out.extend(self.people.ambiguous(fresh, owners, accepted))
        provisional = [f.entry for f in fresh if is_provisional(f.entry.customer_id)
                       and not is_ambiguous(f.entry.customer_id)]
        if provisional:
            out.extend(await self.people.provisional_written(provisional))
        return out

    # -- surveys: hourly counters and bottom-2-box alerts ----------------------

    async def _surveys(self, surveys: Sequence[tuple[NewEntry, Record]]) -> list[Outgoing]:
        """Count each survey once in its hour; raise one alert per bottom-2-box survey."""
        if not surveys:
            return []
        await self.alerts.count_surveys([_survey_count(e, self.agent_store) for e, _ in surveys])
        bottom = [(e, r) for e, r in surveys if payload_is_bottom_2_box(e.entry["payload"])]
        if not bottom:
            return []
        # One script call per survey gives its context and rated contact and, when the
        # contact is not stored yet, registers the alert's wait for it.  Alert ids are
        # deterministic, so the wait may precede the alert: a contact stored in between
        # finds no alert to update and marks it, and `_catch_up_rated` makes good below
        # (after a crash in between, the survey's redelivery finds the contact anyway).
        found = await self.alerts.rated_contacts([
            RatedLookup(e.customer_id, e.entry["payload"].get("contact_id"), CONTEXT_SIZE,
                        alert_id_for(e.event_id)) for e, _ in bottom])
        now_ms = int(time.time() * 1000)
        raised = [self._raise(e.entry, r, rated.context, rated.contact, now_ms)
                  for (e, r), rated in zip(bottom, found, strict=True)]
        negatives = await self._open_negatives(raised)
        stored = await self.alerts.put_new(raised, now_ms, self.ack_timeout_ms)
        # A redelivered survey republishes its alert only while nothing has happened to
        # it since (version 1): a later state must not be announced as "raised" again.
        out = [self._alert_out(alert) for result, alert in stored
               if result is AddResult.NEW
               or (result is AddResult.REDELIVERED and alert["version"] == 1)]
        out += await self._link_negatives(stored, negatives)
        return out + await self._catch_up_rated(bottom, found, stored)

    async def _open_negatives(self, raised: list[Alert]) -> dict[str, Alert]:
        """Link each survey alert to the open negative-interaction alert holding a signal
        from the contact it rates (`linked_alert_id`); those alerts by id."""
        asking = [a for a in raised if a["contact_id"]]
        if not asking:
            return {}
        customers = list(dict.fromkeys(a["customer_id"] for a in asking))
        ids = {cid: list(found.values())
               for cid, found in zip(customers, await self.negatives.open_ids(customers),
                                     strict=True)}
        wanted = list(dict.fromkeys(i for found in ids.values() for i in found))
        if not wanted:
            return {}
        open_ = {a["alert_id"]: a for a in await self.alerts.get_many(wanted)
                 if a is not None and a["kind"] == NEGATIVE and a["status"] != RESOLVED}
        for alert in asking:
            for candidate in ids[alert["customer_id"]]:
                found = open_.get(candidate)
                if found is not None and holds_contact(found, cast(str, alert["contact_id"])):
                    alert["linked_alert_id"] = candidate
                    break
        return open_

    async def _link_negatives(self, stored: Sequence[tuple[AddResult, Alert]],
                              negatives: dict[str, Alert]) -> list[Outgoing]:
        """The negative-interaction alerts gaining a linked survey alert (or, after a
        crash, that gained it but may not have been published)."""
        out: list[Outgoing] = []
        for result, alert in stored:
            target = alert.get("linked_alert_id")
            if result is AddResult.DUPLICATE or target is None or target not in negatives:
                continue
            current: Alert | None = negatives[target]
            while current is not None:
                changed = with_linked(current, alert["alert_id"], utc_now_iso())
                if changed is None:
                    if result is AddResult.REDELIVERED:
                        out.append(self._alert_out(current))
                    break
                if await self.alerts.replace(changed, current["version"]):
                    negatives[target] = changed
                    out.append(self._alert_out(changed))
                    break
                current = await self.alerts.get(target)
        return out

    async def _catch_up_rated(self, bottom: Sequence[tuple[NewEntry, Record]],
                              found: Sequence[Rated],
                              stored: Sequence[tuple[AddResult, Alert]]
                              ) -> list[Outgoing]:
        """Alerts stored without a rated contact that is there now: another worker stored
        it after our lookup registered the wait but before the alert existed (its update
        marked the alert `rated_early`), or the stored alert is an earlier one (a
        redelivery after a crash, or the survey filed under another profile before)
        without the contact this lookup found.  Only those look again."""
        unrated = [(e, result, alert, rated)
                   for (e, _), rated, (result, alert) in zip(bottom, found, stored, strict=True)
                   if alert["contact_id"] and alert["rated_contact"] is None]
        if not unrated:
            return []
        early = await self.alerts.rated_early([alert["alert_id"] for _, _, alert, _ in unrated])
        return await self._rated_late([
            RatedWait(e.customer_id, cast(str, alert["contact_id"]), (alert["alert_id"],),
                      retry=result is not AddResult.NEW)
            for (e, result, alert, rated), marked in zip(unrated, early, strict=True)
            if marked or rated.contact is not None])

    async def _rated_late(self, waits: Sequence[RatedWait]) -> list[Outgoing]:
        """Publish `updated` alerts that now have the rated contact they waited for."""
        if not waits:
            return []
        found = await self.alerts.rated_contacts(
            [RatedLookup(w.customer_id, w.ref, CONTEXT_SIZE) for w in waits])
        out: list[Outgoing] = []
        for wait, rated in zip(waits, found, strict=True):
            if rated.contact is None:  # not there (yet), trimmed since, or erased
                continue
            for alert_id in wait.alert_ids:
                updated = await self._rate(alert_id, wait, rated.context, rated.contact)
                if updated is not None:
                    out.append(self._alert_out(updated))
        return out

    async def _rate(self, alert_id: str, wait: RatedWait, context: list[TimelineEntry],
                    rated: TimelineEntry) -> Alert | None:
        """The alert with its rated contact, to publish; None when there is nothing to say."""
        survey: TimelineEntry | None = None
        fetched = False  # the survey is read once, even when it is gone (erased, trimmed)
        while True:
            alert = await self.alerts.get_for_rating(alert_id)
            if alert is None:  # not stored yet: its raise catches up (`_catch_up_rated`)
                return None
            if not fetched and alert["survey_event_id"] is not None:
                survey = (await self.alerts.entries(wait.customer_id,
                                                    [alert["survey_event_id"]]))[0]
            fetched = True
            classification = (self.rules.classify(survey["payload"], rated["payload"])
                              if survey else None)
            changed = with_rated_contact(alert, rated, context, classification, utc_now_iso())
            if changed is None:  # rated already: ours, unless this repeats a crashed batch
                again = wait.retry and alert["event"] == "updated"
                return alert if again else None
            if await self.alerts.replace(changed, alert["version"]):
                return changed

    def _raise(self, survey: TimelineEntry, record: Record, context: list[TimelineEntry],
               rated: TimelineEntry | None, now_ms: int) -> Alert:
        payload = survey["payload"]
        return new_alert(
            survey=survey, context=context, rated_contact=rated,
            classification=self.rules.classify(payload, rated["payload"] if rated else None),
            scale=survey_scale(payload), raised_at=iso_ms(now_ms),
            latency_ms=max(0, now_ms - (record.timestamp_ms or now_ms)),
            ack_deadline=iso_ms(now_ms + self.ack_timeout_ms))

    # -- alert actions (cx.alert-actions.v1) and escalation -----------------------

    async def actions(self, records: Sequence[Record]) -> list[Outgoing]:
        """Apply acknowledge / callback / resolve actions, in order; reject bad ones."""
        out: list[Outgoing] = []
        for record in records:
            action = check_action(record.value)
            if isinstance(action, Rejection):
                out.append(self._reject(record, action))
                continue
            # Validated against alert-action.v1.json, which AlertAction mirrors.
            outcome = await self._apply(cast(AlertAction, action))
            if isinstance(outcome, ActionRejected):
                out.append(self._reject(record, Rejection(outcome.reason, outcome.message)))
            elif outcome is not None:
                out.append(self._alert_out(outcome))
        return out

    async def _apply(self, action: AlertAction) -> Alert | ActionRejected | None:
        """The changed alert to publish; retried when another writer got there first."""
        while True:
            alert = await self.alerts.get(action["alert_id"])
            if alert is None:
                return ActionRejected("unknown_alert", f"no alert {action['alert_id']!r}")
            if has_action(alert, action.get("action_id")):
                return alert  # our redelivery: publish again, change nothing
            changed = apply_action(alert, action, self.rules.actors, utc_now_iso())
            if isinstance(changed, ActionRejected):
                return changed
            if await self.alerts.replace(changed, alert["version"]):
                if changed["status"] not in UNACKNOWLEDGED:
                    await self.alerts.not_due([changed["alert_id"]])
                if changed["kind"] == NEGATIVE and changed["status"] == RESOLVED:
                    # The next signal about the intent opens a new alert.
                    await self.negatives.release(changed["customer_id"], changed.get("intent"),
                                                 changed["alert_id"])
                return changed

    async def escalations(self) -> tuple[list[Outgoing], list[str]]:
        """Alerts past their acknowledgement deadline: (messages, ids to clear once sent)."""
        due = await self.alerts.due(int(time.time() * 1000))
        out: list[Outgoing] = []
        for alert_id, alert in zip(due, await self.alerts.get_many(due), strict=True):
            if alert is None:
                continue
            escalated = escalate(alert, utc_now_iso())
            if escalated is not None and await self.alerts.replace(escalated, alert["version"]):
                out.append(self._alert_out(escalated))
            elif alert["status"] == ESCALATED and alert["event"] == "escalated":
                # Escalated earlier but still due: the publish may not have happened.
                out.append(self._alert_out(alert))
            else:
                log.debug("alert %s no longer needs escalating", alert_id)
        return out, due

    def _alert_out(self, alert: Alert) -> Outgoing:
        return self.messages.alert(alert)

    # -- outgoing messages ----------------------------------------------------

    def _publish(self, entry: NewEntry) -> Outgoing:
        return self.messages.entry(entry)

    def _reject(self, record: Record, rejection: Rejection) -> Outgoing:
        return self.messages.reject(record, rejection)


def _survey_count(entry: NewEntry, agents: AgentStore) -> SurveyCount:
    payload = entry.entry["payload"]
    low, high = survey_scale(payload)
    score, agent = payload["score"], payload.get("agent_id")
    fields = metric_fields(str(payload.get("contact_channel") or "-"),
                           str(payload.get("queue") or "-"), str(agent or "-"), score, low, high)
    hour = hour_of(entry.occurred_ms)
    if not agent:
        return SurveyCount(entry.event_id, hour, fields)
    # The routing hint's history: the agent's outcome on the intent, and (for a known
    # customer) how this customer rated the agent; counted once, with the survey.
    cid = None if is_provisional(entry.customer_id) else entry.customer_id
    return SurveyCount(entry.event_id, hour, fields, agents.survey_tallies(
        cid, str(agent), payload.get("intent"), hour[:6],
        top2=score >= high - 1, bottom2=is_bottom_2_box(score, low)))


def _timeline_entry(record: Record, item: Interaction, owner_of: Owner, accepted_at: str,
                    sentiment: Sentiment | None) -> NewEntry:
    """The normalised entry (schemas/timeline-entry.v1.json) for an accepted event."""
    source = record.source
    owner = owner_of.root
    entry: TimelineEntry = {
        "event_id": item.event_id,
        "customer_id": owner,
        "channel": item.channel,
        "type": item.type,
        "occurred_at": item.occurred_at,
        "accepted_at": accepted_at,
        "payload": item.payload,
        "source": source,
    }
    if item.identity:
        entry["identity"] = item.identity
    if is_provisional(owner):
        entry["provisional"] = True
    elif owner_of.filed_under != owner:
        entry["filed_under"] = owner_of.filed_under
    if sentiment is not None:
        entry["sentiment"] = sentiment.as_json()
    return NewEntry(owner, item.event_id, item.occurred_ms, jsonbytes.dumps(entry), source,
                    entry)
