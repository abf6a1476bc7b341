"""Lua scripts in pipelines, without an extra round trip per pipeline.

redis-py asks Redis `SCRIPT EXISTS` before every pipeline that calls a
registered script: one more round trip per batch, on the hot path.  Here a
pipeline sends plain EVALSHA; if Redis does not know a script (it restarted
or was flushed), the scripts are loaded and the pipeline is sent again.
Every pipeline built this way must be safe to send twice: ours are (inserts
if absent, counts guarded by a set of counted ids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Args = Sequence[bytes | str | int]


def queue_script(pipe: Pipeline, script: AsyncScript, keys: Sequence[str], args: Args) -> None:
    pipe.evalsha(script.sha, len(keys), *keys, *args)


async def run_pipeline(redis: Redis, fill: Callable[[Pipeline], None],
                       scripts: Sequence[AsyncScript]) -> list:
    """Send the commands `fill` queues as one pipeline; the replies in order."""
    for attempt in (1, 2):
        pipe = redis.pipeline(transaction=False)
        fill(pipe)
        try:
            return await pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            for script in scripts:
                await redis.script_load(script.script)
    raise AssertionError("unreachable")
