"""Test helpers: a worker in a child process, and Kafka produce/consume calls."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kernel.settings import TOPIC_NAMES, Settings, Topics
from kernel.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent


def isolated(settings: Settings, **changes: object) -> Settings:
    """Settings with their own topics, consumer group and Redis prefix.

    Tests share one broker and one Redis; a namespace per test keeps their
    data apart without restarting the services.
    """
    tag = uuid.uuid4().hex[:8]
    names = {n: f"{getattr(Topics, n)}.{tag}" for n in TOPIC_NAMES}
    topics = Topics(**names, partitions=3)
    changes.setdefault("worker_metrics_port", 0)
    return replace(settings, topics=topics, app_id=f"cxt-test-{tag}",
                   redis_prefix=f"t{tag}", batch_window_ms=20, **changes)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting of `settings` (`Settings.to_env`).

    Tests give workers metrics ports and API tokens through `settings`; an inherited
    CXT_API_TOKENS_FILE is emptied, since `settings.api_tokens` already holds its tokens.
    """
    return {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}


def run_cxt(settings: Settings, *args: str, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
    """`python -m cxt ARGS` against `settings`, to completion, output captured."""
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO,
                          env=settings_env(settings), capture_output=True, text=True,
                          timeout=timeout)


class CxtProcess:
    """`python -m cxt COMMAND` as a child process, with its output in a log file."""

    command: tuple[str, ...] = ()

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_path = log_dir / f"{self.command[0]}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CxtProcess:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cxt", *self.command], cwd=REPO,
                env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"{self.command[0]} exited with {self.proc and self.proc.returncode}:\n{self.log()}")


class WorkerProcess(CxtProcess):
    command = ("worker",)


class DashboardProcess(CxtProcess):
    """`cxt dashboard` on `settings.dashboard_port`; `wait_ready` once started."""

    command = ("dashboard",)

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        """Until /healthz says Kafka, Redis and the live feed are all up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_alive()
            request = urllib.request.Request(f"{self.settings.dashboard_url}/healthz",
                                             headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the dashboard was not ready within {timeout} s:\n{self.log()}")


async def create_topics(settings: Settings) -> None:
    await ensure_topics(settings)


async def produce(settings: Settings, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    """Send (key, value) pairs and wait until Kafka has acknowledged all of them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_events(settings: Settings, events: Iterable[dict]) -> None:
    """Send envelopes, each to its channel's topic, keyed by customer_id."""
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for event in events:
        topic = settings.topics.for_channel(event["type"].split(".")[0])
        key = event.get("customer_id", "").encode() or None
        by_topic.setdefault(topic, []).append((key, orjson.dumps(event)))
    for topic, messages in by_topic.items():
        await produce(settings, topic, messages)


async def read_topic(settings: Settings, topic: str, *, until: Callable[[list], bool],
                     timeout: float = 30) -> list:
    """Every message of `topic` from the beginning, until `until(messages)` or the timeout.

    Returns the aiokafka records (`.key`, `.value`, `.timestamp`, ...).
    """
    # No group: the consumer is assigned every partition and starts at the beginning.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen: list = []
        deadline = time.monotonic() + timeout
        while not until(seen) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], object], *, timeout: float = 30,
                     interval: float = 0.1) -> object:
    """Poll an async or sync `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


def envelope(channel: str, customer_id: str | None = None, *, event_id: str | None = None,
             occurred_at: str = "2026-11-22T10:00:00Z", event_type: str | None = None,
             identity: dict | None = None, **payload: object) -> dict:
    """A valid interaction envelope for tests."""
    default_types = {"call": "call.started", "chat": "chat.started", "email": "email.received",
                     "survey": "survey.response", "social": "social.post"}
    event: dict = {
        "event_id": event_id or uuid.uuid4().hex,
        "type": event_type or default_types[channel],
        "occurred_at": occurred_at,
        "payload": dict(payload),
    }
    if customer_id is not None:
        event["customer_id"] = customer_id
    if identity is not None:
        event["identity"] = identity
    if channel == "survey":
        event["payload"].setdefault("score", 4)
    return event
