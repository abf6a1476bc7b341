"""Live channels: alerts to the advisory group, contexts to agents.

One Kafka consumer per dashboard process reads the output topics (no consumer
group: every dashboard instance must see every message, and a live view has
no use for what happened before it started, so it begins at the end).  Each
websocket client has a bounded queue; a client that stops reading is
disconnected instead of slowing the feed for everyone else.

A refused handshake is answered with HTTP 4xx and the JSON error body, which
a browser's WebSocket cannot read: it only sees "closed, 1006".  A client that
offers the subprotocol `cxt.close-reasons` (the pages do) is accepted and at
once closed with 4000 + the HTTP status (4400, 4401, 4403, 4404) and the
error's message as the close reason, so the page can say why and stop retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from dashboard.agent_view import TRIGGER_TYPES, agent_context
from dashboard.auth import SUBPROTOCOL, authorize, offered_subprotocols
from dashboard.errors import ApiError, not_found
from dashboard.params import check_id
from dashboard.services import Services
from domain.contacts import parse_ms
from kernel.kafka import make_consumer
from kernel.settings import ApiToken

log = logging.getLogger("cxt.dashboard")

CLIENT_QUEUE = 1000
# Offered by clients that cannot read a refused handshake's body (browsers).
CLOSE_REASONS = "cxt.close-reasons"
REFUSAL_CODE_BASE = 4000  # + the HTTP status the handshake would have got
_MAX_REASON_BYTES = 123  # what a close frame can carry (RFC 6455, 5.5)
# Context builds in flight at once; more contacts than this wait their turn.
MAX_CONTEXT_BUILDS = 32
# Cheap byte tests that skip parsing the timeline entries that cannot be triggers.
_TRIGGER_MARKS = tuple(f'"{t}"'.encode() for t in TRIGGER_TYPES)


# A trigger entry published this long after the worker accepted it is an old contact that
# identity moved (a merge or an unmerge), not one reaching an agent now.
REPUBLISHED_AFTER_MS = 120_000

# How often the tokens file is looked at, and open websockets checked against it.
TOKEN_CHECK_S = 2.0


@dataclass(eq=False)
class Client:
    channel: str  # "alerts" or "agent"
    token: ApiToken | None = None
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    too_slow: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.alert_clients: set[Client] = set()
        self.agent_clients: defaultdict[str, set[Client]] = defaultdict(set)
        self._builds = asyncio.Semaphore(MAX_CONTEXT_BUILDS)
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    # -- clients -------------------------------------------------------------------

    def join_alerts(self, token: ApiToken | None = None) -> Client:
        client = Client("alerts", token)
        self.alert_clients.add(client)
        self._gauge()
        return client

    def join_agent(self, agent_id: str, token: ApiToken | None = None) -> Client:
        client = Client("agent", token)
        self.agent_clients[agent_id].add(client)
        self._gauge()
        return client

    def clients(self) -> list[Client]:
        return [*self.alert_clients, *(c for cs in self.agent_clients.values() for c in cs)]

    def revoke_invalid(self) -> int:
        """Close the websockets whose token was removed or has expired; how many."""
        book = self.services.tokens
        closing = [c for c in self.clients() if c.token is not None and not c.revoked.is_set()
                   and not book.valid(c.token)]
        for client in closing:
            client.revoked.set()
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(b"")  # wakes the sender (a full queue wakes it too)
        return len(closing)

    async def watch_tokens(self) -> None:
        """Re-read the tokens file when it changes; close what it no longer allows."""
        while True:
            await asyncio.sleep(TOKEN_CHECK_S)
            try:
                self.services.tokens.reload()
                closed = self.revoke_invalid()
            except Exception:
                log.exception("tokens: the check failed; trying again")
                continue
            if closed:
                log.info("tokens: closed %d websocket(s) of revoked or expired tokens", closed)

    def leave(self, client: Client, agent_id: str | None = None) -> None:
        self.alert_clients.discard(client)
        if agent_id is not None:
            clients = self.agent_clients.get(agent_id)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self.agent_clients[agent_id]
        self._gauge()

    def _gauge(self) -> None:
        ws = self.services.metrics.ws_clients
        ws.labels("alerts").set(len(self.alert_clients))
        ws.labels("agent").set(sum(len(c) for c in self.agent_clients.values()))

    def _offer(self, clients: set[Client], message: bytes) -> None:
        for client in clients:
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.too_slow.set()
                self.services.metrics.dropped_clients.inc()
            else:
                self.services.metrics.pushed.labels(client.channel).inc()

    # -- the feed ------------------------------------------------------------------

    async def run(self) -> None:
        """Read the output topics until cancelled; reconnect after Kafka errors."""
        topics = self.services.settings.topics
        while True:
            # No group: every dashboard sees every message, from now on.
            consumer = make_consumer(
                self.services.settings, topics.alerts, topics.timeline, group_id=None,
                auto_offset_reset="latest", client_id=f"{self.services.settings.app_id}-dashboard")
            try:
                await consumer.start()
                await self._read(consumer)
            except KafkaError as exc:
                log.warning("live feed: Kafka error (%s); reconnecting in 2 s", exc)
            except Exception:
                # The feed must outlive any one bad record or bug; /healthz shows the gap.
                log.exception("live feed failed; restarting it in 2 s")
            finally:
                self.connected.clear()
                await consumer.stop()
            await asyncio.sleep(2)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        topics = self.services.settings.topics
        metrics = self.services.metrics.feed_records
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            if not self.connected.is_set() and consumer.assignment():
                # Positions are resolved lazily; pin them to "now" before saying ready,
                # so a client that connects after this sees everything that follows.
                for tp in consumer.assignment():
                    await consumer.position(tp)
                self.connected.set()
            for tp, records in batches.items():
                metrics.labels(tp.topic).inc(len(records))
                if tp.topic == topics.alerts:
                    self._alerts(records)
                else:
                    self._contacts(records)

    def _alerts(self, records: list) -> None:
        if not self.alert_clients:
            return
        for record in records:
            if record.value:
                # The alert is already JSON: wrap it without parsing it again.
                self._offer(self.alert_clients, b'{"type":"alert","alert":' + record.value + b"}")

    def _contacts(self, records: list) -> None:
        if not self.agent_clients:
            return
        for record in records:
            value = record.value
            if not value or not any(mark in value for mark in _TRIGGER_MARKS):
                continue
            try:
                entry = orjson.loads(value)
                agent_id = entry["payload"]["agent_id"]
            except (orjson.JSONDecodeError, TypeError, KeyError):
                continue  # not a contact with an agent: nobody to tell
            if (isinstance(agent_id, str) and agent_id in self.agent_clients
                    and entry.get("type") in TRIGGER_TYPES
                    and is_new_contact(entry, record.timestamp)):
                task = asyncio.create_task(self._push_context(agent_id, entry, record.timestamp))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _push_context(self, agent_id: str, entry: dict, kafka_ms: int | None) -> None:
        async with self._builds:
            try:
                context = await agent_context(self.services, entry["customer_id"],
                                              intent=None, contact=entry)
            except Exception:
                log.exception("live feed: could not build the context of a contact for %s",
                              agent_id)
                return
        clients = self.agent_clients.get(agent_id)
        if clients:
            self._offer(clients, orjson.dumps({"type": "contact", "context": context}))
            if kafka_ms:
                self.services.metrics.push_lag_seconds.observe(
                    max(0.0, time.time() - kafka_ms / 1000))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def is_new_contact(entry: dict, published_ms: int | None) -> bool:
    """Whether a trigger entry on the timeline topic is a contact reaching its agent now,
    not an old one published again because identity moved it: linked from a provisional
    profile, confirmed out of an ambiguous one (`linked_from`), or moved by a merge or an
    unmerge (accepted long before it was published again)."""
    if entry.get("linked_from"):
        return False
    accepted = parse_ms(entry.get("accepted_at"))
    return accepted is None or not published_ms or published_ms - accepted <= REPUBLISHED_AFTER_MS


# -- websocket endpoints ---------------------------------------------------------------


async def alerts_socket(websocket: WebSocket) -> None:
    """/ws/alerts: every alert change, as {"type": "alert", "alert": {...}}."""
    hub: Hub = websocket.app.state.hub
    token = await _admit(websocket, ("advisor", "service"))
    if token is not None:
        await _serve(websocket, hub.join_alerts(token), hub, None,
                     {"type": "hello", "channel": "alerts", "subject": token.subject})


async def agent_socket(websocket: WebSocket) -> None:
    """/ws/agents/{agent_id}: the customer's context whenever a contact reaches the agent."""
    hub: Hub = websocket.app.state.hub
    agent_id = websocket.path_params["agent_id"]
    token = await _admit(websocket, ("agent", "service"), agent_id=agent_id)
    if token is not None:
        await _serve(websocket, hub.join_agent(agent_id, token), hub, agent_id,
                     {"type": "hello", "channel": "agent", "agent_id": agent_id})


async def _admit(websocket: WebSocket, roles: tuple[str, ...], *,
                 agent_id: str | None = None) -> ApiToken | None:
    """The token, or None after answering the handshake with a JSON 4xx."""
    try:
        if agent_id is not None:
            check_id(agent_id, "agent id")
        return authorize(websocket.app.state.services.tokens, websocket.headers, roles,
                         agent_id=agent_id)
    except ApiError as exc:
        await refuse(websocket, exc)
        return None


async def refuse(websocket: WebSocket, error: ApiError) -> None:
    """Refuse a handshake: JSON 4xx, or to a `cxt.close-reasons` client an accept and a
    close with 4000 + status and the message (browsers can read only the latter)."""
    offered = offered_subprotocols(websocket.headers)
    if CLOSE_REASONS not in offered:
        await websocket.send_denial_response(error.response())
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else CLOSE_REASONS)
    await websocket.close(REFUSAL_CODE_BASE + error.status, close_reason(error.message))


def close_reason(message: str) -> str:
    """`message` cut to what a close frame carries, on a character boundary."""
    data = message.encode()
    if len(data) <= _MAX_REASON_BYTES:
        return message
    return data[:_MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def unknown_socket(fallback: ASGIApp) -> ASGIApp:
    """The router's default: a websocket to no route gets 404 and a reason (Starlette
    would answer a bare 403), anything else goes on to `fallback`."""
    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await fallback(scope, receive, send)
            return
        await refuse(WebSocket(scope, receive, send), not_found(
            f"no websocket at {scope.get('path', '')!r}; there are /ws/alerts and "
            "/ws/agents/<agent id>"))
    return default


async def _serve(websocket: WebSocket, client: Client, hub: Hub, agent_id: str | None,
                 hello: dict) -> None:
    offered = offered_subprotocols(websocket.headers)
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    reader = asyncio.create_task(_read_client(websocket, client))
    try:
        await websocket.send_text(orjson.dumps(hello).decode())
        while True:
            message = await client.queue.get()
            if client.revoked.is_set():
                await websocket.close(REFUSAL_CODE_BASE + 401,
                                      "the token was revoked or has expired")
                break
            if client.too_slow.is_set():
                await websocket.close(1013, "too slow: reconnect and reload")
                break
            if not message:  # the reader saw the client go
                break
            await websocket.send_text(message.decode())
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away while we were sending
    finally:
        hub.leave(client, agent_id)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await reader


async def _read_client(websocket: WebSocket, client: Client) -> None:
    """Clients only listen; a ping gets a pong, anything else a precise error."""
    try:
        while True:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                break
            client.queue.put_nowait(orjson.dumps(_reply_to(event.get("text"))))
    except (WebSocketDisconnect, RuntimeError):
        pass
    except asyncio.QueueFull:
        client.too_slow.set()
    with contextlib.suppress(asyncio.QueueFull):
        client.queue.put_nowait(b"")


def _reply_to(text: str | None) -> dict:
    message = None
    if text is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            message = orjson.loads(text)
    if isinstance(message, dict) and message.get("type") == "ping":
        return {"type": "pong"}
    return {"type": "error", "error": "bad_message",
            "message": 'this channel only sends; the one message it accepts is a text frame '
                       '{"type": "ping"}'}
