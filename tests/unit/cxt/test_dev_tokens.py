"""`cxt up`'s development tokens: a customer token for the self-service page, added to
a tokens file made before there were any, and its /me URL in the banner."""

from __future__ import annotations

from pathlib import Path

from cxt.tokens import DEV_CUSTOMER, dev_tokens, new_token_line, token_of
from cxt.up import _dashboard_urls
from kernel.settings import Settings


def test_a_new_file_has_a_customer_token_and_the_banner_its_url(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens"
    tokens = dev_tokens(path)
    customer = token_of(tokens, "customer", DEV_CUSTOMER)
    assert oct(path.stat().st_mode)[-3:] == "600"
    urls = _dashboard_urls(Settings(api_tokens=tokens), path)
    assert f"customer {DEV_CUSTOMER}  http://127.0.0.1:8080/me#token={customer}" in urls
    assert dev_tokens(path) == tokens  # kept as it is on the next start


def test_an_older_file_gains_one_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens"
    old = [new_token_line("advisor", "adv-ana"), new_token_line("service", "dev-service")]
    path.write_text("# made by an older cxt up\n" + "\n".join(old) + "\n")
    path.chmod(0o600)
    tokens = dev_tokens(path)
    assert [t.line() for t in tokens[:2]] == old
    assert [(t.role, t.subject) for t in tokens[2:]] == [("customer", DEV_CUSTOMER)]
    assert dev_tokens(path) == tokens
