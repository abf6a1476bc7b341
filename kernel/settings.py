"""Every setting of cx-timeline, read from the environment once.

This is the one place where a topic name, a port or a limit is defined; every
other module takes a `Settings` (usually `Settings.from_env()`).  `VARIABLES` is
the one mapping between the environment and `Settings`: `Settings.from_env` reads
it, `Settings.to_env` writes it (for child processes), and docs/configuration.md
is generated from it (`python -m kernel.settings --markdown`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiokafka.conn import get_ip_port_afi
from redis.connection import parse_url

from kernel.errors import ConfigError
from kernel.times import epoch_ms, iso_ms, parse_rfc3339

# The Apache Kafka release the local stack runs (fetched from Maven Central).
# docker-compose.yml pins the same version of the official image.
KAFKA_VERSION = "4.1.1"

CHANNELS: tuple[str, ...] = ("call", "chat", "email", "survey", "social")
# Every named topic of `Topics`; CXT_TOPIC_<NAME> overrides each.
TOPIC_NAMES: tuple[str, ...] = (*CHANNELS, "customers", "timeline", "alerts", "alert_actions",
                                "deadletter", "customer_summary", "webhook_deadletter",
                                "identity", "identity_actions", "agents", "routing",
                                "self_service")


class SettingsError(ConfigError):
    """A setting has a value we cannot use; the message names the variable."""


# customer: the customer themselves (subject = customer id), on the self-service routes only.
ROLES: tuple[str, ...] = ("advisor", "agent", "service", "customer")


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the dashboard service: who holds it and what they may do.

    `subject` is the advisor's actor id (alert actions are recorded under it),
    the agent's id (an agent sees only their own channel), or a service name.
    """

    role: str
    subject: str
    token: str = field(repr=False)
    expires_ms: int | None = None  # epoch ms; None: until removed

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms

    def line(self) -> str:
        """As `parse_tokens` reads it."""
        expiry = "" if self.expires_ms is None else f" expires={iso_ms(self.expires_ms)}"
        return f"{self.role}:{self.subject}:{self.token}{expiry}"


def parse_tokens(raw: str, variable: str = "CXT_API_TOKENS") -> tuple[ApiToken, ...]:
    """`role:subject:token [expires=RFC 3339]` items separated by commas or newlines."""
    tokens = []
    for item in re.split(r"[,\n]", raw):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        item, *options = item.split()
        expires_ms = None
        for option in options:
            name, _, value = option.partition("=")
            if name != "expires":
                raise SettingsError(f"{variable}: {_redact(item)!r}: unknown option "
                                    f"{_short(option)} (only expires=<RFC 3339 time>)")
            try:
                expires_ms = epoch_ms(parse_rfc3339(value))
            except ValueError:
                raise SettingsError(f"{variable}: {_redact(item)!r}: expires={_short(value)} "
                                    "is not an RFC 3339 time such as "
                                    "2027-01-31T00:00:00Z") from None
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise SettingsError(f"{variable}: {_redact(item)!r} is not role:subject:token")
        role, subject, token = parts
        if role not in ROLES:
            raise SettingsError(f"{variable}: role {role!r} is not one of {', '.join(ROLES)}")
        if len(token) < 16:
            raise SettingsError(f"{variable}: the token of {role}:{subject} is shorter than "
                                "16 characters; generate one with `cxt tokens new`")
        tokens.append(ApiToken(role, subject, token, expires_ms))
    return tuple(tokens)


def read_token_file(path: Path) -> tuple[ApiToken, ...]:
    """The tokens of a CXT_API_TOKENS_FILE (the dashboard re-reads it when it changes)."""
    try:
        text = path.read_text()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise SettingsError(f"CXT_API_TOKENS_FILE={path}: {why}") from None
    return parse_tokens(text, f"CXT_API_TOKENS_FILE={path}")


_PERIODS = {"s": 1, "min": 60, "h": 3600}
_RATE = re.compile(r"^\s*(\d{1,6})\s*/\s*(s|min|h)\s*,\s*(\d{1,6})\s*$")


@dataclass(frozen=True)
class WriteRate:
    """A token bucket's size and refill: `count` writes per `period_s`, `burst` at once."""

    count: int
    period_s: int
    burst: int

    @classmethod
    def parse(cls, raw: str, variable: str) -> WriteRate:
        found = _RATE.match(raw)
        if not found or int(found[1]) < 1 or int(found[3]) < 1:
            raise SettingsError(f"{variable}={_short(raw)}: expected writes per period and a "
                                "burst, like 20/min,5 (periods s, min, h; both numbers 1 or more)")
        return cls(int(found[1]), _PERIODS[found[2]], int(found[3]))

    def line(self) -> str:
        unit = next(u for u, seconds in _PERIODS.items() if seconds == self.period_s)
        return f"{self.count}/{unit},{self.burst}"


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


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
OAUTHBEARER = "OAUTHBEARER"


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client of ours authenticates and encrypts (kernel.kafka applies it).

    A CA file of None trusts the system's CAs (managed services use public ones).  With
    OAUTHBEARER the token is read from `sasl_token_file` whenever a connection needs one,
    so whatever refreshes that file (a sidecar, a cron job) rotates it without a restart.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    sasl_token_file: Path | None = None
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: str = field(default="", repr=False)
    ssl_check_hostname: bool = True

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def check(self) -> KafkaSecurity:
        """Itself, or SettingsError for settings that cannot work together."""
        if self.uses_sasl and self.sasl_mechanism == OAUTHBEARER:
            if self.sasl_token_file is None:
                raise SettingsError("KAFKA_SASL_MECHANISM=OAUTHBEARER needs "
                                    "KAFKA_SASL_TOKEN_FILE (the file holding the token)")
        elif self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs "
                                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise SettingsError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together "
                                "(the client certificate and its key)")
        return self


@dataclass(frozen=True)
class RedisSecurity:
    """Redis credentials and TLS beyond what `REDIS_URL` says (kernel.redis_client applies
    them).  The TLS files apply to `rediss://` URLs only."""

    username: str = ""
    password: str = field(default="", repr=False)
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_check_hostname: bool = True

    def check(self, url: str) -> RedisSecurity:
        """Itself, or SettingsError for settings that cannot work with `url`."""
        tls = (self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file)
        if any(f is not None for f in tls) and not url.startswith("rediss://"):
            raise SettingsError("REDIS_SSL_CA_FILE, REDIS_SSL_CERT_FILE and REDIS_SSL_KEY_FILE "
                                "need a rediss:// REDIS_URL")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise SettingsError("REDIS_SSL_CERT_FILE and REDIS_SSL_KEY_FILE go together "
                                "(the client certificate and its key)")
        if self.username and not self.password:
            raise SettingsError("REDIS_USERNAME needs REDIS_PASSWORD")
        return self


def _choice(choices: tuple[str, ...]) -> Reader:
    def read(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> str:
        raw = (env.get(name) or "").strip()
        if not raw:
            return default
        if raw.upper() not in choices:
            raise SettingsError(f"{name}={_short(raw)}: expected one of {', '.join(choices)}")
        return raw.upper()
    return read


def _file(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> Path | None:
    """An optional file that must be there and readable when named."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    path = Path(raw)  # no ~ expansion: a shell has done it, and ~user may not exist
    try:
        with path.open("rb"):
            pass
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise SettingsError(f"{name}={_short(raw)}: {why}") from None
    return path


def _write_file(path: Path | None) -> str:
    return "" if path is None else str(path)


# The shipped configuration files (config/ in the repository, installed beside
# our packages by the wheel): the defaults of CXT_ALERT_RULES and friends are
# found from this module's location, never from the working directory.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


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
    identity: str = "cx.identity.v1"
    identity_actions: str = "cx.identity-actions.v1"
    agents: str = "cx.agents.v1"
    routing: str = "cx.routing.v1"
    self_service: str = "cx.self-service.v1"
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
        return {self.customers, self.customer_summary, self.agents}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Topics:
        return cls(**_read(env, [v for v in VARIABLES if v.field.startswith("topics.")],
                           cls(), "topics."))


@dataclass(frozen=True)
class Settings:
    """Every setting; `VARIABLES` says which environment variable sets each, and what it means."""

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_url: str = "redis://localhost:6379/0"
    redis_security: RedisSecurity = field(default_factory=RedisSecurity)
    redis_cluster: bool = False
    log_pii: bool = False
    app_id: str = "cx-timeline"
    topics: Topics = field(default_factory=Topics)
    redis_prefix: str = "cxt"
    max_event_bytes: int = 256 * 1024
    timeline_max_entries: int = 1000
    timeline_max_age_days: int = 400
    deadletter_retention_days: int = 14
    batch_size: int = 2000
    batch_window_ms: int = 50
    # Kafka's default is 45 s; a contact centre wants alerts within seconds.
    session_timeout_s: int = 10
    alert_ack_timeout_s: int = 3600
    escalation_check_s: int = 15
    alert_rules_path: Path = CONFIG_DIR / "alert_rules.toml"
    signals_path: Path = CONFIG_DIR / "signals.toml"
    routing_rules_path: Path = CONFIG_DIR / "routing.toml"
    identity_never_match: tuple[str, ...] = ()
    state_dir: Path = Path(".cxt")
    cache_dir: Path = Path.home() / ".cache" / "cx-timeline"
    kafka_version: str = KAFKA_VERSION
    kafka_heap: str = "-Xms256m -Xmx512m"
    log_level: str = "info"
    worker_metrics_port: int = 9101
    webhooks_metrics_port: int = 9102
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    api_tokens: tuple[ApiToken, ...] = ()
    api_tokens_file: Path | None = None
    agent_context_path: Path = CONFIG_DIR / "agent_context.toml"
    self_service_write_rate: WriteRate = WriteRate(20, 60, 5)
    webhooks_path: Path = CONFIG_DIR / "webhooks.toml"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        values = _read(env, VARIABLES, d)
        topics = Topics(**_section(values, "topics."))
        security = KafkaSecurity(**_section(values, "kafka_security.")).check()
        redis_security = RedisSecurity(**_section(values, "redis_security.")).check(
            values["redis_url"])
        return cls(**values, topics=topics, kafka_security=security,
                   redis_security=redis_security)

    def to_env(self, omit: Collection[str] = ()) -> dict[str, str]:
        """Every variable of `VARIABLES`, set so that `from_env` gives these settings back.

        Laid over an inherited environment (`{**os.environ, **s.to_env()}`) it wins over
        every inherited setting.  `omit`: Settings fields whose variables are left out
        (inherited as they are), e.g. {"api_tokens", "api_tokens_file"}.
        """
        unknown = set(omit) - {v.field for v in VARIABLES}
        if unknown:
            raise ValueError(f"to_env: no such setting {', '.join(sorted(unknown))}")
        return {v.name: v.write(_value(self, v.field)) for v in VARIABLES
                if v.field not in omit}

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.dashboard_host}:{self.dashboard_port}"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _section(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The values of one nested dataclass ("topics.call" -> "call"), taken out of `values`."""
    return {name.removeprefix(prefix): values.pop(name)
            for name in list(values) if name.startswith(prefix)}


def _tokens(env: Mapping[str, str]) -> tuple[ApiToken, ...]:
    """CXT_API_TOKENS (the file's tokens are read by whoever serves them, `read_token_file`,
    so that a change to the file takes effect without a restart)."""
    return parse_tokens(env.get("CXT_API_TOKENS") or "")


def _token_file(env: Mapping[str, str], name: str, default: Any,
                done: dict[str, Any]) -> Path | None:
    """CXT_API_TOKENS_FILE, checked (read and parsed) at start."""
    path = _file(env, name, default, done)
    if path is not None:
        read_token_file(path)
    return path


# --- the one mapping between Settings and the environment ------------------------

# read(env, variable name, default, the values read so far) -> the setting's value
Reader = Callable[[Mapping[str, str], str, Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class Variable:
    """One environment variable: the Settings field it sets, how it is read and written.

    `field` is a Settings attribute, "topics.NAME" for a `Topics` one (and so for the
    other nested sections).  `meaning` is its line in docs/configuration.md.
    """

    name: str
    field: str
    meaning: str
    read: Reader
    write: Callable[[Any], str] = str
    section: str = ""


def _text(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> str:
    return env.get(name) or default


def _path(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> Path:
    return Path(env.get(name) or default)


def _flag(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> bool:
    return _bool(env, name, default)


def _number(minimum: int = 0, maximum: int = _INT_MAX) -> Reader:
    def read(env: Mapping[str, str], name: str, default: Any, _: dict[str, Any]) -> int:
        return _int(env, name, default, minimum=minimum, maximum=maximum)
    read.minimum, read.maximum = minimum, maximum  # type: ignore[attr-defined]
    return read


IDENTIFIER_KINDS = ("phone:", "email:", "social:")


def _never_match(env: Mapping[str, str], name: str, default: tuple[str, ...]
                 ) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        if not pattern.startswith(IDENTIFIER_KINDS) or len(pattern) > 300:
            raise SettingsError(
                f"{name}: {pattern[:60]!r} is not an identifier pattern; each starts with "
                f"phone:, email: or social: (e.g. phone:+442070000000,email:noreply@*)")
    # Matched against normalised identifiers (schemas.validate): written the same way.
    return tuple("".join(p.split()) if p.startswith("phone:") else p.lower() for p in patterns)


def _write_flag(value: bool) -> str:
    return "true" if value else "false"


def _write_tokens(tokens: tuple[ApiToken, ...]) -> str:
    return ",".join(t.line() for t in tokens)


_TOPIC_MEANINGS = {
    "customers": "customer profiles (compacted), read by the worker",
    "timeline": "every stored timeline entry, written by the worker",
    "alerts": "bottom-2-box alerts and their escalations",
    "alert_actions": "advisors' actions on alerts (acknowledge, call back, close)",
    "deadletter": "inbound values that failed validation, with the reason",
    "customer_summary": "per-customer summaries for the CRM (compacted; `cxt summaries`)",
    "webhook_deadletter": "webhook deliveries that failed for good",
    "identity": "every identity decision: claimed, released, merged, unmerged, ambiguous, "
                "confirmed",
    "identity_actions": "agents' confirmations of who is calling on a shared identifier",
    "agents": "agent records: skills, languages, tier, queues, availability (compacted)",
    "routing": "routing hints for offered calls and chats, written by the worker",
    "self_service": "customers' own notes and preferences, from the self-service API",
}

CONNECTIONS, TOPICS, WORKER, ALERTS, DASHBOARD, LOCAL = (
    "Connections", "Topics", "Worker and timelines", "Alerts", "Dashboard",
    "Local stack (`cxt up`)")

VARIABLES: tuple[Variable, ...] = (
    Variable("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers",
             "comma-separated brokers, `host:port[,host:port...]`",
             lambda env, _, default, __: _kafka_servers(env, default), section=CONNECTIONS),
    Variable("KAFKA_SECURITY_PROTOCOL", "kafka_security.protocol",
             f"how clients talk to the brokers: {', '.join(KAFKA_PROTOCOLS)}",
             _choice(KAFKA_PROTOCOLS), section=CONNECTIONS),
    Variable("KAFKA_SASL_MECHANISM", "kafka_security.sasl_mechanism",
             f"with SASL_*: {', '.join(SASL_MECHANISMS)}", _choice(SASL_MECHANISMS),
             section=CONNECTIONS),
    Variable("KAFKA_SASL_USERNAME", "kafka_security.sasl_username",
             "SASL user (PLAIN, SCRAM-*; an API key on managed services)", _text,
             section=CONNECTIONS),
    Variable("KAFKA_SASL_PASSWORD", "kafka_security.sasl_password",
             "its password (an API secret on managed services); never logged", _text,
             section=CONNECTIONS),
    Variable("KAFKA_SASL_TOKEN_FILE", "kafka_security.sasl_token_file",
             "OAUTHBEARER: a file holding the current token, re-read at every new connection "
             "(whatever renews it rotates it)", _file, _write_file, CONNECTIONS),
    Variable("KAFKA_SSL_CA_FILE", "kafka_security.ssl_ca_file",
             "with SSL and SASL_SSL: PEM file of the CAs to trust (default: the system's)",
             _file, _write_file, CONNECTIONS),
    Variable("KAFKA_SSL_CERT_FILE", "kafka_security.ssl_cert_file",
             "client certificate (PEM), for brokers that authenticate clients by certificate",
             _file, _write_file, CONNECTIONS),
    Variable("KAFKA_SSL_KEY_FILE", "kafka_security.ssl_key_file",
             "the client certificate's private key (PEM)", _file, _write_file, CONNECTIONS),
    Variable("KAFKA_SSL_KEY_PASSWORD", "kafka_security.ssl_key_password",
             "the private key's password, if it is encrypted", _text, section=CONNECTIONS),
    Variable("KAFKA_SSL_CHECK_HOSTNAME", "kafka_security.ssl_check_hostname",
             "`false`: accept a broker certificate that does not name the host connected to "
             "(still signed by a trusted CA)", _flag, _write_flag, CONNECTIONS),
    Variable("REDIS_URL", "redis_url",
             "Redis server (`redis://`, `rediss://` or `unix://`)",
             lambda env, _, default, done: _redis_url(env, default, done["redis_cluster"]),
             section=CONNECTIONS),
    Variable("REDIS_USERNAME", "redis_security.username",
             "ACL user (instead of one in `REDIS_URL`)", _text, section=CONNECTIONS),
    Variable("REDIS_PASSWORD", "redis_security.password",
             "its password (instead of one in `REDIS_URL`, where it would need URL-encoding); "
             "never logged", _text, section=CONNECTIONS),
    Variable("REDIS_SSL_CA_FILE", "redis_security.ssl_ca_file",
             "with `rediss://`: PEM file of the CAs to trust (default: the system's)", _file,
             _write_file, CONNECTIONS),
    Variable("REDIS_SSL_CERT_FILE", "redis_security.ssl_cert_file",
             "with `rediss://`: client certificate (PEM), for servers that want one", _file,
             _write_file, CONNECTIONS),
    Variable("REDIS_SSL_KEY_FILE", "redis_security.ssl_key_file",
             "its private key (PEM)", _file, _write_file, CONNECTIONS),
    Variable("REDIS_SSL_CHECK_HOSTNAME", "redis_security.ssl_check_hostname",
             "`false`: accept a server certificate that does not name the host (still signed "
             "by a trusted CA)", _flag, _write_flag, CONNECTIONS),
    Variable("CXT_REDIS_CLUSTER", "redis_cluster",
             "`true`: `REDIS_URL` names one node of a Redis Cluster", _flag, _write_flag,
             CONNECTIONS),
    Variable("CXT_REDIS_PREFIX", "redis_prefix",
             "first part of every Redis key, so several deployments can share a server",
             _text, section=CONNECTIONS),
    Variable("CXT_LOG_PII", "log_pii",
             "debugging only: log lines keep e-mail addresses and phone numbers, otherwise "
             "masked in every process", _flag, _write_flag, CONNECTIONS),
    Variable("CXT_LOG_LEVEL", "log_level",
             f"worker and dashboard log level: {', '.join(LOG_LEVELS)}",
             lambda env, _, default, __: _log_level(env, default), section=CONNECTIONS),
    Variable("CXT_APP_ID", "app_id",
             "faust app id = the worker's consumer group (customers, alert actions); the "
             "inbound topics use `<CXT_APP_ID>-interactions`", _text, section=TOPICS),
    *(Variable(f"CXT_TOPIC_{name.upper()}", f"topics.{name}",
               f"inbound {name} interactions" if name in CHANNELS else _TOPIC_MEANINGS[name],
               _text, section=TOPICS) for name in TOPIC_NAMES),
    Variable("CXT_TOPIC_PARTITIONS", "topics.partitions", "partitions of the topics we create",
             _number(minimum=1), section=TOPICS),
    Variable("CXT_TOPIC_REPLICATION", "topics.replication",
             "replication factor of the topics we create", _number(minimum=1), section=TOPICS),
    Variable("CXT_MAX_EVENT_BYTES", "max_event_bytes",
             "larger inbound values are dead-lettered (`too_large`)", _number(minimum=1),
             section=WORKER),
    Variable("CXT_TIMELINE_MAX_ENTRIES", "timeline_max_entries",
             "entries kept per customer (oldest trimmed)", _number(minimum=1), section=WORKER),
    Variable("CXT_TIMELINE_MAX_AGE_DAYS", "timeline_max_age_days",
             "entries older than this (by `occurred_at`) are trimmed", _number(minimum=1),
             section=WORKER),
    Variable("CXT_DEADLETTER_RETENTION_DAYS", "deadletter_retention_days",
             "how long Kafka keeps dead letters (`retention.ms` of the dead-letter topics we "
             "create): they hold the rejected records, personal data that erasure cannot "
             "reach", _number(minimum=1, maximum=3650), section=WORKER),
    Variable("CXT_BATCH_SIZE", "batch_size", "most events per batch", _number(minimum=1),
             section=WORKER),
    Variable("CXT_BATCH_WINDOW_MS", "batch_window_ms", "longest wait to fill a batch",
             _number(minimum=1), section=WORKER),
    Variable("CXT_SESSION_TIMEOUT_S", "session_timeout_s",
             "a worker silent this long loses its partitions to the others", _number(minimum=6),
             section=WORKER),
    Variable("CXT_WORKER_METRICS_PORT", "worker_metrics_port",
             "the worker's Prometheus `/metrics` port (all interfaces); `0`: none",
             _number(maximum=65535), section=WORKER),
    Variable("CXT_WEBHOOKS_METRICS_PORT", "webhooks_metrics_port",
             "`cxt webhooks run`'s Prometheus `/metrics` port (all interfaces); `0`: none",
             _number(maximum=65535), section=DASHBOARD),
    Variable("CXT_ALERT_ACK_TIMEOUT_S", "alert_ack_timeout_s",
             "escalate an alert not acknowledged within this time", _number(minimum=1),
             section=ALERTS),
    Variable("CXT_ESCALATION_CHECK_S", "escalation_check_s",
             "how often each worker looks for overdue alerts", _number(minimum=1),
             section=ALERTS),
    Variable("CXT_ALERT_RULES", "alert_rules_path",
             "category rules and the actors (advisory group) allowed to act on alerts", _path,
             section=ALERTS),
    Variable("CXT_SIGNALS", "signals_path",
             "the negative-interaction signals: sentiment threshold, escalation phrases, "
             "repeat-contact and operational limits", _path, section=ALERTS),
    Variable("CXT_ROUTING_RULES", "routing_rules_path",
             "the routing hint's queues, tiers and weights (docs/routing.md)", _path,
             section=WORKER),
    Variable("CXT_IDENTITY_NEVER_MATCH", "identity_never_match",
             "comma-separated identifiers never used to match an interaction to a customer "
             "(switchboard numbers, shared mailboxes): `phone:+442070000000,email:noreply@*` "
             "(`*` and `?` match any text and one character)", lambda env, name, default, _:
             _never_match(env, name, default), ",".join, section=WORKER),
    Variable("CXT_DASHBOARD_HOST", "dashboard_host", "the dashboard's bind address", _text,
             section=DASHBOARD),
    Variable("CXT_DASHBOARD_PORT", "dashboard_port", "the dashboard's port",
             _number(minimum=1, maximum=65535), section=DASHBOARD),
    Variable("CXT_API_TOKENS", "api_tokens",
             f"`role:subject:token`, comma-separated; roles {', '.join(ROLES)}; tokens of at "
             "least 16 characters (`cxt tokens new`)",
             lambda env, _, __, ___: _tokens(env), _write_tokens, DASHBOARD),
    Variable("CXT_API_TOKENS_FILE", "api_tokens_file",
             "a file of the same, one per line (`#` comments), added to `CXT_API_TOKENS`; "
             "re-read within seconds when it changes (no restart): a line removed, or past "
             "its `expires=`, is refused and its open websockets closed; `cxt up` makes "
             "`CXT_STATE_DIR/api-tokens` when neither is set", _token_file, _write_file,
             DASHBOARD),
    Variable("CXT_SELF_SERVICE_WRITE_RATE", "self_service_write_rate",
             "customers' writes (notes, preferences) allowed per token: `N/PERIOD,BURST`, "
             "periods `s`, `min`, `h`; `20/min,5` takes 5 at once, then one every 3 s; "
             "429 beyond", lambda env, name, default, _: WriteRate.parse(env[name], name)
             if env.get(name) else default, WriteRate.line, DASHBOARD),
    Variable("CXT_AGENT_CONTEXT", "agent_context_path",
             "relevance keywords and next-best-action prompts of the agent view (the "
             "worker reads its `[relevance]` too, for its index of relevant contacts)", _path,
             section=DASHBOARD),
    Variable("CXT_WEBHOOKS", "webhooks_path",
             "webhook endpoints, their topics, retries and the variables holding their secrets",
             _path, section=DASHBOARD),
    Variable("CXT_STATE_DIR", "state_dir",
             "where `cxt up` keeps broker and Redis data (relative: to the working directory)",
             _path, section=LOCAL),
    Variable("CXT_CACHE_DIR", "cache_dir", "where the Kafka jars are cached", _path,
             section=LOCAL),
    Variable("CXT_KAFKA_VERSION", "kafka_version",
             "Apache Kafka release the local stack runs (fetched from Maven Central)", _text,
             section=LOCAL),
    Variable("CXT_KAFKA_HEAP", "kafka_heap", "JVM heap options of the local broker", _text,
             section=LOCAL),
)


def _value(settings: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


def _read(env: Mapping[str, str], variables: Iterable[Variable], defaults: Any,
          strip: str = "") -> dict[str, Any]:
    """{field: value} of `variables`, each read from `env` or its default in `defaults`.

    CXT_REDIS_CLUSTER is read first: whether REDIS_URL may be a unix:// URL depends on it
    (and so a wrong value of it is the error reported, as before the table).
    """
    values: dict[str, Any] = {}
    for v in sorted(variables, key=lambda v: v.name != "CXT_REDIS_CLUSTER"):
        name = v.field.removeprefix(strip)
        values[name] = v.read(env, v.name, _value(defaults, name), values)
    return values


# --- docs/configuration.md ----------------------------------------------------------

def _doc_default(v: Variable, default: Any) -> str:
    if default in ("", (), None):
        return "(none)"
    if isinstance(default, Path):
        if default.is_relative_to(CONFIG_DIR):
            return f"`config/{default.relative_to(CONFIG_DIR)}` (shipped with the package)"
        if default.is_relative_to(Path.home()):
            return f"`~/{default.relative_to(Path.home())}`"
    return f"`{v.write(default)}`"


def configuration_markdown() -> str:
    """docs/configuration.md, from `VARIABLES` and the defaults of `Settings`."""
    d = Settings()
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from kernel/settings.py by `python -m kernel.settings --markdown >"
        " docs/configuration.md`; tests/unit/kernel/test_settings_docs.py fails when they"
        " disagree. -->",
        "",
        "All settings are environment variables, read and checked once at start",
        "(`kernel/settings.py`): a value that cannot work (a `REDIS_URL` redis-py cannot",
        "parse, a broker that is not `host:port`, a port outside 1-65535, an unknown log",
        "level, a number out of range) stops every command at start with one line naming",
        "the variable.  An empty variable means its default.",
        "",
        "The shipped configuration files (`config/alert_rules.toml`, `config/signals.toml`,",
        "`config/agent_context.toml`, `config/webhooks.toml`) are installed with the package",
        "and found from its location, not from the working directory; each file's header",
        "documents its format.",
    ]
    sections: dict[str, list[Variable]] = {}
    for v in VARIABLES:
        sections.setdefault(v.section, []).append(v)
    for section, variables in sections.items():
        lines += ["", f"## {section}", "", "| variable | default | meaning |",
                  "| --- | --- | --- |"]
        for v in variables:
            meaning = v.meaning
            minimum = getattr(v.read, "minimum", 0)
            if minimum > 1:
                meaning += f" (at least {minimum})"
            lines.append(f"| `{v.name}` | {_doc_default(v, _value(d, v.field))} | {meaning} |")
    lines += [
        "",
        "## Not settings of the product",
        "",
        "| variable | meaning |",
        "| --- | --- |",
        "| `CXT_AUDIT` | `skip`: `./dev test` does not run the dependency audit (pip-audit), "
        "and says so |",
        "| `CXT_CHROMIUM` | the Chromium binary the browser tests drive (`./dev`) |",
        "| a webhook's `secret_env` | each webhook of `CXT_WEBHOOKS` names the variable that "
        "holds its secret, read at start |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m kernel.settings --markdown > docs/configuration.md")
    sys.stdout.write(configuration_markdown())
