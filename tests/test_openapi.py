"""dashboard/openapi.json describes exactly the routes the app serves."""

from __future__ import annotations

import json

from starlette.routing import Route

from cxt.settings import Settings
from dashboard.app import OPENAPI, create_app
from schemas.catalog import refs

# Served to browsers or documentation readers, not part of the token-guarded API.
UNGUARDED = {"/", "/advisory", "/agent", "/openapi.json"}


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

