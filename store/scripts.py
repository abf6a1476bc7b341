"""Lua script calls of a batch, in one round trip.

redis-py asks Redis `SCRIPT EXISTS` before every pipeline that calls a
registered script: one more round trip per batch, on the hot path.  Here a
pipeline sends plain EVALSHA; if Redis does not know a script (it restarted
or was flushed), the scripts are loaded and the pipeline is sent again, so
the calls must be safe to send twice: ours are (inserts if absent, counts
guarded by a set of counted ids).

On Redis Cluster, redis-py refuses scripts in pipelines, and its cluster
client mishandled many concurrent calls when tried (a call ran twice, a
connection broke); there the calls, each on the keys of one slot, go out one
after the other: correct, and slower than on a single server.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Args = Sequence[bytes | str | int]
ScriptCall = tuple[AsyncScript, Sequence[str], Args]


async def run_scripts(redis: Redis | RedisCluster, calls: Sequence[ScriptCall]) -> list:
    """Each call's reply, in order."""
    if isinstance(redis, RedisCluster):
        return [await script(keys=keys, args=args, client=redis)
                for script, keys, args in calls]
    for attempt in (1, 2):
        pipe = redis.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            return await pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            for script in {script for script, _, _ in calls}:
                await redis.script_load(script.script)
    raise AssertionError("unreachable")
