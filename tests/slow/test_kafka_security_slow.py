"""Kafka security against a real broker with SASL_SSL, SSL (client certificates) and
SASL_PLAINTEXT listeners (tests/support/secure.py): every protocol and mechanism connects,
each wrong setting is refused within seconds in one line naming it, and the product's
processes run end to end over SASL_SSL with SCRAM-SHA-512 (that one in the slow suite,
tests/slow/test_secure_kafka_slow.py).  In the slow suite: with the broker it starts it takes
about a minute, more than the quick suite has room for."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cxt.localstack import LocalStack
from kernel.kafka import access_problem, make_consumer, make_producer, start_producer
from kernel.settings import ApiToken, Settings
from tests.support.helpers import (
    create_topics,
)
from tests.support.processes import run_cxt
from tests.support.secure import (
    KAFKA_USER,
    PLAIN_PASSWORD,
    PLAIN_USER,
    Certs,
    SecureListeners,
    running_secure_broker,
    scram_settings,
    secure_settings,
    unsecured_token,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Certs, SecureListeners, Path]]:
    """The certificates, the secured broker's listeners and a scratch directory."""
    with running_secure_broker(stack, tmp_path_factory.mktemp("secure")) as secured:
        yield secured


_settings, _scram = secure_settings, scram_settings


def _accepted(stack: LocalStack, certs: Certs, listeners: SecureListeners, scratch: Path,
              case: str) -> Settings:
    if case in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        return _scram(stack, certs, listeners, case)
    if case == "SASL_SSL PLAIN":
        return _settings(stack, listeners, "SASL_SSL", sasl_mechanism="PLAIN",
                         sasl_username=PLAIN_USER, sasl_password=PLAIN_PASSWORD,
                         ssl_ca_file=certs.ca)
    if case == "SASL_PLAINTEXT PLAIN":
        return _settings(stack, listeners, "SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                         sasl_username=PLAIN_USER, sasl_password=PLAIN_PASSWORD)
    if case == "OAUTHBEARER":
        token = scratch / f"token-{uuid.uuid4().hex[:6]}"
        token.write_text(unsecured_token() + "\n")
        return _settings(stack, listeners, "SASL_SSL", sasl_mechanism="OAUTHBEARER",
                         sasl_token_file=token, ssl_ca_file=certs.ca)
    assert case == "SSL client certificate"
    return _settings(stack, listeners, "SSL", ssl_ca_file=certs.ca,
                     ssl_cert_file=certs.client_cert, ssl_key_file=certs.client_key)


async def _round_trip(settings: Settings) -> bytes | None:
    """Create our topics, send one message and read it back, all with `settings`."""
    await create_topics(settings)
    producer = await start_producer(make_producer(settings))
    try:
        await producer.send_and_wait(settings.topics.timeline, b"hello", key=b"C-1")
    finally:
        await producer.stop()
    consumer = make_consumer(settings, settings.topics.timeline, group_id=None)
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=10_000)
        return next((r.value for rs in records.values() for r in rs), None)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("case", ["SCRAM-SHA-256", "SCRAM-SHA-512", "SASL_SSL PLAIN",
                                  "SASL_PLAINTEXT PLAIN", "OAUTHBEARER",
                                  "SSL client certificate"])
def test_each_protocol_and_mechanism_connects(stack: LocalStack, secured: tuple, case: str
                                              ) -> None:
    settings = _accepted(stack, *secured, case)
    assert asyncio.run(access_problem(settings)) is None
    assert asyncio.run(_round_trip(settings)) == b"hello"


def _refused(stack: LocalStack, certs: Certs, listeners: SecureListeners, scratch: Path,
             case: str) -> Settings:
    if case == "wrong password":
        return _scram(stack, certs, listeners, password="not-the-password")
    if case == "untrusted certificate":
        return replace(_scram(stack, certs, listeners),
                       kafka_security=replace(_scram(stack, certs, listeners).kafka_security,
                                              ssl_ca_file=certs.other_ca))
    if case == "no client certificate":
        return _settings(stack, listeners, "SSL", ssl_ca_file=certs.ca)
    if case == "TLS to a plaintext listener":
        settings = _scram(stack, certs, listeners)
        return replace(settings, kafka_bootstrap_servers=listeners.bootstrap("SASL_PLAINTEXT"))
    assert case == "expired token"
    token = scratch / f"token-{uuid.uuid4().hex[:6]}"
    token.write_text(unsecured_token(lifetime_s=-60))
    return _settings(stack, listeners, "SASL_SSL", sasl_mechanism="OAUTHBEARER",
                     sasl_token_file=token, ssl_ca_file=certs.ca)


REFUSALS = {
    "wrong password": "KAFKA_SASL_PASSWORD",
    "untrusted certificate": "KAFKA_SSL_CA_FILE",
    "no client certificate": "KAFKA_SSL_CERT_FILE",
    "TLS to a plaintext listener": "KAFKA_SECURITY_PROTOCOL=SASL_SSL",
    "expired token": "KAFKA_SASL_TOKEN_FILE",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_wrong_setting_is_named_within_seconds(stack: LocalStack, secured: tuple,
                                                    case: str) -> None:
    settings = _refused(stack, *secured, case)
    started = time.monotonic()
    problem = asyncio.run(access_problem(settings))
    assert time.monotonic() - started < 15
    assert problem is not None and REFUSALS[case] in problem, problem
    assert "\n" not in problem


@pytest.mark.parametrize("command", [("worker",), ("dashboard",), ("summaries",),
                                     ("topics", "create"),
                                     ("simulate", "--rate", "5", "--duration", "2")])
def test_a_refused_password_stops_each_command_with_one_line(stack: LocalStack,
                                                             secured: tuple,
                                                             command: tuple[str, ...]) -> None:
    certs, listeners, _ = secured
    settings = _scram(stack, certs, listeners, password="not-the-password")
    settings = replace(settings, api_tokens=(ApiToken("advisor", "a-1", secrets.token_hex(16)),))
    started = time.monotonic()
    result = run_cxt(settings, *command, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any("KAFKA_SASL_PASSWORD" in line and KAFKA_USER in line for line in lines), lines
    assert "not-the-password" not in result.stdout + result.stderr
