"""Rotating tokens without a restart: the dashboard re-reads CXT_API_TOKENS_FILE when it
changes; a removed token is refused and its open websockets are closed (4401), an added
one works, a token past its `expires=` is refused and its websockets closed too, and a
broken edit of the file changes nothing.  In the slow suite: it waits out the file checks
and an expiry, about 20 s the quick suite has no room for."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cxt.localstack import LocalStack, free_port
from kernel.settings import ApiToken, Settings
from kernel.times import iso_ms
from tests.support.helpers import create_topics, isolated
from tests.support.processes import DashboardProcess

pytestmark = pytest.mark.slow

CLOSED_WITHIN_S = 10  # the file is looked at every 2 s


@pytest.fixture()
def dashboard(stack: LocalStack, tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    path = tmp_path / "api-tokens"
    path.write_text("")
    fixed = ApiToken("service", "probe", secrets.token_urlsafe(24))
    settings = isolated(stack.settings, dashboard_port=free_port(), api_tokens=(fixed,),
                        api_tokens_file=path)
    asyncio.run(create_topics(settings))
    process = DashboardProcess(settings, tmp_path).start()
    try:
        process.wait_ready(fixed.token)
        yield settings, path
    finally:
        process.stop()


@contextmanager
def _socket(settings: Settings, token: str) -> Iterator[ClientConnection]:
    with connect(f"ws://{settings.dashboard_host}:{settings.dashboard_port}/ws/alerts",
                 subprotocols=["cxt.v1", f"bearer.{token}"],  # type: ignore[list-item]
                 open_timeout=10) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
        yield ws


def _closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    try:
        ws.recv(timeout=CLOSED_WITHIN_S)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
    except TimeoutError:
        return None, "still open"
    return None, "a message instead of a close"


def _status(settings: Settings, token: str) -> int:
    return httpx.get(f"{settings.dashboard_url}/api/alerts",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def _until(check, timeout: float = CLOSED_WITHIN_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_removed_tokens_are_refused_and_their_websockets_closed(
        dashboard: tuple[Settings, Path]) -> None:
    settings, path = dashboard
    old, new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    path.write_text(f"advisor:adv-ana:{old}\n")
    assert _until(lambda: _status(settings, old) == 200)  # added without a restart
    with _socket(settings, old) as ws:
        path.write_text("advisor:adv-ana:short\n")  # a broken edit: nothing changes
        time.sleep(3)
        assert _status(settings, old) == 200

        path.write_text(f"# rotated\nadvisor:adv-ana:{new}\n")
        assert _closed_with(ws) == (4401, "the token was revoked or has expired")
    assert _status(settings, old) == 401
    assert _status(settings, new) == 200
    with _socket(settings, new):
        pass


def test_a_token_past_its_expiry_is_refused_and_its_websockets_closed(
        dashboard: tuple[Settings, Path]) -> None:
    settings, path = dashboard
    token = secrets.token_urlsafe(24)
    expires_ms = int(time.time() * 1000) + 6000
    path.write_text(f"advisor:adv-ana:{token} expires={iso_ms(expires_ms)}\n")
    assert _until(lambda: _status(settings, token) == 200)
    with _socket(settings, token) as ws:
        code, reason = _closed_with(ws)
    assert (code, reason) == (4401, "the token was revoked or has expired")
    assert time.time() * 1000 >= expires_ms
    reply = httpx.get(f"{settings.dashboard_url}/api/alerts",
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 401 and "expired at" in reply.json()["message"]
