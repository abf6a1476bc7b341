"""Every `cxt` subcommand, run in-process with generated arguments and environment values
against the session's real Kafka and Redis: an exit status and, on failure, a message;
never a traceback on stderr or in the logs.

Commands that serve until stopped (up, worker, dashboard, summaries, webhooks run,
simulate) are run only with input they must refuse (bad arguments or settings).
Derandomized and bounded; tests/slow/test_cli_fuzz_slow.py runs many more examples.
"""

from __future__ import annotations

import pytest

from tests.support.cli_fuzz import (
    _EXAMPLES,
    COMMANDS,
    assert_clean,
    files,
    fuzz_command,
    fuzz_env,
    run_main,
)

__all__ = ["files", "fuzz_env"]  # the fixtures of tests.support.cli_fuzz, used here


@pytest.mark.parametrize("command", list(COMMANDS), ids=[" ".join(c) for c in COMMANDS])
def test_no_input_makes_a_traceback(command: tuple[str, ...], fuzz_env: dict[str, str],
                                    files: list[str]) -> None:
    fuzz_command(command, fuzz_env, files, _EXAMPLES.get(command, 30))


@pytest.mark.parametrize(("argv", "env"), [
    (["timeline", "C-1", "--since", "99999999d"], {}),
    (["timeline", "C-1", "--until", "999999999999999999999999d"], {}),
    (["report", "--days", "99999999"], {}),
    (["rules", "explain", "LATIN1"], {}),
    (["customers", "show", "C-1"], {}),  # exited 1 with nothing on stderr
    (["timeline", "C-1"], {"CXT_REDIS_CLUSTER": "true"}),  # the session's Redis is no cluster
    (["produce", "LATIN1"], {"KAFKA_BOOTSTRAP_SERVERS": "::::"}),
    (["alerts"], {"REDIS_URL": "notaurl"}),
])
def test_inputs_that_once_made_a_traceback(argv: list[str], env: dict[str, str],
                                           fuzz_env: dict[str, str], files: list[str]) -> None:
    argv = [next(f for f in files if f.endswith("latin1.jsonl")) if a == "LATIN1" else a
            for a in argv]
    outcome = run_main(argv, fuzz_env | env)
    assert_clean(outcome, argv)
    assert outcome.status in (1, 2)
    # argparse adds its usage lines: up to five for `report`, which has subcommands.
    assert len(outcome.stderr.strip().splitlines()) <= 6


def test_the_fuzz_knows_every_command(fuzz_env: dict[str, str]) -> None:
    # argparse names every command when refusing an unknown one.
    refusal = run_main(["no-such-command"], fuzz_env).stderr
    listed = refusal.partition("choose from ")[2].strip().rstrip(")").replace("'", "")
    assert {c[0] for c in COMMANDS} == {name.strip() for name in listed.split(",")}, refusal
