"""Redis security against a real redis-server with TLS and ACL users
(tests/support/secure.py): the worker, the dashboard and the command line work over TLS as
a user allowed only our key prefix, and each wrong setting is refused in one line naming
it."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from cxt.localstack import LocalStack, free_port
from kernel.access import check_access
from kernel.errors import ConfigError
from kernel.settings import ApiToken, RedisSecurity, Settings
from tests.support.helpers import create_topics, envelope, eventually, isolated, produce_events
from tests.support.processes import DashboardProcess, WorkerProcess, run_cxt
from tests.support.secure import (
    REDIS_PASSWORD,
    REDIS_PREFIX,
    REDIS_USER,
    Certs,
    make_certs,
    secure_redis,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Certs, int]]:
    scratch = tmp_path_factory.mktemp("secure-redis")
    certs = make_certs(scratch / "certs")
    server, tls_port = secure_redis(data_dir=scratch / "redis", certs=certs)
    server.start()
    try:
        yield certs, tls_port
    finally:
        server.stop()


def _settings(stack: LocalStack, certs: Certs, tls_port: int, **security: object) -> Settings:
    fields = {"username": REDIS_USER, "password": REDIS_PASSWORD, "ssl_ca_file": certs.ca,
              **security}
    return replace(isolated(stack.settings), redis_url=f"rediss://127.0.0.1:{tls_port}/0",
                   redis_prefix=REDIS_PREFIX, redis_security=RedisSecurity(**fields))  # type: ignore[arg-type]


def test_the_product_runs_over_tls_as_a_user_allowed_only_our_prefix(
        stack: LocalStack, tls_redis: tuple[Certs, int], tmp_path: Path) -> None:
    certs, tls_port = tls_redis
    token = secrets.token_hex(16)
    settings = replace(_settings(stack, certs, tls_port), api_tokens=(
        ApiToken("advisor", "a-1", token),))
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path).start()
    dashboard = DashboardProcess(replace(settings, dashboard_port=free_port()), tmp_path).start()
    try:
        customer = f"C-{uuid.uuid4().hex[:8]}"
        asyncio.run(produce_events(settings, [envelope("call", customer, call_id="K-1")]))

        def shown() -> list[str]:
            result = run_cxt(settings, "timeline", customer, "--json")
            if result.returncode == 1 and "no customer" in result.stderr:
                return []  # not there yet
            assert result.returncode == 0, result.stderr
            return [e["payload"].get("call_id") for e in orjson.loads(result.stdout)["events"]]

        assert asyncio.run(eventually(shown, timeout=60, interval=1)) == ["K-1"], worker.log()
        dashboard.wait_ready(token)
    finally:
        dashboard.stop()
        worker.stop()


def test_a_client_certificate_is_presented_when_set(stack: LocalStack,
                                                    tls_redis: tuple[Certs, int]) -> None:
    certs, tls_port = tls_redis
    settings = _settings(stack, certs, tls_port, ssl_cert_file=certs.client_cert,
                         ssl_key_file=certs.client_key)
    asyncio.run(check_access(settings))
    assert run_cxt(settings, "timeline", "C-nobody").returncode in (0, 1)


REFUSALS = {
    "wrong password": ({"password": "not-the-password"}, "REDIS_PASSWORD"),
    "untrusted certificate": ({"ssl_ca_file": "other"}, "REDIS_SSL_CA_FILE"),
    "a user for other keys": ({"username": "elsewhere"}, "CXT_REDIS_PREFIX"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_wrong_setting_is_named(stack: LocalStack, tls_redis: tuple[Certs, int],
                                     case: str) -> None:
    certs, tls_port = tls_redis
    changes, named = REFUSALS[case]
    if changes.get("ssl_ca_file") == "other":
        changes = {"ssl_ca_file": certs.other_ca}
    settings = _settings(stack, certs, tls_port, **changes)
    with pytest.raises(ConfigError, match=named):
        asyncio.run(check_access(settings))
    for command in (("worker",), ("timeline", "C-1")):
        started = time.monotonic()
        result = run_cxt(settings, *command, timeout=60)
        assert time.monotonic() - started < 30
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert named in result.stderr, result.stderr
        assert "not-the-password" not in result.stderr
