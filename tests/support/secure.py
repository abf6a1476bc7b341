"""Secured Kafka and Redis for the tests, started for real: certificates made here with
openssl, a broker with SASL_SSL, SSL (client certificates) and SASL_PLAINTEXT listeners and
SCRAM users made by Kafka's own storage tool, a redis-server with TLS and an ACL user."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from cxt.localstack import KafkaBroker, LocalStack, RedisServer, ensure_kafka_libs, free_port
from kernel.settings import KafkaSecurity, Settings
from tests.support.helpers import isolated

KAFKA_USER, KAFKA_PASSWORD = "cxt-app", "kafka-secret-0a1b2c"
PLAIN_USER, PLAIN_PASSWORD = "cxt-plain", "plain-secret-3d4e5f"


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost and a client one it signed,
    and a second CA that signed nothing of ours (an untrusted one)."""

    ca: Path
    server_cert: Path
    server_key: Path
    server_pem: Path  # key + certificate, Kafka's PEM key store
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}")
    return key, cert


def _signed(directory: Path, name: str, ca_key: Path, ca_cert: Path, *,
            san: str | None) -> tuple[Path, Path]:
    key, csr, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                      directory / f"{name}.pem")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={name}")
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(extensions))
    return key, cert


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _ca(directory, "test-ca")
    server_key, server_cert = _signed(directory, "server", ca_key, ca,
                                      san="IP:127.0.0.1,DNS:localhost")
    client_key, client_cert = _signed(directory, "client", ca_key, ca, san=None)
    _, other_ca = _ca(directory, "other-ca")
    server_pem = directory / "server-store.pem"
    server_pem.write_text(server_key.read_text() + server_cert.read_text())
    return Certs(ca, server_cert, server_key, server_pem, client_cert, client_key, other_ca)


@dataclass(frozen=True)
class SecureListeners:
    sasl_ssl: int
    ssl: int
    sasl_plaintext: int

    def bootstrap(self, protocol: str) -> str:
        port = {"SASL_SSL": self.sasl_ssl, "SSL": self.ssl,
                "SASL_PLAINTEXT": self.sasl_plaintext}[protocol]
        return f"127.0.0.1:{port}"


def secure_broker(*, data_dir: Path, libs_dir: Path, certs: Certs, heap: str
                  ) -> tuple[KafkaBroker, SecureListeners]:
    """A broker whose client listeners are secured; SCRAM-SHA-256/512 user KAFKA_USER,
    PLAIN user PLAIN_USER, and OAUTHBEARER with Kafka's unsecured (test-only) tokens."""
    ports = SecureListeners(free_port(), free_port(), free_port())
    store = ["ssl.keystore.type=PEM", f"ssl.keystore.location={certs.server_pem}",
             "ssl.truststore.type=PEM", f"ssl.truststore.location={certs.ca}"]
    mechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
    properties: list[str] = []
    for listener in ("sasl_ssl", "ssl"):
        properties += [f"listener.name.{listener}.{p}" for p in store]
    properties.append("listener.name.ssl.ssl.client.auth=required")
    for listener in ("sasl_ssl", "sasl_plaintext"):
        prefix = f"listener.name.{listener}"
        properties += [
            f"{prefix}.sasl.enabled.mechanisms={mechanisms}",
            f"{prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain."
            f'PlainLoginModule required user_{PLAIN_USER}="{PLAIN_PASSWORD}";',
            f"{prefix}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security."
            "scram.ScramLoginModule required;",
            f"{prefix}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security."
            "scram.ScramLoginModule required;",
            f"{prefix}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security."
            'oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="x";',
        ]
    scram = [arg for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512") for arg in (
        "--add-scram", f"{mechanism}=[name={KAFKA_USER},password={KAFKA_PASSWORD}]")]
    broker = KafkaBroker(
        port=free_port(), data_dir=data_dir, libs_dir=libs_dir, heap=heap,
        listeners={"SASL_SSL": ("SASL_SSL", ports.sasl_ssl), "SSL": ("SSL", ports.ssl),
                   "SASL_PLAINTEXT": ("SASL_PLAINTEXT", ports.sasl_plaintext)},
        properties=properties, format_args=scram)
    return broker, ports


def unsecured_token(subject: str = "cxt-app", lifetime_s: int = 3600) -> str:
    """A JWT Kafka's unsecured OAUTHBEARER validator accepts (alg none; tests only)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")
    now = int(time.time())
    return (f"{part({'alg': 'none'})}."
            f"{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s, 'scope': ''})}.")


REDIS_USER, REDIS_PASSWORD = "cxt-app", "redis-secret-6g7h8i"
REDIS_PREFIX = "tsec"


def secure_redis(*, data_dir: Path, certs: Certs) -> tuple[RedisServer, int]:
    """redis-server with a TLS port (client certificates optional) besides its plain one,
    the default user off and REDIS_USER allowed only the keys REDIS_PREFIX:* and no
    dangerous command; another user, "elsewhere", only keys other:*."""
    tls_port = free_port()
    server = RedisServer(free_port(), data_dir, config=[
        f"tls-port {tls_port}",
        f"tls-cert-file {certs.server_cert}",
        f"tls-key-file {certs.server_key}",
        f"tls-ca-cert-file {certs.ca}",
        "tls-auth-clients optional",
        "user default off",
        f"user {REDIS_USER} on >{REDIS_PASSWORD} ~{REDIS_PREFIX}:* resetchannels +@all "
        "-@dangerous",
        f"user elsewhere on >{REDIS_PASSWORD} ~other:* resetchannels +@all -@dangerous",
    ])
    return server, tls_port


@contextlib.contextmanager
def running_secure_broker(stack: LocalStack, scratch: Path
                          ) -> Iterator[tuple[Certs, SecureListeners, Path]]:
    """Certificates and a started `secure_broker` under `scratch`, stopped on leaving."""
    certs = make_certs(scratch / "certs")
    libs = ensure_kafka_libs(stack.settings.kafka_version, stack.settings.cache_dir)
    broker, listeners = secure_broker(data_dir=scratch / "kafka", libs_dir=libs, certs=certs,
                                      heap=stack.settings.kafka_heap)
    broker.start()
    try:
        yield certs, listeners, scratch
    finally:
        broker.stop()


def secure_settings(stack: LocalStack, listeners: SecureListeners, protocol: str,
                    **security: object) -> Settings:
    """Isolated settings of `stack` pointed at the secured broker's `protocol` listener."""
    return isolated(stack.settings, kafka_bootstrap_servers=listeners.bootstrap(protocol),
                    kafka_security=KafkaSecurity(protocol=protocol, **security))  # type: ignore[arg-type]


def scram_settings(stack: LocalStack, certs: Certs, listeners: SecureListeners,
                   mechanism: str = "SCRAM-SHA-512", password: str = KAFKA_PASSWORD) -> Settings:
    return secure_settings(stack, listeners, "SASL_SSL", sasl_mechanism=mechanism,
                           sasl_username=KAFKA_USER, sasl_password=password,
                           ssl_ca_file=certs.ca)
