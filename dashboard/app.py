"""The dashboard service as one Starlette app: pages, JSON API, websockets.

Why Starlette: the pages are static files and the API is a dozen JSON routes;
Starlette gives routing, static files and ASGI websockets in a few small
modules, with nothing to generate or build.  uvicorn serves it, and its
websocket protocol is the `websockets` package (ws="websockets-sansio").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from dashboard import api, me
from dashboard.errors import ApiError, error_response
from dashboard.live import Hub, agent_socket, alerts_socket, unknown_socket
from dashboard.metrics import DashboardMetrics, HttpMetricsMiddleware
from dashboard.services import open_services
from kernel.settings import Settings

log = logging.getLogger("cxt.dashboard")

STATIC = Path(__file__).resolve().parent / "static"
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
# The pages load only their own scripts and talk only to this origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / name, headers=PAGE_HEADERS)
    return page


async def _home(request: Request) -> Response:
    return RedirectResponse("/advisory")


async def _openapi(request: Request) -> Response:
    # The API's documentation, not its data: readable without a token.
    return FileResponse(OPENAPI, media_type="application/json")


def create_app(settings: Settings) -> Starlette:
    metrics = DashboardMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, metrics) as services:
            hub = Hub(services)
            app.state.services, app.state.hub = services, hub
            feed = asyncio.create_task(hub.run())
            tokens = asyncio.create_task(hub.watch_tokens())
            # What exists now lives as long as the process: keep it out of every
            # later collection (see the thresholds in server.py).
            gc.freeze()
            try:
                yield
            finally:
                for task in (feed, tokens):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await hub.close()

    routes = [
        Route("/", _home),
        Route("/advisory", _page("advisory.html")),
        Route("/agent", _page("agent.html")),
        Route("/me", _page("me.html")),  # the customer's own page (self-service)
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/openapi.json", _openapi),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
        Route("/api/alerts", api.list_alerts),
        Route("/api/alerts/{alert_id}", api.get_alert),
        Route("/api/alerts/{alert_id}/{action}", api.alert_action, methods=["POST"]),
        Route("/api/customers/{customer_id}", api.customer),
        Route("/api/customers/{customer_id}/merge-preview", api.customer_merge_preview),
        Route("/api/customers/{customer_id}/timeline", api.timeline),
        Route("/api/customers/{customer_id}/context", api.context),
        Route("/api/customers/{customer_id}/export", me.customer_export),
        Route("/api/identity/confirm", api.confirm_identity, methods=["POST"]),
        Route("/api/metrics/surveys", api.survey_metrics),
        Route("/api/metrics/contacts", api.contact_metrics),
        Route("/api/routing", api.routing),
        # The customer's own data (a customer token; dashboard/me.py).
        Route("/api/me", me.me),
        Route("/api/me/timeline", me.my_timeline),
        Route("/api/me/alerts", me.my_alerts),
        Route("/api/me/notes", me.my_notes),
        Route("/api/me/notes", me.add_my_note, methods=["POST"]),
        Route("/api/me/notes/{note_id}", me.delete_my_note, methods=["DELETE"]),
        Route("/api/me/preferences", me.my_preferences),
        Route("/api/me/preferences", me.set_my_preferences, methods=["PUT"]),
        Route("/api/me/export", me.my_export),
        WebSocketRoute("/ws/alerts", alerts_socket),
        WebSocketRoute("/ws/agents/{agent_id}", agent_socket),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(HttpMetricsMiddleware, metrics=metrics)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    # /ws/nothing: 404 with a reason rather than Starlette's bare 403.
    app.router.default = unknown_socket(app.router.default)
    return app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {404: f"no route {request.url.path!r}; see dashboard/openapi.json",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(
        exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the service log, never into the response.
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; the dashboard log has the details")
