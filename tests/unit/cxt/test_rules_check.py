"""`cxt rules check` checks the signals file too: valid, or one line naming section and key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import REPO


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxt", "rules", "check", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_shipped_files_are_valid_and_listed() -> None:
    result = _check()
    assert result.returncode == 0, result.stderr
    signals = REPO / "config" / "signals.toml"
    assert f"{signals}: valid\n{signals}: 6 signals, 6 on\n" in result.stdout
    assert "escalation_language" in result.stdout and "'ombudsman'" in result.stdout


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_bad_signals_file_is_one_precise_line_and_exit_2(tmp_path: Path, how: str) -> None:
    bad = tmp_path / "signals.toml"
    bad.write_text('[escalation]\nphrases = ["complaint"]\n[operational]\nmin_transfers = 0\n',
                   encoding="utf-8")
    result = (_check("--signals", str(bad)) if how == "option"
              else _check(env={"CXT_SIGNALS": str(bad)}))
    assert result.returncode == 2
    assert result.stderr == (f"cxt: error: {bad}: [operational]: min_transfers must be a whole "
                             "number from 1 to 100 (got 0)\n")
    assert "Traceback" not in result.stderr


def test_another_copy_is_checked_before_it_goes_live(tmp_path: Path) -> None:
    copy = tmp_path / "signals.toml"
    copy.write_text('[escalation]\nphrases = ["complaint"]\n[operational]\nenabled = false\n',
                    encoding="utf-8")
    result = _check("--signals", str(copy))
    assert result.returncode == 0, result.stderr
    assert f"{copy}: valid\n{copy}: 6 signals, 3 on\n" in result.stdout
    assert "1 phrases: 'complaint'" in result.stdout


def test_an_unreadable_signals_file_is_an_error_not_a_traceback() -> None:
    result = _check("--signals", "/no/such/signals.toml")
    assert result.returncode == 2
    assert result.stderr.startswith("cxt: error: /no/such/signals.toml: cannot read the signals "
                                    "file") and result.stderr.count("\n") == 1


def test_a_nul_byte_in_the_signals_path_is_a_one_line_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Only reachable in-process: the argv of a real process cannot hold NUL.
    from cxt.cli import main

    assert main(["rules", "check", "--signals", "a\x00b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxt: error: ") and "Traceback" not in err and err.count("\n") == 1
