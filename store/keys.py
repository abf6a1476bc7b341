"""Redis key layout.

Every key of one customer carries the customer id as its hash tag
(`{...}`), so on Redis Cluster a customer's keys live in one slot and the
Lua script that writes an entry can touch all of them atomically.  The id is
placed inside the braces verbatim; even an id containing `}` still yields a
tag shared by all of that customer's keys, and a key never collides with
another customer's because the suffix is always appended after the tag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis.crc import key_slot

# Re-exported: the profile ids' marks are the domain's (domain.identity).
from domain.identity import (
    AMBIGUOUS_MARK,
    PROVISIONAL_MARK,
    ambiguous_id,
    is_ambiguous,
    is_provisional,
    provisional_id,
)

__all__ = ["AMBIGUOUS_MARK", "PROVISIONAL_MARK", "Keys", "ambiguous_id", "is_ambiguous",
           "is_provisional", "provisional_id", "slot_groups"]

T = TypeVar("T")

@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "cxt"

    def timeline(self, customer_id: str) -> str:
        """Sorted set: member event_id, score occurred_at in epoch ms."""
        return f"{self.prefix}:{{{customer_id}}}:tl"

    def entries(self, customer_id: str) -> str:
        """Hash: event_id -> timeline entry (JSON)."""
        return f"{self.prefix}:{{{customer_id}}}:ev"

    def intent_index(self, customer_id: str, intent: str) -> str:
        """Sorted set: the customer's newest contacts directly relevant to one configured
        intent (domain.relevance), member its anchor (call or chat id, else event_id),
        score the newest occurred ms of its entries; capped at the newest few and trimmed
        with the timeline's retention (store.timeline, read by store.digest)."""
        return f"{self.prefix}:{{{customer_id}}}:ix:{intent}"

    def survey_index(self, customer_id: str) -> str:
        """Sorted set: the event ids of the customer's surveys, score their occurred ms,
        plus a member marking that it holds all of them (store.timeline keeps it, trimmed
        with the timeline's age limit; read by store.digest)."""
        return f"{self.prefix}:{{{customer_id}}}:sv"

    def rated_waits(self, customer_id: str) -> str:
        """Hash: a survey's contact_id not in the timeline when its alert was raised ->
        the ids of the alerts waiting for it (space-separated); expires a week after
        the last write."""
        return f"{self.prefix}:{{{customer_id}}}:rwait"

    def contacts(self, customer_id: str) -> str:
        """Hash: the customer's recent contacts (each one's first time, intent and first
        count as a contact reason) and abandoned calls, for the repeat-contact and
        abandoned-call signals and the contact-reason counts; kept for twice the signals'
        windows (store.negatives)."""
        return f"{self.prefix}:{{{customer_id}}}:recent"

    def open_negative(self, customer_id: str) -> str:
        """Hash: intent ("" for none) -> id of the customer's open negative-interaction
        alert about it (one at most; a resolved one is replaced by the next)."""
        return f"{self.prefix}:{{{customer_id}}}:niopen"

    def profile(self, customer_id: str) -> str:
        """String: the latest customer record from cx.customers.v1 (JSON)."""
        return f"{self.prefix}:{{{customer_id}}}:profile"

    def alert(self, alert_id: str) -> str:
        """String: the alert (JSON).  Keyed by the alert alone, so the alert of a survey
        is unique even when the survey was first filed under a provisional profile."""
        return f"{self.prefix}:{{{alert_id}}}:alert"

    def rated_early(self, alert_id: str) -> str:
        """String, TTL a day: the alert's rated contact arrived while the alert was not
        stored yet (its survey had looked for it a moment before), so the alert, once
        stored, looks for it again.  In the alert's slot, to be set atomically with
        finding no alert."""
        return f"{self.prefix}:{{{alert_id}}}:early"

    def customer_alerts(self, customer_id: str) -> str:
        """Set: the customer's alert ids."""
        return f"{self.prefix}:{{{customer_id}}}:alerts"

    def alerts_recent(self) -> str:
        """Sorted set: alert_id by raised time (ms), the newest few thousand."""
        return f"{self.prefix}:alerts:recent"

    def deadletters_replayed(self, topic: str) -> str:
        """Hash: "<partition>:<offset>" of each dead letter on `topic` replayed by
        `cxt deadletters replay` -> when (epoch ms); so each is replayed at most once."""
        return f"{self.prefix}:{{dl:{topic}}}:replayed"

    def alerts_due(self) -> str:
        """Sorted set: unacknowledged alert_id by acknowledgement deadline (ms)."""
        return f"{self.prefix}:alerts:due"

    def survey_counters(self, bucket: str) -> str:
        """Hash: survey counters of one UTC hour ("2026112210"), see domain.survey_metrics."""
        return f"{self.prefix}:{{m:{bucket}}}:n"

    def survey_counted(self, bucket: str) -> str:
        """Set: survey event ids already counted in that hour (kept a week)."""
        return f"{self.prefix}:{{m:{bucket}}}:seen"

    def contact_counters(self, hour: str) -> str:
        """Hash: contact-reason counters of one UTC hour ("2026112210"), see
        domain.contact_reasons; counted by store.negatives.  The hours of a day share
        a tag, and their alert marks (`contact_counted`)."""
        return f"{self.prefix}:{{k:{hour[:8]}}}:{hour[8:]}:n"

    def contact_counted(self, hour: str) -> str:
        """Hash: the negative-interaction alerts counted in that hour ("a|<alert_id>"
        marks); kept a week."""
        return f"{self.prefix}:{{k:{hour[:8]}}}:{hour[8:]}:seen"

    def identity(self, identity_key: str) -> str:
        """String: identifier ("phone:+44...") -> the customer ids that claim it, joined
        by newlines (store.identities)."""
        return f"{self.prefix}:{{{identity_key}}}:id"

    def merged_into(self, customer_id: str) -> str:
        """String: the customer this one is merged into (its record's `merged_into`)."""
        return f"{self.prefix}:{{{customer_id}}}:into"

    def merged_from(self, customer_id: str) -> str:
        """Set: the customers merged straight into this one."""
        return f"{self.prefix}:{{{customer_id}}}:merged"

    def provisional_aliases(self, identity_key: str) -> str:
        """Set: provisional profiles holding an entry that carries this identifier after
        the one the profile is named after."""
        return f"{self.prefix}:{{{identity_key}}}:alias"

    # -- self-service: the customer's own notes and preferences (streams.self_service) --

    def notes(self, customer_id: str) -> str:
        """Hash: note_id -> the customer's note (JSON: note_id, text, added_at, event_id)."""
        return f"{self.prefix}:{{{customer_id}}}:notes"

    def preferences(self, customer_id: str) -> str:
        """String: the customer's latest preferences (JSON, schemas/self-service.v1.json's
        preferences plus `set_at`, `event_id` and `occurred_ms`)."""
        return f"{self.prefix}:{{{customer_id}}}:prefs"

    # -- routing (store.agents) ---------------------------------------------------------

    def agents(self) -> str:
        """Hash: agent_id -> the latest agent record from cx.agents.v1 (JSON)."""
        return f"{self.prefix}:agents"

    def agent_outcomes(self, month: str) -> str:
        """Hash: survey outcomes per agent and intent in one UTC month ("202612"), fields
        "<agent>|<intent>|n", "...|t2", "...|b2" (intent "-" when the survey names none)."""
        return f"{self.prefix}:{{ro:{month}}}:n"

    def rated_agents(self, customer_id: str) -> str:
        """Hash: how this customer rated each agent, fields "<agent>|n", "<agent>|t2",
        "<agent>|b2" (counts of their surveys naming that agent)."""
        return f"{self.prefix}:{{{customer_id}}}:ragents"

    # -- the CRM summary feed (consumers/summary.py); erased with the customer ------

    def summary_survey(self, customer_id: str) -> str:
        """Hash: the customer's newest survey by occurred_at, fields `ms` (occurred, epoch
        ms), `id` (event_id) and `survey` (the summary's last_survey object, JSON)."""
        return f"{self.prefix}:{{{customer_id}}}:sum:survey"

    def summary_bottom_2_box(self, customer_id: str) -> str:
        """Set: event ids of the customer's bottom-2-box surveys (the count is its size)."""
        return f"{self.prefix}:{{{customer_id}}}:sum:b2b"

    def summary_alerts(self, customer_id: str) -> str:
        """Hash: alert_id -> "version:status", the highest version of each of the
        customer's alerts seen on cx.alerts.v1 (open ones are the summary's open_alerts)."""
        return f"{self.prefix}:{{{customer_id}}}:sum:alerts"

    def summary_erased(self, customer_id: str) -> str:
        """String: epoch ms of the customer's latest erasure (kept a week); timeline
        entries and alert events from before it are ignored by the summary feed."""
        return f"{self.prefix}:{{{customer_id}}}:sum:erased"


def slot_groups(items: Sequence[T], key_of: Callable[[T], str], size: int, *,
                one_slot: bool) -> list[list[T]]:
    """`items` in groups of at most `size` whose keys (`key_of`) share one cluster slot,
    each group in the items' order.  With `one_slot` (a single Redis server, where
    any keys may go together) only the size matters."""
    if one_slot:
        return [list(items[start:start + size]) for start in range(0, len(items), size)]
    by_slot: dict[int, list[T]] = {}
    for item in items:
        by_slot.setdefault(key_slot(key_of(item).encode()), []).append(item)
    return [group[start:start + size] for group in by_slot.values()
            for start in range(0, len(group), size)]
