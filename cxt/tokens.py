"""API tokens for the dashboard: new ones, and the development set of `cxt up`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from kernel.settings import ApiToken, parse_tokens

DEV_ADVISOR = "adv-ana"  # an actor of config/alert_rules.toml, so the page can act
DEV_AGENT = "A-007"
DEV_AGENTS = [f"A-{n:03d}" for n in range(1, 121)]  # the demo traffic's agents
DEV_CUSTOMER = "C-000001"  # a demo customer, for the self-service page


def new_token_line(role: str, subject: str, expires_ms: int | None = None) -> str:
    return ApiToken(role, subject, secrets.token_urlsafe(24), expires_ms).line()


def dev_tokens(path: Path) -> tuple[ApiToken, ...]:
    """The tokens file of the local stack, made on first use and kept afterwards
    (so bookmarked URLs keep working); readable by its owner only."""
    if not path.exists():
        lines = ["# Development tokens made by `cxt up` (role:subject:token). Not for production.",
                 new_token_line("advisor", DEV_ADVISOR),
                 new_token_line("service", "dev-service"),
                 *(new_token_line("agent", agent) for agent in DEV_AGENTS),
                 new_token_line("customer", DEV_CUSTOMER)]
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
    tokens = parse_tokens(path.read_text(), f"tokens file {path}")
    if not any(t.role == "customer" and t.subject == DEV_CUSTOMER for t in tokens):
        # A file made before customer tokens existed: add one, keep the rest as it was.
        with path.open("a") as out:
            out.write(new_token_line("customer", DEV_CUSTOMER) + "\n")
        tokens = parse_tokens(path.read_text(), f"tokens file {path}")
    return tokens


def token_of(tokens: tuple[ApiToken, ...], role: str, subject: str) -> str:
    return next(t.token for t in tokens if t.role == role and t.subject == subject)
