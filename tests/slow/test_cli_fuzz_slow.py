"""The CLI fuzz of tests/integration/cxt/test_cli_fuzz.py with ten times the examples."""

from __future__ import annotations

import pytest

from tests.support.cli_fuzz import _EXAMPLES, COMMANDS, files, fuzz_command, fuzz_env

pytestmark = pytest.mark.slow
__all__ = ["files", "fuzz_env"]  # the module's fixtures, used here too


@pytest.mark.parametrize("command", list(COMMANDS), ids=[" ".join(c) for c in COMMANDS])
def test_no_input_makes_a_traceback_big(command: tuple[str, ...], fuzz_env: dict[str, str],
                                        files: list[str]) -> None:
    fuzz_command(command, fuzz_env, files, 10 * _EXAMPLES.get(command, 30))
