"""Contact-reason counters in Redis: contacts per hour by channel, queue and intent.

One hash per UTC hour (`cxt:{k:20261122}:10:n`, fields of domain.contact_reasons).
The contacts are counted by the worker's contact memory (store.negatives), in the
same script call that records them, so each contact counts once: in the hour of the
first of its events to arrive, and as a repeat or negative once, under the
dimensions of that first count.  This module counts the negative-interaction
alerts, once each (a hash of counted alert ids beside the hour's counters), and
reads the counters back.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.contact_reasons import NEGATIVE_ALERTS
from domain.survey_metrics import hour_of
from kernel.redis_client import RedisClient
from store.keys import Keys
from store.scripts import run_scripts

# KEYS: the hour's counters and seen hashes.  ARGV: counters TTL, seen TTL, field, then
# alert ids.  Counts each alert once.
_COUNT_ALERTS = """
local new = 0
for i = 4, #ARGV do
  if redis.call('HSETNX', KEYS[2], 'a|' .. ARGV[i], 1) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
    new = new + 1
  end
end
if new > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return new
"""

# Long enough for the redelivery of any batch.
COUNTED_IDS_TTL_S = 7 * 86_400


class ContactReasonStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, ttl_days: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_days * 86_400
        self._count_alerts = redis.register_script(_COUNT_ALERTS)

    async def count_alerts(self, raised: Sequence[tuple[str, int]]) -> None:
        """Count negative-interaction alerts (alert_id, raised epoch ms) once each in the
        UTC hour they were raised: one script call per hour, one round trip."""
        if not raised:
            return
        by_bucket: dict[str, list[str]] = {}
        for alert_id, raised_ms in raised:
            by_bucket.setdefault(hour_of(raised_ms), []).append(alert_id)
        await run_scripts(self.redis, [
            (self._count_alerts,
             [self.keys.contact_counters(hour), self.keys.contact_counted(hour)],
             [self.ttl_s, COUNTED_IDS_TTL_S, NEGATIVE_ALERTS, *ids])
            for hour, ids in by_bucket.items()])

    async def counters(self, buckets: Sequence[str]) -> dict[str, dict[bytes, bytes]]:
        """Each hour's counters hash (empty when nothing was counted)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(self.keys.contact_counters(bucket))
        return dict(zip(buckets, await pipe.execute(), strict=True))
