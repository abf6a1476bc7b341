"""Bearer tokens and roles.

Tokens come from settings (CXT_API_TOKENS / CXT_API_TOKENS_FILE) as
role:subject:token.  They are looked up by their SHA-256, so the comparison
does not leak through timing how much of a guessed token was right, and the
plain tokens are not kept in the lookup table.

Browsers cannot set headers on a websocket, so a websocket may carry the token
as a subprotocol "bearer.<token>" beside "cxt.v1"; that keeps it out of URLs
(and so out of access logs and browser history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from dashboard.errors import ApiError
from kernel.settings import ApiToken

SUBPROTOCOL = "cxt.v1"
_BEARER_PROTOCOL = "bearer."


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenBook:
    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_digest = {_digest(t.token): t for t in tokens}

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, presented: str) -> ApiToken | None:
        return self._by_digest.get(_digest(presented))


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request or websocket handshake, if any."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    for protocol in offered_subprotocols(headers):
        if protocol.startswith(_BEARER_PROTOCOL) and len(protocol) > len(_BEARER_PROTOCOL):
            return protocol[len(_BEARER_PROTOCOL):]
    return None


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    raw = headers.get("sec-websocket-protocol") or ""
    return [p.strip() for p in raw.split(",") if p.strip()]


def authorize(book: TokenBook, headers: Mapping[str, str], roles: Iterable[str],
              *, agent_id: str | None = None) -> ApiToken:
    """The caller's token if its role is one of `roles`; 401 or 403 otherwise.

    With `agent_id`, an agent token must belong to that agent (other roles
    allowed by `roles` may see any agent).
    """
    presented = presented_token(headers)
    if presented is None:
        raise ApiError(401, "unauthorized",
                       "this call needs a bearer token: Authorization: Bearer TOKEN")
    token = book.find(presented)
    if token is None:
        raise ApiError(401, "unauthorized", "the bearer token is not valid")
    allowed = tuple(roles)
    if token.role not in allowed:
        raise ApiError(403, "forbidden",
                       f"{_article(token.role)} {token.role} token may not do this; it "
                       f"needs a token of role {' or '.join(allowed)}")
    if agent_id is not None and token.role == "agent" and token.subject != agent_id:
        raise ApiError(403, "forbidden",
                       f"this agent token belongs to {token.subject}, not to {agent_id}")
    return token


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
