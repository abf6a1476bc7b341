"""The worker: the faust-streaming app plus the batch consumer of the inbound topics.

faust-streaming is the worker's runtime: the app, the worker's life cycle
(signals, logging, start and stop order, crashing on an unexpected error), its
services, the agents of the low-volume topics and the timers.  It stays that:
those parts are small and faust does them well.  The five inbound topics carry
nearly all the traffic and do not go through faust's per-record hand-off,
which would cap the worker far below contact-centre peaks: the batch consumer
(`streams.batch_consumer`, aiokafka batches) runs as a `mode.Service` beside
the app, and publishes through the worker's one producer (`streams.publisher`).
Nothing here reaches into faust's, mode's or aiokafka's private state.

The customer records, agent records and alert actions are low-volume and run as
faust agents, which take up to `CXT_BATCH_SIZE` events or whatever arrived within
`CXT_BATCH_WINDOW_MS`.  Either way a batch runs through `streams.processor`
(`streams.runner`), its results are published, Kafka confirms them, and only
then are the inputs acknowledged (`noack_take` for the agents; plain `take`
would acknowledge even when the body fails, see PITFALLS.md).  Redis or Kafka
being unavailable makes the agent wait and retry the same batch (backpressure,
`kernel.retry`) instead of skipping it.  Any other error stops the worker
(`CrashingSupervisor`): restarting an agent in place would resume after the
events it never stored.

Each worker serves Prometheus metrics on CXT_WORKER_METRICS_PORT
(`streams.metrics`), counted per batch; the consumer lag comes from `streams.lag`.
"""

from __future__ import annotations

import logging

import faust
import mode

from domain.routing import load_routing_config
from domain.rules import load_rules
from domain.signal_config import load_signals
from kernel import logsafe
from kernel.kafka import TokenFile, ssl_context
from kernel.settings import OAUTHBEARER, Settings
from kernel.status import STATUS_EVERY_S
from store.stores import connect_redis, stores_on
from streams.batch_consumer import BatchConsumer
from streams.lag import LagReader
from streams.metrics import WorkerMetrics
from streams.processor import Processor
from streams.publisher import Outbound
from streams.records import Record
from streams.runner import BatchRunner, Step

log = logging.getLogger("cxt.worker")

LAG_EVERY_S = 5.0


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """`Settings.kafka_security` as faust takes it (the same parts as
    kernel.kafka.security_options gives aiokafka)."""
    security = settings.kafka_security
    context = ssl_context(security) if security.uses_ssl else None
    if security.uses_sasl and security.sasl_mechanism == OAUTHBEARER:
        assert security.sasl_token_file is not None  # KafkaSecurity.check
        return faust.OAuthCredentials(oauth_cb=TokenFile(security.sasl_token_file),
                                      ssl_context=context)
    if security.uses_sasl:
        return faust.SASLCredentials(username=security.sasl_username,
                                     password=security.sasl_password, ssl_context=context,
                                     mechanism=security.sasl_mechanism)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings, metrics: WorkerMetrics | None = None
               ) -> tuple[faust.App, BatchConsumer]:
    """The app and the inbound consumer to run beside it (`faust.Worker(app, consumer)`);
    `metrics` defaults to a fresh set with its own registry."""
    logsafe.install(settings)  # e-mail addresses and phone numbers masked in every log line
    if metrics is None:
        metrics = WorkerMetrics()
    faust_dir = settings.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        # faust makes a data directory even without tables: keep it with our other state
        # instead of in whatever directory the worker was started from.
        datadir=str(faust_dir / f"{settings.app_id}-data"),
        # The leader-election topic is only needed for app.timer(on_leader=True).
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=256 * 1024,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        agent_supervisor=mode.CrashingSupervisor,
    )
    stores = stores_on(connect_redis(settings, socket_timeout=10, socket_connect_timeout=5),
                       settings)
    # Started and stopped by the inbound consumer, which faust's worker starts before
    # the app and stops after it: so it is there for the agents' whole life too.
    outbound = Outbound(settings, client_id=f"{settings.app_id}-interactions")
    # A service of the app: its timer is the only user.
    lag_reader = LagReader(settings) if settings.worker_metrics_port else None
    if lag_reader is not None:
        app.add_dependency(lag_reader)
    processor = Processor(settings, stores.timelines, stores.alerts,
                          load_rules(settings.alert_rules_path),
                          signals=load_signals(settings.signals_path),
                          negatives=stores.negatives, reasons=stores.contact_reasons,
                          identities=stores.identities, agents=stores.agents,
                          routing=load_routing_config(settings.routing_rules_path))
    runner = BatchRunner(app, processor, metrics, outbound, lag_reader)
    inbound = BatchConsumer(settings, "interactions", list(settings.topics.inbound.values()),
                            runner, runner.processor.interactions)
    runner.sources.append(inbound)
    steps: dict[str, tuple[faust.TopicT, Step]] = {
        "customers": (app.topic(settings.topics.customers), runner.processor.customers),
        "alert-actions": (app.topic(settings.topics.alert_actions), runner.processor.actions),
        "identity-actions": (app.topic(settings.topics.identity_actions),
                             runner.processor.identity_actions),
        "agents": (app.topic(settings.topics.agents), runner.processor.agents),
        "self-service": (app.topic(settings.topics.self_service), runner.processor.self_service),
    }
    for name, (topic, step) in steps.items():
        _batch_agent(app, name, topic, runner, step, settings)

    # Every worker checks; the compare-and-set on the alert lets only one escalate it.
    @app.timer(interval=settings.escalation_check_s)
    async def escalate_overdue() -> None:
        await runner.escalate()

    @app.timer(interval=STATUS_EVERY_S)
    async def status() -> None:
        runner.log_status()

    if settings.worker_metrics_port:
        # A task, not a call in create_app: it runs once the worker has set up logging,
        # so a busy port is reported in the worker's log like everything else.
        @app.task
        async def serve_metrics() -> None:
            metrics.serve(settings.worker_metrics_port)

        @app.timer(interval=LAG_EVERY_S)
        async def refresh_lag() -> None:
            await runner.update_lag()

    return app, inbound


def _batch_agent(app: faust.App, name: str, topic: faust.TopicT, runner: BatchRunner,
                 step: Step, settings: Settings) -> None:
    """An agent that runs `step` on batches and acknowledges them once done."""
    size, within = settings.batch_size, settings.batch_window_ms / 1000

    @app.agent(topic, name=name)
    async def ingest(stream: faust.StreamT) -> None:
        # noack_take is public on faust.Stream, but faust's StreamT interface does not declare it.
        async for events in stream.noack_take(size, within):  # type: ignore[attr-defined]
            await runner.run(name, [_record(event.message) for event in events], step)
            for event in events:
                await stream.ack(event)


def _record(message: faust.types.Message) -> Record:
    ts = message.timestamp
    return Record(message.topic, message.partition, message.offset, message.key, message.value,
                  None if ts is None else int(ts * 1000))
