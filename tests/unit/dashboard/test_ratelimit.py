"""dashboard/ratelimit.py: the token bucket per token, its 429, and the setting it reads."""

from __future__ import annotations

import orjson
import pytest

from dashboard.ratelimit import SWEEP_AT, RateLimited, TokenBuckets
from kernel.settings import Settings, SettingsError, WriteRate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval_per_token() -> None:
    clock = Clock()
    buckets = TokenBuckets(WriteRate(20, 60, 5), clock)  # one every 3 s, 5 at once
    for _ in range(5):
        buckets.take("token-a")
    with pytest.raises(RateLimited) as refused:
        buckets.take("token-a")
    assert refused.value.retry_after_s == 3
    buckets.take("token-b")  # another token has its own bucket
    clock.now += 2.9
    with pytest.raises(RateLimited) as again:
        buckets.take("token-a")
    assert again.value.retry_after_s == 1  # whole seconds, at least 1
    clock.now += 0.2
    buckets.take("token-a")
    clock.now += 3600  # refills to the burst, never beyond
    for _ in range(5):
        buckets.take("token-a")
    with pytest.raises(RateLimited):
        buckets.take("token-a")


def test_the_refusal_is_a_429_with_retry_after_and_the_api_error_shape() -> None:
    reply = RateLimited(2.2, WriteRate(20, 60, 5)).response()
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "3"
    body = orjson.loads(reply.body)
    assert set(body) == {"error", "message"} and body["error"] == "rate_limited"
    assert "5 at once and 20 per minute" in body["message"], body


def test_full_buckets_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Clock()
    buckets = TokenBuckets(WriteRate(1, 1, 1), clock)
    for n in range(SWEEP_AT):
        buckets.take(f"t{n}")
    clock.now += 5  # all of them refilled
    buckets.take("busy")
    buckets.take("one-more")
    assert len(buckets) <= 2


def test_the_setting() -> None:
    assert Settings().self_service_write_rate == WriteRate(20, 60, 5)
    env = {"CXT_SELF_SERVICE_WRITE_RATE": "100/s,50"}
    assert Settings.from_env(env).self_service_write_rate == WriteRate(100, 1, 50)
    assert Settings.from_env(env).to_env()["CXT_SELF_SERVICE_WRITE_RATE"] == "100/s,50"
    for bad in ("20", "20/min", "0/min,5", "20/min,0", "20/day,5", "many"):
        with pytest.raises(SettingsError, match="CXT_SELF_SERVICE_WRITE_RATE"):
            Settings.from_env({"CXT_SELF_SERVICE_WRITE_RATE": bad})
