"""The command line: help everywhere, precise errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cxt.localstack import free_port
from cxt.settings import parse_tokens
from tests.helpers import REPO

COMMANDS = ["up", "worker", "topics", "produce", "simulate", "timeline", "dashboard", "tokens",
            "schemas", "summaries", "webhooks"]


def _cxt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = _cxt(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: cxt {command}")


@pytest.mark.parametrize(("args", "expected"), [
    ([], "required: COMMAND"),
    (["nonsense"], "invalid choice"),
    (["timeline"], "customer_id"),
    (["timeline", "C-1", "--limit", "0"], "must be greater than 0"),
    (["timeline", "C-1", "--limit", "ten"], "not a whole number"),
    (["timeline", "C-1", "--channel", "fax"], "invalid choice"),
    (["simulate", "--rate", "-3"], "must not be negative"),
    (["simulate", "--rate", "0"], "must be greater than 0"),
    (["topics", "delete"], "invalid choice"),
    (["tokens", "new", "boss", "x"], "invalid choice"),
    (["tokens", "new", "agent", "A:1"], "no spaces, ':' or ','"),
    (["dashboard", "--port", "70000"], "not a TCP port"),
])
def test_bad_arguments_exit_2_with_a_message(args: list[str], expected: str) -> None:
    result = _cxt(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_time_filter_names_the_value() -> None:
    result = _cxt("timeline", "C-1", "--until", "2026-11-22T10:00:00")
    assert result.returncode == 2
    assert "no UTC offset" in result.stderr and "Traceback" not in result.stderr


def test_bad_setting_is_reported_by_name() -> None:
    import os

    result = _cxt("timeline", "C-1", env={**os.environ, "CXT_BATCH_SIZE": "many"})
    assert result.returncode == 2
    assert "CXT_BATCH_SIZE='many'" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_services_give_one_clear_line() -> None:
    import os

    port = free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0",
           "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    redis_down = _cxt("timeline", "C-1", env=env)
    assert redis_down.returncode == 1
    assert "cannot reach Redis" in redis_down.stderr and "Traceback" not in redis_down.stderr
    kafka_down = _cxt("topics", "list", env=env)
    assert kafka_down.returncode == 1
    assert "cannot reach Kafka" in kafka_down.stderr and "Traceback" not in kafka_down.stderr


def test_produce_reports_a_missing_file() -> None:
    result = _cxt("produce", "/nonexistent/events.jsonl")
    assert result.returncode == 2
    assert "no such file: /nonexistent/events.jsonl" in result.stderr


def test_tokens_new_prints_a_line_the_settings_accept() -> None:
    result = _cxt("tokens", "new", "agent", "A-042")
    assert result.returncode == 0, result.stderr
    (token,) = parse_tokens(result.stdout)
    assert (token.role, token.subject) == ("agent", "A-042") and len(token.token) >= 32
    assert _cxt("tokens", "new", "agent", "A-042").stdout != result.stdout


def test_dashboard_refuses_to_start_without_tokens_or_with_a_bad_one() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXT_API_TOKENS")}
    result = _cxt("dashboard", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "no API tokens are configured" in result.stderr and "Traceback" not in result.stderr
    result = _cxt("dashboard", env=env | {"CXT_API_TOKENS": "advisor:adv-ana:short"})
    assert result.returncode == 2 and "shorter than 16" in result.stderr
    assert "short'" not in result.stderr  # the secret is not echoed
    result = _cxt("dashboard", env=env | {"CXT_API_TOKENS": "advisor:adv-ana:secret-secret-1"
                                                            "23456", "CXT_AGENT_CONTEXT": "/nope"})
    assert result.returncode == 2 and "/nope" in result.stderr, result.stderr


def test_a_closed_pipe_is_not_a_traceback() -> None:
    # `true` exits before cxt has started, so cxt's first write meets a closed pipe.
    result = subprocess.run(f"{sys.executable} -m cxt schemas alert.v1 | true", shell=True,
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
