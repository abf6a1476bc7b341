"""Bearer tokens: parsing from settings, lookup, roles (pure, no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.auth import TokenBook, authorize, presented_token
from dashboard.errors import ApiError
from kernel.settings import ApiToken, Settings, SettingsError, parse_tokens

ADVISOR = ApiToken("advisor", "adv-ana", "a" * 24)
AGENT = ApiToken("agent", "A-007", "b" * 24)
BOOK = TokenBook([ADVISOR, AGENT])


def test_tokens_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# comment\nservice:crm:" + "c" * 20 + "\n\n")
    settings = Settings.from_env({"CXT_API_TOKENS": f"advisor:adv-ana:{'a' * 24}",
                                  "CXT_API_TOKENS_FILE": str(path)})
    assert [(t.role, t.subject) for t in settings.api_tokens] == [("advisor", "adv-ana"),
                                                                  ("service", "crm")]
    assert "aaaa" not in repr(settings.api_tokens)  # secrets stay out of reprs and logs


@pytest.mark.parametrize(("raw", "message"), [
    ("boss:x:" + "a" * 20, "role 'boss'"),
    ("advisor:x", "is not role:subject:token"),
    ("advisor:x:short", "shorter than 16"),
])
def test_bad_token_settings_are_named_without_the_secret(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        parse_tokens(raw)
    assert message in str(error.value)
    assert "short'" not in str(error.value)


def test_missing_tokens_file_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="/no/such/file"):
        Settings.from_env({"CXT_API_TOKENS_FILE": "/no/such/file"})


def test_token_from_header_or_websocket_subprotocol() -> None:
    assert presented_token({"authorization": "Bearer xyz"}) == "xyz"
    assert presented_token({"authorization": "bearer  xyz "}) == "xyz"
    assert presented_token({"authorization": "Basic xyz"}) is None
    assert presented_token({"sec-websocket-protocol": "cxt.v1, bearer.xyz"}) == "xyz"
    assert presented_token({"sec-websocket-protocol": "cxt.v1, bearer."}) is None
    assert presented_token({}) is None


def _status(headers: dict[str, str], roles: tuple[str, ...], agent_id: str | None = None
            ) -> int:
    try:
        authorize(BOOK, headers, roles, agent_id=agent_id)
    except ApiError as exc:
        return exc.status
    return 200


def test_roles_and_agent_ownership() -> None:
    advisor = {"authorization": f"Bearer {ADVISOR.token}"}
    agent = {"authorization": f"Bearer {AGENT.token}"}
    assert _status({}, ("advisor",)) == 401
    assert _status({"authorization": "Bearer " + "z" * 24}, ("advisor",)) == 401
    assert _status(advisor, ("advisor",)) == 200
    assert _status(agent, ("advisor", "service")) == 403
    assert _status(agent, ("agent",), agent_id="A-007") == 200
    assert _status(agent, ("agent",), agent_id="A-008") == 403
    assert BOOK.find(ADVISOR.token) == ADVISOR and BOOK.find("a" * 23) is None


@pytest.mark.parametrize("token", [AGENT, ADVISOR])
def test_the_refusal_reads_as_english(token: ApiToken) -> None:
    with pytest.raises(ApiError) as refused:
        authorize(BOOK, {"authorization": f"Bearer {token.token}"}, ("service",))
    assert refused.value.status == 403
    assert refused.value.message.startswith(f"an {token.role} token may not do this")
