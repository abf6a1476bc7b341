"""`cxt dashboard`: serve the dashboard app with uvicorn until Ctrl-C."""

from __future__ import annotations

import gc
import logging

import uvicorn

from dashboard.app import create_app
from dashboard.services import check_config
from kernel import logsafe
from kernel.access import check_access_at_start
from kernel.settings import Settings

# uvicorn (0.54, websockets-sansio) logs this after every refused websocket
# handshake even though the 401/403 was sent; it is noise, not an error.
_DENIAL_NOISE = "ASGI callable returned without completing handshake."


class _DropDenialNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DENIAL_NOISE


def serve(settings: Settings) -> None:
    check_config(settings)  # fail with one clear line before binding the port
    check_access_at_start(settings)
    # A context request parses hundreds of entries: tens of thousands of small
    # objects, none in a reference cycle.  At the default thresholds that sets
    # off collections (full ones too) mid-request, which the context benchmark
    # saw as a p99 several times the median; collect rarely instead.
    gc.set_threshold(50_000, 20, 100)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.error").addFilter(_DropDenialNoise())
    logsafe.install(settings)  # e-mail addresses and phone numbers masked in every line
    config = uvicorn.Config(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        ws="websockets-sansio",
        ws_max_size=64 * 1024,  # clients only send pings
        # Request lines never carry tokens (headers do), but an access log per
        # request is noise at scrape rates; /metrics counts requests instead.
        access_log=False,
        log_config=None,
        server_header=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
