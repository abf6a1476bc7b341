"""Bearer tokens and roles.

Tokens come from settings (CXT_API_TOKENS / CXT_API_TOKENS_FILE) as
role:subject:token [expires=...].  They are looked up by their SHA-256, so the
comparison does not leak through timing how much of a guessed token was right,
and the plain tokens are not kept in the lookup table.

The file is re-read when it changes (`TokenBook.reload`, every few seconds from
the app's lifespan): a token removed from it, or past its expiry, is refused from
then on, and the live hub closes the websockets it opened.  A file that does not
parse is logged and the tokens stay as they were, so a half-saved edit cannot lock
everybody out.

Browsers cannot set headers on a websocket, so a websocket may carry the token
as a subprotocol "bearer.<token>" beside "cxt.v1"; that keeps it out of URLs
(and so out of access logs and browser history).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from dashboard.errors import ApiError
from kernel.settings import ApiToken, SettingsError, read_token_file
from kernel.times import iso_ms

log = logging.getLogger("cxt.dashboard")

SUBPROTOCOL = "cxt.v1"
_BEARER_PROTOCOL = "bearer."


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenBook:
    def __init__(self, tokens: Iterable[ApiToken], file: Path | None = None) -> None:
        self._fixed = tuple(tokens)
        self.file = file
        self._seen: tuple[int, int, int] | None = None
        self._by_digest: dict[bytes, ApiToken] = {}
        self._load(read_token_file(file) if file is not None else ())

    def _load(self, from_file: Iterable[ApiToken]) -> None:
        self._by_digest = {_digest(t.token): t for t in (*self._fixed, *from_file)}
        if self.file is not None:
            self._seen = _stamp(self.file)

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, presented: str) -> ApiToken | None:
        return self._by_digest.get(_digest(presented))

    def valid(self, token: ApiToken, now_ms: int | None = None) -> bool:
        """Whether `token` is still in the book and not expired."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return self._by_digest.get(_digest(token.token)) == token and not token.expired(now)

    def reload(self) -> bool:
        """Re-read the file if it changed since last read; True when the tokens changed.
        A file that cannot be read or parsed keeps the tokens as they were."""
        if self.file is None or _stamp(self.file) == self._seen:
            return False
        before = set(self._by_digest)
        try:
            from_file = read_token_file(self.file)
        except SettingsError as exc:
            self._seen = _stamp(self.file)  # say it once, not at every look
            log.error("%s; the tokens stay as they were until the file is fixed", exc)
            return False
        self._load(from_file)
        log.info("tokens file %s re-read: %d token(s)", self.file, len(self))
        return set(self._by_digest) != before


def _stamp(path: Path) -> tuple[int, int, int] | None:
    # Editors replace files (new inode) or rewrite them in place (new mtime or size).
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


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
    if token.expired(int(time.time() * 1000)):
        raise ApiError(401, "unauthorized",
                       f"the bearer token expired at {iso_ms(token.expires_ms or 0)}")
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
