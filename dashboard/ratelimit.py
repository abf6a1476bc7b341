"""Writes rate-limited per token: a token bucket each (CXT_SELF_SERVICE_WRITE_RATE).

A bucket holds up to `burst` writes and refills at `count` per `period_s`; a write
takes one, and with none left the answer is 429 with Retry-After (whole seconds until
the next one).  Buckets live in the dashboard process: each replica behind a load
balancer counts on its own, so N replicas allow up to N times the rate (the limit
is against a runaway script or a stuck button, not a distributed attacker, whom a
token can be revoked for).  A bucket that has refilled is the same as none, so those
are dropped when there are many, which bounds the memory to the busy tokens.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from dashboard.errors import ApiError, FastJSONResponse
from kernel.settings import WriteRate

# Buckets kept before the full ones are swept out.
SWEEP_AT = 10_000


class RateLimited(ApiError):
    """429 with Retry-After."""

    def __init__(self, retry_after_s: float, rate: WriteRate) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(429, "rate_limited",
                         f"too many changes: at most {rate.burst} at once and {rate.count} "
                         f"per {_period(rate.period_s)}; try again in {self.retry_after_s} s")

    def response(self) -> FastJSONResponse:
        reply = super().response()
        reply.headers["Retry-After"] = str(self.retry_after_s)
        return reply


class TokenBuckets:
    def __init__(self, rate: WriteRate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.per_s = rate.count / rate.period_s
        # digest of the token -> (writes left, when counted)
        self._buckets: dict[bytes, tuple[float, float]] = {}

    def take(self, token: str) -> None:
        """One write for `token`, or RateLimited."""
        now = self.clock()
        key = hashlib.sha256(token.encode()).digest()  # the plain token is not kept
        left, at = self._buckets.get(key, (float(self.rate.burst), now))
        left = min(float(self.rate.burst), left + (now - at) * self.per_s)
        if left < 1:
            self._buckets[key] = (left, now)
            raise RateLimited((1 - left) / self.per_s, self.rate)
        self._buckets[key] = (left - 1, now)
        if len(self._buckets) > SWEEP_AT:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        full = float(self.rate.burst)
        self._buckets = {k: (left, at) for k, (left, at) in self._buckets.items()
                         if left + (now - at) * self.per_s < full}

    def __len__(self) -> int:
        return len(self._buckets)


def _period(seconds: int) -> str:
    return {1: "second", 60: "minute", 3600: "hour"}.get(seconds, f"{seconds} s")
