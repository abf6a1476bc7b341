"""The command line: help everywhere, precise errors, never a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cxt.alerts import print_list
from cxt.localstack import free_port
from kernel.settings import Settings, SettingsError, parse_tokens
from kernel.times import BadTime, parse_time
from tests.support.helpers import REPO
from usecases.alerts import AlertNotFound, page_of

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


# -- issue 12: input that once ended in a traceback ------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["timeline", "C-1", "--since", "99999999d"], "--since: '99999999d' reaches back before"),
    (["timeline", "C-1", "--until", "99999999d"], "--until: '99999999d' reaches back before"),
    (["timeline", "C-1", "--since", "3000000d"], "--since: '3000000d' reaches back before"),
    (["timeline", "C-1", "--since", "999999999999999999999999d"], "reaches back before"),
    (["timeline", "C-1", "--since", "2026-11-22T10:00:00Z", "--until", "2026-11-21T00:00:00Z"],
     "--until 2026-11-21T00:00:00Z is earlier than --since 2026-11-22T10:00:00Z"),
    (["report", "--hours", "99999999"], "argument --hours: 99999999 is more than 744"),
    (["report", "--days", "99999999"], "argument --days: 99999999 is more than 400"),
    (["report", "--days", "100000"], "argument --days: 100000 is more than 400"),
    (["alerts", "--limit", "501"], "argument --limit: 501 is more than 500"),
])
def test_out_of_range_input_is_one_line_naming_the_option(args: list[str], expected: str
                                                          ) -> None:
    result = _cxt(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "variable", "value", "expected"), [
    (["timeline", "C-1"], "REDIS_URL", "notaurl",
     "REDIS_URL: 'notaurl' is not a redis://, rediss:// or unix:// URL"),
    (["alerts"], "REDIS_URL", "notaurl", "REDIS_URL: 'notaurl' is not a redis://"),
    (["produce", "-"], "KAFKA_BOOTSTRAP_SERVERS", "::::",
     "KAFKA_BOOTSTRAP_SERVERS: '::::' is not host:port"),
    (["schemas"], "CXT_LOG_LEVEL", "loud", "CXT_LOG_LEVEL='loud': expected one of debug"),
])
def test_a_bad_setting_is_refused_before_anything_runs(args: list[str], variable: str,
                                                       value: str, expected: str) -> None:
    result = _cxt(*args, env={**os.environ, variable: value})
    assert result.returncode == 2
    assert result.stderr.strip() == f"cxt: error: {expected}" or expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("env", "expected"), [
    ({"REDIS_URL": "notaurl"}, "REDIS_URL: 'notaurl' is not a redis://"),
    ({"REDIS_URL": "redis://localhost:99999/0"}, "REDIS_URL: 'redis://localhost:99999/0' is "
                                                 "not a valid URL (Port out of range"),
    ({"REDIS_URL": "redis://localhost/abc"}, "the database 'abc' after the host is not a number"),
    ({"REDIS_URL": "unix:///tmp/redis.sock", "CXT_REDIS_CLUSTER": "true"},
     "is not a redis:// or rediss:// URL (CXT_REDIS_CLUSTER is on)"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "::::"}, "KAFKA_BOOTSTRAP_SERVERS: '::::' is not host:port"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "a:9092,,b:9092"}, "KAFKA_BOOTSTRAP_SERVERS: '' is empty"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "kafka:0"}, "'kafka:0' has port 0, not 1-65535"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "kafka:http"}, "'kafka:http' is not host:port"),
    ({"CXT_DASHBOARD_PORT": "99999"}, "CXT_DASHBOARD_PORT='99999': must be 1 to 65535"),
    ({"CXT_WORKER_METRICS_PORT": "-1"}, "CXT_WORKER_METRICS_PORT='-1': must be 0 to 65535"),
    ({"CXT_BATCH_SIZE": "9" * 5000}, "CXT_BATCH_SIZE='99999"),
    ({"CXT_BATCH_SIZE": "99999999999"}, "must be 1 to 2147483647"),
])
def test_settings_name_the_variable_they_refuse(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert expected in str(refused.value)
    assert len(str(refused.value)) < 200  # a pasted megabyte is not echoed back


@pytest.mark.parametrize("env", [
    {"REDIS_URL": "rediss://user:secret@cache.example:6380/2"},
    {"REDIS_URL": "unix:///run/redis.sock?db=1"},
    {"KAFKA_BOOTSTRAP_SERVERS": "kafka1:9092, kafka2:9093"},
    {"KAFKA_BOOTSTRAP_SERVERS": "[::1]:9092,127.0.0.1"},
    {"CXT_WORKER_METRICS_PORT": "0"},
])
def test_settings_accept_what_the_clients_accept(env: dict[str, str]) -> None:
    Settings.from_env(env)


def test_parse_time_refuses_out_of_range_times_with_bad_time() -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert parse_time("1h", now=now) == int(now.timestamp() * 1000) - 3_600_000
    for text in ("99999999d", "3000000d", "999999999999999999999999d", "99999999999999w"):
        with pytest.raises(BadTime, match="before the year 1"):
            parse_time(text, now=now)
    # An offset may carry a timestamp just past the years datetime holds: still a number.
    assert parse_time("0001-01-01T00:00:00+01:00") < parse_time("9999-12-31T23:59:59-01:00")


def _samples(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "samples.jsonl"
    path.write_bytes(data)
    return str(path)


def test_rules_explain_says_which_surveys_raise_no_alert_and_why(tmp_path: Path) -> None:
    result = _cxt("rules", "explain", _samples(tmp_path, b"\n".join([
        b'{"score": 1, "comment": "the bill was wrong"}',
        b'{"score": 5}',
        b'{"score": 7}',
        b'{"score": 1, "scale_min": 0, "scale_max": 10}',
    ])))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("line 1: alert, business_operations")
    assert lines[1].startswith("line 2: no alert: score 5 is not bottom-2-box (1-2 of 1..5)")
    assert lines[2] == ("line 3: no alert: the worker rejects it (score_out_of_scale: "
                        "payload.score: 7 is outside the scale 1..5)")
    assert lines[3].startswith("line 4: alert, ")


def test_rules_explain_names_bad_lines_and_exits_1(tmp_path: Path) -> None:
    result = _cxt("rules", "explain", _samples(tmp_path, b'[1, 2]\n{"score": 1}\n\xff\xfe\nnope\n'))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "attribute" not in result.stderr
    assert result.stderr.splitlines() == [
        "line 1: not a JSON object (a survey envelope or payload)",
        "line 3: not UTF-8 (byte 1)",
        "line 4: not valid JSON",
        "cxt: error: 3 line(s) are not survey objects",
    ]
    assert result.stdout.startswith("line 2: alert, unclassified")


def test_tokens_for_an_advisor_who_is_not_an_actor_warn() -> None:
    stranger = _cxt("tokens", "new", "advisor", "nobody")
    assert stranger.returncode == 0 and stranger.stdout.startswith("advisor:nobody:")
    assert "warning: 'nobody' is not in the actors list of" in stranger.stderr
    actor = _cxt("tokens", "new", "advisor", "adv-ana")
    assert actor.returncode == 0 and actor.stderr == ""


def _alert(n: int, status: str = "open") -> dict:
    return {"alert_id": f"AL-{n}", "status": status, "category": "skill", "queue": "q",
            "agent_id": "A-1", "raised_at": "2026-11-22T10:00:00Z", "score": 1,
            "scale_max": 5, "customer_id": f"C-{n}"}


def test_alert_pages_follow_the_before_cursor_and_count_the_matches() -> None:
    recent = [_alert(n, "resolved" if n % 3 == 0 else "open") for n in range(10)]
    pick = {"statuses": {"open"}, "category": None, "queue": None, "agent": None}
    first = page_of(recent, limit=3, **pick)  # type: ignore[arg-type]
    assert [a["alert_id"] for a in first.alerts] == ["AL-1", "AL-2", "AL-4"]
    assert (first.matching, first.skipped, first.next) == (6, 0, "AL-4")
    second = page_of(recent, limit=3, before=first.next, **pick)  # type: ignore[arg-type]
    assert [a["alert_id"] for a in second.alerts] == ["AL-5", "AL-7", "AL-8"]
    assert (second.skipped, second.next) == (3, None)
    out = io.StringIO()
    print_list(first, out)
    assert out.getvalue().endswith("3 of 6 alert(s) (of the newest 5000), newest first; "
                                   "--before AL-4 for more\n")
    out = io.StringIO()
    print_list(second, out)
    assert out.getvalue().endswith("alerts 4-6 of 6, newest first\n")
    with pytest.raises(AlertNotFound, match="--before 'AL-99': no such alert"):
        page_of(recent, limit=3, before="AL-99", **pick)  # type: ignore[arg-type]


@pytest.mark.parametrize("argv", [["rules", "check", "--rules", "a\x00b"],
                                  ["rules", "explain", "a\x00b"]])
def test_a_nul_byte_in_a_path_is_a_one_line_error(argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Only reachable in-process (argv of a real process cannot hold NUL): the fuzz found it.
    from cxt.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxt: error: ") and "Traceback" not in err and err.count("\n") == 1


def test_resolve_takes_a_category_but_never_unclassified() -> None:
    from cxt.cli import build_parser

    args = build_parser().parse_args(["alerts", "resolve", "AL-1", "--actor", "adv-ana",
                                      "--category", "customer_expectation"])
    assert (args.alert_action, args.category) == ("resolve", "customer_expectation")
    result = _cxt("alerts", "resolve", "AL-1", "--actor", "adv-ana", "--category",
                  "unclassified")
    assert result.returncode == 2
    assert "argument --category: invalid choice: 'unclassified'" in result.stderr
    assert "'customer_expectation'" in result.stderr and "Traceback" not in result.stderr
    # The list's filter still finds the unclassified ones.
    assert build_parser().parse_args(["alerts", "--category", "unclassified"]).category \
        == "unclassified"


def test_resolving_an_unclassified_alert_without_a_category_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cxt.cli import main
    from usecases import alerts as alert_cases

    sent: list[dict] = []

    async def refuse(settings: Settings, action: dict) -> dict:
        sent.append(action)
        raise alert_cases.ActionRefused("its category is unclassified", "category_required")

    monkeypatch.setattr(alert_cases, "act", refuse)
    assert main(["alerts", "resolve", "AL-1", "--actor", "adv-ana"]) == 2
    assert "category" not in sent[0]
    assert capsys.readouterr().err == (
        "cxt: error: cannot resolve alert AL-1: its category is unclassified; name the cause "
        "with --category, one of skill, business_operations, customer_expectation\n")

    async def other(settings: Settings, action: dict) -> dict:
        raise alert_cases.ActionRefused("cannot resolve: acknowledge first", "invalid_transition")

    monkeypatch.setattr(alert_cases, "act", other)
    assert main(["alerts", "resolve", "AL-1", "--actor", "adv-ana"]) == 1  # not a usage error
