"""Webhooks: deliver chosen topics to HTTP endpoints, signed, retried, in order (`cxt webhooks`).

Each enabled endpoint of the webhooks file (consumers/webhook_config.py) gets its
own Kafka consumer in its own group, `<CXT_APP_ID>-webhook-<name>`, so each has
its own committed position and a slow or dead endpoint cannot hold the others
back.  Within an endpoint, partitions are delivered concurrently and each
partition strictly in order: a message is retried until it is delivered or
dead-lettered before the next message of its partition is sent.  Our output
topics are keyed by customer_id, so this keeps each customer's messages in order.

The request, for each message:

    POST <url>
    Content-Type: application/json
    X-CXT-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the secret>
    X-CXT-Delivery: <topic>:<partition>:<offset>   the same on every retry and after restarts
    X-CXT-Topic: <topic>
    X-CXT-Attempt: <1, 2, ...>
    <the Kafka message value, byte for byte>

A tombstone (null value, key = customer id) on any topic, sent when a customer is
erased (cx.customer-summary.v1 by the summary feed, cx.alerts.v1 by the worker),
becomes the body `{"customer_id": "<key>", "deleted": true}`.

A receiver verifies the signature by computing the HMAC itself over the raw body
(before any JSON parsing) and comparing with `hmac.compare_digest`.

Outcomes: a 2xx answer is delivered.  408, 429, 5xx, time-outs and connection
errors are retried with exponential backoff and full jitter (`backoff_delay`); a
`Retry-After` header (seconds or HTTP date) replaces the backoff, up to
backoff_max_s.  Any other answer (3xx: redirects are not followed; 4xx: the
request itself is refused, e.g. 401 for a wrong secret or 404 for a wrong url)
is permanent: the message is dead-lettered at once rather than retried for
minutes to the same answer.  After `max_attempts` failed attempts the message is
dead-lettered too: one record on `settings.topics.webhook_deadletter`
(schemas/webhook-deadletter.v1.json) with the message, attempts and last error.
A message whose value is not JSON is dead-lettered without an attempt.

Delivery contract (at least once, per endpoint):

  * Every message of an endpoint's topics is either acknowledged by the
    endpoint (2xx) or dead-lettered with the reason; nothing is skipped silently.
  * A message's offset is committed only after it was acknowledged or its dead
    letter confirmed by Kafka, never before; commits run continuously, one
    request for all of an endpoint's partitions.  A restart, crash or rebalance
    resumes after the last committed message: nothing acknowledged and committed
    is sent again.  After a crash, what was acknowledged but not yet committed
    (the messages of the last commit round trip, a few milliseconds' worth) is
    sent again, with the same X-CXT-Delivery; receivers de-duplicate by that
    header (or by the content: alert_id + version, customer_id + as_of).
  * A clean stop (SIGINT/SIGTERM) fetches nothing new, lets requests in flight
    finish (up to the endpoint's timeout_s) and commits everything done, so
    nothing is sent twice; retries that were waiting are abandoned and sent
    again at the next start.  A rebalance (a second `cxt webhooks run` joining)
    commits everything done too, but abandons the requests in flight: the new
    owner of the partition sends those again.
  * Order: per endpoint, per topic and per customer, message n+1 is sent only
    after message n was acknowledged or dead-lettered (a dead-lettered message
    is missing from the receiver's sequence; the dead-letter topic has it).
    Topics are not ordered against each other, nor are endpoints.  While a
    message is being retried, later messages of the customers sharing its
    partition wait behind it: at most max_attempts time-outs plus the waits
    between them (with the defaults, under two minutes).  X-CXT-Attempt counts
    this process's attempts; after a restart it starts at 1 again.
  * A new endpoint (a name never run before) starts at the end of its topics
    (`start = "latest"`, the default: no history) or at their beginning
    (`start = "earliest"`: everything the topics still retain).  Its starting
    position is committed as soon as it is assigned, so a restart before its
    first message loses nothing.  Renaming an endpoint makes it a new one.
  * Retention bounds it: an endpoint down for longer than its topics keep
    messages resumes at the oldest message still kept; the older ones are gone.
  * Anything else that goes wrong (not HTTP: Kafka refusing us for good, a bug)
    stops the whole process with an error rather than skipping messages; run it
    under a supervisor that restarts it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import hashlib
import hmac
import logging
import random
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import aiohttp
import orjson
import prometheus_client as prom
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.webhook_config import Endpoint, WebhookConfigError, load_webhooks
from kernel import logsafe
from kernel.access import check_access_at_start
from kernel.kafka import make_consumer, make_producer, start_producer
from kernel.logsafe import safe_url
from kernel.settings import Settings
from kernel.times import utc_now_iso
from kernel.topics import ensure_topics

log = logging.getLogger("cxt.webhooks")

SIGNATURE_HEADER = "X-CXT-Signature"
USER_AGENT = "cx-timeline-webhooks/1"
STATUS_INTERVAL_S = 30.0
# Records handed out per fetch; a partition's batch is delivered before the next is fetched.
_MAX_RECORDS = 500
_EXCERPT_BYTES = 300
# How long a dead letter or a commit that Kafka refuses waits to be tried again.
_DEADLETTER_RETRY_S = 2.0
_COMMIT_RETRY_S = 1.0


def sign(secret: bytes, body: bytes) -> str:
    """The X-CXT-Signature value: `sha256=` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def backoff_delay(attempt: int, initial_s: float, max_s: float,
                  uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Wait after failed attempt `attempt` (1, 2, ...): full jitter over a doubling cap.

    Full jitter spreads the retries of many messages (and many deliverers) over
    the whole interval, so an endpoint coming back is not hit by all at once.
    """
    cap = min(max_s, initial_s * 2 ** min(attempt - 1, 64))
    return uniform(0.0, cap)


def retry_after_s(value: str | None, max_s: float, now: float | None = None) -> float | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as seconds, at most max_s."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), max_s)


def is_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    error: str = ""
    permanent: bool = False  # retrying cannot help: dead-letter now
    retry_after_s: float | None = None


def request_body(record: ConsumerRecord, summary_topic: str) -> tuple[bytes | None, str]:
    """The body to send, or None and why the message cannot be sent."""
    if record.value is None:
        # The summary feed's and the worker's erasure tombstones alike.
        if record.key:
            return orjson.dumps({"customer_id": _text(record.key), "deleted": True}), ""
        return None, "the message has no value"
    try:
        orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return None, f"the message value is not JSON ({exc})"
    return record.value, ""


def dead_letter_value(endpoint: Endpoint, record: ConsumerRecord, *, attempts: int,
                      last_error: str, first_attempt_at: str | None) -> bytes:
    """The cx.webhook-deadletter.v1 record (schemas/webhook-deadletter.v1.json)."""
    value: object = None
    value_base64 = None
    if record.value is not None:
        try:
            value = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            value_base64 = base64.b64encode(record.value).decode()
    return orjson.dumps({
        "endpoint": endpoint.name, "url": endpoint.url, "topic": record.topic,
        "partition": record.partition, "offset": record.offset,
        "key": None if record.key is None else _text(record.key),
        "value": value, "value_base64": value_base64,
        "attempts": attempts, "last_error": last_error,
        "first_attempt_at": first_attempt_at, "gave_up_at": utc_now_iso(),
    })


def _loggable(error: str) -> str:
    """An attempt's error for a log line: for an HTTP answer only its status (the body
    excerpt may quote the message; a redirect's Location may hold a credential)."""
    if error.startswith("HTTP "):
        status = error[5:8]
        return f"HTTP {status}" + (" (a redirect, not followed)" if status[:1] == "3" else "")
    return logsafe.redact(error)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@dataclass
class Stats:
    delivered: int = 0
    retried: int = 0  # failed attempts that were followed by another
    dead_lettered: int = 0


class EndpointDeliverer:
    """One endpoint: its consumer, its HTTP session, one task per busy partition."""

    def __init__(self, settings: Settings, endpoint: Endpoint, producer: AIOKafkaProducer,
                 stop: asyncio.Event) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.producer = producer
        self.stop = stop
        self.stats = Stats()
        self._busy: dict[TopicPartition, asyncio.Task[None]] = {}
        # Per partition: every message before this offset is delivered or dead-lettered ...
        self._done: dict[TopicPartition, int] = {}
        # ... and Kafka holds this one as the group's position.
        self._committed: dict[TopicPartition, int] = {}
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- the fetch loop ---------------------------------------------------------------

    async def run(self) -> None:
        endpoint = self.endpoint
        group = endpoint.group_id(self.settings.app_id)
        # Commits only what was delivered or dead-lettered (`_flush`).  "earliest" only
        # applies to a committed position that retention has since deleted: resume at
        # the oldest message still there.  `start` is applied in `_assigned`.
        self._consumer = consumer = make_consumer(self.settings, group_id=group)
        consumer.subscribe(list(endpoint.topics), listener=_Rebalance(self))
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=endpoint.timeout_s),
            headers={"User-Agent": USER_AGENT})
        committer: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            committer = asyncio.create_task(self._committer(), name=f"webhook-{endpoint.name}-c")
            log.info("webhook %s: delivering %s to %s (group %s)", endpoint.name,
                     ", ".join(endpoint.topics), safe_url(endpoint.url), group)
            while not self.stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=_MAX_RECORDS)
                for tp, records in batches.items():
                    # Paused until this batch is delivered: one batch in flight per
                    # partition keeps its order and bounds what is held in memory.
                    consumer.pause(tp)
                    self._busy[tp] = asyncio.create_task(self._partition(tp, records),
                                                         name=f"webhook-{endpoint.name}-{tp}")
                self._raise_failures()
                if committer.done():
                    committer.result()  # raises what stopped it
            await self._finish()
        finally:
            tasks = [*self._busy.values(), *([committer] if committer else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._busy.clear()
            await consumer.stop()
            await self._session.close()

    def _raise_failures(self) -> None:
        """A partition task that failed (a bug, not an HTTP error) stops the deliverer."""
        for tp, task in list(self._busy.items()):
            if task.done():
                del self._busy[tp]
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    async def _finish(self) -> None:
        """On stop: requests in flight may finish (up to the timeout); all done is committed."""
        busy = list(self._busy.values())
        if busy:
            await asyncio.wait(busy, timeout=self.endpoint.timeout_s + 5)
        await self._flush()
        self._raise_failures()

    # -- commits -----------------------------------------------------------------------

    async def _committer(self) -> None:
        """Commits what is done, continuously: one request for all partitions at a time.

        Committing each message on its own took a round trip to the group
        coordinator per message, and aiokafka serialises commits: ~100
        deliveries/s per endpoint whatever the partitions.  Batched, a crash
        re-sends at most what was delivered during one commit round trip.
        """
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            if not await self._flush():
                await asyncio.sleep(_COMMIT_RETRY_S)  # Kafka away or a rebalance: try again
                self._commit_wanted.set()

    async def _flush(self, only: Iterable[TopicPartition] | None = None) -> bool:
        """Commit the done positions not committed yet; False if Kafka refused."""
        consumer = self._consumer
        assert consumer is not None
        async with self._commit_lock:
            wanted = consumer.assignment() if only is None else set(only)
            pending = {tp: offset for tp, offset in self._done.items()
                       if tp in wanted and self._committed.get(tp) != offset}
            if not pending:
                return True
            try:
                await consumer.commit(pending)
            except KafkaError as exc:  # CommitFailedError: the partitions are being moved
                log.warning("webhook %s: commit failed (%s); what it covered may be sent "
                            "again", self.endpoint.name, exc)
                return False
            self._committed.update(pending)
            return True

    # -- rebalances --------------------------------------------------------------------

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        # The message in progress is abandoned: the partition's next owner sends it
        # again (same delivery id).  What is done is committed before letting go.
        tasks = [self._busy.pop(tp) for tp in revoked if tp in self._busy]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._flush(revoked)
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def _assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Where partitions this group never committed start, committed at once.

        Committed so that a restart before the first delivery starts there again
        rather than at a new "latest", skipping what arrived in between.  Paused
        meanwhile, so nothing is handed out before the position is settled.
        """
        consumer = self._consumer
        assert consumer is not None
        tps = list(assigned)
        consumer.pause(*tps)
        try:
            fresh = [tp for tp in tps if await self._committed_offset(tp) is None]
            if fresh and self.endpoint.start == "latest":
                for tp, end in (await consumer.end_offsets(fresh)).items():
                    consumer.seek(tp, end)
            for tp in fresh:
                start = await consumer.position(tp)
                await consumer.commit({tp: start})
                self._done[tp] = self._committed[tp] = start
                log.info("webhook %s: %s-%d starts at offset %d (start = %s)",
                         self.endpoint.name, tp.topic, tp.partition, start, self.endpoint.start)
        finally:
            current = consumer.assignment()
            consumer.resume(*[tp for tp in tps if tp in current])

    async def _committed_offset(self, tp: TopicPartition) -> int | None:
        assert self._consumer is not None
        committed = await self._consumer.committed(tp)
        if committed is not None:
            self._done[tp] = self._committed[tp] = committed
        return committed

    # -- one partition -----------------------------------------------------------------

    async def _partition(self, tp: TopicPartition, records: Sequence[ConsumerRecord]) -> None:
        for record in records:
            if self.stop.is_set() or not await self._deliver(record):
                return  # stopping: not committed, sent again at the next start
            self._done[tp] = record.offset + 1
            self._commit_wanted.set()
        consumer = self._consumer
        if consumer is not None and not self.stop.is_set() and tp in consumer.assignment():
            consumer.resume(tp)

    async def _deliver(self, record: ConsumerRecord) -> bool:
        """Until delivered or dead-lettered (True), or abandoned because we stop (False)."""
        endpoint = self.endpoint
        body, error = request_body(record, self.settings.topics.customer_summary)
        attempt = 0
        first_attempt_at = None
        if body is not None:
            delivery = f"{record.topic}:{record.partition}:{record.offset}"
            headers = {"Content-Type": "application/json",
                       SIGNATURE_HEADER: sign(endpoint.secret, body),
                       "X-CXT-Delivery": delivery, "X-CXT-Topic": record.topic}
            first_attempt_at = utc_now_iso()
            while True:
                attempt += 1
                outcome = await self._attempt(body, {**headers, "X-CXT-Attempt": str(attempt)})
                if outcome.delivered:
                    self.stats.delivered += 1
                    return True
                error = outcome.error
                if outcome.permanent or attempt >= endpoint.max_attempts:
                    break
                self.stats.retried += 1
                delay = outcome.retry_after_s
                if delay is None:
                    delay = backoff_delay(attempt, endpoint.backoff_initial_s,
                                          endpoint.backoff_max_s)
                # The receiver's answer can quote the body (personal data): the dead
                # letter keeps it, the log line only its status.
                log.warning("webhook %s: %s attempt %d failed (%s); next in %.1f s",
                            endpoint.name, delivery, attempt, _loggable(error), delay)
                if await self._stopped_within(delay):
                    return False
        return await self._dead_letter(record, attempt, error, first_attempt_at)

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> Outcome:
        assert self._session is not None
        try:
            async with self._session.post(self.endpoint.url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return Outcome(delivered=True)
                excerpt = await response.content.read(_EXCERPT_BYTES)
                text = " ".join(_text(excerpt).split())
                error = f"HTTP {response.status}: {text}".rstrip(": ")
                if 300 <= response.status < 400:
                    error += (f" (a redirect to {response.headers.get('Location', '?')}: "
                              "not followed; configure the final url)")
                retry = is_retryable(response.status)
                return Outcome(
                    delivered=False, error=error,
                    permanent=not retry,
                    retry_after_s=retry_after_s(response.headers.get("Retry-After"),
                                                self.endpoint.backoff_max_s) if retry else None)
        except TimeoutError:
            return Outcome(delivered=False, error=f"timeout after {self.endpoint.timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(delivered=False, error=f"{type(exc).__name__}: {exc}")

    async def _dead_letter(self, record: ConsumerRecord, attempts: int, error: str,
                           first_attempt_at: str | None) -> bool:
        value = dead_letter_value(self.endpoint, record, attempts=attempts, last_error=error,
                                  first_attempt_at=first_attempt_at)
        topic = self.settings.topics.webhook_deadletter
        while True:
            try:
                await self.producer.send_and_wait(topic, value, key=record.key)
                break
            except KafkaError as exc:  # never commit a message that is nowhere
                log.warning("webhook %s: dead letter for %s-%d@%d not accepted by Kafka (%s); "
                            "retrying", self.endpoint.name, record.topic, record.partition,
                            record.offset, exc)
                if await self._stopped_within(_DEADLETTER_RETRY_S):
                    return False
        self.stats.dead_lettered += 1
        log.error("webhook %s: gave up on %s:%d:%d after %d attempts (%s); dead-lettered on %s",
                  self.endpoint.name, record.topic, record.partition, record.offset, attempts,
                  _loggable(error), topic)
        return True

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    # -- status ------------------------------------------------------------------------

    def lag(self) -> int | None:
        """Messages not yet delivered, from the last fetch's high-water marks."""
        consumer = self._consumer
        if consumer is None:
            return None
        total = 0
        for tp in consumer.assignment():
            high, done = consumer.highwater(tp), self._done.get(tp)
            if high is None or done is None:
                return None
            total += max(high - done, 0)
        return total

    def status_line(self) -> str:
        s = self.stats
        lag = self.lag()
        return (f"webhook {self.endpoint.name}: {s.delivered} delivered, {s.retried} retried, "
                f"{s.dead_lettered} dead-lettered, {len(self._busy)} partitions busy, "
                f"lag {'?' if lag is None else lag}")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, deliverer: EndpointDeliverer) -> None:
        self.deliverer = deliverer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.deliverer._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.deliverer._assigned(assigned)


async def deliver_webhooks(settings: Settings, endpoints: Sequence[Endpoint],
                           stop: asyncio.Event, *,
                           status_interval_s: float = STATUS_INTERVAL_S) -> None:
    """Deliver to every endpoint until `stop` is set; a deliverer's failure stops all."""
    producer = await start_producer(make_producer(settings,
                                                  client_id=f"{settings.app_id}-webhooks"))
    deliverers = [EndpointDeliverer(settings, e, producer, stop) for e in endpoints]
    if settings.webhooks_metrics_port:
        serve_metrics(deliverers, settings.webhooks_metrics_port)
    tasks = [asyncio.create_task(d.run(), name=f"webhook-{d.endpoint.name}")
             for d in deliverers]
    status = asyncio.create_task(_log_status(deliverers, status_interval_s))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        stop.set()  # one endpoint failing (not its HTTP: a bug or Kafka) stops them all
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for d in deliverers:
            log.info("%s (stopped)", d.status_line())
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        for task in (*tasks, status, stopped):
            task.cancel()
        await asyncio.gather(*tasks, status, stopped, return_exceptions=True)
        await producer.stop()


async def _log_status(deliverers: Sequence[EndpointDeliverer], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for d in deliverers:
            log.info(d.status_line())


def run_webhooks(settings: Settings, check_only: bool = False) -> int:
    """`cxt webhooks run|check`: the exit status (2: the file or a secret is wrong)."""
    try:
        config = load_webhooks(settings.webhooks_path, settings.topics)
    except WebhookConfigError as exc:
        print(f"cxt: error: {exc}", file=sys.stderr)
        return 2
    if check_only:
        print(f"{config.source}: valid")
        print(config.describe(settings.app_id))
        return 0
    if not config.enabled:
        print(f"{config.source}: no endpoints enabled; nothing to deliver")
        return 0
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logsafe.install(settings)
    check_access_at_start(settings, redis=False)
    asyncio.run(_serve(settings, config.enabled))
    return 0


async def _serve(settings: Settings, endpoints: Sequence[Endpoint]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await ensure_topics(settings)  # the dead-letter topic must exist before the first give-up
    await deliver_webhooks(settings, endpoints, stop)


class _Collector(Collector):
    """The deliverers' counts, read when Prometheus scrapes (nothing on the delivery path)."""

    def __init__(self, deliverers: Sequence[EndpointDeliverer]) -> None:
        self.deliverers = deliverers

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "cxt_webhook_deliveries", "Webhook messages by endpoint and outcome: delivered "
            "(2xx), retried (a failed attempt followed by another), dead_lettered (given up, "
            "on the webhook dead-letter topic)", labels=["endpoint", "outcome"])
        lag = GaugeMetricFamily("cxt_webhook_lag", "Messages of the endpoint's topics not "
                                "delivered or dead-lettered yet", labels=["endpoint"])
        for d in self.deliverers:
            name, s = d.endpoint.name, d.stats
            outcomes.add_metric([name, "delivered"], s.delivered)
            outcomes.add_metric([name, "retried"], s.retried)
            outcomes.add_metric([name, "dead_lettered"], s.dead_lettered)
            behind = d.lag()
            if behind is not None:
                lag.add_metric([name], behind)
        yield outcomes
        yield lag


def serve_metrics(deliverers: Sequence[EndpointDeliverer], port: int) -> bool:
    """/metrics on `port` (all interfaces) in a thread; False (logged) if it is taken."""
    registry = prom.CollectorRegistry()
    registry.register(_Collector(deliverers))
    try:
        prom.start_http_server(port, addr="0.0.0.0", registry=registry)
    except OSError as exc:
        # Metrics must never stop deliveries: say so once and go on.
        log.error("metrics endpoint not started: cannot listen on port %d (%s); set "
                  "CXT_WEBHOOKS_METRICS_PORT to a free port, or 0 for none", port,
                  exc.strerror or exc)
        return False
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
    return True
