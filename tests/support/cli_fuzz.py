"""The CLI fuzz: commands, argument and environment strategies, the `fuzz_env` and `files`
fixtures; shared by tests/integration/cxt/test_cli_fuzz.py and tests/slow/test_cli_fuzz_slow.py."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from dataclasses import dataclass
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxt.cli import build_parser, main
from cxt.localstack import LocalStack, free_port
from kernel.settings import Settings, SettingsError
from tests.support.helpers import create_topics, envelope, isolated, settings_env

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))

# Running these with valid input would serve (or start a whole stack) until stopped.
SERVING = {("up",), ("worker",), ("dashboard",), ("summaries",), ("webhooks",),
           ("webhooks", "run"), ("simulate",)}

# Text that has broken something once, or looks like it might.
NASTY = ["", " ", "-", "--", "0", "-1", "99999999", "999999999999999999999999", "1e9", "nan",
         "99999999d", "3000000d", "999999999999999999999999d", "0001-01-01T00:00:00+01:00",
         "9999-12-31T23:59:59-01:00", "2026-11-22T10:00:00", "~phone:+1", "}x", "C-1\x00",
         "é", "\u202e", "x" * 300, "::::", "notaurl", "redis://", "redis://[::1/0",
         "redis://localhost:99999/0", "redis://localhost/abc", "unix://", "[::1", "h:0",
         "true", "maybe", "%s%s", "{}", "[]", "null"]
WORDS = st.sampled_from(NASTY) | st.text(max_size=20)


def _can_be_environment(text: str) -> bool:
    # A real environment is NUL-free bytes; os.environ refuses anything else.
    try:
        os.fsencode(text)
    except UnicodeError:
        return False
    return "\x00" not in text


ENV_WORDS = WORDS.filter(_can_be_environment)

# Each command's options and positional slots; a slot draws valid-looking or nasty text.
COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("up",): ["--rate", "--customers", "--no-demo"],
    ("worker",): [],
    ("dashboard",): ["--host", "--port"],
    ("tokens", "new"): ["ROLE", "SUBJECT"],
    ("schemas",): ["NAME"],
    ("summaries",): [],
    ("webhooks", "check"): [],
    ("webhooks", "run"): [],
    ("topics", "list"): [],
    ("topics", "create"): [],
    ("produce",): ["FILE", "--topic", "--quiet"],
    ("simulate",): ["--rate", "--duration", "--customers", "--seed", "--no-customers"],
    ("timeline",): ["ID", "--channel", "--since", "--until", "--limit", "--json"],
    ("alerts",): ["--status", "--category", "--kind", "--queue", "--agent", "--limit",
                  "--before", "--json"],
    ("alerts", "show"): ["ID", "--json"],
    ("alerts", "ack"): ["ID", "--actor", "--note"],
    ("alerts", "callback"): ["ID", "--actor", "--outcome"],
    ("alerts", "resolve"): ["ID", "--actor", "--category"],
    ("report",): ["--hours", "--days", "--channel", "--queue", "--agent", "--json"],
    ("report", "contacts"): ["--hours", "--days", "--channel", "--queue", "--intent", "--json"],
    ("report", "early-warning"): ["--limit", "--window-hours", "--json"],
    ("report", "routing"): ["--seed", "--contacts", "--rules", "--json"],
    ("rules", "check"): ["--rules", "--signals"],
    ("rules", "explain"): ["FILE", "--rules"],
    ("customers", "show"): ["ID", "--json"],
    ("customers", "merge-preview"): ["ID", "INTO", "--json"],
    ("customers", "erase"): ["ID", "--yes"],
    ("customers", "export"): ["ID", "--output"],
    ("deadletters", "list"): ["--reason", "--topic", "--since", "--until", "--limit", "--json"],
    ("deadletters", "show"): ["ID", "--json"],
    ("deadletters", "replay"): ["--reason", "--topic", "--since", "--until", "--dry-run",
                                "--chunk"],
}
# Always given (--contacts: so that the default 20,000 contacts never slow the fuzz down).
REQUIRED = {"--actor", "--outcome", "--contacts"}
FLAGS = {"--no-demo", "--quiet", "--no-customers", "--json", "--yes", "--dry-run"}
GOOD = {"ROLE": ["advisor", "agent", "service"], "SUBJECT": ["adv-ana", "A-007", "nobody"],
        "NAME": ["alert.v1", "nosuch.v9"], "ID": ["C-fuzz-1", "AL-nosuch"],
        "INTO": ["C-fuzz-2", "C-fuzz-1"],
        "--channel": ["call", "survey"], "--since": ["7d", "2026-11-01T00:00:00Z"],
        "--until": ["1h", "2026-11-02T00:00:00Z"], "--limit": ["1", "50", "501"],
        "--status": ["open", "open,escalated"], "--category": ["skill", "unclassified"],
        "--hours": ["24", "744", "745"], "--days": ["30", "400"], "--outcome": ["reached"],
        "--actor": ["adv-ana"], "--topic": ["nosuch.topic"], "--rate": ["20"],
        "--port": ["8080", "70000"], "--reason": ["too_large"], "--chunk": ["10", "0"],
        "--contacts": ["50", "0", "1000001"], "--seed": ["7", "-3"],
        "--output": ["-"]}

# Settings the fuzz varies.  Values the settings accept are replaced by the real
# service (or a closed port), so no example dials a random host.
ENV_NAMES = ["REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CXT_REDIS_CLUSTER", "CXT_BATCH_SIZE",
             "CXT_DASHBOARD_PORT", "CXT_LOG_LEVEL", "CXT_TIMELINE_MAX_ENTRIES",
             "CXT_ALERT_RULES", "CXT_API_TOKENS", "CXT_SESSION_TIMEOUT_S",
             "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SSL_CA_FILE",
             "REDIS_SSL_CA_FILE", "CXT_DEADLETTER_RETENTION_DAYS"]
CONNECTIONS = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str
    logged: list[str]


class _Records(logging.Handler):
    """Log records that carry an exception (a traceback, had they reached a terminal)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info or "Traceback" in text:
            self.bad.append(f"{record.name}: {text}")


@pytest.fixture(scope="module")
def fuzz_env(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    settings = isolated(stack.settings)
    import asyncio

    asyncio.run(create_topics(settings))
    return settings_env(settings)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Input files of every kind `produce` and `rules explain` meet."""
    import orjson

    root = tmp_path_factory.mktemp("cli-fuzz")
    contents = {
        "good.jsonl": orjson.dumps(envelope("survey", "C-fuzz-1", score=1)) + b"\n",
        "garbage.jsonl": b'{"score": 5}\n[1, 2]\nnot json\n{"type": 7}\n\n',
        "latin1.jsonl": b'{"comment": "caf\xe9"}\n\xff\xfe\n',
        "rules.toml": b"[[rule]]\nname = 1\n",
        "binary.bin": bytes(range(256)),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return [*(str(root / name) for name in contents), str(root / "missing.jsonl"), "-",
            str(root)]


def run_main(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> Outcome:
    out, err, records = io.StringIO(), io.StringIO(), _Records()
    root = logging.getLogger()
    root.addHandler(records)
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(
                sys, "stdin", fake_stdin), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else 1
    finally:
        root.removeHandler(records)
    return Outcome(status, out.getvalue(), err.getvalue(), records.bad)


def assert_clean(outcome: Outcome, argv: list[str]) -> None:
    where = f"cxt {' '.join(map(repr, argv))}"
    assert "Traceback" not in outcome.stderr, f"{where}\n{outcome.stderr}"
    assert not outcome.logged, f"{where}\n{outcome.logged}"
    assert outcome.status in (0, 1, 2), f"{where}: status {outcome.status}\n{outcome.stderr}"
    if outcome.status:
        assert outcome.stderr.strip(), f"{where}: failed without saying why"


def _sometimes(draw: st.DrawFn, tenths: int) -> bool:
    return draw(st.integers(0, 9)) < tenths


def _value(draw: st.DrawFn, slot: str, files: list[str]) -> str:
    good = files if slot in ("FILE", "--rules") else GOOD.get(slot, ["x"])
    return draw(st.sampled_from(good)) if _sometimes(draw, 6) else draw(WORDS)


@st.composite
def arguments(draw: st.DrawFn, command: tuple[str, ...], files: list[str]) -> list[str]:
    """Mostly well-formed: the positionals in place, some options, now and then a stray word,
    so most examples get past the parser to the command itself."""
    argv = list(command)
    slots = COMMANDS[command]
    argv += [_value(draw, slot, files) for slot in slots if slot.isupper()]
    options = [slot for slot in slots if not slot.isupper() and slot not in REQUIRED]
    picked = draw(st.lists(st.sampled_from(options), max_size=3, unique=True)
                  if options else st.just([]))
    for option in [o for o in slots if o in REQUIRED] + picked:
        argv += [option] if option in FLAGS else [option, _value(draw, option, files)]
    if _sometimes(draw, 1):
        argv.insert(draw(st.integers(0, len(argv))), draw(WORDS))
    return argv


@st.composite
def environments(draw: st.DrawFn, base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    changed = (draw(st.lists(st.sampled_from(ENV_NAMES), min_size=1, max_size=2, unique=True))
               if _sometimes(draw, 4) else [])
    for name in changed:
        env[name] = draw(ENV_WORDS)
    for name in CONNECTIONS:
        if env[name] != base[name] and _accepted({name: env[name]}):
            env[name] = draw(st.sampled_from([base[name], _closed(name)]))
    if env.get("CXT_REDIS_CLUSTER") != base.get("CXT_REDIS_CLUSTER") and _accepted(
            {"CXT_REDIS_CLUSTER": env["CXT_REDIS_CLUSTER"], "REDIS_URL": env["REDIS_URL"]}):
        env["CXT_REDIS_CLUSTER"] = "false"  # the session's Redis is no cluster
    return env


def _accepted(env: dict[str, str]) -> bool:
    try:
        Settings.from_env(env)
    except SettingsError:
        return False
    return True


def _closed(name: str) -> str:
    port = free_port()
    return f"redis://127.0.0.1:{port}/0" if name == "REDIS_URL" else f"127.0.0.1:{port}"


def would_serve(argv: list[str], env: dict[str, str]) -> bool:
    """Valid input to a command that runs until stopped: not run here."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(
                io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return False
    command = (args.command, *([args.action] if getattr(args, "action", None) else []))
    return command in SERVING and _accepted(env)


def fuzz_command(command: tuple[str, ...], fuzz_env: dict[str, str], files: list[str],
                 examples: int) -> None:
    @settings(FUZZ, max_examples=examples)
    @given(argv=arguments(command, files), env=environments(fuzz_env),
           stdin=st.sampled_from([b"", b'{"score": 1}\n', b"\xff\n"]))
    def run(argv: list[str], env: dict[str, str], stdin: bytes) -> None:
        if would_serve(argv, env):
            return
        assert_clean(run_main(argv, env, stdin), argv)

    run()


# Commands that talk to Kafka cost a connection per example; the rest are cheap.
_EXAMPLES = {("produce",): 25, ("topics", "list"): 10, ("topics", "create"): 10,
             ("alerts", "ack"): 15, ("alerts", "callback"): 10, ("alerts", "resolve"): 10,
             ("customers", "erase"): 15, ("deadletters", "list"): 10,
             ("deadletters", "show"): 10, ("deadletters", "replay"): 10}
