"""The webhooks file loader and the delivery's pure parts (backoff, signature, bodies)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord

from consumers.webhook_config import (
    Endpoint,
    WebhookConfigError,
    load_webhooks,
    parse_webhooks,
)
from consumers.webhooks import (
    backoff_delay,
    dead_letter_value,
    is_retryable,
    request_body,
    retry_after_s,
    sign,
)
from kernel.settings import Settings, Topics
from schemas import validator
from tests.support.helpers import REPO

SECRET = "0123456789abcdef-secret"
ENV = {"CRM_SECRET": SECRET}
SHIPPED = REPO / "config" / "webhooks.toml"


def parse(text: str, env: dict[str, str] | None = None, topics: Topics | None = None):
    return parse_webhooks(text, "hooks.toml", topics or Topics(), ENV if env is None else env)


def endpoint_block(**fields: object) -> str:
    values = {"name": "crm", "url": "https://crm.example.com/in", "secret_env": "CRM_SECRET",
              **fields}
    lines = ["[[endpoint]]"]
    lines += [f"{key} = {_toml(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


# --------------------------------------------------------------------------- the file


def test_the_shipped_file_is_valid_and_enables_nothing() -> None:
    config = load_webhooks(SHIPPED, Topics(), env={})
    assert config.endpoints == ()
    assert config.enabled == ()
    assert Settings().webhooks_path == SHIPPED


def test_the_shipped_example_is_valid_once_uncommented() -> None:
    text = SHIPPED.read_text()
    example = text[text.index("# [[endpoint]]"):]
    uncommented = "\n".join(line.removeprefix("# ") for line in example.splitlines())
    config = parse(uncommented, env={"CXT_WEBHOOK_SECRET_CRM": SECRET})
    (crm,) = config.enabled
    assert crm.topics == ("cx.alerts.v1", "cx.customer-summary.v1")


def test_defaults_and_real_topic_names() -> None:
    topics = Topics(alerts="my.alerts", customer_summary="my.summaries")
    config = parse(endpoint_block() + endpoint_block(name="bi-2", topics=["customer_summary"],
                                                     enabled=False, secret_env="UNSET_VAR"),
                   topics=topics)
    crm, bi = config.endpoints
    assert crm == Endpoint(name="crm", url="https://crm.example.com/in", topics=("my.alerts",),
                           topic_keys=("alerts",), secret_env="CRM_SECRET",
                           secret=SECRET.encode(), timeout_s=5.0, max_attempts=8,
                           backoff_initial_s=0.5, backoff_max_s=60.0, start="latest",
                           enabled=True)
    # A disabled endpoint needs no secret: it is kept, listed, and never run.
    assert (bi.enabled, bi.secret, bi.topics) == (False, b"", ("my.summaries",))
    assert config.enabled == (crm,)
    assert crm.group_id("cx-timeline") == "cx-timeline-webhook-crm"
    assert "secret" not in repr(crm).replace("secret_env", "")
    described = config.describe("cx-timeline")
    assert "crm (enabled) -> https://crm.example.com/in" in described
    assert "bi-2 (disabled)" in described and SECRET not in described


def test_every_option() -> None:
    (crm,) = parse(endpoint_block(topics=["alerts", "customer_summary"], timeout_s=2.5,
                                  max_attempts=3, backoff_initial_s=1, backoff_max_s=10,
                                  start="earliest", url="http://10.0.0.1:8080/x?a=b")).endpoints
    assert (crm.timeout_s, crm.max_attempts, crm.backoff_initial_s, crm.backoff_max_s,
            crm.start, crm.url) == (2.5, 3, 1.0, 10.0, "earliest", "http://10.0.0.1:8080/x?a=b")
    assert crm.topic_keys == ("alerts", "customer_summary")


BAD = [
    ("[[endpoint]]\nname = \"crm\"\nurl = ", "hooks.toml: not valid TOML: "),
    ("endpoints = []\n",
     "hooks.toml: top level: unknown key 'endpoints' (allowed: endpoint); "
     "did you mean 'endpoint'?"),
    ("[endpoint]\nname = \"crm\"\n",
     "hooks.toml: endpoint must be written as [[endpoint]] blocks"),
    (endpoint_block(name=None),
     "hooks.toml: endpoint 1: name is required: 1-63 lower-case letters, digits and '-', "
     "starting with a letter or digit (got None)"),
    (endpoint_block(name="CRM"), "hooks.toml: endpoint 1: name is required: "),
    (endpoint_block(name="crm hooks"), "(got 'crm hooks')"),
    (endpoint_block() + endpoint_block(),
     "hooks.toml: endpoint 2 'crm': name is used by an earlier endpoint; names must be unique"),
    (endpoint_block(time_out=5),
     "hooks.toml: endpoint 1 'crm': unknown key 'time_out' (allowed: name, url, topics, "
     "secret_env, timeout_s, max_attempts, backoff_initial_s, backoff_max_s, start, enabled); "
     "did you mean 'timeout_s'?"),
    (endpoint_block(url=None),
     "hooks.toml: endpoint 1 'crm': url is required, without spaces, like "
     "\"https://host/path\" (got None)"),
    (endpoint_block(url="ftp://crm.example.com/in"),
     "hooks.toml: endpoint 1 'crm': url must start with http:// or https:// and name a host "
     "(got 'ftp://crm.example.com/in')"),
    (endpoint_block(url="https:///in"), "url must start with http:// or https:// and name a host"),
    (endpoint_block(url="https://crm example.com/in"), "url is required, without spaces"),
    (endpoint_block(url="https://crm.example.com:99999/in"),
     "hooks.toml: endpoint 1 'crm': url 'https://crm.example.com:99999/in' is not a URL: "),
    (endpoint_block(url="https://bob:pw@crm.example.com/in"),
     "hooks.toml: endpoint 1 'crm': url must not contain a user or password"),
    (endpoint_block(topics="alerts"),
     "hooks.toml: endpoint 1 'crm': topics must be a list of at least one of alerts, "
     "customer_summary, like [\"alerts\"]"),
    (endpoint_block(topics=[]), "topics must be a list of at least one of"),
    (endpoint_block(topics=["alerts", "timeline"]),
     "hooks.toml: endpoint 1 'crm': topics: 'timeline' is not one of alerts, customer_summary"),
    (endpoint_block(topics=["alerts", "alerts"]),
     "hooks.toml: endpoint 1 'crm': topics lists a topic twice"),
    (endpoint_block(secret_env=None),
     "hooks.toml: endpoint 1 'crm': secret_env is required: the NAME of the environment "
     "variable that holds the shared secret, like \"CXT_WEBHOOK_SECRET_CRM\" (got None)"),
    (endpoint_block(secret_env="0123456789abcdef0123"), "secret_env is required: the NAME"),
    (endpoint_block(secret_env="MISSING_SECRET"),
     "hooks.toml: endpoint 1 'crm': secret_env: the environment variable MISSING_SECRET is not "
     "set; it must hold the secret shared with the receiver (or set enabled = false)"),
    (endpoint_block(enabled="yes"),
     "hooks.toml: endpoint 1 'crm': enabled must be true or false (got 'yes')"),
    (endpoint_block(timeout_s=0),
     "hooks.toml: endpoint 1 'crm': timeout_s must be a number of seconds greater than 0 and "
     "at most 300 (got 0)"),
    (endpoint_block(timeout_s=5000), "timeout_s must be a number of seconds greater than 0 and "
     "at most 300 (got 5000)"),
    (endpoint_block(timeout_s="5"), "timeout_s must be a number of seconds"),
    (endpoint_block(timeout_s=True), "timeout_s must be a number of seconds"),
    (endpoint_block(backoff_initial_s=-1),
     "hooks.toml: endpoint 1 'crm': backoff_initial_s must be a number of seconds greater "
     "than 0 and at most 3600 (got -1)"),
    (endpoint_block(backoff_max_s=0.1),
     "hooks.toml: endpoint 1 'crm': backoff_max_s (0.1) must be at least backoff_initial_s "
     "(0.5)"),
    (endpoint_block(max_attempts=0),
     "hooks.toml: endpoint 1 'crm': max_attempts must be a whole number from 1 to 1000 "
     "(got 0)"),
    (endpoint_block(max_attempts=2.5), "max_attempts must be a whole number from 1 to 1000"),
    (endpoint_block(start="beginning"),
     "hooks.toml: endpoint 1 'crm': start must be one of latest, earliest (got 'beginning')"),
    ("endpoint = [1]\n", "hooks.toml: endpoint 1: must be an [[endpoint]] block"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_each_mistake_is_one_precise_error(text: str, message: str) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        parse(text)
    text = str(caught.value)
    assert message in text, text
    assert text.startswith("hooks.toml: ") and "\n" not in text  # one line, file first


def test_a_short_secret_is_refused_and_never_shown() -> None:
    with pytest.raises(WebhookConfigError) as caught:
        parse(endpoint_block(), env={"CRM_SECRET": "short-one"})
    assert str(caught.value).startswith(
        "hooks.toml: endpoint 1 'crm': secret_env: CRM_SECRET holds fewer than 16 characters")
    assert "short-one" not in str(caught.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(WebhookConfigError, match=rf"^{missing}: cannot read the webhooks file"):
        load_webhooks(missing, Topics(), env={})


# --------------------------------------------------------------------------- delivery rules


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_full_jitter() -> None:
    def upper(low: float, high: float) -> float:
        assert low == 0.0  # full jitter: anywhere from 0
        return high

    assert [backoff_delay(a, 0.5, 60, upper) for a in range(1, 10)] == [
        0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(10_000, 0.5, 60, upper) == 60  # no overflow on absurd attempts
    assert backoff_delay(1, 0.5, 60, lambda low, high: low) == 0
    for attempt in range(1, 12):
        assert 0 <= backoff_delay(attempt, 0.5, 60) <= min(60, 0.5 * 2 ** (attempt - 1))


def test_retry_after_in_seconds_or_as_a_date_is_capped() -> None:
    assert retry_after_s("3", 60) == 3
    assert retry_after_s(" 1.5 ", 60) == 1.5
    assert retry_after_s("600", 60) == 60
    assert retry_after_s("-4", 60) == 0
    assert retry_after_s(None, 60) is None
    assert retry_after_s("soon", 60) is None
    assert retry_after_s("nan", 60) is None
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 11, 23, 12, 0, 20, tzinfo=UTC), usegmt=True)
    assert retry_after_s(later, 60, now=now.timestamp()) == 20
    assert retry_after_s(later, 5, now=now.timestamp()) == 5


def test_which_statuses_are_retried() -> None:
    assert [s for s in (200, 301, 400, 401, 404, 408, 409, 422, 429, 500, 502, 503, 504)
            if is_retryable(s)] == [408, 429, 500, 502, 503, 504]


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"alert_id": "AL-1",  "score": 1}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET.encode(), body) == f"sha256={expected}"


def _record(value: bytes | None, key: bytes | None = b"C-1", topic: str = "cx.alerts.v1"
            ) -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=2, offset=41, timestamp=0, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=0,
                          serialized_value_size=0, headers=())


def test_bodies_are_the_value_as_is_and_summary_tombstones_say_deleted() -> None:
    summaries = "cx.customer-summary.v1"
    assert request_body(_record(b'{"a": 1}'), summaries) == (b'{"a": 1}', "")
    assert request_body(_record(None, topic=summaries), summaries) == (
        b'{"customer_id":"C-1","deleted":true}', "")
    assert request_body(_record(None), summaries) == (b'{"customer_id":"C-1","deleted":true}', "")
    assert request_body(_record(None, key=None), summaries) == (None, "the message has no value")
    body, why = request_body(_record(b"\xffnot json"), summaries)
    assert body is None and why.startswith("the message value is not JSON")


def test_dead_letter_records_follow_their_schema() -> None:
    check = validator("webhook-deadletter.v1")
    crm = parse(endpoint_block()).endpoints[0]
    json_one = orjson.loads(dead_letter_value(crm, _record(b'{"a": 1}'), attempts=8,
                                              last_error="HTTP 500: boom",
                                              first_attempt_at="2026-11-23T00:00:00.000Z"))
    check(json_one)
    assert (json_one["value"], json_one["value_base64"], json_one["key"],
            json_one["partition"], json_one["offset"]) == ({"a": 1}, None, "C-1", 2, 41)
    raw = orjson.loads(dead_letter_value(crm, _record(b"\xff", key=None), attempts=0,
                                         last_error="the message value is not JSON",
                                         first_attempt_at=None))
    check(raw)
    assert (raw["value"], raw["value_base64"], raw["key"]) == (None, "/w==", None)
