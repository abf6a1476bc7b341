"""Query-string and body checks that answer bad input with a precise 400/422."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import orjson
from starlette.requests import Request

from dashboard.errors import ApiError, bad_request
from kernel.times import BadTime, parse_time

MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000


class Query:
    """The query parameters of one request, checked against the names a route accepts.

    An unknown parameter is an error rather than ignored: a typo such as
    `?statu=open` would otherwise silently return everything.
    """

    def __init__(self, request: Request, allowed: Collection[str]) -> None:
        self.params = request.query_params
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise bad_request(f"unknown query parameter {unknown[0]!r}; this route takes "
                              f"{', '.join(sorted(allowed)) or 'none'}")
        for name in self.params:
            if len(self.params.getlist(name)) > 1:
                raise bad_request(f"query parameter {name!r} is given more than once")

    def text(self, name: str, max_length: int = MAX_ID_LENGTH) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        check_id(value, name, max_length)
        return value

    def choice(self, name: str, choices: Collection[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in choices:
            raise bad_request(f"{name}={value!r}: expected one of {', '.join(choices)}")
        return value

    def choices(self, name: str, choices: Collection[str]) -> set[str] | None:
        value = self.text(name, max_length=1000)
        if value is None:
            return None
        picked = {v.strip() for v in value.split(",") if v.strip()}
        wrong = sorted(picked - set(choices))
        if wrong or not picked:
            raise bad_request(f"{name}={value!r}: expected a comma-separated list of "
                              f"{', '.join(choices)}")
        return picked

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"{name}={raw[:40]!r}: expected a whole number") from None
        if not lo <= value <= hi:
            raise bad_request(f"{name}={value}: expected {lo} to {hi}")
        return value

    def time_ms(self, name: str) -> int | None:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_time(raw)
        except BadTime as exc:
            raise bad_request(f"{name}: {exc}") from None
        except (OverflowError, ValueError):  # e.g. 99999999d: before year 1
            raise bad_request(f"{name}={raw[:40]!r}: out of the range of dates") from None


def cursor(raw: str | None) -> tuple[int, str] | None:
    """A timeline page's cursor, "<occurred ms>:<event_id>", as returned in `next`."""
    if raw is None:
        return None
    ms, sep, event_id = raw.partition(":")
    # isascii: str.isdigit() also passes digits such as '²' that int() refuses.
    if not sep or not (ms.isascii() and ms.isdigit()) or not event_id:
        raise bad_request(f"before={raw[:60]!r} is not a cursor; pass the `next` value of "
                          "the previous page unchanged")
    return int(ms), event_id


def check_id(value: str, what: str, max_length: int = MAX_ID_LENGTH) -> str:
    if len(value) > max_length:
        raise bad_request(f"{what} is longer than {max_length} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise bad_request(f"{what} contains control characters")
    return value


async def json_body(request: Request, allowed: Mapping[str, type | tuple[type, ...]],
                    *, max_lengths: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A JSON object body (an empty body counts as {}), its fields checked by type;
    strings are at most MAX_TEXT_LENGTH long unless `max_lengths` names their field."""
    raw = await request.body()
    if not raw.strip():
        return {}
    if len(raw) > 64 * 1024:
        raise ApiError(413, "too_large", "the request body is larger than 64 KiB")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    for name, value in body.items():
        if name not in allowed:
            raise ApiError(422, "invalid_body", f"unknown field {name!r}; allowed: "
                           f"{', '.join(allowed) or 'none'}")
        if value is not None and not isinstance(value, allowed[name]):
            raise ApiError(422, "invalid_body", f"field {name!r} has the wrong type")
        longest = (max_lengths or {}).get(name, MAX_TEXT_LENGTH)
        if isinstance(value, str) and len(value) > longest:
            raise ApiError(422, "invalid_body",
                           f"field {name!r} is longer than {longest} characters")
    return body
