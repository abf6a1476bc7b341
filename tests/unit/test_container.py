"""The Dockerfile and the compose file that uses it, read as text (no engine here; the
compose file itself is validated by `docker-compose config` in
tests/integration/cxt/test_localstack.py)."""

from __future__ import annotations

import re

from tests.support.helpers import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE = (REPO / "docker-compose.yml").read_text()


def test_the_base_is_pinned_to_one_python_release() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?",
                                 base.group(1)), base


def test_it_installs_the_wheel_and_runs_as_a_user_with_a_health_check() -> None:
    assert "pip wheel" in DOCKERFILE and "--no-index" in DOCKERFILE
    assert " -e " not in DOCKERFILE
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in DOCKERFILE and 'ENTRYPOINT ["cxt"]' in DOCKERFILE


def test_compose_runs_the_image_and_installs_nothing_at_start() -> None:
    assert "build: ." in COMPOSE
    assert "pip install" not in COMPOSE and "/app" not in COMPOSE


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
