"""The one Settings <-> environment mapping (kernel.settings.VARIABLES): no Kafka or Redis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kernel.settings import (
    CONFIG_DIR,
    TOPIC_NAMES,
    VARIABLES,
    ApiToken,
    KafkaSecurity,
    RedisSecurity,
    Settings,
    SettingsError,
    Topics,
    WriteRate,
)
from tests.support.helpers import REPO


def _unusual() -> Settings:
    """Settings with every field away from its default."""
    topics = Topics(**{name: f"other.{name}.v9" for name in TOPIC_NAMES}, partitions=5,
                    replication=3)
    return Settings(
        kafka_bootstrap_servers="kafka-1:19092,kafka-2:19093", redis_url="rediss://r.example:6380/3",
        redis_cluster=True, log_pii=True, app_id="cx-other", topics=topics, redis_prefix="p9",
        max_event_bytes=1234, timeline_max_entries=77, timeline_max_age_days=30,
        deadletter_retention_days=3,
        batch_size=11, batch_window_ms=7, session_timeout_s=6, alert_ack_timeout_s=60,
        escalation_check_s=2, alert_rules_path=Path("/etc/cxt/rules.toml"),
        signals_path=Path("/etc/cxt/signals.toml"),
        routing_rules_path=Path("/etc/cxt/routing.toml"),
        identity_never_match=("phone:+442070000000", "email:noreply@*"),
        state_dir=Path("var/state"), cache_dir=Path("/tmp/cxt cache"), kafka_version="9.9.9",
        kafka_heap="-Xmx1g", log_level="debug", worker_metrics_port=0, webhooks_metrics_port=0,
        dashboard_host="0.0.0.0", dashboard_port=9999,
        api_tokens=(ApiToken("advisor", "adv-ana", "a" * 20),
                    ApiToken("service", "crm", "b:c" * 8, expires_ms=1801353600000)),
        api_tokens_file=REPO / "tests" / "support" / "api-tokens.example",
        agent_context_path=Path("/etc/cxt/agent.toml"), webhooks_path=Path("hooks.toml"),
        self_service_write_rate=WriteRate(3, 3600, 2),
        # Files that exist: the variables naming files are checked when read.
        kafka_security=KafkaSecurity(
            protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
            sasl_password="p:w", sasl_token_file=REPO / "README.md",
            ssl_ca_file=REPO / "pyproject.toml", ssl_cert_file=REPO / "dev",
            ssl_key_file=REPO / "docker-compose.yml", ssl_key_password="k",
            ssl_check_hostname=False),
        redis_security=RedisSecurity(
            username="cxt", password="s@cret", ssl_ca_file=REPO / "pyproject.toml",
            ssl_cert_file=REPO / "dev", ssl_key_file=REPO / "docker-compose.yml",
            ssl_check_hostname=False))


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_field_of_the_unusual_settings_differs_from_its_default() -> None:
    s, d = _unusual(), Settings()
    assert [n for n in _fields(Settings) - {"topics"} if getattr(s, n) == getattr(d, n)] == []
    assert [n for n in _fields(Topics) if getattr(s.topics, n) == getattr(d.topics, n)] == []
    for part in ("kafka_security", "redis_security"):
        mine, default = getattr(s, part), getattr(d, part)
        assert [n for n in _fields(type(mine)) if getattr(mine, n) == getattr(default, n)] == []


def test_from_env_of_to_env_gives_the_settings_back() -> None:
    s = _unusual()
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(Settings().to_env()) == Settings()
    assert Topics.from_env(s.to_env()) == s.topics


def test_to_env_wins_over_every_inherited_variable() -> None:
    """Laid over an environment that sets everything differently (a token file too),
    to_env alone decides: that is how child processes get exactly these settings."""
    inherited = {**_unusual().to_env(), "CXT_API_TOKENS_FILE": "/no/such/file"}
    assert Settings.from_env({**inherited, **Settings().to_env()}) == Settings()


def test_every_settings_field_has_one_variable() -> None:
    fields = {v.field for v in VARIABLES}
    nested = {"topics": Topics, "kafka_security": KafkaSecurity, "redis_security": RedisSecurity}
    expected = (_fields(Settings) - set(nested)) | {
        f"{part}.{n}" for part, cls in nested.items() for n in _fields(cls)}
    assert fields == expected
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    readers = [v.field for v in VARIABLES if v.read is not None]
    assert len(readers) == len(set(readers)), "a field is read by two variables"


def test_to_env_omits_what_it_is_told_to() -> None:
    env = _unusual().to_env(omit={"api_tokens", "api_tokens_file"})
    assert "CXT_API_TOKENS" not in env and "CXT_API_TOKENS_FILE" not in env
    assert env["REDIS_URL"] == "rediss://r.example:6380/3"
    with pytest.raises(ValueError, match="no_such"):
        Settings().to_env(omit={"no_such"})


def test_the_shipped_config_files_are_the_defaults() -> None:
    d = Settings()
    assert REPO / "config" == CONFIG_DIR
    for path in (d.alert_rules_path, d.agent_context_path, d.webhooks_path):
        assert path.parent == CONFIG_DIR and path.is_file(), path


def test_the_table_keeps_the_checks_and_their_messages() -> None:
    with pytest.raises(SettingsError, match="CXT_BATCH_SIZE='0': must be 1 to"):
        Settings.from_env({"CXT_BATCH_SIZE": "0"})
    with pytest.raises(SettingsError, match="CXT_SESSION_TIMEOUT_S='5': must be 6 to"):
        Settings.from_env({"CXT_SESSION_TIMEOUT_S": "5"})
    with pytest.raises(SettingsError, match="CXT_TOPIC_PARTITIONS='0'"):
        Topics.from_env({"CXT_TOPIC_PARTITIONS": "0"})
    # CXT_REDIS_CLUSTER is read before REDIS_URL, whose check depends on it.
    with pytest.raises(SettingsError, match="CXT_REDIS_CLUSTER"):
        Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "no port", "CXT_REDIS_CLUSTER": "maybe"})
    with pytest.raises(SettingsError, match="CXT_REDIS_CLUSTER is on"):
        Settings.from_env({"REDIS_URL": "unix:///tmp/r.sock", "CXT_REDIS_CLUSTER": "yes"})
    empty = {v.name: "" for v in VARIABLES}
    assert Settings.from_env(empty) == Settings()


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "tls"}, "KAFKA_SECURITY_PROTOCOL='tls': expected one of"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "oauthbearer"},
     "OAUTHBEARER needs KAFKA_SASL_TOKEN_FILE"),
    ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM='GSSAPI': expected one of"),
    ({"KAFKA_SSL_CA_FILE": "/no/such/ca.pem"}, "KAFKA_SSL_CA_FILE='/no/such/ca.pem': No such"),
    ({"KAFKA_SSL_CERT_FILE": str(REPO / "dev")}, "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go"),
    ({"KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "KAFKA_SSL_CHECK_HOSTNAME='maybe': expected true"),
    ({"REDIS_SSL_CA_FILE": str(REPO / "dev")}, "need a rediss:// REDIS_URL"),
    ({"REDIS_URL": "rediss://r:6380", "REDIS_SSL_KEY_FILE": str(REPO / "dev")},
     "REDIS_SSL_CERT_FILE and REDIS_SSL_KEY_FILE go together"),
    ({"REDIS_USERNAME": "cxt"}, "REDIS_USERNAME needs REDIS_PASSWORD"),
])
def test_security_settings_that_cannot_work_are_named(env: dict[str, str], message: str
                                                      ) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_passwords_stay_out_of_the_settings_repr() -> None:
    text = repr(_unusual())
    assert "p:w" not in text and "s@cret" not in text and "'k'" not in text
