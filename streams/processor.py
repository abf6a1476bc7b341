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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import orjson

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
    refiled_alert,
    with_rated_contact,
)
from domain.contacts import contact_key
from domain.identity import (
    AMBIGUOUS,
    CLAIMED,
    CONFIRMED,
    MERGED,
    RELEASED,
    UNMERGED,
    NeverMatch,
    Owner,
    identity_event,
    is_ambiguous,
    merge_cycle,
    profile_identifier,
    root_of,
)
from domain.negative import KIND as NEGATIVE
from domain.negative import holds_contact, with_linked
from domain.records import Alert, AlertAction, TimelineEntry
from domain.rules import Rules
from domain.sentiment import Sentiment, customer_text, score_entry
from domain.signal_config import SignalConfig
from domain.survey_metrics import hour_of, metric_fields
from domain.surveys import payload_is_bottom_2_box
from kernel.settings import Settings
from kernel.times import iso_ms, utc_now_iso
from schemas.validate import (
    Interaction,
    Rejection,
    check_action,
    check_customer,
    check_identity_action,
    check_interaction,
    customer_identity_keys,
    identity_keys,
    survey_scale,
)
from store.alerts import AlertStore, Rated, RatedLookup, SurveyCount
from store.contact_reasons import ContactReasonStore
from store.identities import IdentityStore, ProfileChange
from store.keys import is_provisional, provisional_id
from store.negatives import NegativeStore
from store.timeline import AddResult, NewEntry, RatedWait, TimelineStore
from streams.detection import Detector, Fresh
from streams.identity import (
    carries,
    file_entries,
    filed_under_any,
    move_entries,
    resolve_owners,
)
from streams.records import Outgoing, Record, dead_letter

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, settings: Settings, store: TimelineStore, alerts: AlertStore,
                 rules: Rules, *, signals: SignalConfig | None = None,
                 negatives: NegativeStore | None = None,
                 reasons: ContactReasonStore | None = None,
                 identities: IdentityStore | None = None) -> None:
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
        out.extend(self._ambiguous(fresh, owners, accepted))
        provisional = [f.entry for f in fresh if is_provisional(f.entry.customer_id)
                       and not is_ambiguous(f.entry.customer_id)]
        if provisional:
            out.extend(await self._provisional_written(provisional))
        return out

    def _ambiguous(self, fresh: Sequence[Fresh], owners: Sequence[Owner],
                   accepted: Sequence[tuple[Record, Interaction]]) -> list[Outgoing]:
        """An `ambiguous` identity event for each interaction filed under an ambiguous
        profile: the agent who takes it is asked who is calling."""
        if not any(is_ambiguous(f.entry.customer_id) for f in fresh):
            return []
        candidates = {item.event_id: owner.candidates
                      for (_, item), owner in zip(accepted, owners, strict=True)
                      if owner.candidates}
        at = utc_now_iso()
        return [self._identity_out(identity_event(
                    AMBIGUOUS, f.entry.customer_id, at, _record_cause(f.record),
                    event_id=f.entry.event_id,
                    identifiers=[profile_identifier(f.entry.customer_id)],
                    candidates=list(candidates.get(f.entry.event_id, ()))))
                for f in fresh if is_ambiguous(f.entry.customer_id)]

    async def _provisional_written(self, written: Sequence[NewEntry]) -> list[Outgoing]:
        """Remember every identifier of the provisional entries just written (any of them
        being claimed links the entry), and link those a customer claimed meanwhile:
        a customer record processed concurrently (possibly by another worker) may have
        claimed one between our lookup and our write, and would not have seen them."""
        carried = {(key, e.customer_id)
                   for e in written
                   for key in self.never.keep(identity_keys(e.entry.get("identity") or {}))}
        pairs = sorted(carried)
        found = await self.identities.alias_and_look_up(
            [(key, pid) for key, pid in pairs if provisional_id(key) != pid],
            [key for key, _ in pairs])
        out: list[Outgoing] = []
        for (key, pid), claimants in zip(pairs, found, strict=True):
            if len(claimants) == 1:
                out.extend(await self._link(pid, claimants[0], key))
        return out

    async def _link(self, pid: str, cid: str, key: str) -> list[Outgoing]:
        """Move a provisional profile's entries carrying `key` to the customer claiming
        it (its root, when merged); alerts' waits for contacts too."""
        moved = await move_entries(self.store, self.identities, pid, cid,
                                   None if provisional_id(key) == pid else carries(key),
                                   linked_from=pid)
        if provisional_id(key) != pid:
            await self.identities.drop_alias(key, pid)
        root = root_of(cid, await self.identities.merged_into([cid]))
        out = [self._publish(e) for e in moved.entries]
        out.extend(await self._rated_late(moved.waits))
        out.extend(await self._rated_late(await self.alerts.move_waits(pid, root)))
        if moved.count:
            log.debug("linked a provisional profile to a customer: %d entries", moved.count)
        return out

    # -- surveys: hourly counters and bottom-2-box alerts ----------------------

    async def _surveys(self, surveys: Sequence[tuple[NewEntry, Record]]) -> list[Outgoing]:
        """Count each survey once in its hour; raise one alert per bottom-2-box survey."""
        if not surveys:
            return []
        await self.alerts.count_surveys([_survey_count(e) for e, _ in surveys])
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
        return Outgoing(self.topics.alerts, alert["customer_id"].encode(), orjson.dumps(alert))

    # -- customer records (cx.customers.v1, compacted) -----------------------

    async def customers(self, records: Sequence[Record]) -> list[Outgoing]:
        """Records in order: claims, merges and unmerges, erasures, then the provisional
        profiles the claims link."""
        out: list[Outgoing] = []
        updates: list[tuple[Record, str, dict | None]] = []
        for record in records:
            parsed = self._customer_update(record)
            if isinstance(parsed, Rejection):
                out.append(self._reject(record, parsed))
            else:
                updates.append((record, *parsed))
        if not updates:
            return out

        ids = list(dict.fromkeys(cid for _, cid, _ in updates))
        current = dict(zip(ids, await self.store.profiles(ids), strict=True))
        targets = [t for _, _, new in updates if (t := _into(new))]
        merges = await self.identities.merged_into([*ids, *targets])
        changes: list[ProfileChange] = []
        for record, cid, new in updates:
            old = current[cid]
            old_into, new_into = _into(old), _into(new)
            if new_into and new_into != old_into and merge_cycle(cid, new_into, merges):
                out.append(self._reject(record, Rejection(
                    "merge_cycle", f"merging {cid!r} into {new_into!r} would make a loop: "
                    f"{new_into!r} is (merged into) {cid!r}")))
                continue
            cause = _record_cause(record)
            if old_into and old_into != new_into:
                out += await self._unmerge(cid, old_into, merges, cause)
                merges.pop(cid, None)
            if new_into:  # again when unchanged: finishes a move a crash interrupted
                merges[cid] = new_into
                out += await self._merge(cid, new_into, merges, cause,
                                         announce=new_into != old_into)
            old_keys = self.never.keep(customer_identity_keys(old)) if old else []
            new_keys = self.never.keep(customer_identity_keys(new)) if new else []
            claimed = tuple(k for k in new_keys if k not in old_keys)
            released = tuple(k for k in old_keys if k not in new_keys)
            changes.append(ProfileChange(cid, new, claimed=tuple(new_keys), released=released))
            out += self._claim_events(cid, claimed, released, cause)
            current[cid] = new
            if new is None:  # now, so a record recreating the customer later stays
                out += await self._erase(cid, merges)
        await self.identities.apply_profiles(changes)
        # An alert raised while its survey sat in a provisional profile keeps that
        # profile's id after linking: erase those of the identifiers the customer held.
        held = dict.fromkeys(provisional_id(key) for c in changes if c.record is None
                             for key in c.released)
        for pid in held:
            if await self.alerts.erase_customer(pid):
                out.append(Outgoing(self.topics.alerts, pid.encode(), None))
        out.extend(await self._link_claimed(changes, current))
        return out

    def _claim_events(self, cid: str, claimed: Sequence[str], released: Sequence[str],
                      cause: dict) -> list[Outgoing]:
        at = utc_now_iso()
        return [self._identity_out(identity_event(event, cid, at, cause, identifiers=list(keys)))
                for event, keys in ((CLAIMED, claimed), (RELEASED, released)) if keys]

    async def _merge(self, cid: str, into: str, merges: dict[str, str], cause: dict, *,
                     announce: bool) -> list[Outgoing]:
        """Fold `cid` (and whatever was merged into it) into the root of `into`.  The
        merge is recorded first, so an entry arriving meanwhile for `cid` is refused by
        the insert and filed under the root; then everything moves."""
        root = root_of(into, merges)
        await self.identities.set_merge(cid, into)
        moved = await move_entries(self.store, self.identities, cid, root)
        alerts = await self._move_alerts(cid, root)
        waits = await self.alerts.move_waits(cid, root)
        await self.negatives.merge_into(cid, root)
        out = [self._publish(e) for e in moved.entries]
        out += [self._alert_out(a) for a in alerts]
        out += await self._rated_late([*moved.waits, *waits])
        if announce or moved.count or alerts:
            out.append(self._identity_out(identity_event(
                MERGED, cid, utc_now_iso(), cause, into=into, root=root,
                moved={"entries": moved.count, "alerts": len(alerts)})))
        return out

    async def _unmerge(self, cid: str, into: str, merges: dict[str, str], cause: dict
                       ) -> list[Outgoing]:
        """Give `cid` and the customers merged into it back their entries and alerts from
        the root they were merged into: whatever was filed under them, before the merge
        or since (provenance, `filed_under`)."""
        root = root_of(into, merges)
        await self.identities.clear_merge(cid, into)
        parts = await self.identities.parts(cid)
        select = filed_under_any(parts)
        moved = await move_entries(self.store, self.identities, root, cid, select)
        # A worker that resolved to the root just before the merge was cleared may have
        # filed an entry of ours there since: a second pass takes it.
        again = await move_entries(self.store, self.identities, root, cid, select)
        alerts = await self._move_alerts(root, cid, select)
        out = [self._publish(e) for e in (*moved.entries, *again.entries)]
        out += [self._alert_out(a) for a in alerts]
        out += await self._rated_late([*moved.waits, *again.waits])
        out.append(self._identity_out(identity_event(
            UNMERGED, cid, utc_now_iso(), cause, into=into, root=root,
            moved={"entries": moved.count + again.count, "alerts": len(alerts)})))
        return out

    async def _move_alerts(self, source: str, to: str,
                           select: Callable[[Mapping[str, Any]], bool] | None = None
                           ) -> list[Alert]:
        """Move `source`'s alerts (those `select` picks) to `to`; the new versions."""
        picked = [a for a in await self.alerts.of_customer(source)
                  if select is None or select(a)]
        done: list[Alert] = []
        for _ in range(5):  # compare-and-set: re-read those somebody changed meanwhile
            changes = [(changed, a["version"]) for a in picked
                       if (changed := refiled_alert(a, to, utc_now_iso())) is not None]
            ok = await self.alerts.replace_many(changes)
            done += [changed for (changed, _), won in zip(changes, ok, strict=True) if won]
            lost = [changed["alert_id"] for (changed, _), won in zip(changes, ok, strict=True)
                    if not won]
            if not lost:
                break
            picked = [a for a in await self.alerts.get_many(lost) if a is not None]
        await self.alerts.refile([a["alert_id"] for a in done], source, to)
        return done

    async def _erase(self, cid: str, merges: dict[str, str]) -> list[Outgoing]:
        """Erase the customer and every customer merged into it; when the customer is
        itself merged into another, what was filed under it there goes too."""
        parts = await self.identities.parts(cid)
        into = merges.pop(cid, None)
        if into is not None:
            root = root_of(into, merges)
            select = filed_under_any(parts)
            await self.store.drop_entries(root, [s.entry["event_id"] for s in
                                                 await self.store.take_all(root)
                                                 if select(s.entry)])
            await self.alerts.erase([a["alert_id"] for a in await self.alerts.of_customer(root)
                                     if select(a)], root)
            await self.identities.clear_merge(cid, into)
        below = parts[1:]
        records = await self.store.profiles(below)
        await self.identities.apply_profiles([
            ProfileChange(p, None, released=tuple(customer_identity_keys(r) if r else ()))
            for p, r in zip(below, records, strict=True)])
        out: list[Outgoing] = []
        for part in parts:
            await self.store.erase(part)
            await self.alerts.erase_customer(part)
            await self.negatives.erase_customer(part)
            await self.identities.erase(part)
            merges.pop(part, None)
            # Tombstones (key = customer id, value null) on the output topics, so
            # compacted copies and downstream stores drop the customer.  Before what
            # linking publishes: a customer recreated later in the batch keeps the
            # entries linked to it.
            out += [Outgoing(topic, part.encode(), None) for topic in
                    (self.topics.timeline, self.topics.alerts, self.topics.identity)]
        return out

    def _customer_update(self, record: Record) -> tuple[str, dict | None] | Rejection:
        if record.value is None:  # tombstone: erase the customer named by the key
            cid = (record.key or b"").decode("utf-8", "replace")
            # A key no customer record could carry (schemas/customer.v1.json: not empty,
            # no leading '~' or '}') names nobody; '}' would also break the cluster slot.
            if not cid or is_provisional(cid) or cid.startswith("}"):
                return Rejection("no_customer", "tombstone without a customer_id key")
            return cid, None
        checked = check_customer(record.value)
        if isinstance(checked, Rejection):
            return checked
        if checked.get("merged_into") == checked["customer_id"]:
            return Rejection("merge_cycle", f"{checked['customer_id']!r} cannot be merged "
                             "into itself")
        return checked["customer_id"], checked

    async def _link_claimed(
        self, changes: Sequence[ProfileChange], final: dict[str, dict | None]
    ) -> list[Outgoing]:
        """Link the provisional profiles holding an identifier a customer now claims
        alone (one that two customers claim stays where it is: it is shared)."""
        claims = {key: c.customer_id for c in changes if final.get(c.customer_id) is not None
                  for key in c.claimed}
        if not claims:
            return []
        keys = list(claims)
        found = await self.identities.claimants(keys)
        aliases = await self.identities.aliases(keys)
        named = [provisional_id(k) for k in keys]
        exists = await self.store.exists_many(named)
        out: list[Outgoing] = []
        for key, claimants, more, pid, there in zip(keys, found, aliases, named, exists,
                                                    strict=True):
            if len(claimants) != 1:
                continue
            for source in ([pid] if there else []) + more:
                out.extend(await self._link(source, claimants[0], key))
        return out

    # -- identity actions (cx.identity-actions.v1): who is calling ---------------

    async def identity_actions(self, records: Sequence[Record]) -> list[Outgoing]:
        """Confirmations of who is calling on a shared identifier: file the interaction
        (and its alerts) under the confirmed customer."""
        out: list[Outgoing] = []
        for record in records:
            action = check_identity_action(record.value)
            if isinstance(action, Rejection):
                out.append(self._reject(record, action))
                continue
            out += await self._confirm(record, action)
        return out

    async def _confirm(self, record: Record, action: dict) -> list[Outgoing]:
        profile, event_id, cid = action["profile_id"], action["event_id"], action["customer_id"]
        if not is_provisional(profile):
            return [self._reject(record, Rejection(
                "not_ambiguous", f"{profile!r} is not an ambiguous or provisional profile"))]
        (profile_record,) = await self.store.profiles([cid])
        if profile_record is None:
            return [self._reject(record, Rejection("unknown_customer", f"no customer {cid!r}"))]
        (claimants,) = await self.identities.claimants([profile_identifier(profile)])
        merges = await self.identities.merged_into([*claimants, cid])
        if root_of(cid, merges) not in {root_of(c, merges) for c in claimants}:
            return [self._reject(record, Rejection(
                "not_a_candidate", f"{cid!r} does not claim the identifier of {profile!r}"))]
        (confirmed,) = await self.alerts.entries(profile, [event_id])
        # The whole contact: a call's started and ended events are one caller.
        contact = contact_key(cast(dict, confirmed)) if confirmed is not None else None
        moved = await move_entries(
            self.store, self.identities, profile, cid,
            lambda entry: entry["event_id"] == event_id
            or (contact is not None and contact_key(cast(dict, entry)) == contact),
            linked_from=profile)
        root = root_of(cid, await self.identities.merged_into([cid]))
        alerts = await self._move_alerts(
            profile, root, lambda a: a.get("survey_event_id") == event_id)
        out = [self._publish(e) for e in moved.entries]
        out += [self._alert_out(a) for a in alerts]
        out += await self._rated_late(moved.waits)
        if not moved.count and not alerts:
            (stored,) = await self.alerts.entries(root, [event_id])
            if stored is None:
                return [self._reject(record, Rejection(
                    "unknown_event", f"no interaction {event_id!r} in {profile!r}"))]
        cause = {"actor": action["actor"], "action_id": action.get("action_id")}
        out.append(self._identity_out(identity_event(
            CONFIRMED, cid, utc_now_iso(), cause, event_id=event_id, profile_id=profile,
            root=root)))
        return out

    # -- outgoing messages ----------------------------------------------------

    def _identity_out(self, event: dict) -> Outgoing:
        return Outgoing(self.topics.identity, event["customer_id"].encode(), orjson.dumps(event))

    def _publish(self, entry: NewEntry) -> Outgoing:
        return Outgoing(self.topics.timeline, entry.customer_id.encode(), entry.body,
                        channel=entry.entry.get("channel"))

    def _reject(self, record: Record, rejection: Rejection) -> Outgoing:
        return dead_letter(record, rejection.reason, rejection.message, self.topics.deadletter)


def _survey_count(entry: NewEntry) -> SurveyCount:
    payload = entry.entry["payload"]
    low, high = survey_scale(payload)
    fields = metric_fields(str(payload.get("contact_channel") or "-"),
                           str(payload.get("queue") or "-"), str(payload.get("agent_id") or "-"),
                           payload["score"], low, high)
    return SurveyCount(entry.event_id, hour_of(entry.occurred_ms), fields)


def _into(record: dict | None) -> str | None:
    into = record.get("merged_into") if record else None
    return into if isinstance(into, str) and into else None


def _record_cause(record: Record) -> dict:
    return {"record": {"topic": record.topic, "partition": record.partition,
                       "offset": record.offset}}


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
    return NewEntry(owner, item.event_id, item.occurred_ms, orjson.dumps(entry), source, entry)
