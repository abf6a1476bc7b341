"""Every setting of cx-timeline, read from the environment once.

This is the one place where a topic name, a port or a limit is defined; every
other module takes a `Settings` (usually `Settings.from_env()`).  The README's
"Configuration" table lists the same variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from aiokafka.conn import get_ip_port_afi
from redis.connection import parse_url

from kernel.errors import ConfigError

# The Apache Kafka release the local stack runs (fetched from Maven Central).
# docker-compose.yml pins the same version of the official image.
KAFKA_VERSION = "4.1.1"

CHANNELS: tuple[str, ...] = ("call", "chat", "email", "survey", "social")
# Every named topic of `Topics`; CXT_TOPIC_<NAME> overrides each.
TOPIC_NAMES: tuple[str, ...] = (*CHANNELS, "customers", "timeline", "alerts", "alert_actions",
                                "deadletter", "customer_summary", "webhook_deadletter")


class SettingsError(ConfigError):
    """A setting has a value we cannot use; the message names the variable."""


ROLES: tuple[str, ...] = ("advisor", "agent", "service")


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the dashboard service: who holds it and what they may do.

    `subject` is the advisor's actor id (alert actions are recorded under it),
    the agent's id (an agent sees only their own channel), or a service name.
    """

    role: str
    subject: str
    token: str = field(repr=False)


def parse_tokens(raw: str, variable: str = "CXT_API_TOKENS") -> tuple[ApiToken, ...]:
    """`role:subject:token` items separated by commas or newlines."""
    tokens = []
    for item in re.split(r"[,\n]", raw):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise SettingsError(f"{variable}: {_redact(item)!r} is not role:subject:token")
        role, subject, token = parts
        if role not in ROLES:
            raise SettingsError(f"{variable}: role {role!r} is not one of {', '.join(ROLES)}")
        if len(token) < 16:
            raise SettingsError(f"{variable}: the token of {role}:{subject} is shorter than "
                                "16 characters; generate one with `cxt tokens new`")
        tokens.append(ApiToken(role, subject, token))
    return tuple(tokens)


def _redact(item: str) -> str:
    # Never echo a secret back into logs or terminals, even a malformed one.
    head, _, _ = item.rpartition(":")
    return f"{head}:***" if head else "***"


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


# No setting needs more; a bigger number is a typo, and some would overflow
# C integers further down (sleep times, socket options).
_INT_MAX = 2**31 - 1


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0,
         maximum: int = _INT_MAX) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={_short(raw)}: expected a whole number") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name}={_short(raw)}: must be {minimum} to {maximum}")
    return value


def _short(raw: str) -> str:
    # A pasted megabyte must not become a megabyte-long error line.
    return repr(raw) if len(raw) <= 60 else repr(raw[:60]) + "..."


def _kafka_servers(env: Mapping[str, str], default: str) -> str:
    """KAFKA_BOOTSTRAP_SERVERS: host:port[,host:port...], checked as aiokafka reads it."""
    raw = (env.get("KAFKA_BOOTSTRAP_SERVERS") or "").strip() or default
    for item in raw.split(","):
        problem = _kafka_server_problem(item.strip())
        if problem:
            raise SettingsError(f"KAFKA_BOOTSTRAP_SERVERS: {_short(item.strip())} {problem}; "
                                "expected host:port[,host:port...]")
    return raw


def _kafka_server_problem(item: str) -> str | None:
    if not item:
        return "is empty"
    try:
        host, port, _ = get_ip_port_afi(item)
    except ValueError:
        return "is not host:port"
    if not host or any(c.isspace() or c in "/[]@" for c in host):
        return "has no valid host name"
    if not 1 <= port <= 65535:
        return f"has port {port}, not 1-65535"
    return None


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _log_level(env: Mapping[str, str], default: str) -> str:
    level = (env.get("CXT_LOG_LEVEL") or default).strip().lower()
    if level not in LOG_LEVELS:
        raise SettingsError(f"CXT_LOG_LEVEL={_short(level)}: expected one of "
                            f"{', '.join(LOG_LEVELS)}")
    return level


def _redis_url(env: Mapping[str, str], default: str, cluster: bool) -> str:
    """REDIS_URL, checked with redis-py's own parser, so what passes here connects."""
    raw = (env.get("REDIS_URL") or "").strip() or default
    schemes = ("redis", "rediss") if cluster else ("redis", "rediss", "unix")
    scheme = raw.partition("://")[0] if "://" in raw else ""
    if scheme not in schemes:
        names = [f"{s}://" for s in schemes]
        raise SettingsError(f"REDIS_URL: {_short(raw)} is not a "
                            f"{', '.join(names[:-1])} or {names[-1]} URL"
                            + (" (CXT_REDIS_CLUSTER is on)" if cluster else ""))
    try:
        parse_url(raw)
        parsed = urlparse(raw)
        port = parsed.port  # raises for a port that is not a number or above 65535
    except ValueError as exc:
        raise SettingsError(f"REDIS_URL: {_short(raw)} is not a valid URL ({exc})") from None
    if scheme != "unix" and port == 0:
        raise SettingsError(f"REDIS_URL: {_short(raw)} has port 0")
    database = parsed.path.strip("/")
    if scheme != "unix" and database and not (database.isascii() and database.isdigit()):
        raise SettingsError(f"REDIS_URL: {_short(raw)}: the database {database!r} after the "
                            "host is not a number")
    return raw


@dataclass(frozen=True)
class Topics:
    """Kafka topic names (the contract's defaults) and their partition count."""

    call: str = "cx.call.v1"
    chat: str = "cx.chat.v1"
    email: str = "cx.email.v1"
    survey: str = "cx.survey.v1"
    social: str = "cx.social.v1"
    customers: str = "cx.customers.v1"
    timeline: str = "cx.timeline.v1"
    alerts: str = "cx.alerts.v1"
    alert_actions: str = "cx.alert-actions.v1"
    deadletter: str = "cx.deadletter.v1"
    customer_summary: str = "cx.customer-summary.v1"
    webhook_deadletter: str = "cx.webhook-deadletter.v1"
    partitions: int = 6
    replication: int = 1

    def for_channel(self, channel: str) -> str:
        return getattr(self, channel)

    @property
    def inbound(self) -> dict[str, str]:
        """Channel name -> inbound topic."""
        return {channel: self.for_channel(channel) for channel in CHANNELS}

    @property
    def channel_of(self) -> dict[str, str]:
        """Inbound topic -> channel name."""
        return {topic: channel for channel, topic in self.inbound.items()}

    @property
    def all(self) -> list[str]:
        return [getattr(self, name) for name in TOPIC_NAMES]

    @property
    def compacted(self) -> set[str]:
        return {self.customers, self.customer_summary}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        names = {name: env.get(f"CXT_TOPIC_{name.upper()}") or getattr(cls, name)
                 for name in TOPIC_NAMES}
        return cls(
            **names,
            partitions=_int(env, "CXT_TOPIC_PARTITIONS", cls.partitions, minimum=1),
            replication=_int(env, "CXT_TOPIC_REPLICATION", cls.replication, minimum=1),
        )


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    # REDIS_URL names one node of a Redis Cluster (the worker's keys are cluster-safe).
    redis_cluster: bool = False
    # Debugging only: log lines keep e-mail addresses and phone numbers (kernel.logsafe).
    log_pii: bool = False
    app_id: str = "cx-timeline"
    topics: Topics = field(default_factory=Topics)
    # Every Redis key starts with this, so several deployments can share a server.
    redis_prefix: str = "cxt"
    max_event_bytes: int = 256 * 1024
    timeline_max_entries: int = 1000
    timeline_max_age_days: int = 400
    batch_size: int = 2000
    batch_window_ms: int = 50
    # How soon a dead worker's partitions move to the others (Kafka's default
    # is 45 s; a contact centre wants alerts within seconds).
    session_timeout_s: int = 10
    # Where the local stack keeps its data (`cxt up`) and the Kafka jars (cache).
    # Bottom-2-box alerts: escalate when not acknowledged within this time.
    alert_ack_timeout_s: int = 3600
    escalation_check_s: int = 15
    # Category rules and the advisory group's members (config/alert_rules.toml).
    alert_rules_path: Path = Path(__file__).resolve().parent.parent / "config" / "alert_rules.toml"
    state_dir: Path = Path(".cxt")
    cache_dir: Path = Path.home() / ".cache" / "cx-timeline"
    kafka_version: str = KAFKA_VERSION
    kafka_heap: str = "-Xms256m -Xmx512m"
    log_level: str = "info"
    # Prometheus /metrics of a stream worker (0: no metrics endpoint).
    worker_metrics_port: int = 9101
    # The dashboard service (HTTP API, pages, websockets).
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    api_tokens: tuple[ApiToken, ...] = ()
    # Relevance keywords and next-best-action prompts of the agent view.
    agent_context_path: Path = (Path(__file__).resolve().parent.parent / "config"
                                / "agent_context.toml")
    # Webhook endpoints and what they receive (consumers/webhooks.py).
    webhooks_path: Path = Path(__file__).resolve().parent.parent / "config" / "webhooks.toml"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        cluster = _bool(env, "CXT_REDIS_CLUSTER", d.redis_cluster)
        return cls(
            kafka_bootstrap_servers=_kafka_servers(env, d.kafka_bootstrap_servers),
            redis_url=_redis_url(env, d.redis_url, cluster),
            redis_cluster=cluster,
            log_pii=_bool(env, "CXT_LOG_PII", d.log_pii),
            app_id=env.get("CXT_APP_ID") or d.app_id,
            topics=Topics.from_env(env),
            redis_prefix=env.get("CXT_REDIS_PREFIX") or d.redis_prefix,
            max_event_bytes=_int(env, "CXT_MAX_EVENT_BYTES", d.max_event_bytes, minimum=1),
            timeline_max_entries=_int(env, "CXT_TIMELINE_MAX_ENTRIES", d.timeline_max_entries,
                                      minimum=1),
            timeline_max_age_days=_int(env, "CXT_TIMELINE_MAX_AGE_DAYS",
                                       d.timeline_max_age_days, minimum=1),
            batch_size=_int(env, "CXT_BATCH_SIZE", d.batch_size, minimum=1),
            batch_window_ms=_int(env, "CXT_BATCH_WINDOW_MS", d.batch_window_ms, minimum=1),
            session_timeout_s=_int(env, "CXT_SESSION_TIMEOUT_S", d.session_timeout_s, minimum=6),
            alert_ack_timeout_s=_int(env, "CXT_ALERT_ACK_TIMEOUT_S", d.alert_ack_timeout_s,
                                     minimum=1),
            escalation_check_s=_int(env, "CXT_ESCALATION_CHECK_S", d.escalation_check_s,
                                    minimum=1),
            alert_rules_path=Path(env.get("CXT_ALERT_RULES") or d.alert_rules_path),
            state_dir=Path(env.get("CXT_STATE_DIR") or d.state_dir),
            cache_dir=Path(env.get("CXT_CACHE_DIR") or d.cache_dir),
            kafka_version=env.get("CXT_KAFKA_VERSION") or d.kafka_version,
            kafka_heap=env.get("CXT_KAFKA_HEAP") or d.kafka_heap,
            log_level=_log_level(env, d.log_level),
            worker_metrics_port=_int(env, "CXT_WORKER_METRICS_PORT", d.worker_metrics_port,
                                     maximum=65535),
            dashboard_host=env.get("CXT_DASHBOARD_HOST") or d.dashboard_host,
            dashboard_port=_int(env, "CXT_DASHBOARD_PORT", d.dashboard_port, minimum=1,
                                maximum=65535),
            api_tokens=_tokens(env),
            agent_context_path=Path(env.get("CXT_AGENT_CONTEXT") or d.agent_context_path),
            webhooks_path=Path(env.get("CXT_WEBHOOKS") or d.webhooks_path),
        )

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.dashboard_host}:{self.dashboard_port}"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _tokens(env: Mapping[str, str]) -> tuple[ApiToken, ...]:
    """CXT_API_TOKENS, plus the lines of the file named by CXT_API_TOKENS_FILE."""
    tokens = parse_tokens(env.get("CXT_API_TOKENS") or "")
    path = env.get("CXT_API_TOKENS_FILE")
    if path:
        try:
            text = Path(path).read_text()
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise SettingsError(f"CXT_API_TOKENS_FILE={path}: {why}") from None
        tokens += parse_tokens(text, f"CXT_API_TOKENS_FILE={path}")
    return tokens
