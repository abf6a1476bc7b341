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
    book = TokenBook(settings.api_tokens, settings.api_tokens_file)
    assert book.find("a" * 24) is not None and book.find("c" * 20) is not None
    assert len(book) == 2
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


def test_a_token_may_carry_an_expiry() -> None:
    [token] = parse_tokens(f"service:crm:{'c' * 20} expires=2027-01-31T00:00:00Z")
    assert token.expires_ms == 1801353600000 and token.expired(1801353600000)
    assert not token.expired(1801353599999)
    assert parse_tokens(token.line()) == (token,)
    for bad, words in ((f"service:crm:{'c' * 20} expires=soon", "expires='soon' is not"),
                       (f"service:crm:{'c' * 20} until=2027-01-01T00:00:00Z", "unknown option")):
        with pytest.raises(SettingsError, match=words) as error:
            parse_tokens(bad)
        assert "c" * 20 not in str(error.value)


def test_an_expired_token_is_refused_with_when() -> None:
    expired = ApiToken("advisor", "adv-ana", "e" * 24, expires_ms=1_000)
    book = TokenBook([expired])
    with pytest.raises(ApiError, match="expired at 1970-01-01T00:00:01") as error:
        authorize(book, {"authorization": "Bearer " + "e" * 24}, ("advisor",))
    assert error.value.status == 401
    assert not book.valid(expired)


def test_the_file_is_re_read_when_it_changes_and_a_broken_one_changes_nothing(
        tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    first, second = "f" * 24, "g" * 24
    path.write_text(f"advisor:adv-ana:{first}\n")
    book = TokenBook([AGENT], path)
    token = book.find(first)
    assert token is not None and book.valid(token) and not book.reload()
    path.write_text(f"advisor:adv-ana:{second}\n")
    assert book.reload()
    assert book.find(first) is None and not book.valid(token) and book.find(second)
    assert book.find(AGENT.token) == AGENT  # CXT_API_TOKENS stay
    path.write_text("advisor:adv-ana:short\n")  # a half-saved edit
    assert not book.reload() and book.find(second) is not None
    path.unlink()  # gone: a missing file keeps them too
    assert not book.reload() and book.find(second) is not None
