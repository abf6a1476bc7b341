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
    Settings,
    SettingsError,
    Topics,
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
        batch_size=11, batch_window_ms=7, session_timeout_s=6, alert_ack_timeout_s=60,
        escalation_check_s=2, alert_rules_path=Path("/etc/cxt/rules.toml"),
        signals_path=Path("/etc/cxt/signals.toml"),
        state_dir=Path("var/state"), cache_dir=Path("/tmp/cxt cache"), kafka_version="9.9.9",
        kafka_heap="-Xmx1g", log_level="debug", worker_metrics_port=0,
        dashboard_host="0.0.0.0", dashboard_port=9999,
        api_tokens=(ApiToken("advisor", "adv-ana", "a" * 20),
                    ApiToken("service", "crm", "b:c" * 8)),
        agent_context_path=Path("/etc/cxt/agent.toml"), webhooks_path=Path("hooks.toml"))


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_field_of_the_unusual_settings_differs_from_its_default() -> None:
    s, d = _unusual(), Settings()
    assert [n for n in _fields(Settings) - {"topics"} if getattr(s, n) == getattr(d, n)] == []
    assert [n for n in _fields(Topics) if getattr(s.topics, n) == getattr(d.topics, n)] == []


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
    expected = (_fields(Settings) - {"topics"}) | {f"topics.{n}" for n in _fields(Topics)}
    assert fields == expected
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    readers = [v.field for v in VARIABLES if v.read is not None]
    assert len(readers) == len(set(readers)), "a field is read by two variables"


def test_to_env_omits_what_it_is_told_to() -> None:
    env = _unusual().to_env(omit={"api_tokens"})
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
