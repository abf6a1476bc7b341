"""The customer's own routes, /api/me/*: a `customer` token (subject = the customer id)
reads and changes that customer's data and nothing else.

No route takes a customer id from the request: every one acts on the token's subject.
Writes are checked against schemas/self-service.v1.json (the topic's contract, through
usecases.self_service), published on cx.self-service.v1 and answered 202: the worker
applies them within moments.  Bodies are JSON objects only (415 otherwise), at most
MAX_BODY_BYTES (413), with no unknown field (422 naming it); writes are rate-limited
per token (dashboard.ratelimit, 429 with Retry-After).

Also here: GET /api/customers/{customer_id}/export, the same export for staff handling
a data-subject request (advisor and service roles).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dashboard.auth import authorize
from dashboard.errors import ApiError, FastJSONResponse, bad_request, not_found
from dashboard.params import Query, check_id, cursor
from dashboard.ratelimit import TokenBuckets
from dashboard.services import Services
from kernel.settings import CHANNELS, ApiToken
from store.stores import Stores
from usecases.customers import BadCustomerInput, check_customer_id
from usecases.self_service import (
    MAX_NOTES,
    PREFERENCE_FIELDS,
    BadSelfServiceInput,
    CustomerMerged,
    NoSuchNote,
    TooManyNotes,
    add_note,
    alert_for_customer,
    delete_note,
    export_customer,
    set_preferences,
)

CUSTOMER = ("customer",)
STAFF = ("advisor", "service")
MAX_BODY_BYTES = 8 * 1024
TIMELINE_CHANNELS = (*CHANNELS, "account")
# What a customer sees of their stored preferences: the object they set and when.
_SHOWN_PREFERENCES = (*PREFERENCE_FIELDS, "set_at")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _services(request: Request) -> Services:
    return request.app.state.services


def _stores(request: Request) -> Stores:
    return _services(request).stores


def _limiter(request: Request) -> TokenBuckets:
    return _services(request).write_buckets


def _customer(request: Request) -> str:
    """The token's subject: the only customer these routes act on."""
    token = authorize(_services(request).tokens, request.headers, CUSTOMER)
    return token.subject


def _writer(request: Request) -> tuple[ApiToken, str]:
    token = authorize(_services(request).tokens, request.headers, CUSTOMER)
    _limiter(request).take(token.token)
    return token, f"customer:{token.subject}"


def _json(body: Any, status: int = 200) -> FastJSONResponse:
    return FastJSONResponse(body, status_code=status)


async def _body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object body of at most MAX_BODY_BYTES with only `allowed` fields."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       "send the body as JSON with Content-Type: application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large()
    if not raw.strip():
        raise bad_request("the body is empty; send a JSON object")
    try:
        body = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    for name in body:
        if name not in allowed:
            raise ApiError(422, "invalid_body", f"{str(name)[:60]}: unknown field; allowed: "
                           f"{', '.join(allowed)}")
    return body


def _too_large() -> ApiError:
    return ApiError(413, "too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes")


def _preferences(stored: dict | None) -> dict | None:
    return None if stored is None else {k: stored.get(k) for k in _SHOWN_PREFERENCES}


def _accepted(event: dict, **extra: Any) -> FastJSONResponse:
    return _json({"event_id": event["event_id"], "status": "accepted", **extra}, 202)


# -- reads ------------------------------------------------------------------------------


async def me(request: Request) -> FastJSONResponse:
    customer_id = _customer(request)
    Query(request, ())
    stores = _stores(request)
    (profile,), (own,) = await asyncio.gather(
        stores.timelines.profiles([customer_id]),
        stores.self_service.own_words([customer_id], MAX_NOTES))
    name = profile.get("name") if isinstance(profile, dict) else None
    return _json({"customer_id": customer_id, "name": name if isinstance(name, str) else None,
                  "preferences": _preferences(own.preferences), "notes": own.notes})


async def my_timeline(request: Request) -> FastJSONResponse:
    customer_id = _customer(request)
    query = Query(request, ("channel", "since", "until", "limit", "before"))
    events, after = await _stores(request).timelines.page(
        customer_id,
        limit=query.integer("limit", 50, 1, 1000),
        since_ms=query.time_ms("since"),
        until_ms=query.time_ms("until"),
        channel=query.choice("channel", TIMELINE_CHANNELS),
        before=cursor(query.text("before", max_length=400)),
    )
    return _json({"customer_id": customer_id, "events": events,
                  "next": None if after is None else f"{after[0]}:{after[1]}"})


async def my_alerts(request: Request) -> FastJSONResponse:
    customer_id = _customer(request)
    Query(request, ())
    found = await _stores(request).alerts.of_customer(customer_id)
    found.sort(key=lambda a: (a.get("raised_at") or "", a["alert_id"]), reverse=True)
    return _json({"alerts": [alert_for_customer(dict(a)) for a in found]})


async def my_notes(request: Request) -> FastJSONResponse:
    customer_id = _customer(request)
    Query(request, ())
    return _json({"notes": await _stores(request).self_service.notes(customer_id, MAX_NOTES)})


async def my_preferences(request: Request) -> FastJSONResponse:
    customer_id = _customer(request)
    Query(request, ())
    stored = await _stores(request).self_service.preferences(customer_id)
    return _json({"preferences": _preferences(stored)})


# -- writes -----------------------------------------------------------------------------


async def add_my_note(request: Request) -> FastJSONResponse:
    token, actor = _writer(request)
    Query(request, ())
    body = await _body(request, ("text",))
    services = _services(request)
    with _refusals():
        event = await add_note(_stores(request), services.producer,
                               services.settings.topics.self_service, token.subject,
                               body.get("text"), actor)
    return _accepted(event, note_id=event["payload"]["note_id"])


async def delete_my_note(request: Request) -> FastJSONResponse:
    token, actor = _writer(request)
    Query(request, ())
    note_id = check_id(request.path_params["note_id"], "note id")
    services = _services(request)
    with _refusals():
        event = await delete_note(_stores(request), services.producer,
                                  services.settings.topics.self_service, token.subject,
                                  note_id, actor)
    return _accepted(event, note_id=note_id)


async def set_my_preferences(request: Request) -> FastJSONResponse:
    token, actor = _writer(request)
    Query(request, ())
    body = await _body(request, PREFERENCE_FIELDS)
    services = _services(request)
    with _refusals():
        event = await set_preferences(_stores(request), services.producer,
                                      services.settings.topics.self_service, token.subject,
                                      body, actor)
    return _accepted(event, preferences=event["payload"])


@contextmanager
def _refusals() -> Iterator[None]:
    """The use-cases' refusals as the API's errors."""
    try:
        yield
    except BadSelfServiceInput as exc:
        raise ApiError(422, "invalid_body", str(exc)) from None
    except NoSuchNote as exc:
        raise not_found(str(exc)) from None
    except TooManyNotes as exc:
        raise ApiError(409, "too_many_notes", str(exc)) from None
    except CustomerMerged as exc:
        raise ApiError(409, "merged", str(exc)) from None


# -- the export -------------------------------------------------------------------------


async def my_export(request: Request) -> Response:
    customer_id = _customer(request)
    Query(request, ())
    return _attachment(customer_id, await export_customer(_stores(request), customer_id,
                                                          name_others=False))


async def customer_export(request: Request) -> Response:
    """Staff: the export of any customer, other claimants of its identifiers named."""
    authorize(_services(request).tokens, request.headers, STAFF)
    Query(request, ())
    try:
        customer_id = check_customer_id(check_id(request.path_params["customer_id"],
                                                 "customer_id"))
    except BadCustomerInput as exc:
        raise bad_request(f"customer_id: {exc}") from None
    document = await export_customer(_stores(request), customer_id)
    if not document["keys"]:
        raise not_found(f"nothing is held about {customer_id!r}")
    return _attachment(customer_id, document)


def _attachment(customer_id: str, document: dict) -> Response:
    name = _FILENAME_UNSAFE.sub("_", customer_id)[:100]
    return Response(orjson.dumps(document, option=orjson.OPT_INDENT_2),
                    media_type="application/json",
                    headers={"Content-Disposition":
                             f'attachment; filename="cx-timeline-export-{name}.json"',
                             "Cache-Control": "no-store"})
