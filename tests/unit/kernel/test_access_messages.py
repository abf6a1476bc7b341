"""The one-line explanations of refused access, and the token file's expiry check (no
servers: the real refusals are in tests/slow/test_kafka_security_slow.py and
tests/slow/test_redis_security_slow.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError

from kernel.kafka import KafkaAccessError, TokenFile
from kernel.redis_client import access_problem, redact_url
from tests.support.secure import unsecured_token

URL = "rediss://cxt:s3cret@r.example:6380/0"


def test_urls_lose_their_password_in_messages() -> None:
    assert redact_url(URL) == "rediss://cxt:***@r.example:6380/0"
    assert redact_url("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(("error", "named"), [
    (AuthenticationError("invalid username-password pair"), "REDIS_PASSWORD"),
    (NoPermissionError("No permissions to access a key"), "CXT_REDIS_PREFIX"),
    (RedisConnectionError("Error 1 connecting. [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                          "verify failed: unable to get local issuer certificate"),
     "REDIS_SSL_CA_FILE"),
    (RedisConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                          "Hostname mismatch, certificate is not valid for 'r'"),
     "REDIS_SSL_CHECK_HOSTNAME"),
])
def test_each_redis_refusal_names_its_setting(error: Exception, named: str) -> None:
    problem = access_problem(error, URL, "cxt")
    assert problem is not None and named in problem and "s3cret" not in problem


def test_an_unreachable_redis_is_not_an_access_problem() -> None:
    assert access_problem(RedisConnectionError("Connection refused"), URL, "cxt") is None


def test_the_token_file_is_read_at_each_connection_and_an_expired_token_named(
        tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(unsecured_token() + "\n")
    first = asyncio.run(TokenFile(path).token())
    path.write_text("opaque-token-not-a-jwt")
    assert asyncio.run(TokenFile(path).token()) == "opaque-token-not-a-jwt" != first
    path.write_text(unsecured_token(lifetime_s=-5))
    with pytest.raises(KafkaAccessError, match=r"KAFKA_SASL_TOKEN_FILE=.*expired at"):
        asyncio.run(TokenFile(path).token())
    path.write_text("")
    with pytest.raises(KafkaAccessError, match="is empty"):
        asyncio.run(TokenFile(path).token())
