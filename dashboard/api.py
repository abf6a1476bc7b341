"""The JSON API: timelines, agent contexts, alerts and their actions, survey metrics,
health and Prometheus metrics.  dashboard/openapi.json documents every route."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from dashboard.agent_view import DEFAULT_LIMIT, agent_context
from dashboard.auth import authorize
from dashboard.context import preferences_view
from dashboard.errors import ApiError, FastJSONResponse, bad_request, not_found
from dashboard.params import Query, check_id, cursor, json_body
from dashboard.services import Services
from domain import contact_reasons
from domain.alerts import ACTION_OF, CALLBACK_OUTCOMES, STATUSES
from domain.identity import NeverMatch
from domain.records import AlertAction
from domain.rules import CATEGORIES, UNCLASSIFIED
from domain.survey_metrics import MAX_DAYS, MAX_HOURS, rows_to_json
from kernel.settings import CHANNELS, ApiToken
from schemas.registry import load_schema
from store.contact_reasons import ContactReasonStore
from store.keys import Keys
from usecases.alerts import (
    ALERT_KINDS,
    ALERT_SCAN,
    DEFAULT_PAGE,
    MAX_PAGE,
    ActionNotApplied,
    ActionRefused,
    AlertNotFound,
    UnknownCursor,
    open_alerts_of,
    page_of,
    submit_action,
)
from usecases.customers import (
    BadCustomerInput,
    MergeRefused,
    NotACandidate,
    UnknownInteraction,
    check_confirmation,
    check_customer_id,
    confirm_caller,
    customer_view,
    merge_preview,
    preview_json,
    view_json,
)
from usecases.report import contact_rows_from, survey_rows_from
from usecases.routing import (
    DEFAULT_CHANNEL,
    HINT_CHANNELS,
    LOOKUPS,
    BadRoutingInput,
    check_intent,
    lookup_from,
    routing_hint,
)

EVERYONE = ("advisor", "agent", "service")
ADVISORY = ("advisor", "service")
HEALTH_TIMEOUT_S = 2.0


def _services(request: Request) -> Services:
    return request.app.state.services


def _caller(request: Request, roles: tuple[str, ...]) -> ApiToken:
    return authorize(_services(request).tokens, request.headers, roles)


def _json(body: Any, status: int = 200) -> FastJSONResponse:
    return FastJSONResponse(body, status_code=status)


# -- health and metrics ---------------------------------------------------------------


async def healthz(request: Request) -> FastJSONResponse:
    _caller(request, EVERYONE)
    services = _services(request)
    checks = dict(zip(("redis", "kafka"), await asyncio.gather(
        _timed(services.redis.ping()),
        _timed(services.producer.client.fetch_all_metadata()),
    ), strict=True))
    checks["live_feed"] = {"ok": request.app.state.hub.connected.is_set()}
    healthy = all(c["ok"] for c in checks.values())
    return _json({"status": "ok" if healthy else "unavailable", "checks": checks},
                 200 if healthy else 503)


async def _timed(call: Any) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call, HEALTH_TIMEOUT_S)
    except (TimeoutError, RedisError, KafkaError, OSError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


async def metrics(request: Request) -> Response:
    _caller(request, ADVISORY)
    return Response(generate_latest(_services(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


# -- timelines and agent context ---------------------------------------------------------


def _customer_id(request: Request) -> str:
    return check_id(request.path_params["customer_id"], "customer id")


async def timeline(request: Request) -> FastJSONResponse:
    _caller(request, EVERYONE)
    customer_id = _customer_id(request)
    query = Query(request, ("channel", "since", "until", "limit", "before"))
    events, after = await _services(request).timelines.page(
        customer_id,
        limit=query.integer("limit", 50, 1, 1000),
        since_ms=query.time_ms("since"),
        until_ms=query.time_ms("until"),
        channel=query.choice("channel", CHANNELS),
        before=cursor(query.text("before", max_length=400)),
    )
    return _json({"customer_id": customer_id, "events": events,
                  "next": None if after is None else f"{after[0]}:{after[1]}"})


async def context(request: Request) -> FastJSONResponse:
    _caller(request, EVERYONE)
    customer_id = _customer_id(request)
    query = Query(request, ("intent", "limit"))
    return _json(await agent_context(
        _services(request), customer_id, intent=query.text("intent"),
        limit=query.integer("limit", DEFAULT_LIMIT, 1, 1000)))


# -- customers: what is held, merge previews, who is calling ------------------------------


def _crm_id(value: str, field: str) -> str:
    """A CRM customer id (not a provisional profile's), or 400 naming the field."""
    try:
        return check_customer_id(check_id(value, field), field)
    except BadCustomerInput as exc:
        raise bad_request(f"{field}: {exc}") from None


async def customer(request: Request) -> FastJSONResponse:
    """What `cxt customers show --json` prints: record (personal data, hence advisory
    roles only), identifiers and their claimants, merges, linked profiles, alerts."""
    _caller(request, ADVISORY)
    Query(request, ())
    customer_id = _crm_id(request.path_params["customer_id"], "customer_id")
    services = _services(request)
    view = await customer_view(services.timelines, services.identities, services.alerts,
                               customer_id, NeverMatch(services.settings.identity_never_match))
    if not view.known:
        raise not_found(f"no customer {customer_id!r}: no record, no timeline and no alerts "
                        "under that id")
    return _json(view_json(view))


async def customer_merge_preview(request: Request) -> FastJSONResponse:
    """What `cxt customers merge-preview ID INTO --json` prints; reads only."""
    _caller(request, ADVISORY)
    query = Query(request, ("into",))
    customer_id = _crm_id(request.path_params["customer_id"], "customer_id")
    into = query.params.get("into")
    if not into:
        raise bad_request("into: the customer to merge into is required (?into=C-2)")
    into = _crm_id(into, "into")
    services = _services(request)
    try:
        preview = await merge_preview(services.timelines, services.identities,
                                      services.alerts, customer_id, into)
    except MergeRefused as exc:
        raise ApiError(409, exc.reason, f"into: {exc}") from None
    return _json(preview_json(preview))


_CONFIRM_FIELDS: dict[str, type | tuple[type, ...]] = {
    "profile_id": str, "event_id": str, "customer_id": str}


async def confirm_identity(request: Request) -> FastJSONResponse:
    """An agent confirms who is calling on an interaction of an ambiguous profile: the
    action is published on the identity-actions topic and the worker files it (202)."""
    token = _caller(request, ("agent",))
    Query(request, ())
    body = await json_body(request, _CONFIRM_FIELDS, max_lengths={"profile_id": 300})
    services = _services(request)
    try:
        profile_id, event_id, customer_id = check_confirmation(
            body.get("profile_id"), body.get("event_id"), body.get("customer_id"))
        action = await confirm_caller(
            services.timelines, services.identities, services.alerts, services.producer,
            services.settings.topics.identity_actions, profile_id=profile_id,
            event_id=event_id, customer_id=customer_id, actor=token.subject)
    except BadCustomerInput as exc:
        raise ApiError(422, "invalid_body", f"{exc.field}: {exc}") from None
    except NotACandidate as exc:
        raise ApiError(409, "not_a_candidate", f"customer_id: {exc}") from None
    except UnknownInteraction as exc:
        raise ApiError(409, "unknown_event", f"event_id: {exc}") from None
    return _json(action, 202)


# -- alerts -------------------------------------------------------------------------------


async def list_alerts(request: Request) -> FastJSONResponse:
    _caller(request, ADVISORY)
    query = Query(request, ("status", "kind", "category", "queue", "agent", "limit", "before"))
    statuses = query.choices("status", STATUSES)
    kind = query.choice("kind", ALERT_KINDS)
    category = query.choice("category", CATEGORIES)
    queue, agent = query.text("queue"), query.text("agent")
    limit = query.integer("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    before = query.text("before")
    recent = await _services(request).alerts.recent(ALERT_SCAN)
    try:
        found = page_of(recent, statuses=statuses, category=category, queue=queue,
                        agent=agent, limit=limit, before=before, kind=kind)
    except UnknownCursor:
        raise bad_request(f"before={before!r}: no such alert among the newest "
                          f"{ALERT_SCAN}; start again without `before`") from None
    return _json({"alerts": found.alerts, "next": found.next})


async def get_alert(request: Request) -> FastJSONResponse:
    """The alert, with what calling the customer back needs: the customer record
    (personal data, hence advisory roles only), the customer's other open alerts,
    so that one call-back can cover them all, and their own preferences with whether
    now is inside their contact hours, so that the call comes when they asked."""
    _caller(request, ADVISORY)
    Query(request, ())
    alert_id = check_id(request.path_params["alert_id"], "alert id")
    services = _services(request)
    alert = await services.alerts.get(alert_id)
    if alert is None:
        raise not_found(f"no alert {alert_id!r}")
    profiles, theirs, preferences = await asyncio.gather(
        services.timelines.profiles([alert["customer_id"]]),
        services.alerts.of_customer(alert["customer_id"]),
        services.self_service.preferences(alert["customer_id"]))
    return _json({**alert, "customer": profiles[0],
                  "customer_open_alerts": open_alerts_of(theirs),
                  **preferences_view(preferences, int(time.time() * 1000))})


_ACTION_SCHEMA = load_schema("alert-action.v1")["properties"]
# The topic's contract decides how long a note may be and which categories a
# resolve may set (all but unclassified: the lifecycle refuses to close an alert
# without a cause); the API and the page (through openapi.json) follow it.
NOTE_MAX_LENGTH: int = _ACTION_SCHEMA["note"]["maxLength"]
RESOLVE_CATEGORIES: tuple[str, ...] = tuple(c for c in _ACTION_SCHEMA["category"]["enum"]
                                            if c != UNCLASSIFIED)

_ACTION_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "ack": {"note": str, "actor": str},
    "callback": {"outcome": str, "note": str, "actor": str},
    "resolve": {"category": str, "note": str, "actor": str},
}


async def alert_action(request: Request) -> FastJSONResponse:
    token = _caller(request, ADVISORY)
    services = _services(request)
    Query(request, ())  # docs/dashboard.md promises that an unknown parameter is refused
    alert_id = check_id(request.path_params["alert_id"], "alert id")
    name = request.path_params["action"]
    if name not in _ACTION_FIELDS:
        raise not_found(f"no action {name!r}; actions are {', '.join(_ACTION_FIELDS)}")
    body = await json_body(request, _ACTION_FIELDS[name], max_lengths={"note": NOTE_MAX_LENGTH})
    action: AlertAction = {"alert_id": alert_id, "action": ACTION_OF[name],
                           "actor": _actor(token, body, services)}
    if body.get("note"):
        action["note"] = body["note"]
    if name == "callback":
        if body.get("outcome") not in CALLBACK_OUTCOMES:
            raise ApiError(422, "invalid_body", f"outcome must be one of "
                           f"{', '.join(CALLBACK_OUTCOMES)}")
        action["outcome"] = body["outcome"]
    if name == "resolve" and body.get("category") is not None:
        if body["category"] not in RESOLVE_CATEGORIES:
            raise ApiError(422, "invalid_body", f"category must be one of "
                           f"{', '.join(RESOLVE_CATEGORIES)}")
        action["category"] = body["category"]
    try:
        alert = await submit_action(services.alerts, services.producer,
                                    services.settings.topics.alert_actions,
                                    services.rules.actors, action)
    except AlertNotFound as exc:
        raise not_found(str(exc)) from None
    except ActionRefused as exc:
        # A missing category is the body's fault (fix it and send again), not the alert's state.
        status = {"unknown_actor": 403, "category_required": 422}.get(exc.reason, 409)
        raise ApiError(status, exc.reason, str(exc)) from None
    except ActionNotApplied as exc:
        raise ApiError(503, "not_applied", str(exc)) from None
    return _json(alert)


def _actor(token: ApiToken, body: dict, services: Services) -> str:
    """An advisor acts as themselves; a service names the person it acts for."""
    actor: str | None
    if token.role == "advisor":
        if body.get("actor") not in (None, token.subject):
            raise ApiError(403, "forbidden", "an advisor token acts only as its own subject "
                           f"({token.subject}); leave out `actor`")
        actor = token.subject
    else:
        actor = body.get("actor")
        if not actor:
            raise ApiError(422, "invalid_body", "a service token must name the `actor` "
                           "(an id from the actors list of the alert rules file)")
    if actor not in services.rules.actors:
        raise ApiError(403, "unknown_actor", f"{actor!r} is not in the actors list of "
                       f"{services.rules.source}")
    return actor


# -- survey metrics -------------------------------------------------------------------------


async def survey_metrics(request: Request) -> FastJSONResponse:
    _caller(request, ADVISORY)
    query = Query(request, ("period", "hours", "days", "channel", "queue", "agent"))
    period, span = _span(query)
    rows = await survey_rows_from(
        _services(request).alerts,
        hours=span if period == "hour" else None, days=span if period == "day" else None,
        channel=query.choice("channel", CHANNELS), queue=query.text("queue"),
        agent=query.text("agent"))
    return _json({"period": period, "rows": rows_to_json(rows)})


def _span(query: Query) -> tuple[str, int]:
    """(period, how many periods back) of a metrics route: period=hour with hours=, or
    period=day with days=."""
    period = query.choice("period", ("hour", "day")) or "hour"
    if period == "hour" and "days" in query.params:
        raise bad_request("days= goes with period=day; use hours= for period=hour")
    if period == "day" and "hours" in query.params:
        raise bad_request("hours= goes with period=hour; use days= for period=day")
    return period, (query.integer("hours", 24, 1, MAX_HOURS) if period == "hour"
                    else query.integer("days", 30, 1, MAX_DAYS))


async def contact_metrics(request: Request) -> FastJSONResponse:
    """Contact reasons: contacts per intent, repeat rate and negative share per period."""
    _caller(request, ADVISORY)
    query = Query(request, ("period", "hours", "days", "channel", "queue", "intent"))
    period, span = _span(query)
    services = _services(request)
    # Reads only: built per request over the app's client rather than kept in Services.
    store = ContactReasonStore(services.redis, Keys(services.settings.redis_prefix),
                               ttl_days=services.settings.timeline_max_age_days)
    rows = await contact_rows_from(
        store, hours=span if period == "hour" else None, days=span if period == "day" else None,
        channel=query.choice("channel", CHANNELS), queue=query.text("queue"),
        intent=query.text("intent"))
    return _json({"period": period, "rows": contact_reasons.rows_to_json(rows)})


# -- routing hints ----------------------------------------------------------------------------


async def routing(request: Request) -> FastJSONResponse:
    """The routing hint for a waiting caller (the contact platform's data dip): the queue,
    skill and tier to ask for and the available agents ranked, each with its reasons.
    An unknown caller gets the default answer, not an error."""
    _caller(request, ("service",))
    query = Query(request, (*LOOKUPS, "intent", "channel"))
    try:
        lookup = lookup_from(phone=query.text("phone", 40), email=query.text("email", 254),
                             customer_id=query.text("customer_id", 128))
        intent = check_intent(query.text("intent"))
    except BadRoutingInput as exc:
        raise bad_request(f"{exc.field}: {exc}") from None
    channel = query.choice("channel", HINT_CHANNELS) or DEFAULT_CHANNEL
    return _json(await routing_hint(_services(request).router, lookup, intent=intent,
                                    channel=channel, now_ms=int(time.time() * 1000)))
