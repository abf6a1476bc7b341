"""The local stack really runs: Kafka answers and keeps data, Redis answers, nothing leaks."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cxt.localstack import (
    KafkaBroker,
    LocalStack,
    PrerequisiteError,
    RedisServer,
    ServiceStartError,
    ensure_kafka_libs,
    ensure_redis_server,
    free_port,
    port_in_use,
)
from cxt.localstack import kafka as kafka_module
from tests.support.helpers import REPO


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def _roundtrip(bootstrap: str, topic: str, value: bytes) -> bytes:
    await _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"customer-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    return message.value


def test_broker_answers_metadata(stack: LocalStack) -> None:
    assert stack.broker is not None
    assert asyncio.run(kafka_module._answers_metadata(stack.broker.bootstrap))
    assert stack.settings.kafka_bootstrap_servers == stack.broker.bootstrap


def test_produced_message_is_consumed_back(stack: LocalStack) -> None:
    value = asyncio.run(_roundtrip(stack.settings.kafka_bootstrap_servers, "t.roundtrip", b"hi"))
    assert value == b"hi"


def test_readiness_probe_works_inside_a_running_loop(stack: LocalStack) -> None:
    # `cxt up` or an async test may start a broker from within an event loop.
    bootstrap = stack.settings.kafka_bootstrap_servers

    async def probe() -> bool:
        return kafka_module._run_sync(lambda: kafka_module._answers_metadata(bootstrap))

    assert asyncio.run(probe())


def test_redis_answers(stack: LocalStack, redis_client: redis.Redis) -> None:
    assert redis_client.ping()
    redis_client.set("k", "v")
    assert redis_client.get("k") == "v"
    assert stack.settings.redis_url.startswith("redis://127.0.0.1:")


def test_port_helpers() -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)


def test_starting_on_a_busy_port_fails_clearly(stack: LocalStack, tmp_path: Path) -> None:
    assert stack.redis is not None
    busy = RedisServer(stack.redis.port, tmp_path)
    with pytest.raises(ServiceStartError, match="already in use"):
        busy.start()


def test_redis_stop_leaves_no_process_and_aof_survives_restart(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path, appendonly=True)
    with server:
        pid = server.pid
        assert pid is not None
        redis.Redis.from_url(server.url).set("kept", "1")
    assert _pid_gone(pid)
    server.stop()  # idempotent
    with server:
        assert redis.Redis.from_url(server.url).get("kept") == b"1"
        server.kill()
        assert not server.running


def test_broker_restart_keeps_topics_and_stop_leaves_no_process(stack: LocalStack,
                                                                tmp_path: Path) -> None:
    libs = ensure_kafka_libs(stack.settings.kafka_version, stack.settings.cache_dir)
    broker = KafkaBroker(port=free_port(), data_dir=tmp_path, libs_dir=libs,
                         heap=stack.settings.kafka_heap)
    with broker:
        asyncio.run(_create_topic(broker.bootstrap, "t.kept"))
        first_pid = broker.pid
    assert first_pid is not None and _pid_gone(first_pid)
    assert not port_in_use("127.0.0.1", broker.port)
    broker.stop()  # idempotent

    broker.start()
    try:
        assert "t.kept" in asyncio.run(_list_topics(broker.bootstrap))
    finally:
        broker.kill()
    assert broker.pid is not None and _pid_gone(broker.pid)


def test_broker_that_exits_early_reports_its_log(stack: LocalStack, tmp_path: Path) -> None:
    libs = ensure_kafka_libs(stack.settings.kafka_version, stack.settings.cache_dir)
    broker = KafkaBroker(port=free_port(), data_dir=tmp_path, libs_dir=libs,
                         heap="-Xmx512m -XX:+NoSuchJvmOption")
    with pytest.raises(ServiceStartError, match="NoSuchJvmOption"):
        broker.start(timeout=30)
    assert not broker.running


def test_missing_redis_server_is_a_clear_prerequisite_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PrerequisiteError, match="apt-get install redis-server"):
        ensure_redis_server()


def test_missing_java_is_a_clear_prerequisite_error(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PrerequisiteError, match=r"java not found.*openjdk-17"):
        ensure_kafka_libs("4.1.1", tmp_path)


def test_missing_maven_is_a_clear_prerequisite_error(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(PrerequisiteError, match=r"mvn not found.*apt-get install maven"):
        ensure_kafka_libs("4.1.1", tmp_path / "cache")


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    return None


def test_docker_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        # `./dev test` installs docker-compose in CI, so a skip there is a bug.
        if os.environ.get("CI"):
            pytest.fail("neither docker-compose nor `docker compose` is available in CI")
        pytest.skip("neither docker-compose nor `docker compose` is available")
    result = subprocess.run([*command, "-f", "docker-compose.yml", "config", "-q"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_docker_compose_runs_the_same_kafka_version_as_the_local_stack() -> None:
    from kernel.settings import KAFKA_VERSION

    compose = (REPO / "docker-compose.yml").read_text()
    assert f"image: apache/kafka:{KAFKA_VERSION}\n" in compose


def test_cluster_ids_never_look_like_command_line_options() -> None:
    from cxt.localstack.kafka import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
