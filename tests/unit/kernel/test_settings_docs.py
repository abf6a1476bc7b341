"""docs/configuration.md is generated from kernel.settings and must agree with it."""

from __future__ import annotations

import subprocess
import sys

from kernel.settings import VARIABLES, configuration_markdown
from tests.support.helpers import REPO

PAGE = REPO / "docs" / "configuration.md"
REGENERATE = "python -m kernel.settings --markdown > docs/configuration.md"


def test_the_configuration_page_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == configuration_markdown(), (
        f"docs/configuration.md disagrees with kernel/settings.py; run `{REGENERATE}`")


def test_the_page_names_every_variable_once() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for v in VARIABLES:
        assert text.count(f"| `{v.name}` |") == 1, v.name


def test_the_generator_runs_as_documented() -> None:
    result = subprocess.run([sys.executable, "-m", "kernel.settings", "--markdown"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == configuration_markdown()
