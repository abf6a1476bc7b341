"""The webhooks file (config/webhooks.toml, `CXT_WEBHOOKS`): which HTTP endpoints get what.

    [[endpoint]]
    name = "crm"                                  # unique; [a-z0-9-]; names the consumer group
    url = "https://crm.example.com/hooks/cxt"     # http or https, no user:password
    topics = ["alerts", "customer_summary"]       # default ["alerts"]
    secret_env = "CXT_WEBHOOK_SECRET_CRM"         # the NAME of the variable holding the secret
    timeout_s = 5                                 # per request
    max_attempts = 8                              # then the message is dead-lettered
    backoff_initial_s = 0.5                       # first retry waits up to this (full jitter)
    backoff_max_s = 60                            # longest wait between two attempts
    start = "latest"                              # where a NEW endpoint starts: latest|earliest
    enabled = true

Loading is strict, like the rules file: a typo in a key, a wrong type or a
missing secret variable is one error naming the file, the endpoint and the key,
because an endpoint silently configured wrong would quietly miss messages.
Secrets never live in this file: it names an environment variable, read at start.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kernel.config_checks import reject_unknown
from kernel.errors import ConfigError
from kernel.settings import Topics

# The topics an endpoint may receive, by their `Topics` attribute (the real names
# follow the settings, so a renamed topic needs no change here).
TOPIC_CHOICES: tuple[str, ...] = ("alerts", "customer_summary")
STARTS: tuple[str, ...] = ("latest", "earliest")
_ENDPOINT_KEYS = ("name", "url", "topics", "secret_env", "timeout_s", "max_attempts",
                  "backoff_initial_s", "backoff_max_s", "start", "enabled")
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62})")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A shared secret shorter than this is guessable; same floor as the API tokens.
MIN_SECRET_CHARS = 16
# Upper bounds that catch unit mistakes (milliseconds written as seconds).
_MAX_TIMEOUT_S = 300.0
_MAX_BACKOFF_S = 3600.0


class WebhookConfigError(ConfigError):
    """The webhooks file cannot be used; the message names file, endpoint and key."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    topics: tuple[str, ...]  # real topic names, in the order of `topic_keys`
    topic_keys: tuple[str, ...]  # as written: "alerts", "customer_summary"
    secret_env: str
    # Resolved from the environment for enabled endpoints; empty for disabled ones.
    secret: bytes = field(default=b"", repr=False)
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    start: str = "latest"
    enabled: bool = True

    def group_id(self, app_id: str) -> str:
        """Its own consumer group: its own committed position, so it cannot hold others back."""
        return f"{app_id}-webhook-{self.name}"


@dataclass(frozen=True)
class WebhooksConfig:
    endpoints: tuple[Endpoint, ...]
    source: str

    @property
    def enabled(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.enabled)

    def describe(self, app_id: str) -> str:
        """The endpoints, one block each (for `cxt webhooks check`)."""
        lines = [f"{self.source}: {len(self.endpoints)} endpoints, {len(self.enabled)} enabled"]
        for e in self.endpoints:
            state = "enabled" if e.enabled else "disabled"
            lines.append(f"  {e.name} ({state}) -> {e.url}")
            lines.append(f"      topics {', '.join(e.topics)}; secret from ${e.secret_env}; "
                         f"group {e.group_id(app_id)}, new group starts at {e.start}")
            lines.append(f"      timeout {e.timeout_s:g} s, {e.max_attempts} attempts, backoff "
                         f"{e.backoff_initial_s:g} s doubling up to {e.backoff_max_s:g} s")
        return "\n".join(lines)


def load_webhooks(path: str | Path, topics: Topics,
                  env: Mapping[str, str] | None = None) -> WebhooksConfig:
    """Read and check the webhooks file; secrets come from `env` (default os.environ)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the path
        raise WebhookConfigError(f"{source}: cannot read the webhooks file: {exc}") from None
    return parse_webhooks(text, source, topics, os.environ if env is None else env)


def parse_webhooks(text: str, source: str, topics: Topics,
                   env: Mapping[str, str]) -> WebhooksConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise WebhookConfigError(f"{source}: not valid TOML: {exc}") from None
    reject_unknown(document, ("endpoint",), f"{source}: top level", WebhookConfigError)
    raw_endpoints = document.get("endpoint", [])
    if not isinstance(raw_endpoints, list):
        raise WebhookConfigError(f"{source}: endpoint must be written as [[endpoint]] blocks")
    endpoints: list[Endpoint] = []
    for index, raw in enumerate(raw_endpoints, start=1):
        endpoint = _endpoint(raw, f"{source}: endpoint {index}", topics, env)
        if any(e.name == endpoint.name for e in endpoints):
            raise WebhookConfigError(
                f"{source}: endpoint {index} {endpoint.name!r}: name is used by an earlier "
                "endpoint; names must be unique (each names its own consumer group)")
        endpoints.append(endpoint)
    return WebhooksConfig(tuple(endpoints), source)


def _endpoint(raw: Any, where: str, topics: Topics, env: Mapping[str, str]) -> Endpoint:
    if not isinstance(raw, dict):
        raise WebhookConfigError(f"{where}: must be an [[endpoint]] block")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise WebhookConfigError(
            f"{where}: name is required: 1-63 lower-case letters, digits and '-', "
            f"starting with a letter or digit (got {name!r})")
    where = f"{where} {name!r}"
    reject_unknown(raw, _ENDPOINT_KEYS, where, WebhookConfigError)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise WebhookConfigError(f"{where}: enabled must be true or false (got {enabled!r})")
    topic_keys = _topic_keys(raw.get("topics", ["alerts"]), where)
    secret_env = raw.get("secret_env")
    if not isinstance(secret_env, str) or not _ENV_NAME.fullmatch(secret_env):
        raise WebhookConfigError(
            f"{where}: secret_env is required: the NAME of the environment variable that "
            f"holds the shared secret, like \"CXT_WEBHOOK_SECRET_CRM\" (got {secret_env!r})")
    initial = _seconds(raw, "backoff_initial_s", 0.5, _MAX_BACKOFF_S, where)
    maximum = _seconds(raw, "backoff_max_s", 60.0, _MAX_BACKOFF_S, where)
    if maximum < initial:
        raise WebhookConfigError(f"{where}: backoff_max_s ({maximum:g}) must be at least "
                                 f"backoff_initial_s ({initial:g})")
    start = raw.get("start", "latest")
    if start not in STARTS:
        raise WebhookConfigError(f"{where}: start must be one of {', '.join(STARTS)} "
                                 f"(got {start!r})")
    return Endpoint(
        name=name,
        url=_url(raw.get("url"), where),
        topics=tuple(getattr(topics, key) for key in topic_keys),
        topic_keys=topic_keys,
        secret_env=secret_env,
        secret=_secret(env, secret_env, where) if enabled else b"",
        timeout_s=_seconds(raw, "timeout_s", 5.0, _MAX_TIMEOUT_S, where),
        max_attempts=_max_attempts(raw, where),
        backoff_initial_s=initial,
        backoff_max_s=maximum,
        start=start,
        enabled=enabled,
    )


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise WebhookConfigError(f"{where}: url is required, without spaces, like "
                                 f"\"https://host/path\" (got {value!r})")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise WebhookConfigError(f"{where}: url {value!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookConfigError(f"{where}: url must start with http:// or https:// and name "
                                 f"a host (got {value!r})")
    if parts.username is not None or parts.password is not None:
        # Secrets stay out of this file; the signature header authenticates us.
        raise WebhookConfigError(f"{where}: url must not contain a user or password")
    if port == 0:
        raise WebhookConfigError(f"{where}: url {value!r} has port 0")
    return value


def _topic_keys(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise WebhookConfigError(f"{where}: topics must be a list of at least one of "
                                 f"{', '.join(TOPIC_CHOICES)}, like [\"alerts\"]")
    for item in value:
        if item not in TOPIC_CHOICES:
            raise WebhookConfigError(f"{where}: topics: {item!r} is not one of "
                                     f"{', '.join(TOPIC_CHOICES)}")
    if len(set(value)) != len(value):
        raise WebhookConfigError(f"{where}: topics lists a topic twice")
    return tuple(value)


def _seconds(raw: dict, key: str, default: float, maximum: float, where: str) -> float:
    value = raw.get(key, default)
    # bool is an int in Python, but `timeout_s = true` is a mistake, not 1.
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not 0 < value <= maximum):
        raise WebhookConfigError(f"{where}: {key} must be a number of seconds greater than 0 "
                                 f"and at most {maximum:g} (got {value!r})")
    return float(value)


def _max_attempts(raw: dict, where: str) -> int:
    value = raw.get("max_attempts", 8)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise WebhookConfigError(f"{where}: max_attempts must be a whole number from 1 to 1000 "
                                 f"(got {value!r})")
    return value


def _secret(env: Mapping[str, str], variable: str, where: str) -> bytes:
    secret = env.get(variable)
    if not secret:
        raise WebhookConfigError(f"{where}: secret_env: the environment variable {variable} is "
                                 "not set; it must hold the secret shared with the receiver "
                                 "(or set enabled = false)")
    if len(secret) < MIN_SECRET_CHARS:
        raise WebhookConfigError(f"{where}: secret_env: {variable} holds fewer than "
                                 f"{MIN_SECRET_CHARS} characters; use a long random secret, "
                                 "e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
    return secret.encode()
