"""Routing in the worker: agent records in (cx.agents.v1), hints out (cx.routing.v1).

- Agents: each batch of the compacted topic becomes one pipeline of HSET / HDEL on
  the agents hash (store.agents), in the records' order; a null value (tombstone)
  removes the agent; a bad record is dead-lettered with its reason.
- Hints: the interactions step hands over the entries it stored that are offered
  contacts (call.offered, chat.offered: the IVR offering a contact before an agent is
  assigned); they get one hint each, computed for the whole batch with one read round
  trip (usecases.routing), and published on cx.routing.v1 keyed by the customer (no
  key for a caller not known).  At-least-once: a redelivered offer publishes its hint
  again, with the same `hint_id` (derived from the offered event's id), so a
  subscriber can drop repeats.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from domain.identity import is_ambiguous, is_provisional
from kernel.times import utc_now_iso
from schemas.validate import Rejection, check_agent_record
from store.agents import AgentStore
from store.timeline import NewEntry
from streams.records import Messages, Outgoing, Record
from usecases.routing import Ask, Router, routing_hints

OFFERED_TYPES = frozenset({"call.offered", "chat.offered"})


class RoutingSteps:
    def __init__(self, messages: Messages, agents: AgentStore, router: Router) -> None:
        self.messages = messages
        self.agents = agents
        self.router = router

    # -- cx.agents.v1 --------------------------------------------------------------

    async def agent_records(self, records: Sequence[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        changes: list[tuple[str, dict | None]] = []
        for record in records:
            if record.value is None:  # tombstone: the agent named by the key is gone
                agent_id = (record.key or b"").decode("utf-8", "replace")
                if not agent_id:
                    out.append(self.messages.reject(record, Rejection(
                        "schema_violation", "tombstone without an agent_id key")))
                else:
                    changes.append((agent_id, None))
                continue
            checked = check_agent_record(record.value, record.key)
            if isinstance(checked, Rejection):
                out.append(self.messages.reject(record, checked))
            else:
                changes.append((checked["agent_id"], checked))
        await self.agents.apply(changes)
        return out

    # -- offered contacts -> cx.routing.v1 ----------------------------------------------

    async def hints(self, offered: Sequence[NewEntry]) -> list[Outgoing]:
        """One hint per offered entry (stored already), one read round trip in all."""
        if not offered:
            return []
        asks = [_ask(e) for e in offered]
        hints = await routing_hints(self.router, asks, int(time.time() * 1000))
        at = utc_now_iso()
        return [self.messages.routing({
                    "hint_id": hint_id_for(e.event_id), "event_id": e.event_id,
                    "type": e.entry["type"], "generated_at": at, **hint})
                for e, hint in zip(offered, hints, strict=True)]


def hint_id_for(event_id: str) -> str:
    """The same offered event always gives the same hint id (redeliveries included)."""
    return "RH-" + hashlib.sha256(event_id.encode()).hexdigest()[:24]


def _ask(entry: NewEntry) -> Ask:
    payload = entry.entry["payload"]
    intent = payload.get("intent")
    intent = intent.strip() or None if isinstance(intent, str) else None
    channel = entry.entry["channel"]
    cid = entry.customer_id
    if is_ambiguous(cid):
        return Ask(None, intent, channel, {"factor": "ambiguous", "detail":
                   "the caller's identifier is shared by several customers: nobody is "
                   "guessed"})
    if is_provisional(cid):
        return Ask(None, intent, channel, {"factor": "not_found", "detail":
                   "no customer record lists the caller's identifier"})
    return Ask(cid, intent, channel)
