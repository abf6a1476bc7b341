"""A real HTTP endpoint for webhook deliveries: `Receiver` records every `Request` and
answers as the message asks; `receiving` serves receivers for the duration of a block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from cxt.localstack import free_port

TIMEOUT_S = 0.5  # the endpoints' time-out in the webhook tests; a slow receiver sleeps past it


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None  # None: slept past the client's time-out

    @property
    def delivery(self) -> str:
        return self.headers["X-CXT-Delivery"]

    @property
    def attempt(self) -> int:
        return int(self.headers["X-CXT-Attempt"])

    @property
    def message(self) -> dict:
        return orjson.loads(self.body)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Receiver:
    """A real HTTP endpoint; `failing` answers every request with 500, `slow` sleeps all,
    `holding` answers 503 to the messages of those customers."""

    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    failing: bool = False
    slow: bool = False
    holding: set[str] = field(default_factory=set)
    pause_s: float = 0.0  # before answering each request
    _seen: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, http: web.Request) -> web.Response:
        request = Request(dict(http.headers), await http.read(), time.monotonic())
        if self.pause_s:
            await asyncio.sleep(self.pause_s)
        self.requests.append(request)
        self._seen[request.delivery] += 1
        test = orjson.loads(request.body).get("test") or {}
        if self.slow or self._seen[request.delivery] <= test.get("sleep", 0):
            await asyncio.sleep(TIMEOUT_S * 3)
            return web.Response(status=200)
        status = 204
        if self.failing or self._seen[request.delivery] <= test.get("fail", 0):
            status = test.get("status", 500)
        if request.message.get("customer_id") in self.holding:
            status = 503
        request.status = status
        return web.Response(status=status, text="boom" if status >= 300 else "")

    def delivered(self) -> list[Request]:
        return [r for r in self.requests if r.ok]

    def delivered_ids(self) -> list[str]:
        return [r.message["id"] for r in self.delivered()]


@contextlib.asynccontextmanager
async def receiving(*receivers: Receiver) -> AsyncIterator[None]:
    runners = []
    for receiver in receivers:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
        runners.append(runner)
    try:
        yield
    finally:
        for runner in runners:
            await runner.cleanup()
