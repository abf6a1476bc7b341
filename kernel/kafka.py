"""Kafka clients as every part of the product makes them: one producer, one consumer
and one admin set-up, so durability and security options are decided once.

`security_options` turns `Settings.kafka_security` into aiokafka's options (faust's
credentials are built from the same parts in streams/app.py); `access_problem` explains
in one line, naming the setting, why the brokers refuse us.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn, get_ip_port_afi
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from kernel.errors import ConfigError
from kernel.settings import OAUTHBEARER, KafkaSecurity, Settings, SettingsError
from kernel.times import iso_ms

ACCESS_TIMEOUT_S = 10


class KafkaAccessError(ConfigError):
    """The brokers answer but refuse us: a security setting is wrong (the message says
    which).  Retrying cannot help, so processes stop at start instead of waiting."""


class TokenFile(AbstractTokenProvider):
    """OAUTHBEARER tokens read from a file at each new connection, so that whatever
    renews the file (an identity provider's sidecar, a cron job) rotates the token."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        try:
            token = self.path.read_text().strip()
        except OSError as exc:
            raise KafkaAccessError(f"KAFKA_SASL_TOKEN_FILE={self.path}: {exc.strerror}"
                                   ) from None
        if not token:
            raise KafkaAccessError(f"KAFKA_SASL_TOKEN_FILE={self.path} is empty")
        expires = _jwt_expiry(token)
        if expires is not None and expires <= time.time():
            # Brokers refuse it, but aiokafka reports that only as a closed connection.
            raise KafkaAccessError(
                f"KAFKA_SASL_TOKEN_FILE={self.path}: the token expired at "
                f"{iso_ms(int(expires * 1000))}; whatever renews the file has stopped")
        return token


def _jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (read, not verified: the broker verifies), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    return float(expiry) if isinstance(expiry, int | float) else None


@lru_cache(maxsize=8)
def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """The TLS context of every client: the CA file (or the system's CAs), the client
    certificate if any, hostname checking unless turned off."""
    try:
        context = ssl.create_default_context(
            cafile=None if security.ssl_ca_file is None else str(security.ssl_ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(f"KAFKA_SSL_CA_FILE={security.ssl_ca_file}: not a PEM file of "
                            f"CA certificates ({exc})") from None
    context.check_hostname = security.ssl_check_hostname
    if security.ssl_cert_file is not None and security.ssl_key_file is not None:
        try:
            context.load_cert_chain(str(security.ssl_cert_file), str(security.ssl_key_file),
                                    security.ssl_key_password or None)
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"KAFKA_SSL_CERT_FILE={security.ssl_cert_file}, KAFKA_SSL_KEY_FILE="
                f"{security.ssl_key_file}: not a PEM certificate and its key, or "
                f"KAFKA_SSL_KEY_PASSWORD is wrong ({exc})") from None
    return context


def security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's security options for `settings` (every client class takes the same)."""
    security = settings.kafka_security
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_ssl:
        options["ssl_context"] = ssl_context(security)
    if security.uses_sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        if security.sasl_mechanism == OAUTHBEARER:
            assert security.sasl_token_file is not None  # KafkaSecurity.check
            options["sasl_oauth_token_provider"] = TokenFile(security.sasl_token_file)
        else:
            options["sasl_plain_username"] = security.sasl_username
            options["sasl_plain_password"] = security.sasl_password
    return options


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """The producer every sender in this project uses: durable and batched.

    acks=all + idempotence: an acknowledged event is on the broker and a retry
    never writes it twice.  A few ms of linger lets batches form under load at
    a latency cost that is invisible next to the pipeline's.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        **security_options(settings),
        "client_id": f"{settings.app_id}-producer",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "max_request_size": max(1024 * 1024, settings.max_event_bytes * 2),
    }
    return AIOKafkaProducer(**options | overrides)


def make_consumer(settings: Settings, *topics: str, group_id: str | None,
                  **overrides: Any) -> AIOKafkaConsumer:
    """A consumer in `group_id` (also its client id) that commits only when told to.

    Offsets are committed by the caller once a batch is done with (at least once);
    a group new to a partition starts at its oldest record.  Callers pass what
    differs for them (assignor, fetch sizes, start) as `overrides`.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        **security_options(settings),
        "group_id": group_id,
        "client_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_s * 1000,
        "heartbeat_interval_ms": settings.session_timeout_s * 200,
    }
    return AIOKafkaConsumer(*topics, **options | overrides)


def make_admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    """An admin client (topics, group offsets) with the same connection options."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers,
                               **security_options(settings)}
    return AIOKafkaAdminClient(**options | overrides)


async def start_producer(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """Start it; if Kafka cannot be reached, close it before raising (no leak warning)."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def existing_topics(producer: AIOKafkaProducer) -> set[str]:
    """The broker's topics, from one metadata request on the producer's connection."""
    metadata = await producer.client.fetch_all_metadata()
    return set(metadata.topics())


async def check_access(settings: Settings) -> None:
    """KafkaAccessError if a broker answers but refuses our security settings; nothing
    when one accepts them, or when none answers (then the caller's usual waiting and
    "cannot reach Kafka" apply)."""
    problem = await access_problem(settings)
    if problem is not None:
        raise KafkaAccessError(problem)


async def access_problem(settings: Settings) -> str | None:
    """Why the brokers refuse us, in one line naming the setting; None when one of them
    accepts a metadata request, or when none could be reached at all."""
    security = settings.kafka_security
    options = security_options(settings)
    problem = None
    for item in settings.kafka_bootstrap_servers.split(","):
        host, port, _ = get_ip_port_afi(item.strip())
        where = f"Kafka {host}:{port}"
        try:
            await asyncio.wait_for(_metadata(host, port, options), ACCESS_TIMEOUT_S)
            return None
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            if "mismatch" in reason:
                problem = (f"{where}: its certificate does not name {host} ({reason}); "
                           "connect by a name it has, or set KAFKA_SSL_CHECK_HOSTNAME=false")
            else:
                problem = (f"{where}: its certificate is not trusted ({reason}); "
                           "KAFKA_SSL_CA_FILE must name the CA that signed it")
        except ssl.SSLError as exc:
            problem = (f"{where} did not complete TLS ({exc.reason or exc}); is "
                       f"KAFKA_SECURITY_PROTOCOL={security.protocol} this listener's?")
        except SaslAuthenticationFailed:
            who = ("the token in KAFKA_SASL_TOKEN_FILE"
                   if security.sasl_mechanism == OAUTHBEARER
                   else f"KAFKA_SASL_USERNAME={security.sasl_username}")
            problem = (f"{where} refused {who} (KAFKA_SASL_MECHANISM="
                       f"{security.sasl_mechanism}): wrong KAFKA_SASL_PASSWORD, unknown "
                       "user or expired token")
        except UnsupportedSaslMechanismError as exc:
            problem = (f"{where} does not offer KAFKA_SASL_MECHANISM="
                       f"{security.sasl_mechanism} ({exc})")
        except (KafkaConnectionError, TimeoutError, ConnectionResetError) as exc:
            # Reset: TLS spoken to a plaintext listener.  Closed: the reverse, or SASL
            # spoken to a listener without it, or a certificate the listener wanted.
            if not _answers(host, port):
                continue  # nobody there: not a security problem
            problem = _refused(where, security, exc)
        except KafkaAccessError as exc:
            return str(exc)
        except (KafkaError, OSError):
            continue
    return problem


def _refused(where: str, security: KafkaSecurity, exc: Exception) -> str:
    """A broker that took the connection, then closed it or never answered."""
    hint = f"is KAFKA_SECURITY_PROTOCOL={security.protocol} this listener's?"
    if security.uses_ssl and security.ssl_cert_file is None:
        hint += (" A listener that authenticates clients by certificate wants "
                 "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE.")
    what = "did not answer" if isinstance(exc, TimeoutError) else "closed the connection"
    return f"{where} {what} while we were setting it up; {hint}"


async def _metadata(host: str, port: int, options: dict[str, Any]) -> None:
    conn = await create_conn(host, port, request_timeout_ms=ACCESS_TIMEOUT_S * 1000,
                             client_id="cxt-access-check", **options)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


def _answers(host: str, port: int) -> bool:
    """Whether anything accepts a TCP connection there."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=3):
        return True
    return False
