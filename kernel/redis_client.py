"""The Redis client every part of the product uses.

redis-py's asyncio connection packs each command in Python, argument by
argument; a worker batch sends thousands of arguments, and that packing was
the largest single cost on the worker's Redis side.  hiredis (already our
reply parser) packs a whole command in C, as redis-py's synchronous client
does when hiredis is installed.
"""

from __future__ import annotations

from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

# Either client: every store takes both (CXT_REDIS_CLUSTER decides which one runs).
# redis-py types a range reply as any of its shapes and a script's `client` as a
# client only (a pipeline is its documented use), so the stores `cast` those replies
# to the shape the command returns and run scripts on pipelines through `on_pipeline`.
RedisClient = Redis | RedisCluster
RedisPipeline = Pipeline | ClusterPipeline


def on_pipeline(pipe: RedisPipeline) -> RedisClient:
    """`pipe` as a script's `client` (see above); the script is then queued on it."""
    return cast(RedisClient, pipe)


def text(reply: bytes | str) -> str:
    """A reply as text.  Our clients never decode replies (entries stay bytes for orjson),
    but redis-py's annotations allow str too."""
    return reply if isinstance(reply, str) else reply.decode()


class HiredisPackingConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        # A multi-word command name ("CONFIG GET") goes out as separate words, as
        # redis-py's own packer does it.
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
        # hiredis takes str, int, float and bytes only; views are copied, the rest refused.
        args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:  # e.g. None or a bool: redis-py refuses them too
            raise DataError(str(exc)) from None


def connect(url: str, *, cluster: bool = False, **options: Any) -> RedisClient:
    """A client for `url` (redis://, rediss:// or unix://); `options` as for redis-py.
    With `cluster`, `url` names one node of a Redis Cluster."""
    if cluster:
        return RedisCluster.from_url(url, **options)
    # The URL's scheme decides over `connection_class`: TLS and unix sockets keep
    # redis-py's own connection classes (and packer).
    return Redis.from_url(url, connection_class=HiredisPackingConnection, **options)
