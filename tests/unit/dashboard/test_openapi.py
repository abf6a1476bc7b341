"""dashboard/openapi.json describes exactly the routes the app serves."""

from __future__ import annotations

import json

from starlette.routing import Route

from dashboard.api import NOTE_MAX_LENGTH, RESOLVE_CATEGORIES
from dashboard.app import OPENAPI, create_app
from kernel.settings import Settings
from schemas.catalog import refs
from schemas.registry import load_schema

# Served to browsers or documentation readers, not part of the token-guarded API.
UNGUARDED = {"/", "/advisory", "/agent", "/me", "/openapi.json"}


def _served() -> set[tuple[str, str]]:
    app = create_app(Settings())
    return {(route.path, method.lower())
            for route in app.routes if isinstance(route, Route) and route.path not in UNGUARDED
            for method in (route.methods or ()) if method != "HEAD"}


def test_openapi_lists_every_route_and_nothing_else() -> None:
    doc = json.loads(OPENAPI.read_text())
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    served = _served()
    # One documented path per action; the app serves them through /{action}.
    actions = {(p, m) for p, m in documented if p.startswith("/api/alerts/{alert_id}/")}
    assert actions == {(f"/api/alerts/{{alert_id}}/{a}", "post")
                       for a in ("ack", "callback", "resolve")}
    assert documented - actions == served - {("/api/alerts/{alert_id}/{action}", "post")}


def test_every_reference_resolves() -> None:
    doc = json.loads(OPENAPI.read_text())
    for ref in set(refs(doc)):
        if ref.startswith("#/"):
            node = doc
            for part in ref[2:].split("/"):
                node = node[part]
        else:
            target = (OPENAPI.parent / ref).resolve()
            assert target.is_file(), ref
            json.loads(target.read_text())


def test_every_operation_documents_auth_errors() -> None:
    doc = json.loads(OPENAPI.read_text())
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
            assert "Roles:" in operation["description"], (path, method)



def _action_body(doc: dict, action: str) -> dict:
    post = doc["paths"][f"/api/alerts/{{alert_id}}/{action}"]["post"]
    return post["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_action_limits_and_choices_are_the_topic_contracts() -> None:
    """The note limit and the resolve categories are those of cx.alert-actions.v1, in
    the API's checks and in the documentation the advisory page reads its limit from."""
    doc = json.loads(OPENAPI.read_text())
    contract = load_schema("alert-action.v1")["properties"]
    assert doc["components"]["schemas"]["ActionNote"]["maxLength"] == \
        contract["note"]["maxLength"] == NOTE_MAX_LENGTH
    for action in ("ack", "callback", "resolve"):
        assert _action_body(doc, action)["note"] == {"$ref": "#/components/schemas/ActionNote"}
    # Every category of the contract but unclassified: a resolve names the cause.
    assert _action_body(doc, "resolve")["category"]["enum"] == \
        [c for c in contract["category"]["enum"] if c != "unclassified"] == \
        list(RESOLVE_CATEGORIES)
    assert "customer_expectation" in RESOLVE_CATEGORIES
