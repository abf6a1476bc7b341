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
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    DataError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from kernel.errors import ConfigError
from kernel.settings import RedisSecurity

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


def security_options(url: str, security: RedisSecurity) -> dict[str, Any]:
    """redis-py's options for the credentials and TLS files of `security`."""
    options: dict[str, Any] = {}
    if security.password:
        options["password"] = security.password
        if security.username:
            options["username"] = security.username
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = security.ssl_check_hostname
        if security.ssl_ca_file is not None:
            options["ssl_ca_certs"] = str(security.ssl_ca_file)
        if security.ssl_cert_file is not None and security.ssl_key_file is not None:
            options["ssl_certfile"] = str(security.ssl_cert_file)
            options["ssl_keyfile"] = str(security.ssl_key_file)
    return options


def connect(url: str, *, cluster: bool = False, security: RedisSecurity | None = None,
            **options: Any) -> RedisClient:
    """A client for `url` (redis://, rediss:// or unix://); `options` as for redis-py.
    With `cluster`, `url` names one node of a Redis Cluster."""
    if security is not None:
        options = security_options(url, security) | options
    if cluster:
        return RedisCluster.from_url(url, **options)
    # The URL's scheme decides over `connection_class`: TLS and unix sockets keep
    # redis-py's own connection classes (and packer).
    return Redis.from_url(url, connection_class=HiredisPackingConnection, **options)


class RedisAccessError(ConfigError):
    """Redis answers but refuses us (credentials, TLS, ACL): the message names the setting.
    Retrying cannot help, so processes stop at start instead of waiting."""


def access_problem(exc: BaseException, url: str, prefix: str) -> str | None:
    """A Redis error explained in one line naming the setting, if it is one of access."""
    where = f"Redis {redact_url(url)}"
    message = str(exc)
    if isinstance(exc, AuthenticationError | AuthenticationWrongNumberOfArgsError) or (
            isinstance(exc, ResponseError) and message.startswith(("WRONGPASS", "NOAUTH"))):
        return (f"{where} refused the credentials ({message}); check REDIS_USERNAME and "
                "REDIS_PASSWORD (or the user and password in REDIS_URL)")
    if isinstance(exc, NoPermissionError):
        return (f"{where}: the ACL user may not do what we need ({message}); it needs the "
                f"keys {prefix}:* (CXT_REDIS_PREFIX) and the commands of +@all -@dangerous")
    if isinstance(exc, RedisConnectionError) and ("certificate" in message or
                                                   "SSL" in message or "TLS" in message):
        if "mismatch" in message or "hostname" in message:
            return (f"{where}: its certificate does not name the host ({message}); connect by "
                    "a name it has, or set REDIS_SSL_CHECK_HOSTNAME=false")
        if "verify failed" in message:
            return (f"{where}: its certificate is not trusted ({message}); REDIS_SSL_CA_FILE "
                    "must name the CA that signed it")
        return (f"{where}: TLS failed ({message}); does the server want a client certificate "
                "(REDIS_SSL_CERT_FILE, REDIS_SSL_KEY_FILE), or speak TLS at all (rediss:// "
                "or redis://)?")
    return None


async def check_access(redis: RedisClient, url: str, prefix: str) -> None:
    """RedisAccessError if Redis answers but refuses us; nothing when it accepts us or
    cannot be reached (then the caller's usual waiting applies)."""
    try:
        await redis.exists(f"{prefix}:access-check")  # a key of ours: the ACL is tried too
    except RedisError as exc:
        problem = access_problem(exc, url, prefix)
        if problem is not None:
            raise RedisAccessError(problem) from None


def redact_url(url: str) -> str:
    """`url` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"
