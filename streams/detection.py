"""The "detect" stage: signals of a bad experience in the batch's new entries, turned into
negative-interaction alerts (at most one open per customer and intent) and counted
as contact reasons.

Per batch: one script call records the contacts, counts them as contact reasons and
answers the repeat and abandoned-call questions; only customers with a signal cost
more (their open alert is read and replaced, compare-and-set).  Every step is
idempotent, so a redelivered batch adds nothing twice: each contact is remembered
and counted once, and signals are one per (rule, contact).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.alerts import RESOLVED
from domain.contact_reasons import dimensions
from domain.contacts import normalise_intent, parse_ms
from domain.negative import is_full, new_negative_alert, new_signals, with_signals
from domain.records import Alert, TimelineEntry
from domain.rules import UNCLASSIFIED, Classification, Rules
from domain.sentiment import Sentiment
from domain.signal_config import SignalConfig
from domain.signals import (
    ABANDONED,
    REPEAT,
    Signal,
    contact_of,
    entry_signals,
    is_abandoned,
    is_inbound_contact,
)
from kernel.times import iso_ms, utc_now_iso
from store.alerts import AlertStore
from store.contact_reasons import ContactReasonStore
from store.negatives import ContactFact, ContactRules, ContactSeen, NegativeStore, Swap
from store.timeline import AddResult, NewEntry
from streams.records import Record

log = logging.getLogger(__name__)

# The customer's newest entries a negative-interaction alert carries.  Fewer than a
# survey alert's: its signals already name the contacts that matter, and each entry
# (a chat transcript, say) is copied into every version published.
CONTEXT_SIZE = 5


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Fresh:
    """A new (or our own redelivered) entry of the batch, with its sentiment."""

    entry: NewEntry
    record: Record
    sentiment: Sentiment | None
    result: AddResult
    text: str | None = None  # the customer's words (domain.sentiment.customer_text)


@dataclass(frozen=True, slots=True)
class _Signalled:
    item: Fresh
    signals: list[Signal]


class Detector:
    def __init__(self, config: SignalConfig, rules: Rules, alerts: AlertStore,
                 negatives: NegativeStore, reasons: ContactReasonStore, *,
                 ack_timeout_ms: int) -> None:
        self.config = config
        self.rules = rules
        self.alerts = alerts
        self.negatives = negatives
        self.reasons = reasons
        self.ack_timeout_ms = ack_timeout_ms
        repeat, operational = config.repeat_contact, config.operational
        self.contact_rules = ContactRules(
            repeat_window_ms=repeat.within_days * 86_400_000,
            # 0: the script looks for no abandoned call (nor counts one as negative).
            abandoned_window_ms=(operational.abandoned_followup_minutes * 60_000
                                 if operational.enabled else 0),
            repeat_contacts=repeat.contacts if repeat.enabled else 0)

    async def detect(self, items: Sequence[Fresh]) -> list[Alert]:
        """The alerts raised or changed by the batch's entries, to publish."""
        config = self.config
        own = [entry_signals(item.entry.entry, item.sentiment, config, text=item.text)
               for item in items]
        contacts: list[tuple[int, str, str | None]] = []  # (item number, contact, intent)
        facts: list[ContactFact] = []
        for n, item in enumerate(items):
            entry = item.entry.entry
            if not is_inbound_contact(entry):
                continue
            contact, intent = contact_of(entry), _intent(entry)
            queue = entry["payload"].get("queue")
            contacts.append((n, contact, intent))
            facts.append(ContactFact(
                item.entry.customer_id, contact, intent, item.entry.occurred_ms,
                is_abandoned(entry),
                dimensions(entry["channel"], queue if isinstance(queue, str) else None, intent),
                bool(own[n])))
        seen = await self.negatives.see_contacts(facts, self.contact_rules)
        for (n, contact, intent), s in zip(contacts, seen, strict=True):
            own[n] += self._remembered(items[n], contact, intent, s)
        signalled = [_Signalled(item, found) for item, found in zip(items, own, strict=True)
                     if found]
        changed = await self._alerts(signalled)
        # A redelivered batch may follow a crash between an alert's store and its index.
        again = {(s.item.entry.customer_id, _intent(s.item.entry.entry)) for s in signalled
                 if s.item.result is AddResult.REDELIVERED}
        await self.alerts.index_again([a for a in changed
                                       if (a["customer_id"], a.get("intent")) in again])
        raised = [(a["alert_id"], _ms(a["raised_at"])) for a in changed if a["version"] == 1]
        await self.reasons.count_alerts(raised)
        return changed

    def _remembered(self, item: Fresh, contact: str, intent: str | None, seen: ContactSeen
                    ) -> list[Signal]:
        """The signals that need earlier contacts: repeat contact, after an abandoned call."""
        repeat = self.config.repeat_contact
        is_repeat = repeat.enabled and seen.same_intent >= repeat.contacts
        follows = self.config.operational.enabled and seen.follows_abandoned
        if not (is_repeat or follows):
            return []
        entry = item.entry.entry
        base: dict[str, Any] = {"event_id": entry["event_id"], "channel": entry["channel"],
                                "contact": contact, "occurred_at": entry["occurred_at"]}
        found: list[Signal] = []
        if is_repeat:
            found.append(Signal(REPEAT, **base, count=seen.same_intent,
                                detail=f"contact {seen.same_intent} about "
                                       f"{intent!r} within {repeat.within_days} days"))
        if follows:
            found.append(Signal(ABANDONED, **base,
                                detail=f"after abandoned {seen.follows_abandoned}"))
        return found

    async def _alerts(self, signalled: Sequence[_Signalled]) -> list[Alert]:
        """One round trip per step for the whole batch: read the open alerts, add the new
        signals to them (compare-and-set), raise the rest (claim, then store).  A group
        that loses a race goes through `_one`, which retries until it wins."""
        groups: dict[tuple[str, str | None], list[_Signalled]] = {}
        for s in signalled:
            groups.setdefault((s.item.entry.customer_id, _intent(s.item.entry.entry)),
                              []).append(s)
        if not groups:
            return []
        customers = list(dict.fromkeys(cid for cid, _ in groups))
        opened = dict(zip(customers, await self.negatives.open_ids(customers), strict=True))
        pointed = {key: opened[key[0]].get(key[1] or "") for key in groups}
        wanted = list(dict.fromkeys(i for i in pointed.values() if i))
        current = dict(zip(wanted, await self.alerts.get_many(wanted), strict=True))
        now = utc_now_iso()
        out: list[Alert] = []
        retry: list[tuple[str, str | None]] = []
        updates: list[tuple[tuple[str, str | None], Alert, int]] = []
        raises: list[tuple[tuple[str, str | None], list[dict[str, Any]], str | None]] = []
        for key, members in groups.items():
            signals = [s.as_json() for m in members for s in m.signals]
            open_id = pointed[key]
            alert = current.get(open_id) if open_id else None
            if alert is not None and alert["status"] != RESOLVED:
                changed = with_signals(alert, signals, self._reclassify(alert, members), now)
                if changed is not None:
                    updates.append((key, changed, alert["version"]))
                elif any(m.item.result is AddResult.REDELIVERED for m in members):
                    out.append(alert)  # as stored: its publish may not have happened
                continue
            fresh = new_signals(alert, signals)  # a resolved alert's own stay with it
            if fresh:
                # Claimed but not stored: raised under the claimed id (see `_one`).
                raises.append((key, fresh, open_id if alert is None else None))
        done = await self.alerts.replace_many([(a, v) for _, a, v in updates])
        out += [a for (_, a, _), ok in zip(updates, done, strict=True) if ok]
        retry += [key for (key, _, _), ok in zip(updates, done, strict=True) if not ok]
        out += await self._raise_many(raises, groups, pointed, retry)
        for key in retry:
            alert = await self._one(*key, groups[key], pointed[key])
            if alert is not None:
                out.append(alert)
        return out

    async def _raise_many(self, raises: Sequence[tuple[tuple[str, str | None],
                                                       list[dict[str, Any]], str | None]],
                          groups: dict[tuple[str, str | None], list[_Signalled]],
                          pointed: dict[tuple[str, str | None], str | None],
                          retry: list[tuple[str, str | None]]) -> list[Alert]:
        """Raise the new alerts: contexts, claims and stores each in one round trip."""
        if not raises:
            return []
        found = await self.alerts.newest([key[0] for key, _, _ in raises], CONTEXT_SIZE)
        built = [self._build(key, fresh, groups[key], context, claimed)
                 for (key, fresh, claimed), context in zip(raises, found, strict=True)]
        to_claim = [(key, alert) for (key, _, claimed), alert in zip(raises, built, strict=True)
                    if claimed is None]
        now_open = await self.negatives.swap_many([
            Swap(key[0], key[1], pointed[key], alert["alert_id"]) for key, alert in to_claim])
        lost = {key for (key, alert), got in zip(to_claim, now_open, strict=True)
                if got != alert["alert_id"]}
        for (key, alert), got in zip(to_claim, now_open, strict=True):
            if got != alert["alert_id"]:
                pointed[key] = got  # another batch opened one meanwhile: add to it
        retry += lost
        storing = [(key, alert) for (key, _, _), alert in zip(raises, built, strict=True)
                   if key not in lost]
        if not storing:
            return []
        now_ms = int(time.time() * 1000)
        stored = await self.alerts.put_new([a for _, a in storing], now_ms, self.ack_timeout_ms)
        out: list[Alert] = []
        for (key, alert), (result, _) in zip(storing, stored, strict=True):
            if result is AddResult.NEW:
                out.append(alert)
            else:  # stored meanwhile (or before a crash): add to it
                pointed[key] = alert["alert_id"]
                retry.append(key)
        return out

    async def _one(self, cid: str, intent: str | None, members: Sequence[_Signalled],
                   open_id: str | None) -> Alert | None:
        """The customer's open alert about `intent` with these signals: raised, updated,
        or (our redelivery, nothing new) as stored; None when there is nothing to say."""
        signals = [s.as_json() for m in members for s in m.signals]
        redelivered = any(m.item.result is AddResult.REDELIVERED for m in members)
        while True:
            alert = await self.alerts.get(open_id) if open_id else None
            if alert is not None and alert["status"] != RESOLVED:
                changed = with_signals(alert, signals, self._reclassify(alert, members),
                                       utc_now_iso())
                if changed is None:
                    return alert if redelivered else None
                if await self.alerts.replace(changed, alert["version"]):
                    return changed
                continue  # another writer changed it first: read it again
            # None open: signals a resolved alert already holds (a redelivery) stay there.
            fresh = new_signals(alert, signals)
            if not fresh:
                return None
            if open_id and alert is None:
                # Claimed, not stored yet: another batch is raising it this moment, or one
                # crashed in between.  Either way it is the one: raise it under that id,
                # and whichever stores it second adds its signals to the first's.
                raised = await self._raise(cid, intent, fresh, members, alert_id=open_id)
            else:
                raised = await self._raise(cid, intent, fresh, members)
                now_open = await self.negatives.swap(cid, intent, open_id, raised["alert_id"])
                if now_open != raised["alert_id"]:
                    open_id = now_open  # another batch opened one meanwhile: add to it
                    continue
            [(result, stored)] = await self.alerts.put_new(
                [raised], _ms(raised["raised_at"]), self.ack_timeout_ms)
            if result is AddResult.NEW:
                return raised
            if stored["status"] == RESOLVED:  # the same first signal opened one before
                log.warning("negative-interaction alert %s is resolved already; "
                            "signals %s not raised again", stored["alert_id"], fresh)
                return None
            alert, open_id = stored, stored["alert_id"]  # stored meanwhile: add to it

    async def _raise(self, cid: str, intent: str | None, signals: list[dict[str, Any]],
                     members: Sequence[_Signalled], *, alert_id: str | None = None) -> Alert:
        [context] = await self.alerts.newest([cid], CONTEXT_SIZE)
        return self._build((cid, intent), signals, members, context, alert_id)

    def _build(self, key: tuple[str, str | None], signals: list[dict[str, Any]],
               members: Sequence[_Signalled], context: list[TimelineEntry],
               alert_id: str | None) -> Alert:
        first = next(m.item for m in members
                     if m.item.entry.event_id == signals[0]["event_id"])
        now_ms = int(time.time() * 1000)
        return new_negative_alert(
            customer_id=key[0], intent=key[1], signals=signals, trigger=first.entry.entry,
            context=context, classification=self._classify(first), raised_at=iso_ms(now_ms),
            latency_ms=max(0, now_ms - (first.record.timestamp_ms or now_ms)),
            ack_deadline=iso_ms(now_ms + self.ack_timeout_ms), alert_id=alert_id)

    def _reclassify(self, alert: Alert, members: Sequence[_Signalled]) -> Classification | None:
        """The rules' category from the newest words, only while the alert has none and
        may still take signals (domain.negative.with_signals keeps any other)."""
        if alert["category"] != UNCLASSIFIED or is_full(alert):
            return None
        return self._classify(members[-1])

    def _classify(self, member: _Signalled | Fresh) -> Classification:
        """The alert rules read the customer's words as the survey comment, and the
        contact as the rated one (transfers, queue, outcome)."""
        item = member.item if isinstance(member, _Signalled) else member
        entry = item.entry.entry
        payload = entry["payload"]
        return self.rules.classify({"comment": item.text, "queue": payload.get("queue"),
                                    "contact_channel": entry["channel"]}, payload)


def _intent(entry: Any) -> str | None:
    return normalise_intent(entry["payload"].get("intent"))


def _ms(at: str) -> int:
    return parse_ms(at) or int(time.time() * 1000)
