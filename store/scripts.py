"""Lua script calls of a batch, in one round trip.

redis-py asks Redis `SCRIPT EXISTS` before every pipeline that calls a
registered script: one more round trip per batch, on the hot path.  Here a
pipeline sends plain EVALSHA, preceded by `SCRIPT LOAD` of each script this
client has not sent yet (the same round trip).  If Redis does not know a
script all the same (it restarted or was flushed), the scripts are loaded and
the pipeline is sent again, so the calls must be safe to send twice: ours are
(inserts if absent, counts guarded by a set of counted ids).  Loading first
matters beyond the retry: redis-py words a pipeline's error with
`textwrap.shorten` of the whole failing command, about 0.3 s of CPU for a
batch's megabyte of insert arguments, so a worker's first batch took that
long once per script.

On Redis Cluster, redis-py refuses scripts in pipelines, and its cluster
client mishandled many concurrent calls when tried (a call ran twice, a
connection broke); there the calls, each on the keys of one slot, go out one
after the other: correct, and slower than on a single server.
"""

from __future__ import annotations

from collections.abc import Sequence
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Args = Sequence[bytes | str | int]
ScriptCall = tuple[AsyncScript, Sequence[str], Args]

# Per client, the scripts it has loaded (or found loaded) since Redis last lost them.
_loaded: WeakKeyDictionary[Redis, set[str]] = WeakKeyDictionary()


async def run_scripts(redis: Redis | RedisCluster, calls: Sequence[ScriptCall]) -> list:
    """Each call's reply, in order."""
    if isinstance(redis, RedisCluster):
        return [await script(keys=keys, args=args, client=redis)
                for script, keys, args in calls]
    known = _loaded.setdefault(redis, set())
    for attempt in (1, 2):
        pipe = redis.pipeline(transaction=False)
        loading = {script.sha: script for script, _, _ in calls if script.sha not in known}
        for script in loading.values():
            pipe.script_load(script.script)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            replies = await pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            known.clear()  # Redis restarted or was flushed: load them all again
            continue
        known.update(loading)
        return replies[len(loading):]
    raise AssertionError("unreachable")
